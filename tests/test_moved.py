"""A project folder moved with its embedded stores: what was deployed keeps serving and releasing, a
training is refused until ``loopline up`` points the stores at the new folder, and nothing is written
into the old one."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

import loopline
from loopline.errors import NotProvisioned
from tests.conftest import ProjectFactory
from tests.helpers import commit_all, edit_yaml, mlflow_client

pytestmark = pytest.mark.slow

LOADS = """\
import json, sys
import mlflow
import pandas as pd
mlflow.set_registry_uri(sys.argv[1])
model = mlflow.pyfunc.load_model("models:/proj-classifier/2")
print(json.dumps(model.predict(pd.read_csv(sys.argv[2])).tolist()))
"""


def test_a_moved_project_serves_and_releases_and_trains_once_up_points_its_stores_here(
    trained_project: ProjectFactory, tmp_path: Path
) -> None:
    before = trained_project("simple")
    loopline.create_batch_endpoint("scorer", "dev", project=before)
    loopline.create_batch_deployment("scorer", "blue", version=1, project=before)
    loopline.upload_data("heldout", before / "data" / "inbox" / "heldout.csv", project=before)
    project = tmp_path / "renamed"
    shutil.move(before, project)

    # What was registered and deployed before the move still scores, and is released from the new
    # folder: copied into prod, loaded by a serving process, smoke-tested
    job = loopline.batch_invoke("scorer", "heldout", project=project)
    assert job.status == "succeeded" and job.rows > 0
    released = loopline.outer_loop_prod(project)
    assert (released.version, released.changed) == (1, True)
    rows = pd.read_csv(project / "data" / "inbox" / "heldout.csv").drop(columns=["label"]).head(3)

    # A training would log into the old folder: refused, with what to do, before anything is written
    edit_yaml(project / "params.yaml", C=0.3)
    commit_all(project, "Moved, then changed")
    with pytest.raises(NotProvisioned) as refused:
        loopline.inner_loop(project)
    assert f"the project was moved from {before} to {project}" in refused.value.message
    assert "run `loopline up`" in refused.value.message
    assert not before.exists()

    # `up` points the embedded stores here; the training registers, and a stock client loads it
    up = loopline.up(project)
    assert any(f"now under {project}" in line for line in up.created), up.created
    assert loopline.inner_loop(project).created
    assert not before.exists()
    source = mlflow_client(project, "dev").get_model_version("proj-classifier", "2").source
    assert source.startswith(project.as_uri())
    rows.to_csv(tmp_path / "rows.csv", index=False)
    registry = f"sqlite:///{project}/.loopline/workspaces/dev/mlflow.db"
    loaded = subprocess.run(
        [sys.executable, "-c", LOADS, registry, str(tmp_path / "rows.csv")],
        capture_output=True,
        text=True,
        check=False,
    )
    assert loaded.returncode == 0 and len(json.loads(loaded.stdout)) == 3, loaded.stderr[-2000:]
    assert loopline.up(project).created == ()  # once moved, nothing more to do
