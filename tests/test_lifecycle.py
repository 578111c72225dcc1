"""The lifecycle demo, as the README's first command runs it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.helpers import cli_process, git

pytestmark = pytest.mark.slow


def test_the_demo_runs_to_completion_and_keeps_the_project_when_asked(tmp_path: Path) -> None:
    result = cli_process("demo", "--keep", str(tmp_path / "demo"), "--json", timeout=600)
    assert result.exit_code == 0, result.stderr
    document = json.loads(result.stdout)
    assert document["kept"] and document["tier"] == "full"
    head = git(tmp_path / "demo", "rev-parse", "HEAD")
    assert {(m["workspace"], m["version"], m["git_commit"]) for m in document["models"]} == {
        ("dev", 1, head),
        ("shared", 1, head),
    }
    assert (tmp_path / "demo" / ".loopline" / "state.db").is_file()
    status = cli_process("status", "--json", cwd=tmp_path / "demo")
    assert len(json.loads(status.stdout)["models"]) == 2


def test_the_demo_refuses_a_folder_that_holds_files(tmp_path: Path) -> None:
    (tmp_path / "taken").mkdir()
    (tmp_path / "taken" / "file").write_text("x")
    result = cli_process("demo", "--keep", str(tmp_path / "taken"))
    assert result.exit_code == 1
    assert "is not empty" in result.stderr
    assert [p.name for p in (tmp_path / "taken").iterdir()] == ["file"]
