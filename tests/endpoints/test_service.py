"""Endpoints, keys, deployments and traffic in loopline's database, with their audit trail."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from sqlalchemy import text

import loopline
from loopline.errors import IntegrityViolation, NotFound, Refused, UsageError
from loopline.instance import Instance
from tests.conftest import ProjectFactory
from tests.helpers import cli, git, model_version, use_script
from tests.servers import Server, free_port


def test_an_endpoint_gets_two_keys_stored_only_as_hashes(served_project: Path) -> None:
    created = loopline.create_endpoint("keys-a", "dev", project=served_project)
    assert set(created.keys) == {"primary", "secondary"}
    assert all(key.startswith("ll_") and len(key) > 40 for key in created.keys.values())
    listing = loopline.endpoint_keys("keys-a", project=served_project)
    assert [k["slot"] for k in listing.keys] == ["primary", "secondary"]
    assert listing.keys[0]["prefix"] == created.keys["primary"][:9] + "…"
    db = Instance.open(served_project).db
    with db.read() as connection:
        dump = json.dumps(
            [list(r) for r in connection.execute(text("SELECT * FROM endpoint_keys"))], default=str
        )
        events = json.dumps([list(r) for r in connection.execute(text("SELECT * FROM events"))], default=str)
    for key in created.keys.values():
        assert key not in dump and key not in events
    regenerated = loopline.endpoint_keys("keys-a", regenerate="primary", project=served_project)
    assert regenerated.regenerated["primary"] != created.keys["primary"]
    assert [e.event.details for e in loopline.history(served_project, kind="key-rotated")][-1] == {
        "slot": "primary"
    }


def test_endpoint_names_are_unique_within_a_workspace_and_need_a_serving_workspace(
    served_project: Path,
) -> None:
    loopline.create_endpoint("dup", "dev", project=served_project)
    with pytest.raises(Refused, match="dev already has an endpoint named 'dup'"):
        loopline.create_endpoint("dup", "dev", project=served_project)
    prod = loopline.create_endpoint("dup", "prod", project=served_project).endpoint
    assert prod.workspace == "prod" and prod.url == "http://127.0.0.1:8700/endpoints/dup"
    with pytest.raises(UsageError, match="named 'dup' in dev, prod; name the workspace"):
        loopline.get_endpoint("dup", project=served_project)
    assert loopline.get_endpoint("dup", workspace="dev", project=served_project).workspace == "dev"
    loopline.delete_endpoint("dup", workspace="prod", project=served_project)
    assert loopline.get_endpoint("dup", project=served_project).workspace == "dev"
    with pytest.raises(UsageError, match="serves no endpoints"):
        loopline.create_endpoint("reg", "shared", project=served_project)
    with pytest.raises(Refused, match="not part of the 'simple' tier"):
        loopline.create_endpoint("tst", "test", project=served_project)
    with pytest.raises(UsageError, match="lowercase letters"):
        loopline.create_endpoint("Bad_Name", "dev", project=served_project)


def test_the_first_deployment_takes_all_traffic_and_later_ones_none(served_project: Path) -> None:
    loopline.create_endpoint("dep-a", "dev", project=served_project)
    first = loopline.create_deployment("dep-a", "blue", version=1, project=served_project)
    assert first.traffic == {"blue": 100}
    v2_commit = model_version(served_project, 2).git_commit
    second = loopline.create_deployment("dep-a", "green", commit=v2_commit[:7], project=served_project)
    assert second.traffic == {"blue": 100, "green": 0}
    assert second.deployment("green").version == 2  # type: ignore[union-attr]
    # trained here, the model's requirements are what is installed here: nothing to warn of
    assert second.deployment("green").environment == ()  # type: ignore[union-attr]
    assert second.deployment("blue").environment is None  # type: ignore[union-attr]  # not created by this call
    third = loopline.create_deployment(
        "dep-a", "canary", version=1, traffic=10, check=False, project=served_project
    )
    assert third.traffic == {"blue": 90, "green": 0, "canary": 10}
    with pytest.raises(Refused, match="already has a deployment named 'blue'"):
        loopline.create_deployment("dep-a", "blue", version=2, project=served_project)
    with pytest.raises(NotFound, match=r"has no version 9 in dev \(its newest there is 2\); the inner loop"):
        loopline.create_deployment("dep-a", "x", version=9, project=served_project)
    with pytest.raises(UsageError, match="exactly one of --version N, --commit SHA or --latest"):
        loopline.create_deployment("dep-a", "x", project=served_project)


def test_a_version_a_workspace_lacks_is_refused_saying_how_versions_reach_it(served_project: Path) -> None:
    """Prod holds only what releases brought there: naming the registry's version or commit in prod says
    so."""
    loopline.create_endpoint("dep-p", "prod", project=served_project)
    with pytest.raises(NotFound) as numbered:
        loopline.create_deployment("dep-p", "blue", version=1, project=served_project)
    assert numbered.value.message == (
        "model 'proj-classifier' has no version 1 in prod (it has none there yet); releases bring versions "
        "there from the registry: loopline outer-loop prod --commit SHA"
    )
    commit = model_version(served_project, 2).git_commit[:7]
    with pytest.raises(NotFound) as by_commit:
        loopline.create_deployment("dep-p", "blue", commit=commit, project=served_project)
    assert by_commit.value.message == (
        f"commit {commit}'s version of 'proj-classifier' is in the shared registry, never brought to prod; "
        f"releases bring versions there from the registry: loopline outer-loop prod --commit {commit}"
    )
    loopline.delete_endpoint("dep-p", workspace="prod", project=served_project)


def test_a_first_deployment_may_wait_at_no_traffic_and_the_next_one_then_takes_it_all(
    served_project: Path,
) -> None:
    loopline.create_endpoint("dep-z", "dev", project=served_project)
    with pytest.raises(Refused, match=r"first deployment, so it takes 100% of traffic or none .*not 30%"):
        loopline.create_deployment(
            "dep-z", "blue", version=1, traffic=30, check=False, project=served_project
        )
    held = loopline.create_deployment("dep-z", "blue", version=1, traffic=0, project=served_project)
    assert held.traffic == {"blue": 0}
    taking = loopline.create_deployment("dep-z", "green", version=2, check=False, project=served_project)
    assert taking.traffic == {"blue": 0, "green": 100}
    moved = [e.event for e in loopline.history(served_project, kind="traffic-changed")]
    assert [(e.source, e.target) for e in moved if e.source.startswith("dep-z")] == [
        ("dep-z: blue=0", "dep-z: blue=0 green=100")
    ]


def test_a_deployment_that_takes_traffic_cannot_be_deleted(served_project: Path) -> None:
    loopline.create_endpoint("del-a", "dev", project=served_project)
    loopline.create_deployment("del-a", "blue", version=1, check=False, project=served_project)
    loopline.create_deployment("del-a", "green", version=2, check=False, project=served_project)
    with pytest.raises(Refused) as error:
        loopline.delete_deployment("del-a", "blue", project=served_project)
    assert error.value.message == (
        "deployment 'blue' still takes 100% of traffic; move it first: "
        "loopline endpoint traffic del-a green=100"
    )
    loopline.set_traffic("del-a", ["green=100"], project=served_project)
    after = loopline.delete_deployment("del-a", "blue", project=served_project)
    assert after.traffic == {"green": 100}


def test_traffic_changes_are_checked_and_audited_from_and_to(served_project: Path) -> None:
    loopline.create_endpoint("traf-a", "dev", project=served_project)
    loopline.create_deployment("traf-a", "blue", version=1, check=False, project=served_project)
    loopline.create_deployment("traf-a", "green", version=2, check=False, project=served_project)
    with pytest.raises(Refused, match="must sum to 100%"):
        loopline.set_traffic("traf-a", {"blue": 50, "green": 40}, project=served_project)
    changed = loopline.set_traffic(
        "traf-a", {"blue": 90, "green": 10}, reason="canary", project=served_project
    )
    assert changed.traffic == {"blue": 90, "green": 10}
    event = loopline.history(served_project, kind="traffic-changed")[-1].event
    assert (event.source, event.target, event.reason) == (
        "traf-a: blue=100 green=0",
        "traf-a: blue=90 green=10",
        "canary",
    )
    with pytest.raises(Refused, match="only to a deployment with none"):
        loopline.set_traffic(
            "traf-a", {"blue": 90, "green": 10}, mirror={"green": 10}, project=served_project
        )
    mirrored = loopline.set_traffic("traf-a", ["blue=100"], mirror=["green=20"], project=served_project)
    assert mirrored.mirror == {"green": 20}
    with pytest.raises(Refused, match="receives mirrored traffic"):
        loopline.delete_deployment("traf-a", "green", project=served_project)
    assert loopline.set_traffic("traf-a", ["blue=100"], mirror=["none"], project=served_project).mirror == {}


def test_status_lists_endpoints_in_the_products_shape(
    served_project: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COLUMNS", "200")  # the table's cells whole, whatever the terminal's width
    loopline.create_endpoint("stat-a", "dev", project=served_project)
    loopline.create_deployment("stat-a", "blue", version=2, check=False, project=served_project)
    result = cli(capsys, "status", "--json", "-C", str(served_project))
    endpoint = next(e for e in result.json()["endpoints"] if e["name"] == "stat-a")
    assert endpoint["workspace"] == "dev"
    assert endpoint["url"] == "http://127.0.0.1:8701/endpoints/stat-a"
    assert endpoint["traffic"] == {"blue": 100}
    deployed = endpoint["deployments"][0]
    assert (deployed["name"], deployed["model"], deployed["version"]) == ("blue", "proj-classifier", 2)
    assert len(deployed["git_commit"]) == 40
    assert "ll_" not in result.stdout
    # Read by a person: what each endpoint serves, a deployment a row (the JSON's, not a summary of it).
    loopline.create_endpoint("stat-b", "dev", project=served_project)
    loopline.create_deployment("stat-a", "green", version=1, check=False, project=served_project)
    loopline.set_traffic("stat-a", None, mirror=["green=20"], project=served_project)
    shown = cli(capsys, "status", "-C", str(served_project))
    rows = [
        [c.strip() for c in line.split("│")[1:-1]] for line in shown.stdout.splitlines() if "stat-" in line
    ]
    assert ["dev", "stat-a", "blue", "proj-classifier", "2", deployed["git_commit"][:7], "100%"] in rows
    assert ["dev", "stat-b", "", "", "", "", "no deployments"] in rows
    assert [row[2::4] for row in rows if row[1:3] == ["stat-a", "green"]] == [["green", "0% (+20% mirrored)"]]
    # And what each batch endpoint scores with, its default marked.
    loopline.create_batch_endpoint("stat-batch", "dev", project=served_project)
    loopline.create_batch_deployment("stat-batch", "blue", version=2, project=served_project)
    loopline.create_batch_deployment("stat-batch", "green", version=1, project=served_project)
    loopline.create_batch_endpoint("stat-empty", "dev", project=served_project)
    batch = next(
        e for e in cli(capsys, "status", "--json", "-C", str(served_project)).json()["batch_endpoints"]
    )
    assert (batch["name"], batch["workspace"], batch["default"]) == ("stat-batch", "dev", "blue")
    assert [(d["name"], d["version"]) for d in batch["deployments"]] == [("blue", 2), ("green", 1)]
    shown = cli(capsys, "status", "-C", str(served_project))
    assert "Batch endpoints" in shown.stdout
    rows = [
        [c.strip() for c in line.split("│")[1:-1]] for line in shown.stdout.splitlines() if "stat-" in line
    ]
    assert [
        "dev",
        "stat-batch",
        "blue",
        "proj-classifier",
        "2",
        deployed["git_commit"][:7],
        "default",
    ] in rows
    assert [row[2::4] for row in rows if row[1:3] == ["stat-batch", "green"]] == [["green", ""]]
    assert ["dev", "stat-empty", "", "", "", "", "no deployments"] in rows


def test_endpoint_commands_exit_codes(served_project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli(capsys, "endpoint", "show", "nope", "-C", str(served_project)).exit_code == 1
    result = cli(capsys, "endpoint", "traffic", "nope", "a=x", "-C", str(served_project))
    assert result.exit_code == 2 and "DEPLOYMENT=PERCENT" in result.stderr


def test_invoking_where_nothing_serves_says_how_to_start_a_server_or_where_to_point(
    served_project: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    loopline.create_endpoint("unserved", "dev", project=served_project)
    request = served_project / "request.json"
    # dev's server is configured where nothing listens (a user whose `serve --port` differs from it)
    monkeypatch.setenv("LOOPLINE_WORKSPACES__DEV__ENDPOINTS_URL", f"http://127.0.0.1:{free_port()}")
    result = cli(capsys, "endpoint", "invoke", "unserved", "-f", str(request), "-C", str(served_project))
    assert result.exit_code == 4 and "Traceback" not in result.stderr
    assert "`loopline serve --workspace dev`" in result.stderr
    assert "set workspaces.dev.endpoints_url to it" in result.stderr


@pytest.mark.slow
def test_a_server_on_a_port_of_its_own_is_where_loopline_s_commands_call_it(
    served_project: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """`loopline serve --port P` where P is not the workspace's endpoints_url (that one taken by something
    else, say): the commands of this machine call it at P while it runs, and forget it once it stops."""
    loopline.create_endpoint("own-port", "dev", project=served_project)
    loopline.create_deployment("own-port", "blue", version=2, project=served_project)
    configured = f"http://127.0.0.1:{free_port()}"  # where nothing answers
    monkeypatch.setenv("LOOPLINE_WORKSPACES__DEV__ENDPOINTS_URL", configured)
    invoke = ("endpoint", "invoke", "own-port", "-f", str(served_project / "request.json"))
    with Server(served_project, "dev") as server:
        server.wait_for("own-port", "blue")
        answered = cli(capsys, *invoke, "-C", str(served_project))
        assert answered.exit_code == 0 and "200 from blue (model v2" in answered.stdout, answered.stderr
        records = list((served_project / ".loopline" / "servers").glob("dev-*.json"))
        assert [json.loads(r.read_text())["url"] for r in records] == [server.url]
        shown = cli(capsys, "endpoint", "show", "own-port", "--json", "-C", str(served_project))
        assert shown.json()["url"] == f"{server.url}/endpoints/own-port"  # where it answers, to copy
        listed = cli(capsys, "endpoint", "list", "--json", "-C", str(served_project)).json()["endpoints"]
        dev = {e["name"]: e["url"] for e in listed if e["workspace"] == "dev"}
        assert "own-port" in dev and dev == {name: f"{server.url}/endpoints/{name}" for name in dev}, dev
        # the outer loops check on it too, rather than on a temporary server of their own
        first = model_version(served_project, 1).git_commit
        rolled = loopline.rollback(commit=first, endpoint="own-port", workspace="dev", project=served_project)
        assert not rolled.temporary_server
        answered = cli(capsys, *invoke, "-C", str(served_project))
        assert f"(model v1, {first[:7]})" in answered.stdout, answered.stdout
    assert not records[0].exists()  # stopped: its record went with it
    stopped = cli(capsys, *invoke, "-C", str(served_project))
    assert stopped.exit_code == 4 and "start it with `loopline serve --workspace dev`" in stopped.stderr
    shown = cli(capsys, "endpoint", "show", "own-port", "--json", "-C", str(served_project))
    assert shown.json()["url"] == f"{configured}/endpoints/own-port"  # stopped: the configured address
    # Where it cannot record (a read-only folder in a container), it serves all the same.
    folder = records[0].parent
    shutil.rmtree(folder)
    folder.write_text("not a folder")
    try:
        with Server(served_project, "dev") as unrecorded:
            unrecorded.wait_for("own-port", "blue")
            assert "cannot record where this server listens" in unrecorded.errors.read_text()
    finally:
        folder.unlink()


@pytest.mark.slow
def test_model_files_changed_after_registration_are_refused_at_deploy_time(
    trained_project: ProjectFactory,
) -> None:
    project = trained_project("simple")
    loopline.create_endpoint("tamper", "dev", project=project)
    folder = Path(model_version(project, 1).source_uri.removeprefix("file://"))
    weights = next(p for p in folder.iterdir() if p.suffix in {".skops", ".pkl"})
    weights.write_bytes(weights.read_bytes() + b"\0")
    with pytest.raises(IntegrityViolation, match="do not match their content digest"):
        loopline.create_deployment("tamper", "blue", version=1, project=project)
    assert loopline.get_endpoint("tamper", project=project).deployments == ()
    assert git(project, "status", "--porcelain") == ""


NULL_INTOLERANT = """\
import mlflow
import pandas as pd
from mlflow.models import infer_signature


class Strict(mlflow.pyfunc.PythonModel):
    def predict(self, context, model_input, params=None):
        if model_input["age"].isna().any():
            raise ValueError("age is missing")
        return model_input["age"].astype(float) * 2


train = pd.DataFrame({"age": pd.array([30, None, 41], dtype="Int64"), "x": [1.0, 2.0, 3.0]})
with mlflow.start_run():
    mlflow.log_metrics({"accuracy": 1.0, "roc_auc": 1.0, "log_loss": 0.0})
    mlflow.pyfunc.log_model(name="model", python_model=Strict(), input_example=train.iloc[:1],
                            signature=infer_signature(train, [1.0, 2.0, 3.0]), pip_requirements=["mlflow"])
"""


def test_a_model_that_fails_on_a_null_its_signature_allows_is_not_deployed(
    new_project: ProjectFactory,
) -> None:
    project = new_project("simple", commit=False)
    use_script(
        project,
        "strict.py",
        {"accuracy": {"min": 0.5}},
        source=NULL_INTOLERANT,
        name="strict",
    )
    loopline.inner_loop(project)
    loopline.create_endpoint("nulls", "dev", project=project)
    with pytest.raises(Refused) as refused:
        loopline.create_deployment("nulls", "blue", model="strict", version=1, project=project)
    assert "optional column 'age' is null" in refused.value.message
    assert "ValueError: age is missing" in refused.value.message
    assert loopline.get_endpoint("nulls", project=project).deployments == ()
    unchecked = loopline.create_deployment(
        "nulls", "blue", model="strict", version=1, check=False, project=project
    )
    assert unchecked.traffic == {"blue": 100}


def test_changing_only_the_mirror_keeps_the_split_in_one_step(served_project: Path) -> None:
    loopline.create_endpoint("mirrored", "dev", project=served_project)
    loopline.create_deployment("mirrored", "blue", version=1, project=served_project)
    loopline.create_deployment("mirrored", "green", version=2, check=False, project=served_project)
    info = loopline.set_traffic("mirrored", None, mirror={"green": 20}, project=served_project)
    assert info.traffic == {"blue": 100, "green": 0} and info.mirror == {"green": 20}
    changed = loopline.history(served_project, kind="traffic-changed")[-1].event.details
    assert changed["from"] == changed["to"] == {"blue": 100, "green": 0}
    assert changed["mirror_to"] == {"green": 20}
