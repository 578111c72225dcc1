"""`loopline init`: a runnable sample project for every tier."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

import loopline
from loopline.config import load_config
from loopline.errors import DirectoryNotEmpty
from tests.helpers import git

EXPECTED = {
    ".gitignore",
    "README.md",
    "data/inbox/heldout.csv",
    "gate.yaml",
    "loopline.yaml",
    "notebooks/local-development.ipynb",
    "params.yaml",
    "pyproject.toml",
    "request.json",
    "requirements.txt",
    "tests/conftest.py",
    "tests/test_train.py",
    "train.py",
}


def test_every_file_init_writes_passes_the_usual_pre_commit_hooks(tmp_path: Path) -> None:
    # end-of-file-fixer and trailing-whitespace, which a team's pre-commit runs on the files it commits
    result = loopline.init(tmp_path / "p", "full")
    texts = [f for f in result.files if not f.endswith(".csv")]
    for name in texts:
        text = (tmp_path / "p" / name).read_text()
        assert text.endswith("\n") and not text.endswith("\n\n"), name
        assert not [line for line in text.splitlines() if line != line.rstrip()], name


@pytest.mark.parametrize("tier", ["experimentation", "simple", "full"])
def test_init_writes_a_valid_project_for_each_tier(tmp_path: Path, tier: str) -> None:
    result = loopline.init(tmp_path / "p", tier)
    assert set(result.files) >= EXPECTED
    assert not [f for f in result.files if "cache" in f], result.files
    settings = load_config(tmp_path / "p")
    assert settings.tier.value == tier
    assert settings.config.model.name == "p-classifier"
    assert (tmp_path / "p" / ".git").is_dir() and result.git_initialised
    assert ".loopline/" in (tmp_path / "p" / ".gitignore").read_text().splitlines()
    assert yaml.safe_load((tmp_path / "p" / "params.yaml").read_text())["label_noise"] == 0.0
    # What MLflow makes where train.py runs by hand, with no tracking URI set, leaves the tree clean.
    (tmp_path / "p" / "mlflow.db").write_bytes(b"")
    (tmp_path / "p" / "mlruns" / "0").mkdir(parents=True)
    (tmp_path / "p" / "mlruns" / "0" / "meta.yaml").write_text("name: Default\n")
    assert (
        git(tmp_path / "p", "status", "--porcelain", "--untracked-files=all", "--", "mlflow.db", "mlruns")
        == ""
    )


def test_init_names_the_project_as_asked_and_the_folder_stays_where_it_is(tmp_path: Path) -> None:
    result = loopline.init(tmp_path / "p", "simple", name="churn")
    assert (result.project, result.path) == ("churn", tmp_path / "p")
    assert load_config(tmp_path / "p").config.model.name == "churn-classifier"


def test_init_refuses_a_folder_that_holds_files(tmp_path: Path) -> None:
    (tmp_path / "p").mkdir()
    (tmp_path / "p" / "keep.txt").write_text("mine")
    with pytest.raises(DirectoryNotEmpty, match=r"is not empty \(1 entries\)"):
        loopline.init(tmp_path / "p", "simple")
    assert [f.name for f in (tmp_path / "p").iterdir()] == ["keep.txt"]


def test_init_takes_a_new_empty_repository(tmp_path: Path) -> None:
    """`mkdir p && cd p && git init && loopline init .`: the repository's own folder counts as empty."""
    subprocess.run(["git", "init", "--quiet", "--initial-branch=trunk", str(tmp_path / "p")], check=True)
    result = loopline.init(tmp_path / "p", "simple")
    assert not result.git_initialised and ".github/workflows/inner-loop.yml" in result.files
    assert (tmp_path / "p" / "loopline.yaml").is_file()
    # Its merges will land on its own branch: outer-loop test listens there.
    test = (tmp_path / "p" / ".github" / "workflows" / "outer-loop-test.yml").read_text()
    assert '    branches: ["trunk"]\n' in test


def test_init_inside_a_repository_does_not_nest_one(tmp_path: Path) -> None:
    subprocess.run(["git", "init", "--quiet", str(tmp_path)], check=True)
    result = loopline.init(tmp_path / "ml", "simple")
    assert not result.git_initialised
    assert not (tmp_path / "ml" / ".git").exists()


def test_the_samples_own_tests_and_lint_pass_and_change_no_file_of_the_project(tmp_path: Path) -> None:
    loopline.init(tmp_path / "p", "simple")
    # A user's own request, which running the tests must not overwrite.
    (tmp_path / "p" / "request.json").write_text('{"dataframe_split": {"columns": [], "data": []}}\n')

    def files() -> dict[str, bytes]:
        return {
            str(path.relative_to(tmp_path / "p")): path.read_bytes()
            for path in (tmp_path / "p").rglob("*")
            if path.is_file() and "__pycache__" not in path.parts
        }

    before = files()
    tests = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"],
        cwd=tmp_path / "p",
        capture_output=True,
        text=True,
        check=False,
    )
    assert tests.returncode == 0, tests.stdout + tests.stderr
    assert "5 passed" in tests.stdout
    assert files() == before
    lint = subprocess.run(
        [sys.executable, "-m", "ruff", "check", "--no-cache", "."],
        cwd=tmp_path / "p",
        capture_output=True,
        text=True,
        check=False,
    )
    assert lint.returncode == 0, lint.stdout


def test_the_held_out_data_init_writes_are_what_the_samples_training_script_exports(tmp_path: Path) -> None:
    """init ships the sample's held-out split and request instead of running its script (seconds of
    imports); the script, run as its comment says, writes the same bytes."""
    loopline.init(tmp_path / "p", "simple")
    project = tmp_path / "p"
    written = {name: (project / name).read_bytes() for name in ("data/inbox/heldout.csv", "request.json")}
    for name in written:
        (project / name).unlink()
    done = subprocess.run(
        [sys.executable, "train.py", "--export-heldout"],
        cwd=project,
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert {name: (project / name).read_bytes() for name in written} == written


def test_what_tools_leave_in_a_template_folder_is_never_rendered(tmp_path: Path) -> None:
    from loopline.rendering import _walk

    folder = tmp_path / "templates"
    for name in ("a.txt", "sub/b.txt", ".ruff_cache/0/x", "__pycache__/y.pyc", "sub/.pytest_cache/z"):
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_text("x")
    assert [name for name, _ in _walk(folder)] == ["a.txt", "sub/b.txt"]
