"""What a classifier logged without an input example answers: its answers to the first rows of the table
the training read, as outer-loop test will score held-out rows.

The dry run tells probabilities from labels by the answer to the input example; a model logged without
one (autolog's default for LightGBM and XGBoost boosters) would be taken for a classifier of labels, and
init would bound none of the ROC AUC and log loss outer-loop test measures on its probabilities.
"""

from __future__ import annotations

from pathlib import Path

from loopline.answer_metrics import answers_probabilities
from loopline.errors import LooplineError

__all__ = ["answers_rows_with_probabilities"]

_ROWS = 50


def answers_rows_with_probabilities(folder: Path, table: Path, labels: tuple[str, ...]) -> bool:
    """Whether the model in ``folder`` answers the first rows of ``table`` (less its ``labels``, the true
    values' columns) with a classifier's probabilities, scored in a sandbox as a batch job scores them;
    False where the table cannot be read or the model does not answer it."""
    from loopline.sandbox import SandboxedModel
    from loopline.storage.datastores import first_rows, text_columns

    frame = first_rows(table, _ROWS, text_columns(folder))  # as a batch job reads it for the model
    if frame is None:
        return False
    model = SandboxedModel(folder)
    try:
        answers = model.score(frame.drop(columns=[c for c in labels if c in frame.columns]))
    except LooplineError:  # a model that does not take the table's rows: nothing told
        return False
    finally:
        model.close()
    values = answers["prediction"].tolist() if "prediction" in answers.columns else answers.to_numpy()
    return answers_probabilities(values)
