"""A random forest served by `loopline serve`: treelite answers as the model itself, at every batch size."""

from __future__ import annotations

import httpx
import numpy as np
import pandas as pd
import pytest

import loopline
from tests.conftest import ProjectFactory
from tests.helpers import commit_all, with_model
from tests.servers import Server

pytestmark = pytest.mark.slow


def test_a_forest_is_served_by_treelite_with_the_models_own_answers(new_project: ProjectFactory) -> None:
    import mlflow.pyfunc

    project = new_project("simple", "forest")
    with_model(
        project,
        "RandomForestClassifier(n_estimators=100, random_state=0)",
        "from sklearn.ensemble import RandomForestClassifier",
    )
    commit_all(project, "A forest")
    loopline.inner_loop(project)
    keys = loopline.create_endpoint("trees", "dev", project=project).keys
    loopline.create_deployment("trees", "blue", version=1, project=project)
    source = next(m for m in loopline.status(project).models if m.workspace == "dev").source_uri
    heldout = pd.read_csv(project / "data" / "inbox" / "heldout.csv").drop(columns=["label"])
    rng = np.random.default_rng(0)
    rows = heldout.sample(n=1000, replace=True, random_state=0).reset_index(drop=True)
    rows = rows * rng.uniform(0.8, 1.2, size=rows.shape)
    expected = mlflow.pyfunc.load_model(source).predict(rows)
    with Server(project) as server:
        server.wait_ready()
        path = httpx.get(f"{server.url}/readyz").json()["serving"]["trees"]["blue"]
        assert path.startswith("treelite"), path
        for size in (1, 32, 1000):
            body = {
                "dataframe_split": {"columns": list(rows.columns), "data": rows.head(size).values.tolist()}
            }
            answer = httpx.post(
                f"{server.url}/endpoints/trees/invocations",
                json=body,
                headers={"Authorization": f"Bearer {keys['primary']}"},
                timeout=30,
            )
            assert answer.status_code == 200, answer.text
            assert answer.json()["predictions"] == expected[:size].tolist(), size
