"""What the sandboxed child does for its parent; this module runs only inside the sandbox."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

__all__ = ["Refusal", "run"]

_MODELS: dict[str, Any] = {}


class Refusal(Exception):
    """A refusal the parent passes on as it is (its message is already the whole story)."""


def _model(folder: str) -> Any:
    from loopline.serving.model import load_model

    if folder not in _MODELS:
        _MODELS[folder] = load_model(Path(folder), "")
    return _MODELS[folder]


def check(folder: str, nulls: bool = True) -> dict[str, Any]:
    """Load the model, answer its input example, and (with ``nulls``) the example with each optional
    column null."""
    from loopline.errors import Refused
    from loopline.serving.model import check_model

    try:
        model = _MODELS[folder] = check_model(Path(folder), nulls=nulls)
    except Refused as refused:
        raise Refusal(refused.message) from None
    from loopline.answer_metrics import answers_probabilities

    answer = model.example_answer
    return {
        "flavor": model.flavor,
        "columns": model.schema.names,
        "has_example": model.example is not None,
        "probabilities": answer is not None and answers_probabilities(answer),
    }


def score(
    folder: str, source: str, target: str, first_row: int = 0, keep: list[str] | None = None
) -> dict[str, Any]:
    """Predict the rows of the table file ``source`` into the table file ``target`` (``frames.py``);
    ``first_row`` is the number a refusal gives the first of them; ``keep``: columns carried beside the
    answers."""
    from loopline.sandbox import frames
    from loopline.serving.predict import predict_frame

    answers = predict_frame(_model(folder), frames.read_frame(Path(source)), first_row, keep or ())
    frames.write_frame(answers, Path(target))
    return {"rows": len(answers)}


def run(request: dict[str, Any]) -> dict[str, Any]:
    """Carry out one request: ``{"task": "check" | "score", ...its arguments}``."""
    task = request.pop("task")
    handlers: dict[str, Callable[..., dict[str, Any]]] = {"check": check, "score": score}
    if task not in handlers:
        raise Refusal(f"the sandbox has no task '{task}'")
    return handlers[task](**request)
