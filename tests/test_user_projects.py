"""Training scripts written the way people write them, each taken through the inner loop and a release to a
served prod endpoint, and one script of each kind of model (scikit-learn, a custom pyfunc, a large model)
on through a second release and a rollback; every answer of the endpoint equals what a
stock MLflow client computes in-process from the registered model (floats to 1e-9). What the inner loop
makes of each script's own habits (its experiment, autolog's metrics, nested runs, its own registration) is
checked on the way."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

import loopline
from tests.conftest import ProjectFactory
from tests.helpers import (
    TRAINING_SCRIPTS,
    commit_all,
    mlflow_client,
    mlflow_pointed_at,
    system_key,
    use_script,
)
from tests.servers import Server, free_port, split_body

pytestmark = pytest.mark.slow


def _breast_cancer(count: int = 40) -> pd.DataFrame:
    from sklearn.datasets import load_breast_cancer

    frame = load_breast_cancer(as_frame=True).data
    frame.columns = [c.replace(" ", "_") for c in frame.columns]
    return frame.iloc[100 : 100 + count].reset_index(drop=True)


def _iris() -> pd.DataFrame:
    from sklearn.datasets import load_iris

    frame = load_iris(as_frame=True).data
    return frame.rename(columns=lambda c: c.replace(" (cm)", "").replace(" ", "_")).iloc[::10]


def _wine() -> pd.DataFrame:
    from sklearn.datasets import load_wine

    return load_wine(as_frame=True).data.iloc[::5].reset_index(drop=True)


def _diabetes() -> pd.DataFrame:
    from sklearn.datasets import load_diabetes

    return load_diabetes(as_frame=True).data.iloc[:40].reset_index(drop=True)


def _accounts() -> pd.DataFrame:
    rng = np.random.default_rng(99)
    return pd.DataFrame(
        {
            "plan": rng.choice(["basic", "plus", "pro", "enterprise"], 40),  # one plan the model never saw
            "region": rng.choice(["north", "south", "east", "west"], 40),
            "monthly_fee": rng.normal(50, 15, 40).round(2),
            "support_calls": rng.poisson(2, 40),
            "tenure_months": rng.integers(1, 72, 40),
        }
    )


def _crm() -> pd.DataFrame:
    rng = np.random.default_rng(3)
    tenure = pd.array(rng.integers(0, 60, 30), dtype="Int64")
    tenure[::4] = pd.NA
    fee = rng.normal(40, 10, 30)
    fee[1::5] = np.nan
    return pd.DataFrame({"tenure": tenure, "monthly_fee": fee, "seats": rng.integers(1, 20, 30)})


def _items() -> pd.DataFrame:
    rng = np.random.default_rng(8)
    return pd.DataFrame(
        {
            "item": rng.integers(0, 6000, 30),
            "w0": rng.normal(size=30),
            "w1": rng.normal(size=30),
            "w2": rng.normal(size=30),
        }
    )


def _kept_its_experiment(project: Path, result: Any) -> None:
    """The script's own experiment, made in dev with its artifacts in the workspace's store."""
    client = mlflow_client(project, "dev")
    run = client.get_run(result.run_id)
    experiment = client.get_experiment(run.info.experiment_id)
    workspace = (project / ".loopline" / "workspaces" / "dev" / "artifacts").resolve().as_uri()
    assert experiment.name == "churn-experiments" and experiment.artifact_location.startswith(workspace)
    assert run.info.artifact_uri.startswith(workspace) and not (project / "mlruns").exists()
    assert run.data.tags["mlflow.runName"] == "logreg-baseline"  # the script's own run name stays


def _gated_on_autolog(project: Path, result: Any) -> None:
    assert {c.metric for c in result.gate.checks} == {"training_accuracy_score"}


def _took_the_parent(project: Path, result: Any) -> None:
    """Of a parent and its three children, each logging 'model', the parent's is registered."""
    client = mlflow_client(project, "dev")
    chosen = client.get_run(result.run_id)
    assert "mlflow.parentRunId" not in chosen.data.tags and chosen.data.params["best_C"]
    children = client.search_runs([chosen.info.experiment_id], f"tags.mlflow.parentRunId = '{result.run_id}'")
    assert len(children) == 3
    assert {r.data.tags["loopline.session"] for r in children} == {chosen.data.tags["loopline.session"]}


def _left_its_own_registration(project: Path, result: Any) -> None:
    """The script registered 'diabetes-progression' itself; that stays beside loopline's, tagged with the
    commit it ran at, the gate's outcome and loopline's own version of the same run."""
    own = mlflow_client(project, "dev").search_model_versions("name = 'diabetes-progression'")
    assert [int(v.version) for v in own] == [1] and own[0].run_id == result.run_id
    assert {
        k: own[0].tags.get(k) for k in ("git_commit", "git_branch", "loopline_gate", "loopline_version")
    } == {
        "git_commit": result.git_commit,
        "git_branch": result.git_branch,
        "loopline_gate": "passed",
        "loopline_version": f"regressor/{result.dev.version}",
    }
    assert "content_digest" not in own[0].tags  # not loopline's: never found as the commit's version
    assert {m.name for m in loopline.status(project).models} == {"regressor"}


def _batch_writes_each_rows_probabilities(project: Path, result: Any) -> None:
    """A batch job of the version writes a list of probabilities a row, the model's own."""
    import mlflow

    rows = _wine()
    inbox = project / ".loopline" / "datastores" / "inbox"
    rows.to_parquet(inbox / "wine.parquet", index=False)
    loopline.register_data("wine", "inbox://wine.parquet", project=project)
    loopline.create_batch_endpoint("cellar", "dev", project=project)
    loopline.create_batch_deployment("cellar", "blue", version=result.dev.version, project=project)
    job = loopline.batch_invoke("cellar", "wine", project=project)
    written = pd.read_parquet(
        next((project / ".loopline" / "datastores" / "predictions" / "cellar").rglob("part-*"))
    )
    with mlflow_pointed_at(project, "dev"):
        own = mlflow.pyfunc.load_model(f"models:/probabilities/{result.dev.version}").predict(rows)
    assert job.rows == len(rows) and written["row"].tolist() == list(range(len(rows)))
    np.testing.assert_allclose(np.stack(written["prediction"].to_numpy()), own, rtol=0, atol=1e-9)


@dataclass(frozen=True)
class Case:
    script: str
    gate: dict[str, dict[str, float]]
    change: tuple[str, str] | None  # an edit that makes a second version a different model, to release
    # and roll back from (None: the first release only; the moves do not depend on the script)
    rows: Callable[[], pd.DataFrame]
    check: Callable[[Path, Any], None] | None = None  # what else the first inner loop must have done
    files: tuple[str, ...] = ()  # the script's other files in the repository (a model's code)


CASES = [
    Case(
        "own_experiment.py",
        {"accuracy": {"min": 0.8}},
        ("C = 1.0", "C = 0.3"),
        _breast_cancer,
        _kept_its_experiment,
    ),
    Case(
        "autolog.py",
        {"training_accuracy_score": {"min": 0.8}},
        None,
        _wine,
        _gated_on_autolog,
    ),
    Case("nested.py", {"accuracy": {"min": 0.8}}, None, _breast_cancer, _took_the_parent),
    Case(
        "column_transformer.py",
        {"accuracy": {"min": 0.6}},
        None,
        _accounts,
    ),
    Case(
        "regressor.py",
        {"r2": {"min": 0.2}},
        None,
        _diabetes,
        _left_its_own_registration,
    ),
    Case("nullable.py", {"accuracy": {"min": 0.6}}, None, _crm),
    Case(
        "probabilities.py",
        {"accuracy": {"min": 0.8}, "log_loss": {"max": 0.5}},
        None,
        _wine,
        _batch_writes_each_rows_probabilities,
    ),
    Case(
        "lightgbm_autolog.py",
        {"valid_0-auc": {"min": 0.9}},
        ("learning_rate=0.1", "learning_rate=0.3"),
        _breast_cancer,
    ),
    Case("xgboost_native.py", {"accuracy": {"min": 0.9}}, None, _breast_cancer),
    Case("from_code.py", {"roc_auc": {"min": 0.9}}, None, _breast_cancer, files=("from_code_model.py",)),
    Case("species.py", {"accuracy": {"min": 0.8}}, None, _iris),
    Case("custom_pyfunc.py", {"accuracy": {"min": 0.8}}, ("threshold=0.6", "threshold=0.35"), _breast_cancer),
    Case("large_model.py", {"coverage": {"min": 1.0}}, ("default_rng(5)", "default_rng(6)"), _items),
]


def expected(project: Path, model: str, version: int, rows: pd.DataFrame) -> Any:
    """What a stock MLflow client computes from the prod registry's version (the model's own predict where
    MLflow's input check refuses nulls the model takes)."""
    import mlflow
    from mlflow.exceptions import MlflowException

    with mlflow_pointed_at(project, "prod"):
        loaded = mlflow.pyfunc.load_model(f"models:/{model}/{version}")
    try:
        return loaded.predict(rows)
    except MlflowException:
        return loaded.get_raw_model().predict(rows)


def assert_same(served: Any, computed: Any) -> None:
    """Equal answers: text exactly, numbers to 1e-9."""
    left, right = (
        pd.DataFrame(served),
        pd.DataFrame(np.asarray(computed) if not hasattr(computed, "columns") else computed),
    )
    assert left.shape == right.shape
    for a, b in zip(left.columns, right.columns, strict=True):
        x, y = left[a].to_numpy(), right[b].to_numpy()
        if x.dtype.kind in "fiub" and y.dtype.kind in "fiub":
            np.testing.assert_allclose(x.astype(float), y.astype(float), rtol=0, atol=1e-9)
        else:
            assert x.tolist() == y.tolist()


def score(server: Server, key: str, rows: pd.DataFrame, deployment: str) -> Any:
    """The prod endpoint's answer to ``rows``, once the deployment answers (the server follows a release
    within a moment)."""
    body = split_body(rows)
    deadline = time.monotonic() + 10
    while True:
        answer = server.invoke("proj", key, body)
        assert answer.status_code == 200, answer.text
        if answer.headers["loopline-deployment"] == deployment or time.monotonic() > deadline:
            assert answer.headers["loopline-deployment"] == deployment
            return answer.json()["predictions"]
        time.sleep(0.1)


@pytest.mark.parametrize("case", CASES, ids=[c.script.removesuffix(".py") for c in CASES])
def test_a_user_script_goes_from_the_inner_loop_through_release_and_rollback(
    new_project: ProjectFactory, case: Case, monkeypatch: pytest.MonkeyPatch
) -> None:
    project = new_project("simple", commit=False)
    model = case.script.removesuffix(".py").replace("_", "-")
    for name in case.files:
        (project / name).write_text((TRAINING_SCRIPTS / name).read_text())
    use_script(project, case.script, case.gate, name=model)
    first = loopline.inner_loop(project)
    assert first.created and first.trained
    if case.check is not None:
        case.check(project, first)
    rows = case.rows()
    port = free_port()
    monkeypatch.setenv("LOOPLINE_WORKSPACES__PROD__ENDPOINTS_URL", f"http://127.0.0.1:{port}")
    with Server(project, workspace="prod", port=port) as server:
        released = loopline.outer_loop_prod(project)
        assert not released.temporary_server and released.model == model
        key = system_key(project, "proj", "prod")
        assert_same(
            score(server, key, rows, released.deployment), expected(project, model, released.version, rows)
        )
        if case.change is None:
            return

        source = (TRAINING_SCRIPTS / case.script).read_text()
        assert case.change[0] in source
        (project / case.script).write_text(source.replace(*case.change))
        commit_all(project, "A second model")
        second = loopline.inner_loop(project)
        assert second.dev.content_digest != first.dev.content_digest
        again = loopline.outer_loop_prod(project)
        assert_same(score(server, key, rows, again.deployment), expected(project, model, again.version, rows))

        back = loopline.rollback(project, commit=first.git_commit[:7])
        assert back.changed and back.version == released.version
        assert_same(score(server, key, rows, back.deployment), expected(project, model, back.version, rows))
