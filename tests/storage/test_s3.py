"""A project on S3 (an S3 API: moto's server, in memory): model files, MLflow's run artifacts and both
datastores in buckets, found through the environment as a team's S3, MinIO or R2 is."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import mlflow
import pandas as pd
import pytest

import loopline
from tests.conftest import ProjectFactory
from tests.helpers import mlflow_pointed_at
from tests.servers import S3Server

pytestmark = pytest.mark.slow


@pytest.fixture
def s3(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[S3Server]:
    server = S3Server(tmp_path / "s3")
    # As for any S3-compatible store: the endpoint and the credentials, nothing loopline-specific.
    monkeypatch.setenv("AWS_ENDPOINT_URL", server.url)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    yield server
    server.stop()


def test_a_project_on_s3_trains_releases_and_scores_a_batch_with_everything_in_buckets(
    new_project: ProjectFactory, s3: S3Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    models, artifacts = s3.bucket("models"), s3.bucket("artifacts")
    for workspace in ("DEV", "PROD", "SHARED"):
        monkeypatch.setenv(f"LOOPLINE_WORKSPACES__{workspace}__MODEL_STORE", f"{models}/churn")
        monkeypatch.setenv(f"LOOPLINE_WORKSPACES__{workspace}__ARTIFACT_LOCATION", f"{artifacts}/{workspace}")
    for datastore in ("inbox", "predictions"):
        monkeypatch.setenv(f"LOOPLINE_DATASTORES__{datastore.upper()}__URL", f"{s3.bucket(datastore)}/churn")
    project = new_project("simple")  # `up` seeds the inbox bucket

    trained = loopline.inner_loop(project)
    released = loopline.outer_loop_prod(project)

    assert trained.created and released.changed
    digest = trained.dev.content_digest.removeprefix("sha256:")
    assert f"churn/sha256/{digest}/MLmodel" in s3.keys("models")
    assert any(key.startswith(f"DEV/proj/{trained.run_id}/artifacts/") for key in s3.keys("artifacts"))
    # A stock MLflow client with the same environment loads prod's model from the bucket.
    rows = pd.read_csv(project / "data" / "inbox" / "heldout.csv").drop(columns="label").head(5)
    with mlflow_pointed_at(project, "prod"):
        source = mlflow.MlflowClient().get_model_version_by_alias("proj-classifier", "production").source
        loaded = mlflow.pyfunc.load_model("models:/proj-classifier@production")
    assert source == f"{models}/churn/sha256/{digest}"
    # A batch job reads the inbox bucket and writes its predictions to the predictions bucket.
    loopline.register_data("heldout", "inbox://heldout.csv", project=project)
    loopline.create_batch_endpoint("scorer", "prod", project=project)
    loopline.create_batch_deployment("scorer", "blue", version=1, workspace="prod", project=project)
    job = loopline.batch_invoke("scorer", "heldout", workspace="prod", project=project)
    written = [k for k in s3.keys("predictions") if k.startswith(f"churn/scorer/{job.id}/")]
    assert job.status == "succeeded", job.error
    assert written and job.rows == len(pd.read_csv(project / "data" / "inbox" / "heldout.csv"))
    assert list(loaded.predict(rows)) == list(
        mlflow.sklearn.load_model(f"{models}/churn/sha256/{digest}").predict(rows)
    )


def test_the_s3_extra_brings_what_mlflow_needs_for_run_artifacts_on_s3() -> None:
    """s3fs moves loopline's own files; MLflow's S3 artifact repository imports boto3, which s3fs does not
    bring: without it a training with an s3:// artifact location fails at its first artifact."""
    from importlib.metadata import requires

    extra = {re.split(r"[<>=~!\[ ;]", r)[0] for r in requires("loopline") or [] if 'extra == "s3"' in r}
    assert {"s3fs", "boto3"} <= extra
