"""MLflow loads loopline's run-context plugin in every process of an environment where loopline is installed,
training scripts and MLflow's own helpers alike: it must add the session's tags there and nothing else."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

LOG_A_MODEL = """\
import os, sys
import mlflow
from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression

X, y = load_iris(return_X_y=True, as_frame=True)
mlflow.set_tracking_uri("sqlite:///mlflow.db")
with mlflow.start_run():
    info = mlflow.sklearn.log_model(LogisticRegression(max_iter=300).fit(X, y), name="model")
folder = mlflow.artifacts.download_artifacts(info.model_uri)
print(open(os.path.join(folder, "requirements.txt")).read())
"""


def test_a_model_logged_beside_loopline_does_not_require_loopline_or_its_dependencies(tmp_path: Path) -> None:
    """MLflow infers a model's requirements from what loading it imports; loading a scikit-learn model
    looks a name up in every loaded module (skops' whichmodule), the plugin's package among them. A
    `mlflow models serve` or any host that installs the requirements would otherwise install loopline and
    its stores' libraries with every model."""
    done = subprocess.run(
        [sys.executable, "-c", LOG_A_MODEL], cwd=tmp_path, capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr[-2000:]
    required = {line.split("==")[0].lower() for line in done.stdout.split() if "==" in line}
    assert "scikit-learn" in required
    assert not required & {"loopline", "sqlalchemy", "alembic", "starlette", "typer", "httpx"}, required
