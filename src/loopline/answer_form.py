"""The form of an endpoint's answers as its clients read them, and whether a new model keeps it.

A client of an endpoint reads the JSON it answers: a number per row, a list of class probabilities per
row, an object per row with named fields. A new version that answers in another form (probabilities
where labels were, a text where a number was, a field gone) breaks every client at the moment traffic
moves, while the server sees no error at all. The form is read from two answers to the same rows.
"""

from __future__ import annotations

from typing import Any

__all__ = ["answer_change", "described", "form_of"]

Form = Any
"""``"number"``, ``"text"``, ``"boolean"``, ``"null"``, ``"mixed"``, ``("list", length or None, item)``
or ``("object", ((key, form), ...))``."""

_DEPTH = 4  # nested deeper than this, a value's form is not read further
_ROWS = 100  # the rows read of an answer
_FIELDS = 256  # the fields read of an object, in sorted order
_NAME = 40  # the characters of a field's name told


def form_of(body: Any) -> Form:
    """The form of one row's answer in ``body``, an endpoint's JSON answer (a list of one answer per row,
    MLflow's ``{"predictions": ...}``, or an object of named outputs, each a list of one value per row)."""
    if isinstance(body, dict) and set(body) == {"predictions"}:
        body = body["predictions"]
    if isinstance(body, list):
        return _rows(body[:_ROWS], 0)
    if isinstance(body, dict):
        named = {str(key): value for key, value in body.items()}
        if all(isinstance(value, list) for value in named.values()):
            keys = sorted(named)[:_FIELDS]
            return ("object", tuple((key, _rows(named[key][:_ROWS], 1)) for key in keys))
    return _value(body, 0)


def _rows(values: list[Any], depth: int) -> Form:
    merged: Form = "null"
    for value in values:
        merged = _merge(merged, _value(value, depth))
    return merged


def _value(value: Any, depth: int) -> Form:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "text"
    if depth >= _DEPTH:
        return "mixed"
    if isinstance(value, list):
        return ("list", len(value), _rows(value[:_ROWS], depth + 1))
    if isinstance(value, dict):
        keys = sorted(value, key=str)[:_FIELDS]
        return ("object", tuple((str(k), _value(value[k], depth + 1)) for k in keys))
    return "mixed"


def _merge(one: Form, other: Form) -> Form:
    """One form for two rows' answers: a null takes the other's form, lists of other lengths a length
    of None, objects every key either has."""
    if one == "null" or one == other:
        return other
    if other == "null":
        return one
    if isinstance(one, tuple) and isinstance(other, tuple) and one[0] == other[0] == "list":
        return ("list", one[1] if one[1] == other[1] else None, _merge(one[2], other[2]))
    if isinstance(one, tuple) and isinstance(other, tuple) and one[0] == other[0] == "object":
        mine, theirs = dict(one[1]), dict(other[1])
        keys = sorted(set(mine) | set(theirs))
        return ("object", tuple((k, _merge(mine.get(k, "null"), theirs.get(k, "null"))) for k in keys))
    return "mixed"


def _keeps(live: Form, new: Form) -> bool:
    """Whether a client reading answers of form ``live`` reads those of form ``new``: the same form, a
    field more in an object, anything where the live answer was null (its form is unknown)."""
    if live == "null" or new == "null" or live == new:
        return True
    if isinstance(live, tuple) and isinstance(new, tuple) and live[0] == new[0] == "list":
        return (live[1] is None or live[1] == new[1]) and _keeps(live[2], new[2])
    if isinstance(live, tuple) and isinstance(new, tuple) and live[0] == new[0] == "object":
        fields = dict(new[1])
        return all(key in fields and _keeps(form, fields[key]) for key, form in live[1])
    return False


def answer_change(live_body: Any, new_body: Any, live: str) -> str | None:
    """Where the answers ``new_body`` differ in form from ``live_body`` (the answers of the model named
    ``live`` to the same rows) for a client reading those: both forms, in words (``a list of 2 numbers
    per row, where v1 (abc1234) answers a number per row``); None where such a client reads them as it
    did."""
    theirs, ours = form_of(live_body), form_of(new_body)
    if _keeps(theirs, ours):
        return None
    return f"{described(ours)} per row, where {live} answers {described(theirs)} per row"


_PLURAL = {"number": "numbers", "text": "texts", "boolean": "booleans", "null": "nulls", "mixed": "values"}
_ONE = {"number": "a number", "text": "a text", "boolean": "a boolean", "null": "null", "mixed": "a value"}


def described(form: Form, plural: bool = False) -> str:
    """A form in words: ``a number``, ``a list of 2 numbers``, ``an object of label (a number), ...``."""
    if isinstance(form, str):
        return _PLURAL[form] if plural else _ONE[form]
    if form[0] == "list":
        size = "" if form[1] is None else f"{form[1]} "
        return f"{'lists' if plural else 'a list'} of {size}{described(form[2], plural=True)}"
    if not form[1]:
        return "empty objects" if plural else "an empty object"
    fields = ", ".join(f"{_name(key)} ({described(value)})" for key, value in form[1][:8])
    more = f" and {len(form[1]) - 8} more" if len(form[1]) > 8 else ""
    return f"{'objects' if plural else 'an object'} of {fields}{more}"


def _name(key: str) -> str:
    """A field's name as told: the model's answer names it, so a long one is cut."""
    return key if len(key) <= _NAME else key[: _NAME - 1] + "…"
