"""The gate and outer-loop test's validation init writes from the metrics a dry run logged."""

from __future__ import annotations

import yaml

from loopline.dry_run import DryRun
from loopline.gate_setup import validation_lines, validation_thresholds


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


def test_a_training_that_logs_none_of_what_validation_measures_is_told_to_give_bounds() -> None:
    from loopline.domain import Tier
    from loopline.onboard import _validation_notes

    run = DryRun(
        ["model"], "model", None, {"test_auc": 0.91}, None, True, (), False, (), task="classification"
    )
    assert validation_thresholds(run) == {}
    [note] = _validation_notes(Tier.FULL, run)
    assert (
        "check validation.thresholds, left empty: the training logs none of what outer-loop test measures "
        "(accuracy, f1, precision, recall), so give the bounds a model must reach there"
    ) in note
    logged = DryRun(
        ["model"], "model", None, {"val_f1": 0.8}, None, True, (), False, (), task="classification"
    )
    assert validation_thresholds(logged) == {"f1": {"min": 0.72}}
    assert "check the thresholds in validation.thresholds" in _validation_notes(Tier.FULL, logged)[0]
