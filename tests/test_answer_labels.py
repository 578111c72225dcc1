"""Whether a new model's answers rename the labels of the live one's, on the same rows."""

from __future__ import annotations

import numpy as np

from loopline.answer_labels import label_change

LIVE = "v2 (abc1234)"
ROWS = "the 60 held-out rows"


def labels(*counts: tuple[object, int]) -> list[object]:
    return [label for label, count in counts for _ in range(count)]


def test_labels_spelt_another_way_are_a_rename_named_with_the_rows_they_took() -> None:
    live = labels(("yes", 41), ("no", 19))
    new = labels(("Yes", 40), ("No", 1), ("No", 19))  # one row answered otherwise: a model may differ
    assert label_change(live, new, LIVE, ROWS) == (
        '"Yes" where v2 (abc1234) answers "yes" (on 40 of the 60 held-out rows), "No" where it answers '
        '"no" (on 19)'
    )


def test_a_class_answered_more_less_or_newly_is_no_rename() -> None:
    live = labels(("yes", 41), ("no", 19))
    assert label_change(live, labels(("yes", 60)), LIVE, ROWS) is None  # "no" gone, nothing in its place
    assert label_change(live, labels(("yes", 30), ("no", 20), ("maybe", 10)), LIVE, ROWS) is None
    assert label_change(labels(("no", 60)), labels(("no", 50), ("yes", 10)), LIVE, ROWS) is None
    # every row of "no" answered a label the live model answers elsewhere: a worse model, not a rename
    assert label_change(live, labels(("yes", 41), ("yes", 19)), LIVE, ROWS) is None
    # a label gone whose rows went to several new ones: no one new name
    split = labels(("yes", 41), ("perhaps", 10), ("unsure", 9))
    assert label_change(live, split, LIVE, ROWS) is None


def test_a_rename_is_read_in_the_field_of_an_object_answer_and_among_numbers() -> None:
    live = [{"label": "setosa", "score": 0.9}] * 30 + [{"label": "virginica", "score": 0.7}] * 30
    new = [{"label": "Iris-setosa", "score": 0.8}] * 30 + [{"label": "virginica", "score": 0.6}] * 30
    assert label_change(live, new, LIVE, ROWS) == (
        '"Iris-setosa" in label where v2 (abc1234) answers "setosa" (on 30 of the 60 held-out rows)'
    )
    # classes numbered again: 3 is new where 0 was; 1 and 2 kept
    assert label_change(labels((0, 20), (1, 20), (2, 20)), labels((3, 20), (1, 20), (2, 20)), LIVE, ROWS) == (
        "3 where v2 (abc1234) answers 0 (on 20 of the 60 held-out rows)"
    )


def test_answers_that_are_no_labels_or_too_few_rows_tell_nothing() -> None:
    rng = np.random.default_rng(0)
    scores = rng.normal(size=60).tolist()
    assert label_change(scores, (rng.normal(size=60) + 5).tolist(), LIVE, ROWS) is None  # a regressor's
    probabilities = [[0.3, 0.7]] * 60
    assert label_change(probabilities, [[0.6, 0.4]] * 60, LIVE, ROWS) is None
    few = labels(("yes", 10), ("no", 9))
    assert label_change(few, [label.upper() for label in few], LIVE, ROWS) is None  # 19 rows
    assert label_change(labels(("yes", 60)), labels(("YES", 59)), LIVE, ROWS) is None  # not row for row
    # a label of two rows is not weighed: one row's answer is no naming
    assert label_change(labels(("yes", 58), ("no", 2)), labels(("yes", 58), ("No", 2)), LIVE, ROWS) is None


def test_what_a_model_answers_is_told_short_and_on_one_line() -> None:
    long = "x" * 100 + "\n"
    told = label_change(labels(("a", 30), ("b", 30)), labels((long, 30), ("b", 30)), LIVE, ROWS)
    assert told is not None and "\n" not in told and "x" * 40 not in told and told.endswith("held-out rows)")
    many = [f"class {i}" for i in range(6) for _ in range(10)]
    told = label_change(many, [label.upper() for label in many], LIVE, ROWS)
    assert told is not None and told.endswith(
        ', "CLASS 2" where it answers "class 2" (on 10), and 3 more renamed'
    )
