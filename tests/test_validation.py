"""Validation metrics of a classifier's labels and of its probabilities."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression

from loopline.errors import Refused
from loopline.validation import ValidationFindings, metrics_for


def test_a_classifier_answering_probabilities_is_measured_by_its_most_likely_class() -> None:
    rng = np.random.default_rng(4)
    features = rng.normal(size=(300, 3))
    labels = np.array(["bronze", "gold", "silver"])[(features[:, 0] > 0).astype(int) + (features[:, 1] > 0.5)]
    fitted = LogisticRegression().fit(features[:200], labels[:200])
    truth = labels[200:]
    by_label = metrics_for("classification", truth, fitted.predict(features[200:]))
    shares = fitted.predict_proba(features[200:])
    assert metrics_for("classification", truth, shares.tolist()) == by_label  # as an endpoint answers
    assert metrics_for("classification", truth, list(shares)) == by_label  # as a batch part holds them
    assert 0.6 < by_label["accuracy"] < 1


def test_probabilities_that_do_not_match_the_classes_are_refused_with_what_to_answer() -> None:
    with pytest.raises(Refused) as refused:
        metrics_for("classification", [0, 1, 2, 1], [[0.2, 0.8]] * 4)
    assert refused.value.message.startswith(
        "the model answers 2 values a row and the held-out labels have 3 classes: to be validated"
    )


def test_a_model_answering_a_table_is_measured_by_its_first_column() -> None:
    rows = [{"label": 1, "score": 0.9}, {"label": 0, "score": 0.2}, {"label": 1, "score": 0.6}]
    assert metrics_for("classification", [1, 0, 0], rows) == metrics_for(
        "classification", [1, 0, 0], [1, 0, 1]
    )
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
