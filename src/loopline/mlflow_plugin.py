"""An MLflow run context provider: every run a training process starts carries loopline's session tags.

MLflow finds it through the ``mlflow.run_context_provider`` entry point of the installed package. When
loopline runs the training entry point it puts the tags in ``LOOPLINE_RUN_TAGS`` (JSON); any run the
script starts with MLflow's fluent API (its own ``start_run``, nested runs, autolog, a ``log_model``
without a run) then carries them, so loopline can tell which runs a training made whatever experiment the
script picks. Without the variable the provider adds nothing.

MLflow only instantiates the class and calls ``in_context`` and ``tags``, so it does not derive from
MLflow's ``RunContextProvider``: importing this module imports no MLflow (MLflow itself imports it while it
loads, so importing MLflow here would be circular).
"""

from __future__ import annotations

import json
import os

__all__ = ["RUN_TAGS_VARIABLE", "TrainingRunContext"]

RUN_TAGS_VARIABLE = "LOOPLINE_RUN_TAGS"


class TrainingRunContext:
    """Adds the tags of the loopline training session this process belongs to."""

    def in_context(self) -> bool:
        """True inside a training process that loopline started."""
        return bool(os.environ.get(RUN_TAGS_VARIABLE))

    def tags(self) -> dict[str, str]:
        """The session's tags (nothing when the variable does not hold a JSON object)."""
        try:
            value = json.loads(os.environ.get(RUN_TAGS_VARIABLE, ""))
        except ValueError:
            return {}
        if not isinstance(value, dict):
            return {}
        return {str(key): str(item) for key, item in value.items()}
