"""A tree ensemble served by `loopline serve`: treelite answers as the model itself, at every batch size, and
`deployment show` tells what answers the deployment."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pandas as pd
import pytest

import loopline
from tests.conftest import ProjectFactory
from tests.helpers import LINEAR, cli, commit_all
from tests.servers import Server

pytestmark = pytest.mark.slow


def test_a_lightgbm_model_is_served_by_treelite_with_the_models_own_answers(
    new_project: ProjectFactory, capsys: pytest.CaptureFixture[str]
) -> None:
    """LightGBM's model, saved by MLflow's lightgbm flavor, is a python_function model to MLflow: served
    from matrices all the same. (Every kind of ensemble is checked against its own predict, at every batch
    size, through the loader `serve` uses, in test_compiled.py and test_boosters.py.)"""
    import mlflow.pyfunc

    project = new_project("simple", "forest")
    keys = loopline.create_endpoint("trees", "dev", project=project).keys
    in_lightgbm_flavor(project, "LGBMClassifier(n_estimators=60, verbose=-1)")
    commit_all(project, "A LightGBM model")
    loopline.inner_loop(project)
    loopline.create_deployment("trees", "lightgbm", version=1, project=project)
    source = next(m.source_uri for m in loopline.status(project).models if m.workspace == "dev")
    heldout = pd.read_csv(project / "data" / "inbox" / "heldout.csv").drop(columns=["label"])
    rows = heldout.sample(n=1000, replace=True, random_state=0).reset_index(drop=True)
    rows = rows * np.random.default_rng(0).uniform(0.8, 1.2, size=rows.shape)
    expected = mlflow.pyfunc.load_model(source).predict(rows)
    with Server(project) as server:
        server.wait_ready()
        path = httpx.get(f"{server.url}/readyz").json()["serving"]["trees"]["lightgbm"]
        assert path.startswith("treelite"), path
        for size in (1, 32, 1000):
            body = {
                "dataframe_split": {"columns": list(rows.columns), "data": rows.head(size).values.tolist()}
            }
            answer = server.invoke("trees", keys["primary"], body)
            assert answer.status_code == 200, answer.text
            assert answer.json()["predictions"] == expected[:size].tolist(), size
        shown = _reported(capsys, project, "lightgbm", served=True)
        assert [p["path"] for p in shown["serving"]] == [path]
        human = cli(capsys, "deployment", "show", "trees", "lightgbm", "-C", str(project))
        assert f"serving {path}" in " ".join(human.stdout.split())  # as words: rich wraps lines
    # the server stopped (and said so): nothing serves it
    assert _reported(capsys, project, "lightgbm", served=False)["serving"] == []


def in_lightgbm_flavor(project: Path, estimator: str) -> None:
    """The training script fits ``estimator`` (a LightGBM model) and logs it with ``mlflow.lightgbm``."""
    script = project / "train.py"
    text = script.read_text()
    assert LINEAR in text, "the sample's training script changed: update this test"
    text = text.replace(LINEAR, f"    model = {estimator}")
    text = text.replace("mlflow.sklearn.log_model(", "mlflow.lightgbm.log_model(")
    text = text.replace(
        "import mlflow\n", "import mlflow\nimport mlflow.lightgbm\nfrom lightgbm import LGBMClassifier\n", 1
    )
    script.write_text(text)


def _reported(
    capsys: pytest.CaptureFixture[str], project: Path, name: str, *, served: bool
) -> dict[str, Any]:
    """`deployment show --json` once it says a serving process serves the deployment (or none does),
    within 10 s."""
    deadline = time.monotonic() + 10
    while True:
        shown: dict[str, Any] = cli(
            capsys, "deployment", "show", "trees", name, "-C", str(project), "--json"
        ).json()
        if bool(shown["serving"]) == served or time.monotonic() > deadline:
            return shown
        time.sleep(0.2)
