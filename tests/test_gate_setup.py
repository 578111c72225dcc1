"""The gate and outer-loop test's validation init writes from the metrics a dry run logged."""

from __future__ import annotations

import yaml

from loopline.dry_run import DryRun
from loopline.gate_setup import validation_lines


def test_an_area_under_a_curve_is_not_taken_for_the_measure_it_is_named_after() -> None:
    # The metrics MLflow's default evaluator logs for a classifier (mlflow.models.evaluate): validation's
    # precision is precision_score, never precision_recall_auc, which is higher.
    logged = {
        "accuracy_score": 0.958,
        "f1_score": 0.967,
        "log_loss": 0.104,
        "precision_recall_auc": 0.998,
        "precision_score": 0.967,
        "recall_score": 0.967,
        "roc_auc": 0.997,
        "balanced_accuracy": 0.99,
    }
    run = DryRun(["model"], "model", None, logged, None, True, (), False, (), task="classification")
    validation = yaml.safe_load("\n".join(validation_lines(run)))["validation"]
    assert validation["thresholds"] == {
        measure: {"min": round(logged[f"{measure}_score"] * 0.9, 4)}
        for measure in ("accuracy", "f1", "precision", "recall")
    }
