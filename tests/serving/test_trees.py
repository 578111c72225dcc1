"""Tree ensembles served by `loopline serve`: treelite answers as the model itself, at every batch size, and
`deployment show` tells what answers each deployment."""

from __future__ import annotations

import re
import time
from pathlib import Path

import httpx
import numpy as np
import pandas as pd
import pytest

import loopline
from tests.conftest import ProjectFactory
from tests.helpers import cli, commit_all, with_model
from tests.servers import Server

pytestmark = pytest.mark.slow

# A scikit-learn forest saved by MLflow's sklearn flavor, and a LightGBM model saved by its lightgbm flavor
# (served from matrices all the same). Each kind of ensemble is checked against its own predict, at every
# batch size, through the loader `serve` uses, in test_compiled.py and test_boosters.py.
MODELS = {
    "forest": ("RandomForestClassifier(n_estimators=100, random_state=0)", "RandomForestClassifier"),
    "lightgbm": ("LGBMClassifier(n_estimators=60, verbose=-1)", "LGBMClassifier"),
}


def test_tree_ensembles_are_served_by_treelite_with_the_models_own_answers(
    new_project: ProjectFactory, capsys: pytest.CaptureFixture[str]
) -> None:
    import mlflow.pyfunc

    project = new_project("simple", "forest")
    keys = loopline.create_endpoint("trees", "dev", project=project).keys
    for version, (name, (estimator, kind)) in enumerate(MODELS.items(), start=1):
        if name == "lightgbm":
            in_lightgbm_flavor(project, estimator)
        else:
            with_model(project, estimator, f"from sklearn.ensemble import {kind}")
        commit_all(project, f"A {name}")
        loopline.inner_loop(project)
        loopline.create_deployment(
            "trees", name, version=version, traffic=0 if version > 1 else None, project=project
        )
    sources = {m.version: m.source_uri for m in loopline.status(project).models if m.workspace == "dev"}
    heldout = pd.read_csv(project / "data" / "inbox" / "heldout.csv").drop(columns=["label"])
    rows = heldout.sample(n=1000, replace=True, random_state=0).reset_index(drop=True)
    rows = rows * np.random.default_rng(0).uniform(0.8, 1.2, size=rows.shape)
    with Server(project) as server:
        server.wait_ready()
        paths = httpx.get(f"{server.url}/readyz").json()["serving"]["trees"]
        for version, name in enumerate(MODELS, start=1):
            assert paths[name].startswith("treelite"), paths[name]
            expected = mlflow.pyfunc.load_model(sources[version]).predict(rows)
            for size in (1, 32, 1000):
                body = {
                    "dataframe_split": {
                        "columns": list(rows.columns),
                        "data": rows.head(size).values.tolist(),
                    }
                }
                answer = httpx.post(
                    f"{server.url}/endpoints/trees/invocations",
                    json=body,
                    headers={"Authorization": f"Bearer {keys['primary']}", "loopline-deployment": name},
                    timeout=30,
                )
                assert answer.status_code == 200, answer.text
                assert answer.json()["predictions"] == expected[:size].tolist(), (name, size)
        shown = _reported(capsys, project, "lightgbm")
        assert [p["path"] for p in shown["serving"]] == [paths["lightgbm"]]
        human = cli(capsys, "deployment", "show", "trees", "forest", "-C", str(project))
        assert f"serving {paths['forest']}" in " ".join(human.stdout.split())  # as words: rich wraps lines
    assert _reported(capsys, project, "lightgbm")["serving"] == []  # the server stopped: nothing serves it


def in_lightgbm_flavor(project: Path, estimator: str) -> None:
    """The training script fits ``estimator`` (a LightGBM model) and logs it with ``mlflow.lightgbm``."""
    script = project / "train.py"
    text = re.sub(
        r"^    model = .*$", f"    model = {estimator}", script.read_text(), count=1, flags=re.MULTILINE
    )
    text = text.replace("mlflow.sklearn.log_model(", "mlflow.lightgbm.log_model(")
    text = re.sub(r"^ +skops_trusted_types=.*\n", "", text, flags=re.MULTILINE)
    text = text.replace(
        "import mlflow\n", "import mlflow\nimport mlflow.lightgbm\nfrom lightgbm import LGBMClassifier\n", 1
    )
    script.write_text(text)


def _reported(capsys: pytest.CaptureFixture[str], project: object, name: str) -> dict[str, object]:
    """`deployment show --json` once a serving process has reported the deployment (within 10 s)."""
    deadline = time.monotonic() + 10
    while True:
        shown = cli(capsys, "deployment", "show", "trees", name, "-C", str(project), "--json").json()
        if shown["serving"] or time.monotonic() > deadline:
            return shown  # type: ignore[no-any-return]
        time.sleep(0.2)
