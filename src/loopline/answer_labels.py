"""Whether a new model renames the labels an endpoint's clients read.

A classifier retrained on relabelled data (``yes``/``no`` become ``Yes``/``No``, ``setosa`` becomes
``Iris-setosa``) answers in the same form as the live one, so ``answer_form`` finds nothing, while its
clients' code (``if answer == "yes"``) takes every row for another class once traffic moves. Two models'
answers to the same rows tell a rename: a label the live model answers on several rows and the new one
never answers, where the new one answers, on most of those rows, one label the live one never answers.
A model that merely answers a class more or less often renames nothing.
"""

from __future__ import annotations

import json
from collections import Counter
from typing import Any

from loopline.answer_form import answer_change
from loopline.errors import shorten

__all__ = ["changed_answers", "label_change"]

MIN_ROWS = 20
"""Fewer rows than this tell nothing of a model's labels."""
_LABEL_ROWS = 3  # a label answered on fewer rows is not weighed
_SHARE = 0.8  # of a live label's rows, the share the new label takes to be its new name
_TOLD = 3  # renamed labels told by name
_FIELDS = 64  # the fields of an object answer read
_VALUE = 40  # the characters of a label told

Label = tuple[str, Any]
"""A label as a client compares it: its kind (``text``, ``number``, ``boolean``) and its value."""


def label_change(live_rows: list[Any], new_rows: list[Any], live: str, rows: str) -> str | None:
    """How the answers ``new_rows`` rename the labels of ``live_rows`` (the model named ``live``'s
    answers to the same rows, one a row, described by ``rows``: ``the 60 held-out rows``), in words
    (``"Yes" where v2 (abc1234) answers "yes" (on 41 of the 60 held-out rows)``); None where they rename
    none, or the answers are too few or not one a row to tell."""
    if len(live_rows) != len(new_rows) or len(live_rows) < MIN_ROWS:
        return None
    renamed = [
        (field, *pair)
        for field in _fields(live_rows, new_rows)
        for pair in _renamed(
            [_label(_at(r, field)) for r in live_rows], [_label(_at(r, field)) for r in new_rows]
        )
    ]
    if not renamed:
        return None
    told = []
    for index, (field, old, new, taken) in enumerate(renamed[:_TOLD]):
        where = "" if field is None else f" in {shorten(field, _VALUE)}"
        share = f"on {taken} of {rows}" if index == 0 else f"on {taken}"
        subject = f"{live} answers" if index == 0 else "it answers"
        told.append(f"{_told(new)}{where} where {subject} {_told(old)} ({share})")
    more = f", and {len(renamed) - _TOLD} more renamed" if len(renamed) > _TOLD else ""
    return ", ".join(told) + more


def changed_answers(live_rows: list[Any], new_rows: list[Any], live: str, rows: str) -> str | None:
    """How the answers ``new_rows`` differ for a client of ``live_rows`` (``live``'s answers to the same
    ``rows``): in form (``answer_form``), else by labels renamed (``label_change``); None where they do
    not."""
    return answer_change(live_rows, new_rows, live) or label_change(live_rows, new_rows, live, rows)


def _fields(live_rows: list[Any], new_rows: list[Any]) -> list[str | None]:
    """Where the labels stand in each row's answer: the answer itself (None), or each field both models'
    answers, objects, hold."""
    if not all(isinstance(row, dict) for row in (*live_rows, *new_rows)):
        return [None]
    shared = sorted(str(key) for key in set(live_rows[0]) & set(new_rows[0]))
    return list[str | None](shared[:_FIELDS])


def _at(row: Any, field: str | None) -> Any:
    return row if field is None else row.get(field)


def _label(value: Any) -> Label | None:
    """``value`` as a label: None for a value no client compares as one (a list, an object, null, a
    fractional number)."""
    if isinstance(value, bool):
        return ("boolean", value)
    if isinstance(value, str):
        return ("text", value)
    if isinstance(value, int | float) and float(value).is_integer():
        return ("number", int(value))
    return None


def _renamed(theirs: list[Label | None], ours: list[Label | None]) -> list[tuple[Label, Label, int]]:
    """Each label of ``theirs`` that ``ours`` never answers, with the one label ``ours`` answers in its
    place on most of its rows, never answered in ``theirs``, and on how many rows."""
    live = Counter(label for label in theirs if label is not None)
    new = {label for label in ours if label is not None}
    found = []
    for old, count in live.most_common():
        if old in new or count < _LABEL_ROWS:
            continue
        instead, taken = Counter(o for t, o in zip(theirs, ours, strict=True) if t == old).most_common(1)[0]
        if instead is not None and instead not in live and taken >= _SHARE * count:
            found.append((old, instead, taken))
    return found


def _told(label: Label) -> str:
    return shorten(json.dumps(label[1], ensure_ascii=False), _VALUE)
