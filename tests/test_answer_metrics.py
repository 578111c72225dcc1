"""Which answers to an input example are a classifier's probabilities (what init bounds by ROC AUC and
log loss); a model answering several values a row measured against a column of true values for each."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import r2_score

from loopline.answer_metrics import answers_probabilities, metrics_for
from loopline.errors import Refused


@pytest.mark.parametrize(
    ("answer", "probabilities"),
    [
        (np.array([0.12, 0.87, 0.5]), True),  # a binary booster, a Logit: the second class's
        (pd.Series([0.3, 0.9]), True),
        ([[0.2, 0.8], [0.6, 0.4]], True),  # predict_proba: one a class, summing to one
        (pd.DataFrame({"0": [0.25, 0.75]}), True),  # MLflow's table of one column
        (np.array([0, 1, 1]), False),  # labels
        (np.array([0.0, 1.0]), False),  # labels 0.0 and 1.0
        (np.array(["yes", "no"]), False),
        ([[0.2, 0.3], [0.6, 0.1]], False),  # several scores that are no shares of one
        (np.array([12.5, 3.1]), False),  # a regressor's numbers
        (np.array([]), False),
    ],
)
def test_probabilities_are_numbers_from_0_to_1_not_all_labels_or_shares_of_one_a_row(
    answer: object, probabilities: bool
) -> None:
    assert answers_probabilities(answer) is probabilities


def test_a_model_answering_several_values_a_row_is_measured_output_by_output_and_on_average() -> None:
    truth = pd.DataFrame({"heating": [10.0, 20.0, 30.0, 40.0], "cooling": [1.0, 2.0, 3.0, 5.0]})
    rows = [[11.0, 1.5], [19.0, 2.0], [30.5, 2.5], [40.0, 4.0]]
    measured = metrics_for("regression", truth, rows, ["heating", "cooling"])
    heating = metrics_for("regression", truth["heating"], [row[0] for row in rows], "heating")
    cooling = metrics_for("regression", truth["cooling"], [row[1] for row in rows], "cooling")
    assert measured == {
        **{name: (heating[name] + cooling[name]) / 2 for name in ("rmse", "mae", "r2")},
        **{f"{name}_heating": value for name, value in heating.items()},
        **{f"{name}_cooling": value for name, value in cooling.items()},
    }
    assert measured["mae_heating"] == 0.625 and measured["mae_cooling"] == 0.5  # each against its own
    # the averages are scikit-learn's own over all outputs
    assert measured["r2"] == pytest.approx(r2_score(truth, rows))
    # a model answering a table is measured by its columns named as the labels, whatever their order
    table = [{"cooling": c, "heating": h} for h, c in rows]
    assert metrics_for("regression", truth, table, ["heating", "cooling"]) == measured
    assert metrics_for("regression", truth, np.array(rows), ["heating", "cooling"]) == measured


def test_outputs_and_label_columns_that_do_not_pair_up_are_refused_saying_to_name_one_for_each() -> None:
    truth = pd.DataFrame({"heating": [10.0, 20.0], "cooling": [1.0, 2.0]})
    with pytest.raises(Refused) as one_column:  # was scikit-learn's "different number of output (1!=2)"
        metrics_for("regression", truth["heating"], [[11.0, 1.5], [19.0, 2.0]], "heating")
    assert one_column.value.message == (
        "the model answers 2 values a row and validation.label names one column of true values (heating): "
        "name one for each value, in the order the model answers them (validation.label: [heating, ...])"
    )
    with pytest.raises(Refused) as two_columns:
        metrics_for("regression", truth, [11.0, 19.0], ["heating", "cooling"])
    assert two_columns.value.message.startswith(
        "the model answers 1 value(s) a row and validation.label names 2 columns (heating, cooling): name one"
    )
    # a regressor answering its one value a row as a row of one is measured as it is
    assert metrics_for("regression", truth["heating"], [[11.0], [19.0]], "heating")["mae"] == 1.0


def test_precision_recall_and_f1_of_two_classes_are_the_second_s_whether_numbers_or_texts() -> None:
    from sklearn.metrics import f1_score, precision_score, recall_score

    truth = [0, 1, 1, 0, 1, 0, 0, 1, 1, 0]
    predicted = [0, 1, 0, 0, 1, 1, 0, 1, 0, 0]
    numbers = metrics_for("classification", truth, predicted, "churned")
    words = {0: "No", 1: "Yes"}
    texts = metrics_for("classification", [words[t] for t in truth], [words[p] for p in predicted], "churned")
    assert texts == numbers  # Yes is to No what 1 is to 0, as a script measures f1_score(pos_label="Yes")
    assert (numbers["precision"], numbers["recall"], numbers["f1"]) == (
        precision_score(truth, predicted),
        recall_score(truth, predicted),
        f1_score(truth, predicted),
    )
    # three classes: each class's, averaged
    three = metrics_for("classification", ["a", "b", "c", "a"], ["a", "b", "b", "a"], "kind")
    assert three["f1"] == f1_score(["a", "b", "c", "a"], ["a", "b", "b", "a"], average="macro")


def test_labels_the_held_out_rows_never_hold_are_measured_as_wrong_answers_not_a_crash() -> None:
    """A champion answering the names its data had before (``yes`` where the rows now say ``Yes``): the
    answers and the true values together held three or four labels, and scikit-learn refused to measure
    two classes' precision."""
    truth = ["Yes", "No", "Yes", "No", "Yes", "No"]
    spelt_before = metrics_for("classification", truth, ["yes", "no", "yes", "no", "yes", "no"], "churned")
    assert spelt_before == {"accuracy": 0.0, "precision": 0.0, "recall": 0.0, "f1": 0.0}
    partly = metrics_for("classification", truth, ["Yes", "no", "Yes", "Yes", "no", "No"], "churned")
    # of the three rows answered Yes, two are; of the three that are, two were answered so
    assert partly["accuracy"] == pytest.approx(3 / 6)
    assert partly["precision"] == pytest.approx(2 / 3) and partly["recall"] == pytest.approx(2 / 3)
    # of three classes, each held-out class's measures averaged; "d" is only ever a wrong answer
    three = metrics_for("classification", ["a", "b", "c", "a"], ["a", "d", "c", "d"], "kind")
    assert three["recall"] == pytest.approx((1 / 2 + 0 + 1) / 3)
    assert three["precision"] == pytest.approx((1 + 0 + 1) / 3)
