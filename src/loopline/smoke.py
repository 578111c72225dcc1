"""What a release sends a new deployment before it takes traffic: the model's input example, else, for a
model logged without one (as MLflow's autolog logs it), the first rows of data the project holds for it:
the held-out rows (``validation.data``, less ``validation.label``), else the monitoring reference rows
(``monitoring.reference_data``), of the columns the model's signature names."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from loopline.endpoints.client import ExampleRequest, example_request, rows_request
from loopline.errors import LooplineError
from loopline.instance import Instance
from loopline.storage.datastores import signature_columns, text_columns

__all__ = ["smoke_request"]


def smoke_request(instance: Instance, folder: Path) -> ExampleRequest | None:
    """The request that smoke-tests the model in ``folder``; None where it has no input example and the
    project holds no rows for it."""
    example = example_request(folder)
    if example is not None:
        return example
    config = instance.settings.config
    labels = config.validation.label_columns
    taken, texts = signature_columns(folder), text_columns(folder, labels)
    for setting, name in (("validation.data", config.validation.data), *_reference(config)):
        frame = _rows_of(instance, name, texts)
        if frame is None:
            continue
        if taken and not set(taken) <= {str(c) for c in frame.columns}:
            continue  # rows of other columns: they would fail the model, not test it
        features = frame[taken] if taken else frame.drop(columns=list(labels), errors="ignore")
        if len(features):
            return rows_request(features, f"the first rows of {name} ({setting})")
    return None


def _reference(config: Any) -> list[tuple[str, str]]:
    named = config.monitoring.reference_data
    return [("monitoring.reference_data", named)] if named else []


def _rows_of(instance: Instance, name: str, texts: frozenset[str]) -> Any:
    """The rows of the data asset (or inbox file) ``name``; None where there is none, or it cannot be
    read."""
    from loopline.validation import read_data

    try:
        found = read_data(instance, name, texts)
    except LooplineError:
        return None
    return None if found is None else found[0]
