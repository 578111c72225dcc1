"""The project commands as a person reads them: `loopline status` on a project with a long history."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest

from loopline import catalog
from loopline.domain import PRODUCTION
from loopline.instance import Instance
from tests.conftest import ProjectFactory
from tests.helpers import cli

pytestmark = pytest.mark.slow


def test_status_lists_the_newest_versions_and_the_aliased_ones_and_all_on_asking(
    trained_project: ProjectFactory, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COLUMNS", "200")  # the table's cells whole, whatever the terminal's width
    project = trained_project("simple")
    instance = Instance.open(project)
    first = next(v for v in catalog.list_versions(instance.db, workspace="dev"))
    with instance.db.write() as connection:  # a year of inner loops: versions 2..40 of dev
        for number in range(2, 41):
            catalog.add(connection, replace(first, version=number, git_commit=f"{number:02x}" * 20), "ci")
        catalog.set_alias(connection, "dev", first.name, PRODUCTION, 3)

    shown = cli(capsys, "status", "-C", str(project))
    assert shown.exit_code == 0
    rows = [line.split() for line in shown.stdout.splitlines() if first.name in line.split()]
    listed = {row[5] for row in rows if row[1] == "dev"}
    assert listed == {"3", "36", "37", "38", "39", "40"}, shown.stdout
    said = " ".join(shown.stdout.split())
    assert f"Older versions not listed: 34 of {first.name} in dev (--all lists them)" in said
    assert [row[5] for row in rows if row[1] == "shared"] == ["1"]  # the registry's one version

    every = cli(capsys, "status", "--all", "-C", str(project))
    assert sum(line.split()[1:4:2] == ["dev", first.name] for line in every.stdout.splitlines()) == 40
    assert "Older versions" not in every.stdout
    document = json.loads(cli(capsys, "status", "--json", "-C", str(project)).stdout)
    assert sum(model["workspace"] == "dev" for model in document["models"]) == 40


def test_history_pages_back_through_the_log_from_a_sequence_number(
    trained_project: ProjectFactory, capsys: pytest.CaptureFixture[str]
) -> None:
    project = trained_project("simple")
    every = cli(capsys, "history", "--json", "-C", str(project)).json()["events"]
    assert len(every) >= 4
    newest = cli(capsys, "history", "-n", "2", "--json", "-C", str(project)).json()["events"]
    assert [e["seq"] for e in newest] == [e["seq"] for e in every[-2:]]
    older = cli(capsys, "history", "-n", "2", "--before", str(newest[0]["seq"]), "--json", "-C", str(project))
    assert [e["seq"] for e in older.json()["events"]] == [e["seq"] for e in every[-4:-2]]
    shown = cli(capsys, "history", "--before", str(every[1]["seq"]), "-C", str(project))
    assert shown.exit_code == 0 and shown.stdout.count("\n") == 1 and f"#{every[0]['seq']} " in shown.stdout
