"""In GitHub Actions, commands write their outputs and a Markdown summary for the run page."""

from __future__ import annotations

import html
import os
import subprocess
import sys
from pathlib import Path

import pytest

import loopline
from tests.conftest import ProjectFactory
from tests.helpers import cli, commit_all, edit_yaml, set_gate

pytestmark = pytest.mark.slow


def test_inner_loop_writes_outputs_and_a_summary(
    new_project: ProjectFactory,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    project = new_project("simple")
    outputs, summary = tmp_path / "out.txt", tmp_path / "summary.md"
    monkeypatch.setenv("GITHUB_OUTPUT", str(outputs))
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    result = cli(capsys, "inner-loop", "-C", str(project), "--json")
    assert result.exit_code == 0
    document = result.json()
    values = dict(line.split("=", 1) for line in outputs.read_text().splitlines())
    assert values["registered"] == "true"
    assert values["git_commit"] == document["git_commit"]
    assert values["registry_version"] == "1"
    text = summary.read_text()
    assert text.startswith("## Inner loop: registered proj-classifier")
    assert "| accuracy |" in text


def test_a_failed_gate_is_summarised_too(
    new_project: ProjectFactory,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    project = new_project("simple")
    set_gate(project, "roc_auc", min=1.5)
    commit_all(project, "Impossible gate")
    summary = tmp_path / "summary.md"
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    monkeypatch.setenv("GITHUB_OUTPUT", str(tmp_path / "out.txt"))
    result = cli(capsys, "inner-loop", "-C", str(project))
    assert result.exit_code == 1
    assert "| roc_auc |" in summary.read_text() and "FAIL" in summary.read_text()
    assert "registered=false" in (tmp_path / "out.txt").read_text()


def status_printed(project: Path, **env: str) -> str:
    """What `loopline status` prints to a pipe, with ``env`` and without the shell's ``COLUMNS``."""
    clean = {key: value for key, value in os.environ.items() if key != "COLUMNS"}
    script = str(Path(sys.executable).with_name("loopline"))
    done = subprocess.run(
        [script, "status"], cwd=project, capture_output=True, text=True, env={**clean, **env}, check=True
    )
    return done.stdout


def test_a_ci_log_gets_whole_names_in_tables_and_unbroken_notes(trained_project: ProjectFactory) -> None:
    # A log is no terminal: rich would print at 80 columns and cut names short ("proj-c…")
    project = trained_project("simple")
    shown = status_printed(project, GITHUB_ACTIONS="true")
    rows = [line for line in shown.splitlines() if "proj-classifier" in line]
    assert len(rows) == 2 and all("built-here" in row for row in rows), shown
    assert "…" not in shown
    # a terminal's width (COLUMNS) is still kept
    assert max(len(line) for line in status_printed(project, COLUMNS="60").splitlines()) <= 60


def test_a_reason_quoted_in_a_summary_is_text_not_a_link_an_image_or_a_mention(
    trained_project: ProjectFactory,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # A summary is rendered on the run's page for whoever reads it: a denial's reason could dress a
    # link as an approval, load an image from anywhere, or ping a team.
    from markdown_it import MarkdownIt

    project = trained_project("simple")
    edit_yaml(
        project / "loopline.yaml", release={"approvals": {"required": 1, "approvers": ["role:releaser"]}}
    )
    for user in ("alice", "bob"):
        loopline.user_add(user, project=project)
        loopline.user_grant(user, "releaser", "prod", project=project)
    reason = (
        "see [the approval](https://example.invalid/ok) <img src=https://example.invalid/p.png> @org/admins"
    )
    monkeypatch.setenv("LOOPLINE_USER", "bob")
    loopline.approve(reason=reason, deny=True, project=project)
    summary = tmp_path / "summary.md"
    monkeypatch.setenv("LOOPLINE_USER", "alice")
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    monkeypatch.setenv("GITHUB_OUTPUT", str(tmp_path / "out.txt"))
    result = cli(capsys, "-C", str(project), "outer-loop", "prod")
    assert result.exit_code != 0 and "released=false" in (tmp_path / "out.txt").read_text()
    page = MarkdownIt("commonmark").enable("table").render(summary.read_text())
    assert "<a " not in page and "<img" not in page and "@org" not in page, page
    shown = html.unescape(page).replace("\u200b", "")
    assert "bob denied the release" in shown and reason in shown
