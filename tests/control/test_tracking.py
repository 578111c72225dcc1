"""MLflow tracking for dev through the control plane (``/mlflow/dev``): stock MLflow clients, tokens,
roles, who owns what, and where files go."""

from __future__ import annotations

import functools
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pandas as pd
import pytest

import loopline
from loopline.control.mlflow_routes import READ, REGISTRY, RUN, classify
from loopline.errors import UsageError
from tests.conftest import ProjectFactory
from tests.control.team import API, Team, mlflow_call, new_run, start_team
from tests.helpers import mlflow_client
from tests.servers import DatabaseServer

pytestmark = pytest.mark.slow


@pytest.fixture
def team(new_project: ProjectFactory) -> Iterator[Team]:
    yield from start_team(new_project("full"), LOOPLINE_CONTROL_PLANE__MAX_UPLOAD_MB="1")


NOTEBOOK = """\
import mlflow
import pandas as pd
from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression

mlflow.set_experiment("proj")
X, y = load_iris(return_X_y=True, as_frame=True)
with mlflow.start_run(run_name="exploring") as run:
    mlflow.log_params({"C": 0.5, "max_iter": 300})
    for step, loss in enumerate([0.9, 0.5, 0.3]):
        mlflow.log_metric("loss", loss, step=step)
    mlflow.log_input(mlflow.data.from_pandas(X.head(20), name="iris-head"), context="training")
    pd.DataFrame({"note": ["first look"]}).to_csv("notes.csv", index=False)
    mlflow.log_artifact("notes.csv", artifact_path="notes")
    model = LogisticRegression(C=0.5, max_iter=300).fit(X, y)
    logged = mlflow.sklearn.log_model(model, name="model", input_example=X.head(2))
print(run.info.run_id)
print(logged.model_id)
found = mlflow.search_runs(filter_string="params.C = '0.5'")
assert len(found) == 1, found
reloaded = mlflow.pyfunc.load_model(f"runs:/{run.info.run_id}/model")
assert list(reloaded.predict(X.head(2))) == list(model.predict(X.head(2)))
print(mlflow.artifacts.load_text(f"runs:/{run.info.run_id}/notes/notes.csv").splitlines()[-1])
"""


def test_a_stock_mlflow_notebook_logs_to_dev_with_a_token_and_no_store_credentials(
    team: Team, tmp_path: Path
) -> None:
    laptop = tmp_path / "laptop"
    run_id, model_id = _notebook(team, laptop)

    # In dev's own store, as the member logged it, made by the token's user
    client = mlflow_client(team.project, "dev")
    run = client.get_run(run_id)
    assert run.info.run_name == "exploring"
    assert run.data.params == {"C": "0.5", "max_iter": "300"}
    assert [m.value for m in client.get_metric_history(run_id, "loss")] == [0.9, 0.5, 0.3]
    assert run.data.tags["mlflow.user"] == "dev" and run.data.tags["loopline.tracked_by"] == "dev"
    assert [d.dataset.name for d in run.inputs.dataset_inputs] == ["iris-head"]
    assert client.get_logged_model(model_id).source_run_id == run_id
    # The files are in dev's artifact store (on the control plane's host), none on the caller's side
    artifacts = team.project / ".loopline" / "workspaces" / "dev" / "artifacts" / "proj"
    assert (artifacts / run_id / "artifacts" / "notes" / "notes.csv").is_file()
    assert (artifacts / "models" / model_id / "artifacts" / "MLmodel").is_file()
    assert {p.name for p in laptop.iterdir()} == {"notebook.py", "notes.csv"}

    # The answers name files as the control plane serves them, not as paths of its host
    answer = mlflow_call(team, "rita", "GET", f"{API}/runs/get", params={"run_id": run_id})
    assert answer.json()["run"]["info"]["artifact_uri"] == f"mlflow-artifacts:/proj/{run_id}/artifacts"
    assert str(team.project) not in answer.text


def _notebook(team: Team, laptop: Path) -> tuple[str, str]:
    """Run the notebook on a machine with the user's token only: its run's and model's IDs."""
    laptop.mkdir()
    (laptop / "notebook.py").write_text(NOTEBOOK)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LOOPLINE_", "MLFLOW_", "AZURE_"))}
    env |= {
        "MLFLOW_TRACKING_URI": f"{team.plane.url}/mlflow/dev",
        "MLFLOW_TRACKING_TOKEN": team.tokens["dev"],
        "USER": "someone-else",  # what MLflow's client would record as the run's user
    }
    done = subprocess.run(
        [sys.executable, "notebook.py"], cwd=laptop, env=env, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr[-3000:]
    run_id, model_id, notes = done.stdout.strip().splitlines()[-3:]
    assert notes == "first look"
    return run_id, model_id


def test_on_postgresql_and_azure_blob_a_notebook_logs_without_their_credentials(
    new_project: ProjectFactory, on_postgres: Any, on_azurite: str, tmp_path: Path
) -> None:
    for team in start_team(new_project("full")):
        run_id, model_id = _notebook(team, tmp_path / "laptop")
        client = mlflow_client(team.project, "dev")  # with the team's credentials, as the control plane
        run = client.get_run(run_id)
        assert run.info.artifact_uri.startswith("wasbs://artifacts@")
        assert run.data.tags["mlflow.user"] == "dev"
        assert client.list_artifacts(run_id, "notes")[0].path == "notes/notes.csv"
        assert client.get_logged_model(model_id).artifact_location.startswith("wasbs://artifacts@")
        answer = mlflow_call(team, "dev", "GET", f"{API}/runs/get", params={"run_id": run_id})
        assert "wasbs://" not in answer.text and "mlflow-artifacts:/" in answer.text
        # a registered version's files, in the blob container, load with the token alone
        loopline.inner_loop(team.project)
        mlflow_client(team.project, "dev").set_registered_model_alias("proj-classifier", "champion", "1")
        answer = mlflow_call(team, "rita", "GET", f"{API}/model-versions/get-download-uri", params=VERSION_1)
        assert "wasbs://" not in answer.text and "/_loopline/models/sha256/" in answer.text, answer.text
        rows = pd.read_csv(team.project / "data" / "inbox" / "heldout.csv").drop(columns=["label"]).head(5)
        version, alias = _loaded(team, tmp_path / "loading", rows)
        assert version == alias and len(json.loads(version)) == 5


VERSION_1 = {"name": "proj-classifier", "version": "1"}
LOADER = """\
import json

import mlflow
import numpy as np
import pandas as pd

rows = pd.read_csv("rows.csv")
for uri in ("models:/proj-classifier/1", "models:/proj-classifier@champion"):
    print(json.dumps(np.asarray(mlflow.pyfunc.load_model(uri).predict(rows)).tolist()))
"""


def test_a_stock_mlflow_client_loads_dev_s_registered_version_with_a_token_alone(
    trained_project: ProjectFactory, tmp_path: Path
) -> None:
    """A registered version's source is a folder of the model store, a path of the control plane's host
    (or a bucket the member cannot read): answered as files the control plane serves, verified."""
    import mlflow.sklearn

    project = trained_project("full")
    client = mlflow_client(project, "dev")
    client.set_registered_model_alias("proj-classifier", "champion", "1")  # as the team's admin would
    source = client.get_model_version("proj-classifier", "1").source
    rows = pd.read_csv(project / "data" / "inbox" / "heldout.csv").drop(columns=["label"]).head(5)
    expected = json.dumps(mlflow.sklearn.load_model(source).predict(rows).tolist())
    for team in start_team(project):
        for route, params in (
            ("model-versions/get-download-uri", VERSION_1),
            ("model-versions/get", VERSION_1),
            ("registered-models/alias", {"name": "proj-classifier", "alias": "champion"}),
        ):
            answer = mlflow_call(team, "rita", "GET", f"{API}/{route}", params=params)
            assert answer.status_code == 200, answer.text
            assert (
                str(project) not in answer.text
                and "mlflow-artifacts:/_loopline/models/sha256/" in answer.text
            )
        assert _loaded(team, tmp_path / "laptop", rows) == [expected] * 2
        # only the files of a digest a version of dev holds, to a signed-in reader, inside its folder
        digest = source.rstrip("/").rsplit("/", 1)[-1]
        files = f"api/2.0/mlflow-artifacts/artifacts/_loopline/models/sha256/{digest}"
        assert mlflow_call(team, "rita", "GET", f"{files}/MLmodel").text.startswith("artifact_path")
        assert mlflow_call(team, None, "GET", f"{files}/MLmodel").status_code == 401
        other = "0" * 64
        missing = mlflow_call(team, "rita", "GET", f"{files.replace(digest, other)}/MLmodel")
        assert missing.status_code == 404 and "no model version in dev holds" in missing.json()["message"]
        escape = mlflow_call(team, "rita", "GET", f"{files}/%2E%2E/%2E%2E/state.db")
        assert escape.status_code == 400 and "not a plain relative path" in escape.text, escape.text
        listed = mlflow_call(
            team,
            "rita",
            "GET",
            "api/2.0/mlflow-artifacts/artifacts",
            params={"path": files.split("artifacts/", 2)[-1]},
        )
        assert "MLmodel" in {f["path"] for f in listed.json()["files"]}, listed.text


def _loaded(team: Team, laptop: Path, rows: Any) -> list[str]:
    """What LOADER prints on a machine with a reader's token alone: the answers of dev's version 1 and of
    its alias champion to ``rows``."""
    return _on_a_laptop(team, laptop, LOADER, rows, "rita", "dev")[-2:]


def _on_a_laptop(team: Team, laptop: Path, script: str, rows: Any, user: str, workspace: str) -> list[str]:
    """The lines ``script`` prints on a machine with ``user``'s token alone, MLflow pointed at
    ``workspace`` on the control plane, and ``rows`` beside it (``rows.csv``)."""
    laptop.mkdir()
    (laptop / "script.py").write_text(script)
    rows.to_csv(laptop / "rows.csv", index=False)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LOOPLINE_", "MLFLOW_", "AZURE_"))}
    env |= {
        "MLFLOW_TRACKING_URI": f"{team.plane.url}/mlflow/{workspace}",
        "MLFLOW_TRACKING_TOKEN": team.tokens[user],
    }
    done = subprocess.run(
        [sys.executable, "script.py"], cwd=laptop, env=env, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout.splitlines()


def test_who_may_read_and_log_and_what_stays_read_only(team: Team) -> None:
    unsigned = mlflow_call(
        team, None, "GET", f"{API}/experiments/get-by-name", params={"experiment_name": "proj"}
    )
    assert unsigned.status_code == 401
    assert unsigned.json()["error_code"] == "UNAUTHENTICATED"
    assert "MLFLOW_TRACKING_TOKEN" in unsigned.json()["message"]

    # A reader reads dev's runs; logging needs the developer role on dev (the refusal is audited)
    search = mlflow_call(team, "rita", "POST", f"{API}/runs/search", json={"experiment_ids": ["1"]})
    assert search.status_code == 200, search.text
    experiment = mlflow_client(team.project, "dev").get_experiment_by_name("proj").experiment_id
    refused = mlflow_call(team, "rita", "POST", f"{API}/runs/create", json={"experiment_id": experiment})
    assert refused.status_code == 403 and refused.json()["error_code"] == "PERMISSION_DENIED"
    assert "developer" in refused.json()["message"]

    # A run made another way (the inner loop's, or logged with the store's own credentials) is read-only
    direct = mlflow_client(team.project, "dev").create_run(experiment).info.run_id
    tag = {"run_id": direct, "key": "note", "value": "mine now"}
    answer = mlflow_call(team, "dev", "POST", f"{API}/runs/set-tag", json=tag)
    assert answer.status_code == 403 and "read-only here" in answer.json()["message"], answer.text
    # ... and so is another member's run
    adas = new_run(team, "ada")["info"]["run_id"]
    answer = mlflow_call(
        team, "dev", "POST", f"{API}/runs/log-parameter", json={"run_id": adas, "key": "C", "value": "1"}
    )
    assert answer.status_code == 403 and "is ada's" in answer.json()["message"]
    assert mlflow_client(team.project, "dev").get_run(adas).data.params == {}

    # loopline's tags and the run's user are not the caller's to set
    experiment_body = {"experiment_id": experiment, "tags": [{"key": "loopline.tracked_by", "value": "x"}]}
    forged = mlflow_call(team, "dev", "POST", f"{API}/runs/create", json=experiment_body)
    assert forged.status_code == 400 and "set by loopline" in forged.json()["message"]
    mine = new_run(team, "dev", tags=[{"key": "mlflow.user", "value": "ada"}])
    assert {t["key"]: t["value"] for t in mine["data"]["tags"]}["mlflow.user"] == "dev"
    run_id = mine["info"]["run_id"]
    for key in ("mlflow.user", "loopline_gate"):
        answer = mlflow_call(
            team, "dev", "POST", f"{API}/runs/set-tag", json={"run_id": run_id, "key": key, "value": "x"}
        )
        assert answer.status_code == 400, answer.text
    # (a param may have any name: only tags are loopline's)
    param = {"run_id": run_id, "key": "loopline_gate", "value": "x"}
    assert mlflow_call(team, "dev", "POST", f"{API}/runs/log-parameter", json=param).status_code == 200
    malformed = {"experiment_id": experiment, "tags": {"a": "b"}}
    answer = mlflow_call(team, "dev", "POST", f"{API}/runs/create", json=malformed)
    assert answer.status_code == 400 and "not a list" in answer.json()["message"]
    batch = {"run_id": run_id, "metrics": [{"key": "loss", "value": 0.1, "timestamp": 1, "step": 0}]}
    assert mlflow_call(team, "dev", "POST", f"{API}/runs/log-batch", json=batch).status_code == 200
    # A NUL character, which PostgreSQL keeps in no text, never reaches the store (a write, or a search)
    nul = {"run_id": run_id, "params": [{"key": "C", "value": "0.5\u0000"}]}
    answer = mlflow_call(team, "dev", "POST", f"{API}/runs/log-batch", json=nul)
    assert answer.status_code == 400 and "params holds a NUL character" in answer.json()["message"]
    assert mlflow_client(team.project, "dev").get_run(run_id).data.params == {"loopline_gate": "x"}
    found = mlflow_call(
        team, "rita", "GET", f"{API}/experiments/get-by-name", params={"experiment_name": "\0"}
    )
    assert found.status_code == 400 and "experiment_name holds a NUL" in found.json()["message"]

    # The registry is read-only here: versions enter dev through the inner loop
    registered = mlflow_call(team, "dev", "POST", f"{API}/registered-models/create", json={"name": "sneaky"})
    assert registered.status_code == 403 and "`loopline inner-loop`" in registered.json()["message"]
    assert mlflow_call(team, "rita", "GET", f"{API}/registered-models/search").status_code == 200
    # What else MLflow's server offers is not served; of prod, only its registry is
    traces = mlflow_call(team, "dev", "POST", "api/3.0/mlflow/traces/search", json={})
    assert traces.status_code == 400 and "is not served here" in traces.json()["message"]
    listed = mlflow_call(team, "ada", "POST", f"{API}/experiments/search", json={"max_results": 10})
    assert "proj" in {e["name"] for e in listed.json()["experiments"]}, listed.text
    other = httpx.get(
        f"{team.plane.url}/mlflow/prod/{API}/experiments/search",
        headers={"Authorization": f"Bearer {team.tokens['ada']}"},
    )
    assert other.status_code == 400 and "runs are logged to dev" in other.json()["message"], other.text


def test_files_go_only_under_the_caller_s_own_runs_in_dev_s_artifact_store(team: Team) -> None:
    root = team.project / ".loopline" / "workspaces" / "dev" / "artifacts"
    # A new experiment's files stay under dev's artifact root, whatever location is asked for
    created = mlflow_call(
        team,
        "dev",
        "POST",
        f"{API}/experiments/create",
        json={"name": "notebooks", "artifact_location": "/etc"},
    )
    assert created.status_code == 200, created.text
    experiment = mlflow_client(team.project, "dev").get_experiment(created.json()["experiment_id"])
    assert experiment.artifact_location.startswith(root.as_uri() + "/experiments/")
    assert experiment.tags["loopline.tracked_by"] == "dev"
    run = mlflow_call(
        team, "dev", "POST", f"{API}/runs/create", json={"experiment_id": experiment.experiment_id}
    )
    home = run.json()["run"]["info"]["artifact_uri"].removeprefix("mlflow-artifacts:/")
    files = "api/2.0/mlflow-artifacts/artifacts"

    assert mlflow_call(team, "dev", "PUT", f"{files}/{home}/a.txt", content=b"mine").status_code == 200
    assert (
        Path(experiment.artifact_location.removeprefix("file://")) / home.split("/", 2)[2] / "a.txt"
    ).read_bytes() == b"mine"
    assert mlflow_call(team, "rita", "GET", f"{files}/{home}/a.txt").content == b"mine"
    # A file comes back as it was logged, even a JSON one that names where dev keeps its files
    kept = json.dumps({"type": "Feature", "properties": {"uri": f"{root.as_uri()}/x"}}).encode()
    assert mlflow_call(team, "dev", "PUT", f"{files}/{home}/map.geojson", content=kept).status_code == 200
    assert mlflow_call(team, "rita", "GET", f"{files}/{home}/map.geojson").content == kept
    # A file over control_plane.max_upload_mb is refused, said at once or as it streams past; none stays
    folder = Path(experiment.artifact_location.removeprefix("file://")) / home.split("/", 2)[2]
    declared = mlflow_call(team, "dev", "PUT", f"{files}/{home}/big.bin", content=b"x" * (2 << 20))
    assert declared.status_code == 413 and "max_upload_mb" in declared.json()["message"]

    def chunks() -> Iterator[bytes]:
        yield from (b"x" * (1 << 19) for _ in range(4))

    streamed = mlflow_call(team, "dev", "PUT", f"{files}/{home}/big.bin", content=chunks())
    assert streamed.status_code == 413, streamed.text
    assert sorted(p.name for p in folder.iterdir()) == ["a.txt", "map.geojson"]
    # Not into another's run, not outside a run's folder, not up the tree
    adas = new_run(team, "ada")["info"]["artifact_uri"].removeprefix("mlflow-artifacts:/")
    assert mlflow_call(team, "dev", "PUT", f"{files}/{adas}/a.txt", content=b"x").status_code == 403
    assert (
        mlflow_call(
            team, "dev", "PUT", f"{files}/proj/{home.split('/')[-2]}/artifacts/a.txt", content=b"x"
        ).status_code
        == 403
    )
    escape = mlflow_call(team, "dev", "PUT", f"{files}/{home}/%2E%2E/%2E%2E/x.txt", content=b"x")
    assert escape.status_code in (400, 404), escape.text
    assert mlflow_call(team, "dev", "PUT", f"{files}/loose.txt", content=b"x").status_code == 403
    assert not (root / "loose.txt").exists()
    assert mlflow_call(team, "rita", "PUT", f"{files}/{home}/b.txt", content=b"x").status_code == 403


def test_what_the_control_plane_serves_is_a_closed_list() -> None:
    assert classify("GET", f"{API}/runs/get") == (READ, None)
    assert classify("POST", f"{API}/runs/log-batch") == (RUN, None)
    assert classify("DELETE", f"{API}/model-versions/delete") == (REGISTRY, None)
    for method, path in [
        ("POST", "api/3.0/mlflow/gateway/secrets/create"),
        ("POST", f"{API}/webhooks"),
        ("GET", "ajax-api/2.0/mlflow/runs/get"),
        ("POST", "api/2.0/mlflow-artifacts/mpu/create/x"),
        ("DELETE", "api/2.0/mlflow-artifacts/artifacts"),
    ]:
        with pytest.raises(UsageError, match="is not served here"):
            classify(method, path)


def test_a_dev_store_that_is_down_is_said_so_at_once_not_after_mlflow_s_retries(
    new_project: ProjectFactory,
) -> None:
    """MLflow's server would try its database ten times over about 100 seconds before answering."""
    database = DatabaseServer(silent=False)  # a PostgreSQL server going down: it closes every connection
    uri = f"postgresql://u:p@127.0.0.1:{database.port}/mlflow_dev"
    stores = {"LOOPLINE_WORKSPACES__DEV__TRACKING_URI": uri, "LOOPLINE_WORKSPACES__DEV__REGISTRY_URI": uri}
    started = start_team(new_project("full"), **stores)
    try:
        team = next(started)
        answer = mlflow_call(
            team, "rita", "GET", f"{API}/experiments/get-by-name", params={"experiment_name": "proj"}
        )
        assert answer.status_code == 503 and answer.json()["error_code"] == "TEMPORARILY_UNAVAILABLE"
        where = f"postgresql://u:***@127.0.0.1:{database.port}/mlflow_dev"
        assert answer.json()["message"].startswith(f"the MLflow store of dev at {where} is unavailable")
        assert len(database.connections) == 1
    finally:
        started.close()
        database.close()


PRODUCTION = """\
import json
import sys

import mlflow
import numpy as np
import pandas as pd

model = mlflow.pyfunc.load_model("models:/proj-classifier@production")
print(json.dumps(np.asarray(model.predict(pd.read_csv("rows.csv"))).tolist()))
print(mlflow.MlflowClient().get_model_version_by_alias("proj-classifier", "production").tags["git_commit"])
"""


def test_an_application_loads_prod_s_production_model_with_a_reader_s_token_alone(
    a_live_b_registered: tuple[Path, str, str], tmp_path: Path
) -> None:
    """``/mlflow/prod`` is a registry URI for what was released: prod's registry and its versions' files,
    to a reader of prod, and nothing else of prod."""
    import mlflow.sklearn

    project, live, registered = a_live_b_registered
    prod = mlflow_client(project, "prod")
    source = prod.get_model_version_by_alias("proj-classifier", "production").source
    rows = pd.read_csv(project / "data" / "inbox" / "heldout.csv").drop(columns=["label"]).head(5)
    expected = json.dumps(mlflow.sklearn.load_model(source).predict(rows).tolist())
    for team in start_team(project):
        loaded = _on_a_laptop(team, tmp_path / "app", PRODUCTION, rows, "paul", "prod")
        assert loaded[-2:] == [expected, live]

        prod_call = functools.partial(mlflow_call, team, workspace="prod")

        alias = {"name": "proj-classifier", "alias": "production"}
        answer = prod_call("paul", "GET", f"{API}/registered-models/alias", params=alias)
        assert str(project) not in answer.text and "mlflow-artifacts:/_loopline/models/sha256/" in answer.text
        # a developer of dev only is no reader of prod (refused, audited); nobody signed in is asked to
        refused = prod_call("dev", "GET", f"{API}/registered-models/alias", params=alias)
        assert refused.status_code == 403 and "reader" in refused.json()["message"], refused.text
        assert prod_call(None, "GET", f"{API}/registered-models/alias", params=alias).status_code == 401
        # read-only, and only the registry: prod's runs and a change of its aliases are not served
        moved = prod_call("ada", "POST", f"{API}/registered-models/alias", json={**alias, "version": "1"})
        assert moved.status_code == 403 and "read-only here" in moved.json()["message"], moved.text
        runs = prod_call("ada", "POST", f"{API}/runs/search", json={"experiment_ids": ["0"]})
        assert runs.status_code == 400 and "runs are logged to dev" in runs.json()["message"], runs.text
        # only the files of a version prod holds: dev's newer version is not prod's to give
        newer = mlflow_client(project, "dev").search_model_versions(f"tags.git_commit = '{registered}'")[0]
        files = "api/2.0/mlflow-artifacts/artifacts/_loopline/models/sha256"
        held = prod_call("paul", "GET", f"{files}/{source.rstrip('/').rsplit('/', 1)[-1]}/MLmodel")
        assert held.status_code == 200 and held.text.startswith("artifact_path"), held.text
        other = newer.tags["content_digest"].removeprefix("sha256:")
        missing = prod_call("paul", "GET", f"{files}/{other}/MLmodel")
        assert missing.status_code == 404 and "no model version in prod holds" in missing.json()["message"]
        # a workspace this tier has no registry URI for
        test = httpx.get(f"{team.plane.url}/mlflow/test/{API}/registered-models/search", timeout=60)
        assert test.status_code == 404 and "prod's registry /mlflow/prod" in test.json()["message"]
