"""The gate and outer-loop test's validation init writes from the metrics a dry run logged."""

from __future__ import annotations

from dataclasses import replace

import yaml

from loopline.dry_run import DryRun
from loopline.gate_setup import gate_thresholds, validation_lines, validation_thresholds, yaml_scalar


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
    note = _validation_notes(Tier.FULL, run)[0]  # and a note that test_auc needs probabilities
    assert (
        "check validation.thresholds, left empty: the training logs none of what outer-loop test measures "
        "(accuracy, f1, precision, recall), so give the bounds a model must reach there"
    ) in note
    logged = DryRun(
        ["model"], "model", None, {"val_f1": 0.8}, None, True, (), False, (), task="classification"
    )
    assert validation_thresholds(logged) == {"f1": {"min": 0.72}}
    assert "check the thresholds in validation.thresholds" in _validation_notes(Tier.FULL, logged)[0]


def test_a_classifier_answering_labels_whose_training_logs_a_roc_auc_is_told_how_to_have_it_validated() -> (
    None
):
    from loopline.domain import Tier
    from loopline.onboard import _validation_notes

    logged = {"accuracy": 0.8, "roc_auc": 0.84, "training_log_loss": 0.3}
    labels = DryRun(["model"], "model", None, logged, None, True, (), False, (), task="classification")
    [_, told] = _validation_notes(Tier.FULL, labels)
    assert told.startswith(
        "the training logs roc_auc, which outer-loop test measures only of a model answering probabilities, "
        "and this one answers labels: to have it validated so, log the model with "
        "pyfunc_predict_fn='predict_proba'"
    )
    assert len(_validation_notes(Tier.FULL, replace(labels, probabilities=True))) == 1
    assert len(_validation_notes(Tier.FULL, replace(labels, metrics={"accuracy": 0.8}))) == 1


def test_a_classifier_answering_probabilities_is_bounded_on_the_roc_auc_and_log_loss_it_logged() -> None:
    # a LightGBM booster of a binary objective, as its own names put them; and the ROC AUC of scikit-learn
    logged = {"val_auc": 0.8, "valid_0-binary_logloss": 0.4, "pr_auc": 0.7, "roc_auc_score": 0.82}
    answers = DryRun(
        ["model"], "model", None, logged, None, True, (), False, (), task="classification", probabilities=True
    )
    # a loss 25% over (on other rows than the training's, it moves more than 10% of itself)
    assert validation_thresholds(answers) == {"roc_auc": {"min": 0.72}, "log_loss": {"max": 0.5}}
    validation = yaml.safe_load("\n".join(validation_lines(answers)))["validation"]
    assert validation["challenger_metric"] == "roc_auc"
    # a classifier answering labels has no probabilities to measure so: nothing is bounded
    assert validation_thresholds(replace(answers, probabilities=False)) == {}
    # a precision-recall curve's area is no ROC AUC
    only_pr = replace(answers, metrics={"pr_auc": 0.7, "average_precision_auc": 0.6})
    assert validation_thresholds(only_pr) == {}


def test_a_clustering_is_given_a_validation_command_on_its_measures_but_not_on_its_inertia() -> None:
    logged = {"silhouette": 0.73, "davies_bouldin_score": 0.38, "inertia": 196.0}
    clustering = DryRun(["model"], "model", None, logged, None, True, (), False, (), task="classification")
    assert clustering.clustering
    gate = gate_thresholds(logged)[0]
    assert gate == {
        "davies_bouldin_score": {"max": 0.418},
        "inertia": {"max": 215.6},
        "silhouette": {"min": 0.657},
    }
    validation = yaml.safe_load("\n".join(validation_lines(clustering)))["validation"]
    assert validation == {
        "command": "python validate.py",
        "data": "heldout",
        "thresholds": {"davies_bouldin_score": {"max": 0.475}, "silhouette": {"min": 0.657}},
        "challenger_metric": "silhouette",
    }
    # A table the training read held the true values, or a classifier's metric is logged too: not one
    labelled = DryRun(
        ["model"], "model", None, logged, None, True, (), False, (), label=("segment", "data/train.csv")
    )
    scored = DryRun(["model"], "model", None, {**logged, "accuracy": 0.9}, None, True, (), False, ())
    assert not labelled.clustering and not scored.clustering


def test_a_training_whose_metrics_say_no_direction_is_told_to_log_one_that_does() -> None:
    from loopline.onboard import _no_gate

    assert _no_gate({"kpi": 3.0, "uplift_eur": 9.0}) == (
        "the training logged no metric whose name says which way is better (kpi, uplift_eur); log one "
        "that does (such as accuracy, f1, auc, r2 or silhouette, better higher, and loss, rmse, mae or "
        "davies_bouldin, better lower), then run init again"
    )


def test_a_name_is_written_into_yaml_as_people_read_it_and_reads_back_the_same() -> None:
    for name, written in [
        ("label", "label"),
        ("Price (€)", '"Price (€)"'),  # not "Price (\\u20ac)"
        ("Größe: m²", '"Größe: m²"'),
        ("yes", '"yes"'),  # a YAML boolean, quoted
        ("tab\there", '"tab\\there"'),
    ]:
        assert yaml_scalar(name) == written
        assert yaml.safe_load(f"key: {written}")["key"] == name
