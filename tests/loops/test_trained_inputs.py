"""What the inner loop says of a commit whose model read older versions of its unpinned inputs."""

from __future__ import annotations

from loopline.loops.trained_inputs import NewerInput, retrain_advice


def test_an_input_newer_than_the_model_s_is_told_with_the_pin_that_trains_on_it() -> None:
    one = NewerInput("train", "rows:1", "rows:2")
    assert str(one) == "input train was rows:1 and is rows:2 now"
    assert retrain_advice([one]) == (
        "its input train was rows:1 and is rows:2 now: a commit trains once, so pin the newer version in "
        "training.inputs (train: rows:2) and commit to train on it"
    )
    unread = NewerInput("labels", "", "labels:3")
    assert str(unread) == "input labels was not read and is labels:3 now"
    assert retrain_advice([one, unread]).endswith(
        "pin the newer versions in training.inputs (train: rows:2, labels: labels:3) and commit to train "
        "on them"
    )
