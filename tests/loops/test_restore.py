"""Versions deleted from a workspace's MLflow registry outside loopline (the MLflow UI, a client's
``delete_model_version`` or ``delete_registered_model``): a rollback or a release that needs one registers
its files there again, and everything that names it follows, before any traffic moves."""

from __future__ import annotations

from pathlib import Path

import mlflow
import pandas as pd
import pytest

import loopline
from loopline.errors import NotFound
from tests.conftest import ProjectFactory
from tests.helpers import Steps, mlflow_client, mlflow_pointed_at

pytestmark = pytest.mark.slow

MODEL = "proj-classifier"


def _prod(project: Path) -> list[tuple[int, str, tuple[str, ...]]]:
    """Prod's versions as loopline's status shows them: number, commit, aliases."""
    return sorted(
        (m.version, m.git_commit, m.aliases) for m in loopline.status(project).models if m.workspace == "prod"
    )


def _pinned(project: Path) -> dict[str, tuple[int, int]]:
    """The prod endpoint's deployments: name -> (version, traffic)."""
    return {
        d.name: (d.version, d.traffic) for d in loopline.get_endpoint("proj", project=project).deployments
    }


def test_a_rollback_to_a_version_deleted_in_mlflow_registers_its_files_again_before_traffic_moves(
    a_live_b_registered: tuple[Path, str, str],
) -> None:
    project, a, b = a_live_b_registered
    loopline.outer_loop_prod(project, commit=b)  # prod: v1 from A, v2 from B (live)
    client = mlflow_client(project, "prod")
    client.delete_model_version(MODEL, "1")  # "old, tidy it away"

    steps = Steps()
    back = loopline.rollback(project, commit=a[:7], reason="drill", reporter=steps)

    assert back.version == 3 and back.git_commit == a and back.changed
    assert any(
        f"no longer holds {MODEL} v1 ({a[:7]}): it was deleted outside loopline" in s for s in steps.seen
    )
    assert any("registered its files there again as v3" in s for s in steps.seen)
    # loopline's catalog, its aliases and the deployment that serves A's files carry the new number.
    assert _prod(project) == [(2, b, ()), (3, a, ("production",))]
    assert _pinned(project) == {f"v1-{a[:7]}": (3, 100), f"v2-{b[:7]}": (2, 0)}
    # A stock MLflow client finds and loads the production model: A's files, its identity, where it came from.
    production = client.get_model_version_by_alias(MODEL, "production")
    shared = mlflow_client(project, "shared").get_model_version(MODEL, "1")
    assert int(production.version) == 3
    assert production.tags["git_commit"] == a
    assert production.tags["content_digest"] == shared.tags["content_digest"]
    assert production.tags["restored_from"] == "prod/1"
    rows = pd.read_csv(project / "data" / "inbox" / "heldout.csv").drop(columns="label").head(3)
    with mlflow_pointed_at(project, "prod"):
        loaded = mlflow.pyfunc.load_model(f"models:/{MODEL}@production")
    with mlflow_pointed_at(project, "shared"):
        registered = mlflow.pyfunc.load_model(f"models:/{MODEL}/1")
    assert list(loaded.predict(rows)) == list(registered.predict(rows))
    restored = loopline.history(project, kind="registered")[-1].event
    assert (restored.workspace, restored.version, restored.source) == ("prod", 3, f"prod/{MODEL}/1")
    assert restored.details["restored"] is True

    # Done once: the next rollback finds v3 where it left it.
    again = Steps()
    loopline.rollback(project, commit=b[:7], reporter=again)
    assert not [s for s in again.seen if "deleted outside loopline" in s]
    assert int(client.get_model_version_by_alias(MODEL, "production").version) == 2


def test_a_release_after_prods_registered_model_was_deleted_whole_keeps_catalog_and_mlflow_in_step(
    a_live_b_registered: tuple[Path, str, str],
) -> None:
    """MLflow numbers anew once a registered model is deleted: B's copy takes the number A's had, so A's entry
    gives way (it names nothing in MLflow any more); A comes back to prod by a release, and the deployment
    that still serves its files carries its new number."""
    project, a, b = a_live_b_registered
    client = mlflow_client(project, "prod")
    client.delete_registered_model(MODEL)

    released = loopline.outer_loop_prod(project, commit=b)

    assert (released.version, released.git_commit) == (1, b)
    assert _prod(project) == [(1, b, ("production",))]
    production = client.get_model_version_by_alias(MODEL, "production")
    assert (int(production.version), production.tags["git_commit"]) == (1, b)
    with pytest.raises(
        NotFound,
        match=f"releases bring versions there from the registry: loopline outer-loop prod --commit {a[:7]}",
    ):
        loopline.rollback(project, commit=a[:7])

    back = loopline.outer_loop_prod(project, commit=a)
    assert (back.version, back.git_commit) == (2, a)
    assert _prod(project) == [(1, b, ()), (2, a, ("production",))]
    assert _pinned(project) == {f"v1-{a[:7]}": (2, 100), f"v1-{b[:7]}": (1, 0)}
    production = client.get_model_version_by_alias(MODEL, "production")
    assert (int(production.version), production.tags["git_commit"]) == (2, a)


def test_outer_loop_test_validates_a_registry_version_deleted_in_the_shared_mlflow_registered_again(
    trained_project: ProjectFactory,
) -> None:
    project = trained_project("full")
    mlflow_client(project, "shared").delete_model_version(MODEL, "1")

    steps = Steps()
    result = loopline.outer_loop_test(project, reporter=steps)

    assert result.passed
    assert any("shared's MLflow registry no longer holds" in s for s in steps.seen)
    again = mlflow_client(project, "shared").get_model_version(MODEL, "2")
    assert again.tags["restored_from"] == "shared/1"
    assert again.tags["validation_status"] == "passed"
    assert [
        (m.version, m.validation_status) for m in loopline.status(project).models if m.workspace == "shared"
    ] == [(2, "passed")]
