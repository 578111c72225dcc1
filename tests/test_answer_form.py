"""The form of an endpoint's answers as its clients read them, and what a client of the live ones reads."""

from __future__ import annotations

from typing import Any

import pytest

from loopline.answer_form import answer_change, described, form_of

LABELS = [1, 0, 1]
PROBABILITIES = [[0.2, 0.8], [0.9, 0.1], [0.4, 0.6]]
RECORDS = [{"label": 1, "score": 0.8}, {"label": 0, "score": 0.1}]


@pytest.mark.parametrize(
    ("body", "said"),
    [
        (LABELS, "a number"),
        ({"predictions": LABELS}, "a number"),  # MLflow's /invocations
        (["Yes", None, "No"], "a text"),  # a null row takes the others' form
        (PROBABILITIES, "a list of 2 numbers"),
        ([[1.0], [2.0, 3.0]], "a list of numbers"),  # lists of other lengths: the length is not told
        (RECORDS, "an object of label (a number), score (a number)"),
        (
            {"heating": [1.5, 2.5], "cooling": [3.0, 4.0]},
            "an object of cooling (a number), heating (a number)",
        ),
        ([True, False], "a boolean"),
        ([{}], "an empty object"),
    ],
)
def test_the_form_of_an_answer_is_told_in_words(body: Any, said: str) -> None:
    assert described(form_of(body)) == said


@pytest.mark.parametrize(
    ("live", "new"),
    [
        (LABELS, [0.7, 0.1, 2.0]),  # integers and fractions are both JSON numbers
        (RECORDS, [{**r, "band": "high"} for r in RECORDS]),  # a field more: a client reads what it read
        ([None, None], PROBABILITIES),  # nothing known of the live answers
        ([[1.0], [2.0, 3.0]], PROBABILITIES),
    ],
)
def test_a_client_of_the_live_answers_reads_these_as_it_did(live: Any, new: Any) -> None:
    assert answer_change(live, new, "v1") is None


@pytest.mark.parametrize(
    ("live", "new", "change"),
    [
        (LABELS, PROBABILITIES, ("a list of 2 numbers", "a number")),
        (LABELS, ["Yes", "No", "Yes"], ("a text", "a number")),
        (PROBABILITIES, [[0.1, 0.2, 0.7]] * 3, ("a list of 3 numbers", "a list of 2 numbers")),
        (
            RECORDS,
            [{"label": 1}],
            ("an object of label (a number)", "an object of label (a number), score (a number)"),
        ),
        (
            RECORDS,
            [{"label": "1", "score": 0.8}],
            ("an object of label (a text), score (a number)", described(form_of(RECORDS))),
        ),
        (LABELS, RECORDS, (described(form_of(RECORDS)), "a number")),
    ],
)
def test_another_form_is_told_as_both_forms(live: Any, new: Any, change: tuple[str, str]) -> None:
    now, was = change
    assert (
        answer_change(live, new, "v1 (abc1234)") == f"{now} per row, where v1 (abc1234) answers {was} per row"
    )


def test_a_deep_or_long_answer_is_read_only_so_far() -> None:
    deep: Any = 1.0
    for _ in range(50):
        deep = [deep]
    assert "value" in described(form_of([deep]))
    many = [{f"f{i}": i for i in range(20)}]
    assert described(form_of(many)).endswith("and 12 more")
    wide = [{f"f{i:05}": i for i in range(10_000)}]  # the model's answer: only so much of it is read
    assert len(form_of(wide)[1]) == 256
    long_name = [{"x" * 10_000: 1}]
    assert described(form_of(long_name)) == f"an object of {'x' * 39}… (a number)"
