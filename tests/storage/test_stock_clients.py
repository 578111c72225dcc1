"""Stock MLflow clients can read every version loopline made, and whatever they do, the version stays
deployable, releasable and reachable by rollback (MLflow writes into a local version's folder)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

import loopline
from loopline.config import load_config
from loopline.storage.digest import digest_tree
from tests.conftest import ProjectFactory
from tests.helpers import heldout_request, mlflow_pointed_at
from tests.servers import free_port

pytestmark = pytest.mark.slow


def mlflow_models_serve(project: Path, uri: str) -> None:
    """`mlflow models serve -m models:/...` against the shared registry answers a request, then stops."""
    location = load_config(project).store("shared")
    port = free_port()
    env = {
        **os.environ,
        "MLFLOW_TRACKING_URI": location.tracking_uri,
        "MLFLOW_REGISTRY_URI": location.registry_uri,
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",  # its uvicorn
    }
    mlflow = Path(sys.executable).with_name("mlflow")
    server = subprocess.Popen(
        [str(mlflow), "models", "serve", "-m", uri, "--env-manager", "local", "-p", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=(project.parent / "mlflow-serve.log").open("wb"),
    )
    try:
        deadline = time.monotonic() + 90
        while True:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/ping", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            log = (project.parent / "mlflow-serve.log").read_text()[-2000:]
            assert server.poll() is None and time.monotonic() < deadline, log
            time.sleep(0.2)
        body = heldout_request(project).replace(b'"input_data"', b'"dataframe_split"')
        answer = httpx.post(
            f"http://127.0.0.1:{port}/invocations", content=body, headers={"content-type": "application/json"}
        )
        assert answer.status_code == 200, answer.text
    finally:
        server.terminate()
        server.wait(timeout=30)


def test_a_version_stays_deployable_whatever_stock_mlflow_clients_did_with_it(
    trained_project: ProjectFactory,
) -> None:
    import mlflow
    from mlflow import MlflowClient

    project = trained_project("simple")
    first = loopline.status(project).models[0]
    for workspace in ("shared", "dev"):
        with mlflow_pointed_at(project, workspace):
            mlflow.pyfunc.load_model("models:/proj-classifier/1")
            mlflow.artifacts.download_artifacts("models:/proj-classifier/1")
            mlflow.artifacts.download_artifacts(
                "models:/proj-classifier/1", dst_path=str(project.parent / workspace)
            )
            if workspace == "dev":  # the training run lives in dev's tracking store
                MlflowClient().download_artifacts(first.run_id or "", "", str(project.parent))
    mlflow_models_serve(project, "models:/proj-classifier/1")
    folder = Path(first.source_uri.removeprefix("file://"))
    assert digest_tree(folder) == first.content_digest  # the stored folder is still the version's content
    # MLflow 3.17 (which loopline supports) writes the name and version into a folder it loaded in place;
    # 3.18 no longer does. Whichever version ran above, the folder now holds what 3.17 leaves there.
    meta = folder / "registered_model_meta"
    if not meta.exists():
        meta.write_text("model_name: proj-classifier\nmodel_version: '1'\n")
    assert digest_tree(folder) == first.content_digest

    loopline.create_endpoint("stock", "dev", project=project)
    loopline.create_deployment("stock", "blue", version=1, project=project)
    # Promoted into prod by digest (its files verified on the way) and answering the smoke test there.
    released = loopline.outer_loop_prod(project)
    assert released.changed and released.git_commit == first.git_commit
