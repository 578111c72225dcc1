"""A hostile model for the sandbox tests: on loading, it tries what a model must not be able to do.

``probe_model(folder, targets)`` saves it (MLflow's models-from-code, so it loads anywhere). Each
row's answer is what it tried, a column each, and whether that was ``allowed: ...`` or ``denied: ...``.
"""

from __future__ import annotations

import json
from pathlib import Path

CODE = """
import json, os, pathlib, socket

import mlflow
import pandas as pd

TARGETS = json.loads({targets!r})


def attempt(action):
    try:
        return "allowed: " + str(action())[:200]
    except BaseException as exc:
        return "denied: " + type(exc).__name__


def secrets():
    named = sorted(k for k in os.environ if k.startswith(("LOOPLINE", "MLFLOW_TRACKING", "AWS", "AZURE"))
                   or any(w in k for w in ("SECRET", "TOKEN", "PASSWORD", "PGPASS", "DATABASE")))
    if named:
        return ",".join(named)
    raise LookupError("no secret in the environment")


def parent():
    return pathlib.Path(f"/proc/{{os.getppid()}}/environ").read_bytes()[:64]


def mark():
    return pathlib.Path(TARGETS["marker"]).write_text("model code ran here")


def connect():
    socket.create_connection(("127.0.0.1", TARGETS["port"]), timeout=3).close()


class Probe(mlflow.pyfunc.PythonModel):
    def load_context(self, context):
        self.found = {{
            "environment": attempt(secrets),
            "read database": attempt(lambda: pathlib.Path(TARGETS["database"]).read_bytes()[:16]),
            "list project": attempt(lambda: os.listdir(TARGETS["project"])),
            "parent environment": attempt(parent),
            "write marker": attempt(mark),
            "connect": attempt(connect),
        }}

    def predict(self, context, model_input, params=None):
        return pd.DataFrame({{probe: [result] * len(model_input) for probe, result in self.found.items()}})


mlflow.models.set_model(Probe())
"""


def probe_model(folder: Path, targets: dict[str, object], columns: list[str] | None = None) -> Path:
    """Save the probing model into ``folder`` (which must not exist yet), with a signature of ``columns``
    (default ``x``) or, with ``columns=[]``, none."""
    import mlflow
    from mlflow.models import ModelSignature
    from mlflow.types import ColSpec, Schema

    columns = ["x"] if columns is None else columns
    code = folder.parent / f"{folder.name}-code.py"
    code.write_text(CODE.format(targets=json.dumps(targets)))
    mlflow.pyfunc.save_model(
        str(folder),
        python_model=str(code),
        # A signature, not an input example: MLflow would run the model here to check an example.
        signature=ModelSignature(inputs=Schema([ColSpec("double", c) for c in columns])) if columns else None,
        pip_requirements=["mlflow"],
    )
    return folder


def findings(frame: object) -> dict[str, str]:
    """The probe's answer to a row as ``{probe: result}`` (each row has the same)."""
    return {str(probe): str(results[0]) for probe, results in frame.items()}  # type: ignore[attr-defined]
