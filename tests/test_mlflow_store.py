"""loopline's MLflow adapter: what it does to the process it runs in, and what it reads of runs."""

from __future__ import annotations

import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from loopline import state
from loopline.config import StoreLocation
from loopline.errors import StoreUnavailable
from loopline.mlflow_store import WorkspaceStore
from tests.servers import DatabaseServer

EPOCHS = """\
import sys
import mlflow
from sklearn.dummy import DummyClassifier

mlflow.set_tracking_uri(sys.argv[1])
mlflow.set_experiment("epochs")
model = DummyClassifier().fit([[0], [1]], [0, 1])
with mlflow.start_run() as run:
    for epoch, loss in enumerate([0.9, 0.5, 0.2, 0.1]):
        mlflow.log_metric("loss", loss, step=epoch)
        if epoch == 2:
            mlflow.sklearn.log_model(model, name="checkpoint", step=epoch)
    mlflow.log_metric("accuracy", 0.75)
    mlflow.sklearn.log_model(model, name="final")
    mlflow.log_metric("loss", 0.05, step=4)
print(run.info.run_id)
"""


def test_a_model_logged_after_epochs_has_the_last_epoch_s_metrics_and_a_checkpoint_its_own(
    tmp_path: Path,
) -> None:
    # MLflow links a run's metrics to a model at log_model's step (0 unless given): a training logging a
    # loss per epoch, then its model, would be judged on its first epoch's loss.
    store = WorkspaceStore.scratch(tmp_path)
    (tmp_path / "train.py").write_text(EPOCHS)
    made = subprocess.run(
        [sys.executable, "train.py", store.location.tracking_uri],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=True,
    )
    run = store.run(made.stdout.split()[-1])
    assert run.metrics["loss"] == 0.05  # the run's latest: logged after the final model was
    models = {model.name: model.metrics for model in store.logged_models(run)}
    assert models["final"] == {"loss": 0.1, "accuracy": 0.75}  # the loss as it stood when it was logged
    assert models["checkpoint"] == {"loss": 0.2}  # logged at epoch 2, with that epoch's loss


def test_writers_setting_one_new_version_tag_at_once_all_succeed(tmp_path: Path) -> None:
    """MLflow looks a tag up, then inserts it: of writers setting a new tag at once, all but one failed on
    the table's unique key (an IntegrityError), as two people withdrawing one version at once did."""
    import threading

    store = WorkspaceStore.scratch(tmp_path)
    store.provision("e")
    store.client.create_registered_model("m")
    store.client.create_model_version("m", str(tmp_path))
    failures: list[str] = []
    for round_ in range(5):  # a race: several rounds, each writer on a tag new to the version
        start = threading.Barrier(6)

        def write(value: str, key: str = f"withdrawn-{round_}", start: threading.Barrier = start) -> None:
            start.wait()
            try:
                store.set_version_tag("m", 1, key, value)
            except Exception as exc:  # collected: a thread's own exception would be lost
                failures.append(f"{type(exc).__name__}: {exc}")

        threads = [threading.Thread(target=write, args=(f"by {who}",)) for who in range(6)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)
        assert store.client.get_model_version("m", "1").tags[f"withdrawn-{round_}"].startswith("by ")
    assert failures == []


def test_a_run_of_metrics_named_after_columns_is_logged_under_keys_mlflow_takes(tmp_path: Path) -> None:
    # Monitoring logs a drift metric a column; columns are named "Price (€)", which MLflow refuses in a key
    store = WorkspaceStore.scratch(tmp_path)
    store.provision("monitoring")
    metrics = {"psi_Price (€)": 0.1, "psi_Price ($)": 0.2, "psi_tenure": 0.3}
    metrics |= {f"ks_feature {i}": i / 2000 for i in range(1500)}  # more than one batch of MLflow's
    run_id = store.log_run("monitoring", "check", metrics, {"endpoint": "prices"})
    run = store.client.get_run(run_id)
    assert run.info.status == "FINISHED"
    assert {k: run.data.metrics[k] for k in ("psi_Price ___", "psi_Price ___ 2", "psi_tenure")} == {
        "psi_Price ___": 0.1,
        "psi_Price ___ 2": 0.2,
        "psi_tenure": 0.3,
    }
    assert len(run.data.metrics) == 1503 and run.data.tags["endpoint"] == "prices"


@pytest.fixture
def database_server(request: pytest.FixtureRequest) -> Iterator[DatabaseServer]:
    server = DatabaseServer(silent=request.param == "silent")
    yield server
    server.close()


def _store(tmp_path: Path, uri: str) -> WorkspaceStore:
    return WorkspaceStore(
        StoreLocation("dev", uri, uri, str(tmp_path / "artifacts"), str(tmp_path / "models"))
    )


@pytest.mark.parametrize("database_server", ["closing"], indirect=True)
def test_a_database_that_is_down_is_said_unavailable_after_one_attempt(
    database_server: DatabaseServer, tmp_path: Path
) -> None:
    """MLflow itself tries ten times over about 100 seconds before it says a server is down."""
    store = _store(tmp_path, f"postgresql://u:p@127.0.0.1:{database_server.port}/mlflow")
    with pytest.raises(StoreUnavailable) as refused:
        store.experiment_id("proj")
    where = f"postgresql://u:***@127.0.0.1:{database_server.port}/mlflow"
    assert refused.value.message.startswith(f"the MLflow store of dev at {where} is unavailable")
    assert "server closed the connection" in refused.value.message
    assert len(database_server.connections) == 1


@pytest.mark.parametrize("database_server", ["silent"], indirect=True)
def test_a_database_that_never_answers_is_said_unavailable_after_its_connect_timeout(
    database_server: DatabaseServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """libpq would wait for ever: loopline's own database and a workspace's get state.CONNECT_TIMEOUT
    seconds to open a connection, or what the URL's own connect_timeout says."""
    monkeypatch.setattr(state, "CONNECT_TIMEOUT", 1)
    url = f"postgresql+psycopg://u:p@127.0.0.1:{database_server.port}/loopline"
    with pytest.raises(StoreUnavailable, match=r"^loopline's database at .* is unavailable: .*timeout"):
        state.Database(url).revision()
    store = _store(tmp_path, f"postgresql://u:p@127.0.0.1:{database_server.port}/mlflow?connect_timeout=1")
    with pytest.raises(
        StoreUnavailable, match=r"^the MLflow store of dev at .*connect_timeout=1 is unavailable"
    ):
        store.experiment_id("proj")
    assert len(database_server.connections) == 2
    given = state.with_connect_timeout(
        "postgresql://u:p@db.internal/mlflow?sslmode=require&connect_timeout=3"
    )
    assert dict(given.query) == {"sslmode": "require", "connect_timeout": "3"}
    assert dict(state.with_connect_timeout("postgresql://u:p@db.internal/mlflow").query) == {
        "connect_timeout": "1"
    }
