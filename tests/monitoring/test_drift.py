"""Monitoring a real prod endpoint: drift decides a rollback, calm no change, too little no decision."""

from __future__ import annotations

import re
import time
from pathlib import Path

import httpx
import numpy as np
import pandas as pd
import pytest
from mlflow import MlflowClient

import loopline
from loopline.config import load_config
from loopline.errors import InsufficientEvidence
from tests.conftest import ProjectFactory
from tests.helpers import (
    TRAINING_SCRIPTS,
    cli,
    commit_all,
    edit_yaml,
    mlflow_pointed_at,
    wait_for_samples,
    wait_until,
)
from tests.servers import Server, free_port

pytestmark = pytest.mark.slow


def all_rows() -> tuple[list[str], np.ndarray]:
    from sklearn.datasets import load_breast_cancer

    frame = load_breast_cancer(as_frame=True).data
    return [c.replace(" ", "_") for c in frame.columns], frame.to_numpy()


def send(
    server: Server, rows: np.ndarray, columns: list[str], requests: int = 60, per_request: int = 10
) -> None:
    rng = np.random.default_rng(1)
    started = time.time()
    with httpx.Client(base_url=server.url, timeout=10) as client:
        for _ in range(requests):
            chosen = rows[rng.integers(0, len(rows), size=per_request)]
            answer = client.post(
                "/endpoints/proj/score", json={"input_data": {"columns": columns, "data": chosen.tolist()}}
            )
            assert answer.status_code == 200, answer.text
    wait_for_samples(server.project, "proj", requests * per_request, started)


def test_drift_decides_a_rollback_and_no_drift_decides_no_change(
    a_live_b_registered: tuple[Path, str, str],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    port = free_port()
    monkeypatch.setenv("LOOPLINE_WORKSPACES__PROD__ENDPOINTS_URL", f"http://127.0.0.1:{port}")
    project, first, second = a_live_b_registered
    edit_yaml(
        project / "loopline.yaml",
        monitoring={"sample_per_second": 100000, "sample_size": 600, "min_samples": 300},
    )
    loopline.outer_loop_prod(project, commit=second)
    from loopline.endpoints import service
    from loopline.instance import Instance

    service.set_traffic(Instance.open(project), "proj", {f"v2-{second[:7]}": 100})  # keep v2 live
    columns, rows = all_rows()
    with Server(
        project, "prod", port=port, env={"LOOPLINE_MONITORING__SAMPLE_PER_SECOND": "100000"}
    ) as server:
        _open(project)
        send(server, rows, columns)
        calm = loopline.monitor_check(project=project)
        assert calm.samples == 600 and calm.signals["max_psi"] < 0.1, calm.signals
        decision = loopline.policy_evaluate(project=project)
        assert decision.action == "no-change"
        assert loopline.policy_evaluate(project=project).decision_id == decision.decision_id  # same evidence
        send(server, rows * 1.6, columns)  # every feature shifted; the 600 calm rows rotate out
        drifted = loopline.monitor_check(project=project)
        assert drifted.signals["max_psi"] > 1.0
        # Evidence about v2 does not roll back what took the traffic since (a release, a person's rollback).
        service.set_traffic(Instance.open(project), "proj", {f"v1-{first[:7]}": 100})
        stale = loopline.policy_evaluate(project=project, act=True)
        assert (stale.action, stale.acted) == ("rollback", False)
        assert stale.outcome == (
            f"not rolled back: the decision was about {second[:7]}, and v1 ({first[:7]}) takes proj's "
            "traffic now; check it again (`loopline monitor check`)"
        )
        service.set_traffic(Instance.open(project), "proj", {f"v2-{second[:7]}": 100})
        acted = loopline.policy_evaluate(project=project, act=True)
        assert (acted.action, acted.acted, acted.rule) == ("rollback", True, "input drift")
        # The same data drifting under v1: the previous release is v2, rolled back from, and the policy does
        # not send the endpoint back there (and back again at the next check).
        send(server, rows * 1.6, columns)
        again = loopline.monitor_check(project=project)
        assert again.signals["max_psi"] > 1.0
        undo = loopline.policy_evaluate(project=project, act=True)
        assert (undo.action, undo.acted) == ("rollback", False)
        assert undo.outcome == (
            f"not rolled back: v1 ({first[:7]}) serves proj after a rollback from {second[:7]}, which the "
            "previous release would return to; choose a version by hand (`loopline rollback --commit SHA`)"
        )
    live = {d.git_commit: d.traffic for d in loopline.get_endpoint("proj", project=project).deployments}
    assert live == {first: 100, second: 0}
    rolled = loopline.history(project, kind="rolled-back")[-1].event
    assert rolled.reason and acted.decision_id in rolled.reason
    prod = load_config(project).store("prod")
    client = MlflowClient(prod.tracking_uri)
    runs = client.search_runs([client.get_experiment_by_name("monitoring-proj-classifier").experiment_id])
    assert len(runs) == 3 and runs[0].data.tags["git_commit"] == first
    tags = runs[1].data.tags
    assert (tags["endpoint"], tags["samples"], tags["git_commit"]) == ("proj", "600", second)
    assert runs[1].data.metrics["max_psi"] > 1.0


def _open(project: Path) -> None:
    """The prod endpoint takes requests without a key in this test."""
    from sqlalchemy import update

    from loopline.instance import Instance
    from loopline.state.schema import endpoints

    instance = Instance.open(project)
    with instance.db.write() as connection:
        connection.execute(
            update(endpoints)
            .where(endpoints.c.name == "proj")
            .values(auth="none", generation=endpoints.c.generation + 1)
        )
    time.sleep(0.5)


def test_too_few_samples_is_insufficient_evidence_with_exit_3(
    trained_project: ProjectFactory, capsys: pytest.CaptureFixture[str]
) -> None:
    project = trained_project("simple")
    loopline.outer_loop_prod(project)
    with pytest.raises(InsufficientEvidence, match="0 samples of proj/"):
        loopline.monitor_check(project=project)
    # loopline's own requests (smoke tests, `endpoint invoke`) are no evidence: the message says so.
    result = cli(capsys, "monitor", "check", "proj", "-C", str(project))  # the endpoint as for other nouns
    assert result.exit_code == 3 and "insufficient evidence" in result.stderr
    assert "`endpoint invoke` and smoke tests, is not sampled" in result.stderr
    result = cli(capsys, "policy", "evaluate", "-C", str(project))
    assert result.exit_code == 3
    twice = cli(capsys, "monitor", "check", "proj", "--endpoint", "other", "-C", str(project))
    assert twice.exit_code == 2 and "the endpoint is named twice" in twice.stderr
    assert [e.event.outcome for e in loopline.history(project, kind="monitor-checked")] == [
        "insufficient"
    ] * 2
    # A client's burst of rows is sampled at the rate a serving process keeps: the message says how many
    # requests were answered and the rate, so a user who sent enough rows knows why there are few samples.
    from loopline.instance import Instance
    from loopline.serving.stats import window_stats

    columns, rows = all_rows()
    [live] = [d.name for d in loopline.get_endpoint("proj", project=project).deployments if d.traffic]
    with Server(project, "prod", port=free_port()) as server:
        _open(project)
        body = {"input_data": {"columns": columns, "data": rows[:200].tolist()}}
        assert httpx.post(f"{server.url}/endpoints/proj/score", json=body, timeout=30).status_code == 200
        db = Instance.open(project).db
        wait_until(
            lambda: window_stats(db, "prod", "proj", live, time.time() - 600).requests,
            15,
            "the request counted",
        )
    with pytest.raises(InsufficientEvidence) as few:
        loopline.monitor_check(project=project)
    said = re.search(
        r"(\d+) samples of proj/\S+ in the last 1h, from (\d+) requests answered", few.value.message
    )
    assert said and int(said[1]) <= 20 and int(said[2]) >= 1, few.value.message  # the smoke test's too
    assert "(each serving process samples at most monitoring.sample_per_second, 20, rows a second)" in (
        few.value.message
    )


def test_a_burst_of_rows_sorted_by_a_feature_is_sampled_across_the_burst(
    trained_project: ProjectFactory,
) -> None:
    # A job scores a file sorted by one column in bursts of requests. Sampled from the first requests of
    # each burst alone (a token bucket's), the rows were the smallest of that column: drift on rows drawn
    # from the training's own population, and a policy's rollback.
    project = trained_project("simple")
    edit_yaml(project / "loopline.yaml", monitoring={"min_samples": 100})
    loopline.outer_loop_prod(project)
    columns, rows = all_rows()
    ordered = rows[np.argsort(rows[:, 0])]  # by mean_radius
    started = time.time()
    env = {"LOOPLINE_MONITORING__SAMPLE_PER_SECOND": "40"}
    with Server(project, "prod", port=free_port(), env=env) as server:
        _open(project)
        with httpx.Client(base_url=server.url, timeout=10) as client:
            for _ in range(4):
                for start in range(0, len(ordered), 10):
                    chunk = ordered[start : start + 10].tolist()
                    body = {"input_data": {"columns": columns, "data": chunk}}
                    assert client.post("/endpoints/proj/score", json=body).status_code == 200
                time.sleep(1.2)
        wait_for_samples(project, "proj", 120, started)
    checked = loopline.monitor_check(project=project)
    assert checked.samples >= 120 and checked.signals["max_psi"] < 0.25, checked.signals
    assert loopline.policy_evaluate(project=project).action == "no-change"


def test_a_model_answering_probabilities_is_monitored_output_by_output(
    trained_project: ProjectFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A classifier logged with pyfunc_predict_fn="predict_proba": each answer is a list of two shares.
    project = trained_project("simple")
    script = project / "train.py"
    old = "signature=infer_signature(x_valid, model.predict(x_valid)),"
    assert old in script.read_text(), "the sample's training script changed: update this test"
    new = (
        'signature=infer_signature(x_valid, model.predict_proba(x_valid)), pyfunc_predict_fn="predict_proba",'
    )
    script.write_text(script.read_text().replace(old, new))
    commit_all(project, "Answer probabilities")
    loopline.inner_loop(project)
    port = free_port()
    monkeypatch.setenv("LOOPLINE_WORKSPACES__PROD__ENDPOINTS_URL", f"http://127.0.0.1:{port}")
    edit_yaml(project / "loopline.yaml", monitoring={"sample_per_second": 100000, "min_samples": 100})
    loopline.outer_loop_prod(project)
    columns, rows = all_rows()
    with Server(project, "prod", port=port) as server:
        _open(project)
        send(server, rows, columns, requests=20)
        answer = httpx.post(
            f"{server.url}/endpoints/proj/score",
            json={"input_data": {"columns": columns, "data": [rows[0].tolist()]}},
        )
        assert len(answer.json()[0]) == 2 and abs(sum(answer.json()[0]) - 1) < 1e-9
        calm = loopline.monitor_check(project=project)
    assert calm.samples == 200
    assert calm.signals["prediction_psi"] is not None and 0 <= calm.signals["prediction_psi"] < 1.0, (
        calm.signals
    )


def test_a_model_whose_run_logged_no_reference_is_compared_with_a_data_asset_of_training_rows(
    trained_project: ProjectFactory, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    import pandas as pd

    # A training script as users write them: it logs no reference data for loopline.
    project = trained_project("simple")
    script = project / "train.py"
    logged = "            mlflow.log_artifact(str(reference))\n"
    assert logged in script.read_text(), "the sample's training script changed: update this test"
    script.write_text(script.read_text().replace(logged, ""))
    params = project / "params.yaml"
    params.write_text(params.read_text().replace("C: 1.0", "C: 0.5"))  # another model, without a profile
    commit_all(project, "No reference data")
    loopline.inner_loop(project)
    port = free_port()
    monkeypatch.setenv("LOOPLINE_WORKSPACES__PROD__ENDPOINTS_URL", f"http://127.0.0.1:{port}")
    monitoring = {"sample_per_second": 100000, "sample_size": 200, "min_samples": 100}
    edit_yaml(project / "loopline.yaml", monitoring=monitoring)
    loopline.outer_loop_prod(project)
    columns, rows = all_rows()
    with Server(project, "prod", port=port) as server:
        _open(project)
        send(server, rows, columns, requests=20)
        alone = loopline.monitor_check(project=project)
        assert alone.signals["drift_reference"].startswith("none: the training run logged no reference data")
        assert alone.signals["drift_reference"].endswith(
            "(`loopline data upload train PATH`, PATH the table the training read)"
        )
        assert "max_psi" not in alone.signals
        # The training rows, uploaded from this machine, with their label (not a feature the endpoint gets).
        training = pd.DataFrame(rows, columns=columns).assign(label=0)
        training.to_csv(tmp_path / "train.csv", index=False)
        train, _ = loopline.upload_data("train", tmp_path / "train.csv", project=project)
        edit_yaml(project / "loopline.yaml", monitoring={**monitoring, "reference_data": "train"})
        calm = loopline.monitor_check(project=project)
        assert calm.signals["drift_reference"] == "data asset train:1"
        assert calm.signals["max_psi"] < 0.2 and calm.signals["prediction_psi"] is not None, calm.signals
        assert "label" not in calm.signals["psi"]
        # The profile is made once from the verified bytes and kept: later checks read no data.
        (project / ".loopline" / "datastores" / "inbox" / train.path).write_text("x\n1\n")
        send(server, rows * 1.6, columns, requests=20)  # every feature shifted; the calm rows rotate out
        drifted = loopline.monitor_check(project=project)
    assert drifted.signals["max_psi"] > 1.0


def test_a_model_fitted_on_an_array_is_compared_with_training_rows_by_position(
    new_project: ProjectFactory, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    import pandas as pd

    from loopline.errors import UsageError
    from tests.helpers import use_script

    # Requests to a model fitted on an array name no columns ({"inputs": [[...]]}); the training rows
    # a user has keep their names.
    project = new_project("simple", commit=False)
    use_script(project, "arrays.py", {"accuracy": {"min": 0.8}})
    loopline.inner_loop(project)
    port = free_port()
    monkeypatch.setenv("LOOPLINE_WORKSPACES__PROD__ENDPOINTS_URL", f"http://127.0.0.1:{port}")
    monitoring = {"sample_per_second": 100000, "sample_size": 200, "min_samples": 100}
    edit_yaml(project / "loopline.yaml", monitoring={**monitoring, "reference_data": "train"})
    loopline.outer_loop_prod(project)
    columns, rows = all_rows()
    pd.DataFrame(rows, columns=columns).assign(label=0).to_csv(tmp_path / "labelled.csv", index=False)
    pd.DataFrame(rows, columns=columns).to_csv(tmp_path / "train.csv", index=False)
    loopline.upload_data("train", tmp_path / "labelled.csv", project=project)
    rng = np.random.default_rng(2)
    with Server(project, "prod", port=port) as server:
        _open(project)
        started = time.time()
        for _ in range(20):
            chosen = rows[rng.integers(0, len(rows), size=10)]
            answer = httpx.post(f"{server.url}/endpoints/proj/invocations", json={"inputs": chosen.tolist()})
            assert answer.status_code == 200, answer.text
        wait_for_samples(project, "proj", 200, started)
        with pytest.raises(UsageError, match="receives its 30 columns by position; name a data asset of ex"):
            loopline.monitor_check(project=project)  # 31 columns: which 30 are the model's?
        loopline.upload_data("train", tmp_path / "train.csv", project=project)
        calm = loopline.monitor_check(project=project)
    assert calm.signals["drift_reference"] == (
        "data asset train:2, its columns by position (the model takes an array)"
    )
    assert set(calm.signals["psi"]) == {str(at) for at in range(30)}
    assert calm.signals["max_psi"] < 0.2 and calm.signals["prediction_psi"] is not None, calm.signals


COUNTRIES = (TRAINING_SCRIPTS / "countries.py").read_text()
PLANS = """\
import random
import tempfile
from pathlib import Path

import mlflow
import pandas as pd
from sklearn.compose import ColumnTransformer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

random.seed(0)
plans = random.choices(["basic", "plus", "pro"], weights=[6, 3, 1], k=600)
frame = pd.DataFrame({
    "plan": plans,
    "tenure (months)": [random.uniform(0, 60) for _ in plans],
    "note": [f"customer {i} called about billing" for i in range(len(plans))],
})
churned = [int(p == "basic" and t < 20) for p, t in zip(plans, frame["tenure (months)"])]
features = ColumnTransformer(
    [
        ("plan", OneHotEncoder(handle_unknown="ignore"), ["plan"]),
        ("tenure", StandardScaler(), ["tenure (months)"]),
    ]
)
model = Pipeline([("features", features), ("clf", LogisticRegression())]).fit(frame, churned)
with mlflow.start_run():
    mlflow.log_metric("accuracy", model.score(frame, churned))
    with tempfile.TemporaryDirectory() as scratch:
        frame.to_parquet(Path(scratch) / "reference_data.parquet")
        mlflow.log_artifact(str(Path(scratch) / "reference_data.parquet"))
    mlflow.sklearn.log_model(model, name="model", input_example=frame.head(3))
"""


def _released(
    new_project: ProjectFactory,
    monkeypatch: pytest.MonkeyPatch,
    script: str,
    gated: str = "accuracy",
    **monitoring: str,
) -> tuple[Path, int]:
    """A project training with ``script`` (gated on its metric ``gated``), released to prod with every
    request sampled (and ``monitoring``), and the port its prod server is to listen on."""
    from tests.helpers import use_script

    project = new_project("simple", commit=False)
    use_script(project, "train_model.py", {gated: {"min": 0.5}}, source=script)
    loopline.inner_loop(project)
    port = free_port()
    monkeypatch.setenv("LOOPLINE_WORKSPACES__PROD__ENDPOINTS_URL", f"http://127.0.0.1:{port}")
    sampled = {"sample_per_second": 100000, "sample_size": 200, "min_samples": 200}
    edit_yaml(project / "loopline.yaml", monitoring={**sampled, **monitoring})
    loopline.outer_loop_prod(project)
    return project, port


def test_a_category_drifts_by_its_values_and_free_text_by_its_length(
    new_project: ProjectFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A churn model as they are written: a plan (few values, one-hot encoded), a number (its column named
    # with its unit, which MLflow refuses in a metric's name), a free-text note (not one of the model's
    # features, as often: logged with the rows, it reaches the endpoint).
    project, port = _released(new_project, monkeypatch, PLANS)
    rng = np.random.default_rng(3)

    def send_plans(shares: dict[str, float], note: str = "customer {} called about billing") -> None:
        started = time.time()
        for _ in range(20):
            plans = rng.choice(list(shares), size=10, p=list(shares.values()))
            rows = [[str(p), float(rng.uniform(0, 60)), note.format(rng.integers(10**6))] for p in plans]
            answer = httpx.post(
                f"{server.url}/endpoints/proj/invocations",
                json={"dataframe_split": {"columns": ["plan", "tenure (months)", "note"], "data": rows}},
            )
            assert answer.status_code == 200, answer.text
        wait_for_samples(project, "proj", 200, started)

    with Server(project, "prod", port=port) as server:
        _open(project)
        send_plans({"basic": 0.6, "plus": 0.3, "pro": 0.1})  # as in training
        calm = loopline.monitor_check(project=project)
        # The business moved upmarket, and sells a plan the model never saw.
        send_plans({"basic": 0.1, "plus": 0.2, "pro": 0.3, "enterprise": 0.4})
        drifted = loopline.monitor_check(project=project)
        # A new call centre writes its notes at length: the same plans, texts of another kind.
        send_plans(
            {"basic": 0.6, "plus": 0.3, "pro": 0.1},
            "ticket {} escalated after the customer reported repeated outages during the weekend",
        )
        wordy = loopline.monitor_check(project=project)
    # A note of 600 distinct texts is no category: its drift is measured by its length in words.
    assert set(calm.signals["psi"]) == {"plan", "tenure (months)", "note"}
    with mlflow_pointed_at(
        project, "prod"
    ):  # each check's run, its metric of the column named to MLflow's rule
        logged = MlflowClient().get_run(calm.run_id).data.metrics
    assert logged["psi_tenure _months_"] == pytest.approx(calm.signals["psi"]["tenure (months)"])
    assert calm.signals["psi"]["plan"] < 0.1 and calm.signals["psi"]["note"] < 0.1, calm.signals
    assert wordy.signals["max_psi_feature"] == "note" and wordy.signals["psi"]["note"] > 1.0, wordy.signals
    assert wordy.signals["psi"]["plan"] < 0.1 and "note" not in wordy.signals["ks"]
    assert drifted.signals["max_psi_feature"] == "plan" and drifted.signals["psi"]["plan"] > 1.0, (
        drifted.signals
    )
    assert drifted.signals["psi"]["tenure (months)"] < 0.2 and "plan" not in drifted.signals["ks"]


def _countries_rows() -> pd.DataFrame:
    """The rows tests/training_scripts/countries.py trains on, with their label."""
    import random

    random.seed(0)
    countries = random.choices(["NA", "ZA", "BW", "DE"], k=400)  # as the script draws them
    visits = [random.randint(0, 9) for _ in countries]
    label = [int(c in ("NA", "ZA")) for c in countries]
    return pd.DataFrame({"country": countries, "visits": visits, "label": label})


def test_a_country_coded_na_is_a_country_in_the_training_rows_and_labels_a_check_reads(
    new_project: ProjectFactory, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # Namibia's code is NA, which pandas reads from a CSV as a missing value; the model takes it as text.
    # The training logs its accuracy as val_accuracy, which the check reads as the accuracy it measures.
    assert COUNTRIES.count('"accuracy"') == 1, "tests/training_scripts/countries.py changed: update this test"
    script = COUNTRIES.replace('"accuracy"', '"val_accuracy"')
    project, port = _released(new_project, monkeypatch, script, "val_accuracy", reference_data="train")
    rows = _countries_rows()
    rows.to_csv(tmp_path / "train.csv", index=False)
    loopline.upload_data("train", tmp_path / "train.csv", project=project)  # the features and their labels
    with Server(project, "prod", port=port) as server:
        _open(project)
        started = time.time()
        for at in range(20):
            chosen = rows.iloc[at * 10 : at * 10 + 10]
            answer = httpx.post(
                f"{server.url}/endpoints/proj/invocations",
                json={
                    "dataframe_split": {
                        "columns": ["country", "visits"],
                        "data": chosen.values[:, :2].tolist(),
                    }
                },
            )
            assert answer.status_code == 200, answer.text
        wait_for_samples(project, "proj", 200, started)
        calm = loopline.monitor_check(labels="train", project=project)
    assert calm.signals["drift_reference"] == "data asset train:1"
    assert calm.signals["psi"]["country"] < 0.1, calm.signals  # NA is a country of the training rows too
    # On its own training rows, the model is as accurate as when it was trained.
    assert calm.signals["metric"] == "accuracy" and calm.signals["reference_metric"] == "val_accuracy"
    assert calm.signals["current"] == pytest.approx(calm.signals["reference"]), calm.signals
    assert calm.signals["performance_drop"] == pytest.approx(0.0)


# The store's visits model, its run logging its training rows (a timestamp among them) as Parquet.
VISITS = (
    (TRAINING_SCRIPTS / "visits_by_hour.py")
    .read_text()
    .replace(
        "    mlflow.pyfunc.log_model(",
        "    with tempfile.TemporaryDirectory() as scratch:\n"
        '        frame.to_parquet(Path(scratch) / "reference_data.parquet")\n'
        '        mlflow.log_artifact(str(Path(scratch) / "reference_data.parquet"))\n'
        "    mlflow.pyfunc.log_model(",
    )
    .replace("import random\n", "import random\nimport tempfile\nfrom pathlib import Path\n")
)


def test_dates_and_times_are_not_measured_for_drift_and_the_other_features_are(
    new_project: ProjectFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Trained on March, served in April: every timestamp is one the training rows never held, by nature.
    assert "log_artifact" in VISITS, "tests/training_scripts/visits_by_hour.py changed: update this test"
    project, port = _released(new_project, monkeypatch, VISITS)
    rng = np.random.default_rng(5)
    with Server(project, "prod", port=port) as server:
        _open(project)
        started = time.time()
        for _ in range(20):
            hours = rng.integers(0, 24 * 30, size=10)
            rows = [
                [f"2026-04-{1 + int(h) // 24:02d}T{int(h) % 24:02d}:00:00", int(rng.integers(1, 6)), False]
                for h in hours
            ]
            answer = httpx.post(
                f"{server.url}/endpoints/proj/invocations",
                json={"dataframe_split": {"columns": ["at", "staff", "holiday"], "data": rows}},
            )
            assert answer.status_code == 200, answer.text
        wait_for_samples(project, "proj", 200, started)
        check = loopline.monitor_check(project=project)
    assert check.signals["drift_reference"] == "the training run's reference_data.parquet"
    assert set(check.signals["psi"]) == {"staff", "holiday"}, check.signals  # not the timestamp
    assert check.signals["max_psi"] < 0.1, check.signals
    assert check.signals["prediction_psi"] is not None and check.signals["prediction_psi"] < 0.2, (
        check.signals
    )
