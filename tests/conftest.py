"""Shared fixtures: an isolated HOME and environment per test, real git, real projects."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

import loopline
from tests.helpers import commit_all


@pytest.fixture(scope="session")
def cache_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One machine-wide cache for the session, so the migrated MLflow template is built once."""
    return tmp_path_factory.mktemp("loopline-cache")


@pytest.fixture(autouse=True)
def isolated_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, cache_dir: Path) -> Iterator[None]:
    """A private HOME and git identity, no stray LOOPLINE_/MLFLOW_/GITHUB_ variables, cwd in tmp_path."""
    home = tmp_path / "home"
    home.mkdir()
    gitconfig = home / ".gitconfig"
    gitconfig.write_text(
        "[user]\n\tname = Test User\n\temail = tester@example.com\n[init]\n\tdefaultBranch = main\n"
    )
    for name in list(os.environ):
        if name.startswith(("LOOPLINE_", "MLFLOW_", "GITHUB_")):
            monkeypatch.delenv(name)
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", str(gitconfig))
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")
    monkeypatch.setenv("LOOPLINE_CACHE_DIR", str(cache_dir))
    monkeypatch.chdir(tmp_path)
    yield


ProjectFactory = Callable[..., Path]


@pytest.fixture
def new_project(tmp_path: Path) -> ProjectFactory:
    """Make a sample project: init (tier), first commit, and `up`."""

    def make(tier: str = "simple", name: str = "proj", *, commit: bool = True, up: bool = True) -> Path:
        path = tmp_path / name
        loopline.init(path, tier)
        if commit:
            commit_all(path, "Sample project")
        if up:
            loopline.up(path)
        return path

    return make
