"""Validation metrics of a classifier's labels and of its probabilities, and of a regressor of several
targets; a forecast validated by the project's own command through the endpoint."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import yaml
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import log_loss, roc_auc_score

import loopline
from loopline.config import ValidationConfig
from loopline.domain import MetricCheck
from loopline.errors import GateFailed, InvalidData, Refused
from loopline.validation import ValidationFindings, _failure, _read_metrics, lower_is_better, metrics_for
from tests.conftest import ProjectFactory
from tests.helpers import commit_all, commit_answering_probabilities, edit_yaml, git, tree, use_script


def test_a_classifier_answering_probabilities_is_measured_by_its_most_likely_class() -> None:
    rng = np.random.default_rng(4)
    features = rng.normal(size=(300, 3))
    labels = np.array(["bronze", "gold", "silver"])[(features[:, 0] > 0).astype(int) + (features[:, 1] > 0.5)]
    fitted = LogisticRegression().fit(features[:200], labels[:200])
    truth = labels[200:]
    by_label = metrics_for("classification", truth, fitted.predict(features[200:]))
    assert set(by_label) == {"accuracy", "precision", "recall", "f1"}  # labels tell no probability
    shares = fitted.predict_proba(features[200:])
    # and the probabilities measure the area under the ROC curve (each class against the rest) and the loss
    by_shares = {
        **by_label,
        "roc_auc": roc_auc_score(truth, shares, multi_class="ovr"),
        "log_loss": log_loss(truth, shares, labels=fitted.classes_),
    }
    assert metrics_for("classification", truth, shares.tolist()) == by_shares  # as an endpoint answers
    assert metrics_for("classification", truth, list(shares)) == by_shares  # as a batch part holds them
    assert 0.6 < by_label["accuracy"] < 1 and 0.6 < by_shares["roc_auc"] <= 1


def test_probabilities_that_do_not_match_the_classes_are_refused_with_what_to_answer() -> None:
    with pytest.raises(Refused) as refused:
        metrics_for("classification", [0, 1, 2, 1], [[0.2, 0.8]] * 4)
    assert refused.value.message.startswith(
        "the model answers 2 values a row and the held-out labels have 3 classes: to be validated"
    )


def test_a_binary_classifier_answering_the_probability_of_its_second_class_is_measured_at_one_half() -> None:
    # statsmodels' Logit, a LightGBM or XGBoost booster of a binary objective: one probability a row
    by_labels = metrics_for("classification", [1, 0, 0, 1], [1, 0, 1, 0])
    answered = metrics_for("classification", [1, 0, 0, 1], [0.9, 0.2, 0.5, 0.49])
    assert answered == {
        **by_labels,
        "roc_auc": roc_auc_score([1, 0, 0, 1], [0.9, 0.2, 0.5, 0.49]),
        "log_loss": log_loss([1, 0, 0, 1], [0.9, 0.2, 0.5, 0.49]),
    }
    floats = metrics_for("classification", [1.0, 0.0, 0.0, 1.0], np.array([0.9, 0.2, 0.7, 0.1]))
    assert {name: floats[name] for name in by_labels} == by_labels and floats["roc_auc"] == 0.5
    # labels of text, sorted as scikit-learn's classes_: the probability is of "yes"
    worded = metrics_for("classification", ["yes", "no", "no", "yes"], [0.8, 0.1, 0.6, 0.3])
    assert worded["accuracy"] == by_labels["accuracy"] == 0.5 and worded["roc_auc"] == 0.75
    # a label a row stays a label, of numbers or not
    assert metrics_for("classification", [1, 0, 0, 1], [1.0, 0.0, 0.0, 1.0])["accuracy"] == 1.0
    # numbers that are neither labels nor probabilities of two classes are refused saying what to answer
    with pytest.raises(Refused) as refused:
        metrics_for("classification", [0, 1, 2, 1], [0.2, 0.7, 0.4, 0.9])
    assert refused.value.message.startswith(
        "the model answers numbers that are no labels (0.2, 0.7, 0.4, ...) and the held-out labels have 3 "
        "class(es) (0, 1, 2): to be validated, a classifier answers a label a row, the probability of the "
        "second of two classes"
    )


def test_a_bound_on_a_metric_of_probabilities_fails_for_labels_saying_to_serve_the_probabilities() -> None:
    measured = metrics_for("classification", [1, 0, 0, 1], [1, 0, 1, 1])  # labels: no roc_auc
    checks = [MetricCheck(name, measured.get(name), 0.7, None) for name in ("accuracy", "roc_auc")]
    assert [_failure(check) for check in checks] == [
        "accuracy = 0.75 (needs >= 0.7)",
        "roc_auc is measured on a classifier's probabilities, and the model answers labels: serve its "
        "probabilities (mlflow.sklearn.log_model(..., pyfunc_predict_fn='predict_proba')), or bound another "
        "metric in validation.thresholds",
    ]


def test_a_model_answering_a_table_is_measured_by_its_prediction_column_else_its_first() -> None:
    by_labels = metrics_for("classification", [1, 0, 0], [1, 0, 1])
    rows = [{"label": 1, "score": 0.9}, {"label": 0, "score": 0.2}, {"label": 1, "score": 0.6}]
    assert metrics_for("classification", [1, 0, 0], rows) == by_labels
    # the score first: the output named as a prediction is measured, not the score
    scored = [
        {"score": 0.9, "prediction": 1},
        {"score": 0.2, "prediction": 0},
        {"score": 0.6, "prediction": 1},
    ]
    assert metrics_for("classification", [1, 0, 0], scored) == by_labels
    # named as the held-out rows' label column (validation.label) before any other
    churn = [
        {"p": 0.9, "class": 0, "churned": 1},
        {"p": 0.2, "class": 1, "churned": 0},
        {"p": 0.6, "class": 0, "churned": 1},
    ]
    assert metrics_for("classification", [1, 0, 0], churn, "churned") == by_labels
    amounts = [{"amount": 10.0, "low": 8.0}, {"amount": 20.0, "low": 15.0}]
    assert metrics_for("regression", [10.0, 22.0], amounts)["mae"] == 1.0


def test_the_report_names_the_registry_s_version_and_the_test_copy_where_they_differ() -> None:
    findings = ValidationFindings(
        candidate={"model": "churn", "version": 1, "registry_version": 3, "git_commit": "d030fe2aa"},
        data={"path": "inbox://heldout.csv", "rows": 80, "digest": "sha256:" + "0" * 64},
        metrics={},
        checks=[],
        champion=None,
        challenger={"passed": True},
        smoke={"passed": True, "detail": "200, 3 predictions for 3 rows"},
        latency={"passed": True, "p95_ms": 1.0, "requests": 50, "budget_ms": 250},
    )
    assert findings.markdown().startswith("## Validation of churn v3 (d030fe2; v1 in test): passed\n")
    findings.candidate["version"] = 3
    assert findings.markdown().startswith("## Validation of churn v3 (d030fe2): passed\n")
    # Measured without a bound (validation.thresholds names none of them): shown, and said to gate nothing.
    findings.metrics = {"accuracy": 0.97, "f1": 0.9612}
    table = findings.markdown().split("| metric | value | min | max | result |\n|---|---|---|---|---|\n")[1]
    assert table.startswith("| accuracy | 0.9700 |  |  | not gated |\n| f1 | 0.9612 |  |  | not gated |\n")
    assert "No metric is gated: give bounds in validation.thresholds (loopline.yaml)." in table
    findings.checks = [{"metric": "f1", "value": 0.9612, "min": 0.9, "max": None, "passed": True}]
    table = findings.markdown().split("|---|---|---|---|---|\n")[1]
    assert table.startswith("| f1 | 0.9612 | 0.9 |  | pass |\n| accuracy | 0.9700 |  |  | not gated |\n")
    assert "No metric is gated" not in table


def test_what_a_model_answered_and_a_validation_script_named_stays_text_in_the_report() -> None:
    # The report is a GitHub step summary: a model's labels, or a metric a validation script named, could
    # otherwise put a link dressed as another, an image or a table's end on the run's page.
    from markdown_it import MarkdownIt

    label = "[all checks passed](https://example.invalid) <img src=https://example.invalid/p.png>"
    findings = ValidationFindings(
        candidate={"model": "churn", "version": 1, "git_commit": "d030fe2aa"},
        data={"path": "inbox://held`out.csv", "rows": 80, "digest": "sha256:" + "0" * 64},
        metrics={"f1 | 1.0 | pass": 0.5},
        checks=[],
        champion=None,
        challenger={"passed": True},
        smoke={"passed": False, "detail": f"200, answered {label}"},
        latency={"passed": True, "p95_ms": 1.0, "requests": 50, "budget_ms": 250},
        answers=f"labels {label} where the champion answers 0",
    )
    findings.failures = [f"the smoke test failed ({label})"]
    page = MarkdownIt("commonmark").enable("table").render(findings.markdown())
    assert "<a " not in page and "<img" not in page, page
    assert "<td>f1 | 1.0 | pass</td>" in page  # one cell, as named
    assert "<code>inbox://held`out.csv</code>" in page
    assert page.count("[all checks passed](https://example.invalid)") == 3


VALIDATE = '''\
"""Forecast the held-out months through the endpoint and measure the error, as this team validates."""
import json
import os

import numpy as np
import pandas as pd
import requests

heldout = pd.read_csv(os.environ["LOOPLINE_HELDOUT"])
horizon = [[int(heldout["step"].min()), int(heldout["step"].max())]]
answer = requests.post(
    os.environ["LOOPLINE_SCORING_URI"],
    headers={"Authorization": f"Bearer {os.environ['LOOPLINE_ENDPOINT_KEY']}"},
    json={"dataframe_split": {"columns": ["start", "end"], "data": horizon}},
    timeout=30,
)
answer.raise_for_status()
forecast = np.asarray(answer.json()["predictions"], dtype=float)
errors = np.abs(forecast - heldout["sales"].to_numpy())
print(f"{os.environ['LOOPLINE_DEPLOYMENT']}: mae {errors.mean():.3f}")
credentials = [name for name in os.environ if name.startswith(("AWS_", "AZURE_", "MLFLOW_"))]
with open(os.environ["LOOPLINE_METRICS"], "w") as out:
    json.dump({"mae": errors.mean(), "max_error": errors.max(), "credentials_seen": len(credentials)}, out)
'''


def _forecast_project(new_project: ProjectFactory, tmp_path: Path) -> Path:
    """A full-tier project training ``forecast.py``, validated by its own ``validate.py`` on the last
    12 months of sales (a data asset)."""
    project = new_project("full", commit=False)
    (project / "validate.py").write_text(VALIDATE)
    edit_yaml(
        project / "loopline.yaml",
        validation={
            "command": "python validate.py",
            "data": "sales-holdout",
            "thresholds": {"mae": {"max": 8.0}},
            "challenger_metric": "mae",
            "challenger_margin": 0.5,
        },
    )
    use_script(project, "forecast.py", {"mae": {"max": 50.0}})
    steps = np.arange(120)
    rng = np.random.default_rng(0)
    sales = 200 + 0.8 * steps + 15 * np.sin(2 * np.pi * steps / 12) + rng.normal(0, 4, 120)
    holdout = tmp_path / "sales-holdout.csv"
    pd.DataFrame({"step": steps[108:], "sales": sales[108:]}).to_csv(holdout, index=False)
    loopline.upload_data("sales-holdout", holdout, project=project)
    return project


def _newest_report(project: Path) -> Any:
    """The newest validation report (``report.json``) in the shared registry's artifact location."""
    reports = sorted(
        (project / ".loopline").rglob("validation/*/v*/*/report.json"), key=lambda p: p.stat().st_mtime
    )
    return json.loads(reports[-1].read_text())


def _mae(result: Any) -> float:
    """The MAE the training logged, as the inner loop's gate read it."""
    return float(next(check.value for check in result.gate.checks if check.metric == "mae"))


def test_a_forecast_is_validated_by_the_project_s_own_command_against_the_champion_s(
    new_project: ProjectFactory, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    project = _forecast_project(new_project, tmp_path)
    # Credentials where loopline runs (as on a control plane) stay out of the command's environment.
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "not-for-the-command")
    monkeypatch.setenv("MLFLOW_TRACKING_PASSWORD", "not-for-the-command")
    first = loopline.inner_loop(project)
    tested = loopline.outer_loop_test(project)
    assert tested.passed, tested.report_markdown
    report = tested.report
    assert report["measured_by"] == "python validate.py"
    assert report["data"]["asset"] == "sales-holdout:1" and report["data"]["rows"] == 12
    assert report["metrics"]["mae"] == pytest.approx(_mae(first), abs=1e-9)  # the same months
    assert report["metrics"]["credentials_seen"] == 0 and "max_error" in report["metrics"]
    assert report["smoke"]["detail"] == "200, 12 predictions for 1 rows"  # a value a month of the horizon
    assert report["latency"]["requests"] == 50  # the input example, as MLflow wrote the request
    assert "Metrics measured through the endpoint by `python validate.py`" in tested.report_markdown
    loopline.outer_loop_prod(project)

    # A forecast without the trend: the command measures it, and the champion by its own deployment.
    source = (project / "forecast.py").read_text().replace("DAMPING = 1.0", "DAMPING = 0.0")
    use_script(project, "forecast.py", {"mae": {"max": 200.0}}, source=source)
    second = loopline.inner_loop(project)
    with pytest.raises(GateFailed):
        loopline.outer_loop_test(project)
    worse = _newest_report(project)
    assert worse["champion"]["metrics"]["mae"] == pytest.approx(_mae(first), abs=1e-9)
    assert worse["metrics"]["mae"] == pytest.approx(_mae(second), abs=1e-9)
    assert any(f.startswith("mae ") and "worse than the champion's" in f for f in worse["failures"])

    # A command that fails fails validation saying so, and measures nothing.
    edit_yaml(project / "loopline.yaml", validation={"command": "exit 3"})
    with pytest.raises(GateFailed) as refused:
        loopline.outer_loop_test(project, commit=second.git_commit)
    report = _newest_report(project)
    assert (
        report["failures"][0]
        == f"validation.command measuring {report['candidate']['deployment']} exited with 3"
    )
    assert report["metrics"] == {} and report["failures"][0] in refused.value.message


@pytest.mark.parametrize(
    ("written", "said"),
    [
        (None, "wrote no metrics to $LOOPLINE_METRICS"),
        ("{oops", "wrote metrics that are not JSON"),
        ("[1, 2]", "wrote list metrics; write a JSON object of name: number"),
        ('{"mae": "low"}', "wrote metric 'mae' as 'low'; write numbers only"),
        ('{"mae": NaN}', "wrote metric 'mae' as 'nan'; write numbers only"),
        ('{"passed": true}', "wrote metric 'passed' as 'True'; write numbers only"),
    ],
)
def test_metrics_a_command_writes_are_numbers_by_name_or_refused_saying_what_is_wrong(
    tmp_path: Path, written: str | None, said: str
) -> None:
    path = tmp_path / "metrics.json"
    if written is not None:
        path.write_text(written)
    metrics, failure = _read_metrics(path, "the command")
    assert metrics == {} and failure is not None and failure.startswith(f"the command {said}")
    path.write_text('{"mae": 3, "hit_rate@10": 0.25}')
    assert _read_metrics(path, "the command") == ({"mae": 3.0, "hit_rate@10": 0.25}, None)


@pytest.mark.parametrize(
    ("metric", "better", "lower"),
    [
        ("mae", None, True),
        ("val_loss", None, True),
        ("test-mape", None, True),
        ("accuracy", None, False),
        ("f1", None, False),
        ("ndcg", "lower", True),
        ("mae", "higher", False),
    ],
)
def test_which_way_a_challenger_metric_is_better(metric: str, better: str | None, lower: bool) -> None:
    assert lower_is_better(ValidationConfig(challenger_better=better), metric) is lower


def _validated_on(new_project: ProjectFactory, script: str, heldout: str, label: str, scratch: Path) -> Path:
    """A full-tier project training with ``script`` (of the test tree), its held-out rows the CSV text
    ``heldout`` (the data asset heldout, ``label`` its labels) on which accuracy must reach 0.99."""
    project = new_project("full", commit=False)
    thresholds = {"accuracy": {"min": 0.99}}
    edit_yaml(
        project / "loopline.yaml", validation={"data": "heldout", "label": label, "thresholds": thresholds}
    )
    use_script(project, script, {"accuracy": {"min": 0.5}})
    (scratch / "heldout.csv").write_text(heldout)
    loopline.upload_data("heldout", scratch / "heldout.csv", project=project)
    return project


def test_held_out_texts_that_pandas_takes_for_missing_values_are_validated_as_the_texts_they_are(
    new_project: ProjectFactory, tmp_path: Path
) -> None:
    # Held-out customers of Namibia (country NA): read as nulls, the endpoint refused their rows and the
    # validation failed a model that answers them all.
    customers = pd.DataFrame({"country": ["NA", "DE", "NA", "ZA", "BW"] * 20, "visits": [1, 2, 3, 4, 5] * 20})
    customers["bought"] = customers["country"].isin(["NA", "ZA"]).astype(int)
    project = _validated_on(new_project, "countries.py", customers.to_csv(index=False), "bought", tmp_path)
    loopline.inner_loop(project)
    tested = loopline.outer_loop_test(project)
    assert tested.passed, tested.report_markdown
    assert tested.report["metrics"]["accuracy"] == 1.0 and tested.report["data"]["rows"] == 100


def test_a_class_named_none_is_a_held_out_label_not_a_missing_one(
    new_project: ProjectFactory, tmp_path: Path
) -> None:
    # A classifier answering None, Minor or Major: a held-out None read as a null was a wrong answer.
    inspections = pd.DataFrame(
        {"reading": [5.0, 15.0, 25.0] * 20, "severity": ["None", "Minor", "Major"] * 20}
    )
    assert "5.0,None\n" in inspections.to_csv(index=False)  # as a CSV of such labels holds it
    unlabelled = inspections.astype(object)
    unlabelled.loc[[3, 40], "severity"] = None  # two inspections no one labelled: empty cells
    project = _validated_on(new_project, "severity.py", unlabelled.to_csv(index=False), "severity", tmp_path)
    loopline.inner_loop(project)
    with pytest.raises(InvalidData) as refused:
        loopline.outer_loop_test(project)
    assert str(refused.value) == (
        "the held-out data (data asset heldout:1) has 2 row(s) without a label in column 'severity' "
        "(row 4, 41, counting from 1): a metric needs every row's true label; label them or leave them out, "
        "and upload the data again"
    )
    assert loopline.list_endpoints("test", project=project) == []  # read first: nothing deployed
    (tmp_path / "heldout.csv").write_text(inspections.to_csv(index=False))
    loopline.upload_data("heldout", tmp_path / "heldout.csv", project=project)
    tested = loopline.outer_loop_test(project)
    assert tested.passed, tested.report_markdown
    assert tested.report["metrics"]["accuracy"] == 1.0 and tested.report["data"]["rows"] == 60


def test_held_out_rows_lacking_a_column_the_model_takes_are_told_how_to_provide_it(
    new_project: ProjectFactory, tmp_path: Path
) -> None:
    # The training computes a column before it fits, and the held-out rows were uploaded as they come.
    raw = pd.DataFrame({"sensor": [5.0, 15.0, 25.0] * 20, "severity": ["None", "Minor", "Major"] * 20})
    project = _validated_on(new_project, "severity.py", raw.to_csv(index=False), "severity", tmp_path)
    loopline.inner_loop(project)
    with pytest.raises(Refused) as refused:
        loopline.outer_loop_test(project)
    assert "answered 400 on the held-out data: missing column 'reading'" in str(refused.value)
    assert str(refused.value).endswith(
        "the held-out rows (validation.data) must hold every column the model takes, as the training makes "
        "them before it fits: upload rows that do (loopline data upload NAME PATH), or make those columns "
        "in the model"
    )


def test_a_text_classifier_without_a_signature_is_validated_on_held_out_texts(
    new_project: ProjectFactory, tmp_path: Path
) -> None:
    # Its held-out rows reach the endpoint as a table of one column: handed to the model as a table, its
    # vectorizer read the column's name as the one text, and scikit-learn failed on one answer for 40 rows.
    reviews = pd.DataFrame(
        {
            "review": ["a superb story", "dull and boring", "loved the music", "a waste of a film"] * 10,
            "sentiment": ["positive", "negative", "positive", "negative"] * 10,
        }
    )
    project = _validated_on(new_project, "sentiment.py", reviews.to_csv(index=False), "sentiment", tmp_path)
    use_script(project, "sentiment.py", {"test_accuracy": {"min": 0.5}})
    loopline.inner_loop(project)
    tested = loopline.outer_loop_test(project)
    assert tested.passed, tested.report_markdown
    assert tested.report["metrics"]["accuracy"] == 1.0 and tested.report["data"]["rows"] == 40


def test_a_model_logged_without_an_input_example_is_smoke_tested_on_held_out_rows_in_test_and_release(
    new_project: ProjectFactory, tmp_path: Path
) -> None:
    # As autolog logs a pipeline: no input example, so the smoke tests sent nothing and passed. The held-out
    # rows (a missing port among them, which the strict encoder takes only as the NaN it was fitted on) go.
    passengers = pd.DataFrame(
        {
            "sex": ["female", "male", "male", "female", "male", "female"] * 5,
            "age": [29.0, None, 40.0, 8.0, 61.0, 35.0] * 5,
            "port": ["S", None, "C", "Q", "S", None] * 5,
            "survived": [1, 0, 0, 1, 0, 1] * 5,
        }
    )
    project = _validated_on(
        new_project, "passengers.py", passengers.to_csv(index=False), "survived", tmp_path
    )
    use_script(project, "passengers.py", {"accuracy": {"min": 0.5}})
    loopline.inner_loop(project)
    tested = loopline.outer_loop_test(project)
    assert tested.passed, tested.report_markdown
    assert tested.report["smoke"]["detail"] == (
        "200, 5 predictions for 5 rows (the first rows of the held-out data: the model has no input example)"
    )
    # a release sends the held-out rows too: rows of a port the encoder never saw fail it before it is live
    unseen = passengers.assign(port="X")
    (tmp_path / "unseen.csv").write_text(unseen.to_csv(index=False))
    loopline.upload_data("heldout", tmp_path / "unseen.csv", project=project)
    with pytest.raises(Refused) as refused:
        loopline.outer_loop_prod(project)
    # the caller's category, which the model refuses (a 400 naming it, as MLflow's server refuses it)
    assert "failed (on the first rows of heldout (validation.data)): 400 column 'port'" in str(refused.value)
    assert "it knows C, Q, S)" in str(refused.value)
    assert loopline.releases(project=project) == []  # nothing went live
    loopline.upload_data("heldout", tmp_path / "heldout.csv", project=project)
    released = loopline.outer_loop_prod(project)
    assert released.changed and len(loopline.releases(project=project)) == 1


def test_a_python_model_answering_named_outputs_is_smoke_tested_and_measured_by_its_label_output(
    new_project: ProjectFactory, tmp_path: Path
) -> None:
    # {"label": [...], "score": [...]} is one answer of two outputs, not one prediction for the whole
    # request: the smoke test failed it, and the held-out rows were refused as answered once.
    held = pd.DataFrame({"size": [10.0, 20.0, 80.0, 90.0] * 10})
    held["big"] = (held["size"] >= 50).astype(int)
    project = _validated_on(new_project, "named_outputs.py", held.to_csv(index=False), "big", tmp_path)
    loopline.inner_loop(project)
    tested = loopline.outer_loop_test(project)
    assert tested.passed, tested.report_markdown
    assert tested.report["smoke"]["detail"] == "200, 3 predictions for 3 rows"
    assert tested.report["metrics"]["accuracy"] == 1.0 and tested.report["data"]["rows"] == 40


# A script as people write a regressor of several targets: one fit on a table of two columns, its
# signature inferred from a prediction of two values a row.
TWO_LOADS = """
import mlflow
import pandas as pd
from mlflow.models import infer_signature
from sklearn.linear_model import LinearRegression
from sklearn.metrics import mean_absolute_error, r2_score
from sklearn.model_selection import train_test_split

TARGETS = ["heating_load", "cooling_load"]

df = pd.read_csv("data/buildings.csv")
X_train, X_test, y_train, y_test = train_test_split(df.drop(columns=TARGETS), df[TARGETS], random_state=1)
with mlflow.start_run():
    model = LinearRegression().fit(X_train, y_train)
    predicted = model.predict(X_test)
    mlflow.log_metric("r2", r2_score(y_test, predicted))
    mlflow.log_metric("mae_heating", mean_absolute_error(y_test["heating_load"], predicted[:, 0]))
    mlflow.log_metric("mae_cooling", mean_absolute_error(y_test["cooling_load"], predicted[:, 1]))
    mlflow.sklearn.log_model(
        model, name="model", signature=infer_signature(X_test, predicted), input_example=X_test.head(3)
    )
"""


def _buildings(count: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(
        {"area": rng.uniform(500, 800, count).round(1), "height": rng.choice([3.5, 7.0], count)}
    )
    return frame.assign(
        heating_load=(frame["height"] * 2.5 + frame["area"] * 0.01 + rng.normal(0, 0.5, count)).round(2),
        cooling_load=(frame["height"] * 3.0 + frame["area"] * 0.02 + rng.normal(0, 1.0, count)).round(2),
    )


def test_a_regressor_of_two_targets_is_validated_output_by_output_against_the_columns_init_found(
    tmp_path: Path,
) -> None:
    project = tmp_path / "loads"
    tree(project, {"train.py": TWO_LOADS, "data/buildings.csv": _buildings(300, seed=2).to_csv(index=False)})
    git(project, "init", "--quiet")
    commit_all(project, "Heating and cooling loads")
    result = loopline.init_existing(project, tier="full")
    validation = yaml.safe_load((project / "loopline.yaml").read_text())["validation"]
    assert any(
        "true values in the columns validation.label names (heating_load, cooling_load, as in "
        "data/buildings.csv)" in note
        for note in result.notes
    )
    # was a classification of a column named label: two numbers a row read as a probability for each class
    assert validation["label"] == ["heating_load", "cooling_load"] and validation["task"] == "regression"
    # the averaged r2 bounded as the training measured it; the MAE of one target does not bound their mean
    assert validation["challenger_metric"] == "r2" and list(validation["thresholds"]) == ["r2"]
    validation["thresholds"]["mae_cooling_load"] = {"max": 5.0}  # a bound on one output
    edit_yaml(project / "loopline.yaml", validation=validation)
    commit_all(project, "loopline")
    loopline.up(project)
    loopline.inner_loop(project)
    held_out = _buildings(80, seed=9)
    held_out.to_csv(tmp_path / "heldout.csv", index=False)
    loopline.upload_data("heldout", tmp_path / "heldout.csv", project=project)
    tested = loopline.outer_loop_test(project)
    assert tested.passed, tested.report_markdown
    metrics = tested.report["metrics"]
    assert 0 < metrics["mae_heating_load"] < metrics["mae_cooling_load"] < 5  # the noisier target
    assert metrics["mae"] == pytest.approx((metrics["mae_heating_load"] + metrics["mae_cooling_load"]) / 2)
    checked = {check["metric"]: check["passed"] for check in tested.report["checks"]}
    assert checked == {"r2": True, "mae_cooling_load": True}
    # one column named for two values a row: told what to name, not a crash of scikit-learn's
    del validation["thresholds"]["mae_cooling_load"]  # a bound on a column not named is refused as read
    edit_yaml(project / "loopline.yaml", validation={**validation, "label": "heating_load"})
    with pytest.raises(
        Refused, match=re.escape("the model answers 2 values a row and validation.label names one")
    ):
        loopline.outer_loop_test(project)


def test_a_candidate_answering_in_another_form_than_the_champion_is_told_in_the_report(
    trained_project: ProjectFactory,
) -> None:
    project = trained_project("full")
    a = git(project, "rev-parse", "HEAD")
    loopline.outer_loop_test(project)
    loopline.outer_loop_prod(project)
    assert loopline.outer_loop_test(project).report["answers"] is None  # the champion itself
    commit_answering_probabilities(project)
    tested = loopline.outer_loop_test(project)
    assert tested.passed, tested.report_markdown  # measured as before: told, not failed
    said = f"a list of 2 numbers per row, where the champion v1 ({a[:7]}) answers a number per row"
    assert tested.report["answers"] == said
    assert f"Answers: {said}; its clients would not read them as they read the champion's" in (
        tested.report_markdown
    )
