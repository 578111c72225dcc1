"""Moving a workspace's MLflow database: a laptop's SQLite stores to PostgreSQL, numbers and aliases kept."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import mlflow
import pandas as pd
import pytest

import loopline
from loopline.errors import EXIT_REFUSED, EXIT_USAGE
from loopline.instance import Instance
from loopline.state import locks
from tests.conftest import ProjectFactory
from tests.helpers import cli, commit_all, edit_yaml, mlflow_client, mlflow_pointed_at
from tests.servers import AZURITE_ACCOUNT


def _versions(project: Path) -> list[tuple[str, str, int, str, tuple[str, ...]]]:
    return sorted(
        (m.workspace, m.name, m.version, m.git_commit, m.aliases) for m in loopline.status(project).models
    )


def _runs(project: Path) -> list[tuple[str, dict[str, float]]]:
    dev = mlflow_client(project, "dev")
    found = dev.search_runs([e.experiment_id for e in dev.search_experiments()])
    return sorted((run.info.run_id, run.data.metrics) for run in found)


def test_a_laptops_mlflow_stores_move_to_postgres_with_their_numbers_and_aliases(
    a_live_b_registered: tuple[Path, str, str],
    postgres: Any,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    project, a, b = a_live_b_registered
    before = _versions(project)
    runs = _runs(project)
    for workspace in ("dev", "prod", "shared"):
        target = postgres.url().replace("+psycopg", "")
        moved = cli(capsys, "migrate-tracking", "-w", workspace, "--to", target, "-C", str(project), "--json")
        assert moved.exit_code == 0, moved.stderr
        assert moved.json()["rows"]["model_versions"] == sum(1 for v in before if v[0] == workspace)
        monkeypatch.setenv(f"LOOPLINE_WORKSPACES__{workspace.upper()}__TRACKING_URI", target)
    # The laptop's files are gone: whatever loopline and MLflow read from now on is in PostgreSQL.
    for old in (project / ".loopline").glob("workspaces/*/mlflow.db"):
        old.rename(old.with_suffix(".moved"))

    assert _versions(project) == before
    assert _runs(project) == runs
    with mlflow_pointed_at(project, "prod"):
        loaded = mlflow.pyfunc.load_model("models:/proj-classifier@production")
        rows = pd.read_csv(project / "data" / "inbox" / "heldout.csv").drop(columns=["label"]).head(3)
        assert len(loaded.predict(rows)) == 3
    moves = [e.event for e in loopline.history(project, kind="tracking-migrated")]
    assert [e.workspace for e in moves] == ["dev", "prod", "shared"]
    assert all(e.target and e.target.startswith("postgresql://") for e in moves)

    # The stores go on from where they were: B released is prod's version 2, production moves to it.
    loopline.outer_loop_prod(project, commit=b)
    prod = mlflow_client(project, "prod")
    assert str(prod.get_model_version_by_alias("proj-classifier", "production").version) == "2"
    # Clients that still load by stage (models:/proj-classifier/Production) find it too, on PostgreSQL.
    with pytest.warns(FutureWarning):
        staged = prod.get_latest_versions("proj-classifier", ["Production"])
    assert [str(v.version) for v in staged] == ["2"]
    assert prod.get_model_version("proj-classifier", "2").tags["git_commit"] == b
    assert prod.get_model_version("proj-classifier", "1").tags["git_commit"] == a

    again = cli(capsys, "migrate-tracking", "-w", "dev", "--to", target, "-C", str(project))
    assert again.exit_code == EXIT_REFUSED and "already holds MLflow data" in again.stderr


def test_a_move_that_cannot_be_made_says_why_and_leaves_the_target_empty(
    new_project: ProjectFactory, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    project = new_project("simple")
    base = ("migrate-tracking", "-C", str(project))

    server = cli(capsys, *base, "-w", "dev", "--to", "https://mlflow.internal")
    assert server.exit_code == EXIT_USAGE and "is not a database URL" in server.stderr
    nowhere = cli(capsys, *base, "-w", "staging", "--to", "sqlite:///moved/dev.db")
    assert nowhere.exit_code == EXIT_REFUSED and "staging" in nowhere.stderr

    to = ("--to", "sqlite:///moved/dev.db")
    az = cli(capsys, *base, "-w", "dev", *to, "--artifacts", "az://artifacts/dev")
    assert az.exit_code == EXIT_USAGE and "MLflow cannot store artifacts there" in az.stderr, az.stderr
    inside = cli(capsys, *base, "-w", "dev", *to, "--artifacts", ".loopline/workspaces/dev/artifacts/x")
    assert inside.exit_code == EXIT_USAGE and "artifact location or inside it" in inside.stderr

    instance = Instance.open(project)
    with locks.hold(instance.db, "release:prod:churn", "ada"):
        busy = cli(capsys, *base, "-w", "dev", "--to", "sqlite:///moved/dev.db")
    assert busy.exit_code == EXIT_REFUSED and "ada holds the lock release:prod:churn" in busy.stderr

    # A store this MLflow does not write (a column it lacks) is refused before a row reaches the target.
    dev = project / ".loopline" / "workspaces" / "dev" / "mlflow.db"
    with sqlite3.connect(dev) as connection:
        connection.execute("ALTER TABLE experiments ADD COLUMN owner TEXT")
    connection.close()
    odd = cli(capsys, *base, "-w", "dev", "--to", "sqlite:///moved/dev.db")
    assert odd.exit_code == EXIT_REFUSED and "['owner']" in odd.stderr, odd.stderr
    assert "Traceback" not in odd.stderr
    with sqlite3.connect(dev) as connection:
        connection.execute("ALTER TABLE experiments DROP COLUMN owner")
    connection.close()

    # The same target takes the move once the store is right: the refusal left nothing in it.
    with monkeypatch.context() as server:
        server.setenv("LOOPLINE_WORKSPACES__PROD__TRACKING_URI", "https://mlflow.internal")
        server.setenv("LOOPLINE_WORKSPACES__PROD__MODEL_STORE", "s3://models/team")
        remote = cli(capsys, *base, "-w", "prod", "--to", "sqlite:///moved/prod.db")
    assert remote.exit_code == EXIT_REFUSED and "server's own database tools" in remote.stderr, remote.stderr
    moved = cli(capsys, *base, "-w", "dev", "--to", "sqlite:///moved/dev.db")
    assert moved.exit_code == 0, moved.stderr
    assert "next: set workspaces.dev.tracking_uri" in moved.stdout
    copy = project / "moved" / "dev.db"
    with sqlite3.connect(copy) as connection:
        names = {row[0] for row in connection.execute("SELECT name FROM experiments")}
    connection.close()
    assert names == {"Default", "proj"}


def test_the_runs_artifacts_move_with_the_store_and_every_uri_names_them_there(
    trained_project: ProjectFactory,
    azurite: Any,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    project = trained_project("full")
    loopline.outer_loop_test(project)
    report = loopline.validation_report(project=project)
    run = loopline.status(project).models[0].run_id
    monkeypatch.setenv("AZURE_STORAGE_CONNECTION_STRING", azurite.connection_string)
    azurite.container("artifacts")
    blobs = f"wasbs://artifacts@{AZURITE_ACCOUNT}.blob.core.windows.net/{project.parent.name.lower()}"
    for workspace in ("dev", "test", "shared"):
        to, artifacts = f"sqlite:///moved/{workspace}.db", f"{blobs}/{workspace}"
        moved = cli(
            capsys,
            "migrate-tracking",
            "-w",
            workspace,
            "--to",
            to,
            "--artifacts",
            artifacts,
            "-C",
            str(project),
        )
        assert moved.exit_code == 0, moved.stderr
        assert f"next: set workspaces.{workspace}.artifact_location" in moved.stdout
        prefix = f"LOOPLINE_WORKSPACES__{workspace.upper()}__"
        monkeypatch.setenv(prefix + "TRACKING_URI", to)
        monkeypatch.setenv(prefix + "ARTIFACT_LOCATION", artifacts)
    moves = [e.event for e in loopline.history(project, kind="tracking-migrated")]
    files = {e.workspace: e.details["files"] for e in moves}
    assert files["dev"] > 0 and files["shared"] > 0, files
    # The laptop's folders are gone: the runs, logged models and reports are read from the blob store.
    for old in (project / ".loopline" / "workspaces").iterdir():
        old.rename(old.with_name(old.name + "-moved"))

    again = loopline.validation_report(project=project)
    assert again.markdown == report.markdown and again.uri == report.uri.replace(
        report.uri.split("/validation/")[0], f"{blobs}/shared"
    )
    shared = mlflow_client(project, "shared").get_model_version("proj-classifier", "1")
    assert shared.tags["validation_report"] == again.uri
    dev = mlflow_client(project, "dev")
    assert dev.get_run(run).info.artifact_uri.startswith(f"{blobs}/dev/")
    with mlflow_pointed_at(project, "dev"):
        logged = dev.search_logged_models([dev.get_run(run).info.experiment_id])[0]
        model = mlflow.pyfunc.load_model(f"models:/{logged.model_id}")
    rows = pd.read_csv(project / "data" / "inbox" / "heldout.csv").drop(columns=["label"]).head(3)
    assert len(model.predict(rows)) == 3
    # Work goes on there: the next commit's run and its artifacts land in the blob store.
    edit_yaml(project / "params.yaml", C=0.3)
    commit_all(project, "After the move")
    second = loopline.inner_loop(project)
    assert second.run_id and dev.get_run(second.run_id).info.artifact_uri.startswith(f"{blobs}/dev/")


def test_traces_with_their_spans_and_assessments_move_with_the_store(
    new_project: ProjectFactory,
    postgres: Any,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    # A GenAI project traces its calls in dev (MLflow 3's tracing) and records feedback on them. A span's
    # duration is a column PostgreSQL computes from its start and end, which refuses a value copied in.
    project = new_project("simple")

    @mlflow.trace
    def answer(question: str) -> str:
        return question.upper()

    def traces() -> list[tuple[str, list[tuple[str, int, int]], list[tuple[str, Any]]]]:
        with mlflow_pointed_at(project, "dev"):
            found = mlflow.search_traces(
                return_type="list", experiment_ids=[mlflow.get_experiment_by_name("proj").experiment_id]
            )
        return sorted(
            (
                trace.info.trace_id,
                [(s.name, s.start_time_ns, s.end_time_ns) for s in trace.data.spans],
                [(a.name, a.feedback.value if a.feedback else None) for a in trace.info.assessments],
            )
            for trace in found
        )

    with mlflow_pointed_at(project, "dev"):
        mlflow.set_experiment("proj")
        for question in ("hello", "how are you"):
            answer(question)
            mlflow.flush_trace_async_logging()
            mlflow.log_feedback(trace_id=mlflow.get_last_active_trace_id(), name="helpful", value=True)
    before = traces()
    assert len(before) == 2 and all(spans and feedback for _, spans, feedback in before)

    target = postgres.url().replace("+psycopg", "")
    moved = cli(capsys, "migrate-tracking", "-w", "dev", "--to", target, "-C", str(project), "--json")
    assert moved.exit_code == 0, moved.stderr
    assert {k: moved.json()["rows"][k] for k in ("trace_info", "spans", "assessments")} == {
        "trace_info": 2,
        "spans": 2,
        "assessments": 2,
    }
    monkeypatch.setenv("LOOPLINE_WORKSPACES__DEV__TRACKING_URI", target)
    (project / ".loopline" / "workspaces" / "dev" / "mlflow.db").rename(project / "moved.db")
    assert traces() == before
