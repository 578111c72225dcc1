"""A model's predictions for a table of rows, as a table: what a batch job writes for each chunk."""

from __future__ import annotations

from typing import Any

from loopline.errors import Refused

__all__ = ["predict_frame"]


def predict_frame(model: Any, frame: Any) -> Any:
    """The loaded ``model``'s answers to ``frame`` (its signature's columns, in its order) as a DataFrame:
    the model's own columns when it answers a table, else one column ``prediction``."""
    import numpy as np
    import pandas as pd

    names = model.schema.names
    if names:
        missing = [c for c in names if c not in frame.columns]
        if missing:
            raise Refused(f"the input has no column '{missing[0]}' that the model needs")
        frame = frame[names]
    if model.batchable:
        answers = np.asarray(model.predict(frame.to_numpy(dtype=np.float64)))
    else:
        answers = model.predict(frame)
    if isinstance(answers, pd.DataFrame):
        return answers.reset_index(drop=True)
    return pd.DataFrame({"prediction": np.asarray(answers)})
