"""The sample's notebook runs end to end on a real Jupyter kernel."""

from __future__ import annotations

import nbformat
import pytest
from mlflow import MlflowClient
from nbclient import NotebookClient

from loopline.config import load_config
from tests.conftest import ProjectFactory

pytestmark = pytest.mark.slow


def test_the_local_development_notebook_trains_compares_and_runs_the_inner_loop(
    new_project: ProjectFactory,
) -> None:
    project = new_project("simple")
    path = project / "notebooks" / "local-development.ipynb"
    notebook = nbformat.read(path, as_version=4)
    NotebookClient(
        notebook, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(path.parent)}}
    ).execute()
    outputs = "".join(
        output.get("text", "") + str(output.get("data", {}).get("text/plain", ""))
        for cell in notebook.cells
        if cell.cell_type == "code"
        for output in cell.outputs
    )
    assert "C=0.01: accuracy" in outputs and "C=1.0: accuracy" in outputs
    assert "registered proj-classifier from" in outputs
    dev = load_config(project).store("dev")
    client = MlflowClient(dev.tracking_uri)
    runs = client.search_runs(
        [client.get_experiment_by_name("proj").experiment_id],
        filter_string="tags.mlflow.runName LIKE 'notebook%'",
    )
    assert len(runs) == 3
    shared = load_config(project).store("shared")
    assert len(MlflowClient(shared.tracking_uri, shared.registry_uri).search_model_versions("")) == 1
