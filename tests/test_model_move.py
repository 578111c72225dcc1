"""Moving every version's model files at once: a laptop's folder to the team's object store."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import httpx
import mlflow
import pandas as pd
import pytest

import loopline
from tests.conftest import ProjectFactory
from tests.helpers import cli, heldout_request, mlflow_client, mlflow_pointed_at, system_key
from tests.servers import AZURITE_ACCOUNT, Server


def _answers(project: Path, replica: Server) -> None:
    """The replica scores a held-out row with prod's endpoint."""
    answer = httpx.post(
        f"{replica.url}/endpoints/proj/score",
        content=heldout_request(project),
        headers={"authorization": f"Bearer {system_key(project)}", "content-type": "application/json"},
    )
    assert answer.status_code == 200, answer.text


def test_every_versions_files_move_to_the_object_store_and_serve_from_there(
    a_live_b_registered: tuple[Path, str, str],
    azurite: Any,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    project, a, b = a_live_b_registered
    before = loopline.status(project).models
    monkeypatch.setenv("AZURE_STORAGE_CONNECTION_STRING", azurite.connection_string)
    models = f"{azurite.container('models')}/{project.parent.name.lower()}"
    moved = cli(capsys, "migrate-models", "--to", models, "-C", str(project), "--json")
    assert moved.exit_code == 0, moved.stderr
    report = moved.json()
    assert (report["digests"], report["copied"], report["missing"]) == (2, 2, [])
    assert report["rows"]["model_versions"] == len(before) and report["rows"]["deployments"] >= 1
    assert report["mlflow"] == {
        w: sum(1 for m in before if m.workspace == w) for w in ("dev", "prod", "shared")
    }
    for workspace in ("dev", "prod", "shared"):
        monkeypatch.setenv(f"LOOPLINE_WORKSPACES__{workspace.upper()}__MODEL_STORE", models)
    # The laptop's folder is gone: whatever loads a model from now on reads the blob store.
    shutil.move(project / ".loopline" / "models", project.parent / "models-moved")

    after = loopline.status(project).models
    within = f"wasbs://models@{AZURITE_ACCOUNT}.blob.core.windows.net/{project.parent.name.lower()}/sha256/"
    assert [(m.workspace, m.version, m.git_commit) for m in after] == [
        (m.workspace, m.version, m.git_commit) for m in before
    ]
    assert all(m.source_uri.startswith(within) for m in after), [m.source_uri for m in after]
    prod = mlflow_client(project, "prod").get_model_version_by_alias("proj-classifier", "production")
    assert prod.source.startswith(within) and prod.tags["git_commit"] == a
    with mlflow_pointed_at(project, "prod"):
        loaded = mlflow.pyfunc.load_model("models:/proj-classifier@production")
    rows = pd.read_csv(project / "data" / "inbox" / "heldout.csv").drop(columns=["label"]).head(3)
    assert len(loaded.predict(rows)) == 3
    with Server(project, "prod") as replica:
        _answers(project, replica)

    # Releasing B copies nothing more; moving again changes nothing.
    loopline.outer_loop_prod(project, commit=b)
    copies = [e.event.details["bytes_copied"] for e in loopline.history(project, kind="promoted")]
    assert copies[-1] is False or copies[-1] == 0
    again = cli(capsys, "migrate-models", "--to", models, "-C", str(project), "--json").json()
    assert (again["copied"], again["rows"], again["mlflow"]) == (0, {}, {})
    assert len(loopline.history(project, kind="models-migrated")) == 2


def test_a_version_whose_files_are_nowhere_is_named_and_left_as_it_was(
    trained_project: ProjectFactory, capsys: pytest.CaptureFixture[str]
) -> None:
    project = trained_project("simple")
    (version,) = {m.content_digest: m for m in loopline.status(project).models}.values()
    shutil.rmtree(
        project / ".loopline" / "models" / "sha256" / version.content_digest.removeprefix("sha256:")
    )
    moved = cli(capsys, "migrate-models", "--to", "team-models", "-C", str(project))
    assert moved.exit_code == 0, moved.stderr
    assert "left as they were, their files in no store this machine reads: " in moved.stdout
    assert "dev/proj-classifier v1" in moved.stdout and "shared/proj-classifier v1" in moved.stdout
    assert [m.source_uri for m in loopline.status(project).models] == [version.source_uri] * 2
    assert not (project / "team-models" / "sha256").exists()


def test_the_documented_move_from_a_laptop_to_postgres_and_blob_storage_loses_nothing(
    a_live_b_registered: tuple[Path, str, str],
    postgres: Any,
    azurite: Any,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    project, a, b = a_live_b_registered
    heldout, _ = loopline.register_data("heldout", "inbox://heldout.csv", project=project)
    before = [(m.workspace, m.version, m.git_commit, m.aliases) for m in loopline.status(project).models]
    history = [(r.seq, r.hash) for r in loopline.history(project)]
    monkeypatch.setenv("AZURE_STORAGE_CONNECTION_STRING", azurite.connection_string)
    tag = project.parent.name.lower()
    models = f"{azurite.container('models')}/{tag}"
    azurite.container("artifacts")
    base = ("-C", str(project))

    # In the order docs/team-deployment.md gives, each setting switched right after its command.
    assert cli(capsys, "migrate-models", "--to", models, *base).exit_code == 0
    for workspace in ("dev", "prod", "shared"):
        monkeypatch.setenv(f"LOOPLINE_WORKSPACES__{workspace.upper()}__MODEL_STORE", models)
    for workspace in ("dev", "prod", "shared"):
        to = postgres.url().replace("+psycopg", "")
        artifacts = f"wasbs://artifacts@{AZURITE_ACCOUNT}.blob.core.windows.net/{tag}/{workspace}"
        moved = cli(capsys, "migrate-tracking", "-w", workspace, "--to", to, "--artifacts", artifacts, *base)
        assert moved.exit_code == 0, moved.stderr
        monkeypatch.setenv(f"LOOPLINE_WORKSPACES__{workspace.upper()}__TRACKING_URI", to)
        monkeypatch.setenv(f"LOOPLINE_WORKSPACES__{workspace.upper()}__ARTIFACT_LOCATION", artifacts)
    stores = {name: f"{azurite.container(name)}/{tag}" for name in ("inbox", "predictions")}
    datastores = [f"--{name}={url}" for name, url in stores.items()]
    assert cli(capsys, "migrate-datastores", *datastores, *base).exit_code == 0
    for name, url in stores.items():
        monkeypatch.setenv(f"LOOPLINE_DATASTORES__{name.upper()}__URL", url)
    state = postgres.url()
    assert cli(capsys, "migrate-state", "--to", state, *base).exit_code == 0
    monkeypatch.setenv("LOOPLINE_STATE__URL", state)
    assert cli(capsys, "status", *base).exit_code == 0

    # Nothing of the laptop's stores is read any more.
    for kept in ("state.db", "workspaces", "models", "datastores"):
        shutil.move(project / ".loopline" / kept, project.parent / f"laptop-{kept}")
    assert [
        (m.workspace, m.version, m.git_commit, m.aliases) for m in loopline.status(project).models
    ] == before
    assert [(r.seq, r.hash) for r in loopline.history(project)][: len(history)] == history
    kinds = [r.event.kind for r in loopline.history(project)[len(history) :]]
    assert kinds == ["models-migrated", *["tracking-migrated"] * 3, "datastores-migrated", "state-migrated"]
    assert loopline.audit_verify(project=project).intact
    # the inbox is read at its new place: the same bytes again make no new version
    assert loopline.register_data("heldout", "inbox://heldout.csv", project=project) == (heldout, False)
    with Server(project, "prod") as replica:
        _answers(project, replica)
        released = loopline.outer_loop_prod(project, commit=b)
    assert released.version == 2
    loopline.rollback(project, commit=a[:7], reason="after the move")
    prod = mlflow_client(project, "prod").get_model_version_by_alias("proj-classifier", "production")
    assert (str(prod.version), prod.tags["git_commit"]) == ("1", a)
