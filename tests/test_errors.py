"""The error tree's messages: whatever a caller sends, what an error says back stays short."""

from __future__ import annotations

from loopline.errors import MESSAGE_CHARS, MESSAGE_RUN, NotFound, UsageError


def test_a_long_name_echoed_in_a_message_is_cut_and_the_way_out_kept() -> None:
    said = UsageError(f"no event kind '{'Z' * 50_000}'; the event kinds are released, rolled-back")
    assert len(said.message) < MESSAGE_RUN + 100
    assert said.message.startswith("no event kind 'ZZZ")
    assert said.message.endswith("ZZZ... the event kinds are released, rolled-back")
    assert str(said) == said.message
    path = "/tmp/" + "a" * 200 + "/model"  # a long path of this machine stays whole
    assert NotFound(f"no model at {path}").message == f"no model at {path}"


def test_a_message_of_many_words_keeps_its_start_and_its_end() -> None:
    said = UsageError("no such reason: " + "word " * 10_000 + "; give a shorter reason")
    assert len(said.message) <= MESSAGE_CHARS
    assert said.message.startswith("no such reason: word") and said.message.endswith(
        "; give a shorter reason"
    )
