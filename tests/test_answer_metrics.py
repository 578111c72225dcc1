"""Which answers to an input example are a classifier's probabilities (what init bounds by ROC AUC and
log loss)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from loopline.answer_metrics import answers_probabilities


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
