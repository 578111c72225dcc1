"""Opening an instance: on a GitHub-hosted runner, whose disk is gone when the job ends, stores kept on
that disk are refused before anything is done (the job would report a model registered that no later job
could find)."""

from __future__ import annotations

from typing import Any

import pytest

import loopline
from loopline.errors import ConfigError
from tests.conftest import ProjectFactory
from tests.helpers import cli_process


def test_a_github_hosted_runner_refuses_stores_on_its_own_disk(
    new_project: ProjectFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    project = new_project("simple")
    monkeypatch.setenv("RUNNER_ENVIRONMENT", "github-hosted")  # what GitHub sets on its own runners
    with pytest.raises(
        ConfigError, match=r"GitHub-hosted runner, .*loopline's database \(state\.url\), dev's"
    ):
        loopline.status(project)
    done = cli_process("inner-loop", cwd=project, env={"RUNNER_ENVIRONMENT": "github-hosted"})
    assert done.exit_code == 2 and "LOOPLINE_URL and LOOPLINE_TOKEN" in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1
    # Nothing was trained or registered. A self-hosted runner keeps its disk; `loopline workflow run`
    # runs the files on this machine.
    monkeypatch.setenv("RUNNER_ENVIRONMENT", "self-hosted")
    assert loopline.status(project).models == ()
    monkeypatch.setenv("RUNNER_ENVIRONMENT", "github-hosted")
    monkeypatch.setenv("LOOPLINE_LOCAL_RUN", "true")
    assert loopline.status(project).models == ()


def test_a_github_hosted_runner_works_on_a_database_and_an_object_store(
    new_project: ProjectFactory, on_postgres: Any, on_azurite: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    project = new_project("simple", up=False)
    monkeypatch.setenv("RUNNER_ENVIRONMENT", "github-hosted")
    loopline.up(project)
    assert loopline.status(project).state_url.startswith("postgresql")


def test_stores_off_the_runner_pass_whatever_their_kind(
    new_project: ProjectFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Databricks (named without ://), a server, a database: none of them is on the runner's disk."""
    from loopline.config import load_config
    from loopline.instance import require_durable

    project = new_project("simple", up=False)
    monkeypatch.setenv("RUNNER_ENVIRONMENT", "github-hosted")
    remote = {"LOOPLINE_STATE__URL": "postgresql+psycopg://loopline@db.internal/loopline"}
    for workspace, uri in (
        ("DEV", "databricks"),
        ("PROD", "https://mlflow.internal"),
        ("SHARED", "mysql://db/m"),
    ):
        remote[f"LOOPLINE_WORKSPACES__{workspace}__TRACKING_URI"] = uri
        remote[f"LOOPLINE_WORKSPACES__{workspace}__MODEL_STORE"] = "s3://models/churn"
    require_durable(load_config(project, environ=remote))
    local = {**remote, "LOOPLINE_WORKSPACES__DEV__MODEL_STORE": "models"}
    with pytest.raises(ConfigError, match=r"runner, .* and dev's model files would be kept on it"):
        require_durable(load_config(project, environ=local))
