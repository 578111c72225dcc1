"""`loopline up`: the tier's stores exist afterwards, and a second run changes nothing."""

from __future__ import annotations

from pathlib import Path

import pytest

import loopline
from loopline.config import load_config
from loopline.mlflow_store import WorkspaceStore
from tests.conftest import ProjectFactory


@pytest.mark.parametrize(
    ("tier", "stores"),
    [
        ("experimentation", ["dev", "shared"]),
        ("simple", ["dev", "prod", "shared"]),
        ("full", ["dev", "prod", "shared", "test"]),
    ],
)
def test_up_creates_the_tiers_stores_and_is_idempotent(
    new_project: ProjectFactory, tier: str, stores: list[str]
) -> None:
    project = new_project(tier, up=False)
    first = loopline.up(project)
    assert first.changed
    assert sorted(p.name for p in (project / ".loopline" / "workspaces").iterdir()) == stores
    for name in ("inbox", "predictions"):
        assert (project / ".loopline" / "datastores" / name).is_dir()
    again = loopline.up(project)
    assert not again.changed and again.created == ()
    events = loopline.history(project, kind="provisioned")
    assert len(events) == 1


def test_each_workspace_is_a_stock_mlflow_store_with_its_own_artifacts(new_project: ProjectFactory) -> None:
    from mlflow import MlflowClient

    project = new_project("full")
    settings = load_config(project)
    for name in ("dev", "test", "prod"):
        location = settings.store(name)
        experiment = MlflowClient(location.tracking_uri).get_experiment_by_name("proj")
        assert experiment.artifact_location == (Path(location.artifact_location) / "proj").as_uri()
        default = MlflowClient(location.tracking_uri).get_experiment("0")
        assert default.artifact_location.startswith(Path(location.artifact_location).as_uri())


def test_a_workspace_can_live_elsewhere_by_environment_variable(
    new_project: ProjectFactory, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    elsewhere = tmp_path / "elsewhere"
    monkeypatch.setenv("LOOPLINE_WORKSPACES__PROD__TRACKING_URI", f"sqlite:///{elsewhere}/prod.db")
    monkeypatch.setenv("LOOPLINE_WORKSPACES__PROD__ARTIFACT_LOCATION", str(elsewhere / "artifacts"))
    project = new_project("simple")
    assert (elsewhere / "prod.db").is_file()
    assert not (project / ".loopline" / "workspaces" / "prod").exists()
    status = loopline.status(project)
    assert status.stores["prod"]["tracking_uri"] == f"sqlite:///{elsewhere}/prod.db"
    store = WorkspaceStore(load_config(project).store("prod"))
    assert store.experiment_id("proj")


def test_up_migrates_a_database_an_older_loopline_made_and_says_from_which_migration(
    new_project: ProjectFactory,
) -> None:
    from loopline.instance import Instance
    from loopline.state import HEAD_REVISION

    made = loopline.up(new_project("simple", name="fresh", up=False))
    assert any(item.startswith("loopline database") for item in made.created)
    assert not any("migrated" in item for item in made.created)  # made, not migrated

    project = new_project("simple", up=False)
    database = Instance.open(project).db
    older = f"{int(HEAD_REVISION) - 1:04d}"
    database.upgrade(older)  # as the loopline before this one left it
    assert database.revision() == older
    migrated = loopline.up(project)
    assert [item for item in migrated.created if item.startswith("loopline database")] == [
        f"loopline database {database.redacted_url} (migrated from {older} to {HEAD_REVISION})"
    ]
