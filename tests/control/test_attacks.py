"""The attacks of docs/security.md, sent as a developer's token would send them, over real HTTP against
`loopline server`, and what stops each one.
"""

from __future__ import annotations

import io
import json
import math
import os
import re
import select
import socket
import tarfile
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import mlflow
import pandas as pd
import pytest
from sqlalchemy import insert

import loopline
from loopline.domain import utcnow as loopline_now
from loopline.inputs import INPUTS_TAG
from loopline.instance import Instance
from loopline.state.schema import locks
from tests.conftest import ProjectFactory
from tests.control.team import Team, start_team
from tests.helpers import cli_process, commit_all, edit_yaml, git, wait_until
from tests.oidc import Issuer, job_claims, new_key, oidc_issuer
from tests.sandbox.probe import findings, probe_model
from tests.servers import Dashboard

pytestmark = pytest.mark.slow

MODEL = "proj-classifier"
CONSTANT = """
import mlflow
import numpy as np


class Constant(mlflow.pyfunc.PythonModel):
    def predict(self, context, model_input, params=None):
        return np.zeros(len(model_input), dtype=np.int64)


mlflow.models.set_model(Constant())
"""


def _tarball(model: Path, record: dict[str, Any] | None = None) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        archive.add(model, arcname="model")
        if record is not None:  # the run's name, experiment, metric history and datasets
            text = json.dumps(record).encode()
            member = tarfile.TarInfo("run.json")
            member.size = len(text)
            archive.addfile(member, io.BytesIO(text))
    return buffer.getvalue()


def upload_run(
    team: Team,
    model: Path,
    commit: str,
    metrics: dict[str, float],
    user: str = "dev",
    tags: dict[str, str] | None = None,
    record: dict[str, Any] | None = None,
    **extra: Any,
) -> httpx.Response:
    """``POST /v1/uploads`` then ``POST /v1/inner_loop``, naming ``commit`` and claiming ``metrics`` (and
    the run's ``tags``, and its ``record`` in the upload's run.json)."""
    token = team.tokens[user]
    headers = {"Content-Type": "application/gzip"}
    uploaded = team.plane.post("uploads", token=token, content=_tarball(model, record), headers=headers)
    assert uploaded.status_code == 200, uploaded.text
    identity = {"commit": commit, "branch": "main", "dirty_files": [], "diff_digest": None}
    run = {"metrics": metrics, "tags": tags or {}}
    body = {"upload": uploaded.json()["upload"], "identity": identity, "run": run, **extra}
    return team.plane.post("inner_loop", body, token)


def registered(project: Path, commit: str | None = None) -> list[tuple[str, int, str]]:
    """(workspace, version, digest) of every version, of ``commit`` when given."""
    return [
        (m.workspace, m.version, m.content_digest)
        for m in loopline.status(project).models
        if commit is None or m.git_commit == commit
    ]


def model_files(project: Path, version: int = 1) -> Path:
    """The files of dev's ``version`` of the sample model, in loopline's model store."""
    info = next(m for m in loopline.status(project).models if m.workspace == "dev" and m.version == version)
    return Instance.open(project).model_store("dev").verify(info.content_digest)


def constant_model(folder: Path) -> Path:
    """A model that answers 0 for every row, whatever it is asked."""
    code = folder.parent / f"{folder.name}.py"
    code.write_text(CONSTANT)
    mlflow.pyfunc.save_model(str(folder), python_model=str(code), pip_requirements=["mlflow"])
    return folder


CLAIMS = {"accuracy": 0.99, "roc_auc": 0.99, "log_loss": 0.01}


@pytest.fixture
def team(trained_project: ProjectFactory) -> Iterator[Team]:
    """A full-tier team whose project has dev v1 and registry v1 from its first commit, and a second
    commit nobody trained yet."""
    project = trained_project("full")
    edit_yaml(project / "params.yaml", C=0.5)
    commit_all(project, "Less regularisation")
    yield from start_team(project, LOOPLINE_GATE__EVALUATION_DATA="heldout.csv")


def test_an_upload_cannot_name_a_commit_the_repository_does_not_hold(team: Team) -> None:
    before = registered(team.project)
    invented = "fe61f3c" + "0" * 33
    answer = upload_run(team, model_files(team.project), invented, CLAIMS)
    assert answer.status_code == 409, answer.text
    assert answer.json()["message"] == (
        f"commit {invented[:12]} is not in the project's repository (it has no remote 'origin'); push the "
        "commit, then run the inner loop again"
    )
    assert registered(team.project) == before
    refused = loopline.history(team.project, kind="refused")[-1].event
    assert refused.actor == "dev" and refused.git_commit == invented


def test_an_upload_without_a_loadable_flavor_registers_nothing(team: Team, tmp_path: Path) -> None:
    head = git(team.project, "rev-parse", "HEAD")
    empty = tmp_path / "model"
    empty.mkdir()
    (empty / "MLmodel").write_text("flavors: {}\n")
    answer = upload_run(team, empty, head, CLAIMS)
    assert answer.status_code == 409, answer.text
    error = answer.json()
    assert error["error_code"] == "MODEL_FAILED"
    assert error["message"].startswith("the model does not load and answer its input example: ")
    assert str(tmp_path) not in error["message"] and str(team.project) not in error["message"]
    assert registered(team.project, head) == []


def test_a_second_model_for_a_registered_commit_is_refused_audited_and_never_shadows_the_first(
    team: Team, tmp_path: Path
) -> None:
    first = git(team.project, "rev-parse", "HEAD~1")
    original = registered(team.project, first)
    answer = upload_run(team, constant_model(tmp_path / "other"), first, CLAIMS)
    assert answer.status_code == 409, answer.text
    assert answer.json()["message"].startswith(
        f"commit {first[:7]} already has {MODEL} shared v1 (built-here"
    )
    refused = loopline.history(team.project, kind="refused")[-1].event
    assert refused.actor == "dev" and refused.git_commit == first
    assert refused.details["content_digest"] != original[0][2]
    # The same bytes again are no attack: nothing to do. And the registry still has the first model.
    same = upload_run(team, model_files(team.project), first, CLAIMS)
    assert same.status_code == 200 and not same.json()["created"], same.text
    assert registered(team.project, first) == original


def test_claimed_metrics_cannot_pass_the_gate_when_loopline_computes_them(team: Team, tmp_path: Path) -> None:
    head = git(team.project, "rev-parse", "HEAD")
    useless = upload_run(team, constant_model(tmp_path / "zeros"), head, CLAIMS)
    assert useless.status_code == 409, useless.text
    error = useless.json()
    assert error["error_code"] == "GATE_FAILED" and "accuracy" in error["message"]
    assert registered(team.project, head) == []

    # A run that says it trained on data the instance does not hold: refused before anything is recorded.
    for claim in ("heldout:9 sha256:" + "0" * 64, "heldout"):
        forged = upload_run(
            team,
            model_files(team.project),
            head,
            {"accuracy": 0.99},
            tags={INPUTS_TAG: json.dumps({"train": claim})},
        )
        assert forged.status_code == 400, forged.text
        assert forged.json()["message"].startswith(
            f"the run says input train was {claim}, which is not a data"
        )
    assert registered(team.project, head) == []

    # Good bytes with modest claims: the gate goes by what loopline computed on the evaluation data.
    good = upload_run(
        team, model_files(team.project), head, {"accuracy": 0.5, "roc_auc": 0.9, "log_loss": 0.2}
    )
    assert good.status_code == 200, good.text
    shared = next(
        m for m in loopline.status(team.project).models if m.git_commit == head and m.workspace == "shared"
    )
    assert shared.provenance.value == "uploaded"
    detail = shared.provenance_detail
    assert detail["by"] == "dev" and detail["claimed"] == ["log_loss", "roc_auc"]
    assert (
        detail["computed"]["data"] == "inbox://heldout.csv"
        and detail["computed"]["metrics"]["accuracy"] > 0.9
    )
    # Everyone sees it: status and the dashboard name the provenance of each version.
    status = team.plane.post("status", token=team.tokens["rita"]).json()
    row = next(m for m in status["models"] if m["git_commit"] == head and m["workspace"] == "shared")
    assert row["provenance"] == "uploaded" and row["provenance_detail"]["by"] == "dev"
    page = httpx.get(f"{team.plane.url}/ui/models", cookies={"loopline_token": team.tokens["rita"]}).text
    assert "uploaded</span> by dev" in page and "claimed: log_loss, roc_auc" in page


def test_an_uploaded_run_cannot_name_another_author_or_source_or_claim_a_data_asset_as_a_dataset(
    team: Team,
) -> None:
    head = git(team.project, "rev-parse", "HEAD")
    asset = {"name": "heldout", "digest": "0" * 36, "source_type": "loopline-data-asset", "source": "{}"}
    for record, refusal in (
        ({"datasets": [asset]}, "datasets.0.source_type: Value error, a data asset version is claimed by"),
        ({"history": {"loss": [[0.5, 1, 0]] * 2}, "extra": 1}, "extra: Extra inputs are not permitted"),
        ({"history": {"loss": [["low", 1, 0]]}}, "history.loss.0.0: Input should be a valid number"),
    ):
        forged = upload_run(team, model_files(team.project), head, CLAIMS, record=record)
        assert forged.status_code == 400, forged.text
        message = forged.json()["message"]
        assert message.startswith("the upload's run.json is not a run's record (") and refusal in message
    nul = upload_run(team, model_files(team.project), head, CLAIMS, tags={"team\u0000": "churn"})
    assert nul.status_code == 400 and "run holds a NUL character" in nul.json()["message"], nul.text
    nul = upload_run(team, model_files(team.project), head, CLAIMS, record={"name": "C=0.5\u0000"})
    assert nul.status_code == 400, nul.text
    assert nul.json()["message"].startswith("the upload's run.json holds a NUL character")
    assert registered(team.project, head) == []

    # MLflow's own tags would show another author, commit or parent run in MLflow's UI: of them, only the
    # description stays (the author and commit are loopline's to set).
    forged_tags = {
        "mlflow.user": "ada",
        "mlflow.source.git.commit": "f" * 40,
        "mlflow.parentRunId": "0" * 32,
        "mlflow.note.content": "Trained on the laptop",
        "team": "churn",
    }
    record = {
        "name": "C=0.5",
        "history": {"loss": [[0.9, 1000, 0], [float("nan"), 2000, 1]]},
        "model": {"tags": forged_tags, "metrics": [["loss", 0.9, 1000, 0]]},
    }
    answer = upload_run(team, model_files(team.project), head, CLAIMS, tags=forged_tags, record=record)
    assert answer.status_code == 200, answer.text
    client = mlflow.MlflowClient(Instance.open(team.project).store("dev").location.tracking_uri)
    run = client.get_run(answer.json()["run_id"])
    assert run.data.tags["mlflow.user"] == "dev" and run.data.tags["mlflow.source.git.commit"] == head
    assert "mlflow.parentRunId" not in run.data.tags
    assert (
        run.data.tags["mlflow.note.content"] == "Trained on the laptop" and run.data.tags["team"] == "churn"
    )
    assert run.data.tags["loopline.git_commit"] == head and run.info.run_name == "C=0.5"
    [logged] = [
        m for m in client.search_logged_models([run.info.experiment_id]) if m.source_run_id == run.info.run_id
    ]
    assert (logged.tags["mlflow.user"], logged.tags["team"]) == ("dev", "churn")
    assert "mlflow.parentRunId" not in logged.tags and [(m.key, m.value) for m in logged.metrics] == [
        ("loss", 0.9)
    ]
    history = client.get_metric_history(run.info.run_id, "loss")
    assert [m.step for m in history] == [0, 1] and history[0].value == 0.9 and math.isnan(history[1].value)


@pytest.fixture
def plain_team(trained_project: ProjectFactory) -> Iterator[Team]:
    """The team, with no evaluation data: the gate takes the uploader's claims (marked as such)."""
    project = trained_project("full")
    edit_yaml(project / "params.yaml", C=0.5)
    commit_all(project, "Less regularisation")
    yield from start_team(project)


def test_a_deployed_or_batch_scored_model_never_runs_where_the_credentials_are(
    plain_team: Team, tmp_path: Path
) -> None:
    team, project = plain_team, plain_team.project
    head = git(project, "rev-parse", "HEAD")
    dev = team.tokens["dev"]
    with socket.create_server(("127.0.0.1", 0)) as listener:
        listener.settimeout(0.2)
        targets = {
            "database": str(project / ".loopline" / "state.db"),
            "project": str(project),
            "marker": str(project / "marker.txt"),
            "port": listener.getsockname()[1],
        }
        probe = probe_model(tmp_path / "probe", targets, columns=[])
        answer = upload_run(team, probe, head, {"accuracy": 1.0, "roc_auc": 1.0, "log_loss": 0.0})
        assert answer.status_code == 200, answer.text
        version = answer.json()["dev"]["version"]
        deployed = team.plane.post(
            "create_deployment", {"endpoint": "dev-ep", "name": "probe", "version": version}, dev
        )
        assert deployed.status_code == 200, deployed.text
        assert (
            team.plane.post(
                "register_data", {"name": "heldout", "path": "inbox://heldout.csv"}, dev
            ).status_code
            == 200
        )
        batch = team.plane.post(
            "create_batch_deployment", {"endpoint": "dev-batch", "name": "probe", "version": version}, dev
        )
        assert batch.status_code == 200, batch.text
        job = team.plane.post("batch_invoke", {"endpoint": "dev-batch", "data": "heldout"}, dev)
        assert job.status_code == 200, job.text
        part = (
            project
            / ".loopline"
            / "datastores"
            / "predictions"
            / "dev-batch"
            / job.json()["id"]
            / "part-00000.parquet"
        )
        found = findings(pd.read_parquet(part).drop(columns="row"))
        assert found == {
            "environment": "denied: LookupError",
            "read database": "denied: PermissionError",
            "list project": "denied: PermissionError",
            "parent environment": "denied: PermissionError",
            "write marker": "denied: PermissionError",
            "connect": "denied: PermissionError",
        }
        assert not (project / "marker.txt").exists()
        with pytest.raises(TimeoutError):
            listener.accept()
    # The version says where it came from: uploaded by dev, every metric the caller's claim.
    status = loopline.status(project)
    uploaded = next(m for m in status.models if m.workspace == "dev" and m.version == version)
    assert uploaded.provenance.value == "uploaded"
    assert uploaded.provenance_detail == {"by": "dev", "claimed": ["accuracy", "log_loss", "roc_auc"]}
    assert json.dumps(uploaded.to_dict())


@pytest.fixture
def issuer() -> Iterator[Issuer]:
    with oidc_issuer() as running:
        yield running


def test_with_ci_attested_required_only_the_inner_loop_workflow_of_this_repository_and_commit_shares(
    trained_project: ProjectFactory, issuer: Issuer, tmp_path: Path
) -> None:
    project = trained_project("full")
    settings = {
        "LOOPLINE_REGISTRY__REQUIRE": "ci-attested",
        "LOOPLINE_REGISTRY__ATTESTATION__ISSUER": issuer.url,
        "LOOPLINE_REGISTRY__ATTESTATION__REPOSITORY": "acme/proj",
    }
    clone = tmp_path / "clone"
    git(tmp_path, "clone", "--quiet", str(project), str(clone))
    edit_yaml(clone / "params.yaml", C=0.5)
    head = commit_all(clone, "Less regularisation")
    git(clone, "push", "--quiet", "origin", "HEAD:refs/heads/less-regularisation")
    issuer.claims = job_claims("acme/proj", head)
    for team in start_team(project, **settings):
        files = model_files(project)
        forged = {
            "no token": None,
            "another commit": issuer.token(sha="b" * 40),
            "another workflow": issuer.token(
                job_workflow_ref="acme/proj/.github/workflows/evil.yml@refs/heads/main"
            ),
            "another repository": issuer.token(repository="mallory/proj"),
            "another audience": issuer.token(audience="someone-else"),
            "expired": issuer.token(exp=1_700_000_000, iat=1_699_999_000, nbf=1_699_999_000),
            "another key": issuer.token(key=new_key()),
        }
        reasons = {}
        for case, token in forged.items():
            answer = upload_run(team, files, head, CLAIMS, attestation=token)
            assert answer.status_code == 409, (case, answer.text)
            assert answer.json()["error_code"] == "ATTESTATION_REFUSED", (case, answer.text)
            reasons[case] = answer.json()["message"]
        assert "registry.require: ci-attested" in reasons["no token"]
        assert "sha is" in reasons["another commit"] and "job_workflow_ref is" in reasons["another workflow"]
        assert "repository is 'mallory/proj'" in reasons["another repository"]
        assert "audience" in reasons["another audience"].lower() and "expired" in reasons["expired"]
        assert "signature" in reasons["another key"].lower()
        assert registered(project, head) == []
        refused = [r.event for r in loopline.history(project, kind="refused") if r.event.git_commit == head]
        assert len(refused) == len(forged) and {e.actor for e in refused} == {"dev"}

        # The workflow itself, in a job with `id-token: write`: the CLI fetches the job's token and sends it.
        env = {"LOOPLINE_URL": team.plane.url, "LOOPLINE_TOKEN": team.tokens["dev"], **issuer.runner_env()}
        done = cli_process("inner-loop", "--json", cwd=clone, env=env)
        assert done.exit_code == 0, done.stderr
        shared = next(
            m for m in loopline.status(project).models if m.git_commit == head and m.workspace == "shared"
        )
        assert shared.provenance.value == "ci-attested"
        assert shared.provenance_detail["workflow"].startswith("acme/proj/.github/workflows/inner-loop.yml@")
        assert shared.provenance_detail["run_id"] == "4242" and shared.provenance_detail["by"] == "dev"

        # A local inner loop (no token) is refused before it trains.
        local = cli_process("inner-loop", cwd=project, env=settings)
        assert local.exit_code == 1 and "registry.require: ci-attested" in local.stderr


def test_datastore_paths_stay_in_their_store_and_errors_name_references_not_server_paths(
    plain_team: Team,
) -> None:
    team, project = plain_team, plain_team.project
    dev = team.tokens["dev"]
    inbox = project / ".loopline" / "datastores" / "inbox"
    (inbox / "escape").symlink_to(project / ".loopline")
    (inbox / "passwd.csv").symlink_to("/etc/passwd")
    attempts = {
        "inbox://../../../../../../etc/passwd": "leaves the datastore",
        "inbox://../../state.db": "leaves the datastore",
        "inbox://heldout/../../state.db": "leaves the datastore",
        "inbox:///etc/passwd": "is an absolute path",
        "file:///etc/passwd": "is not a datastore path",
        "inbox://escape/state.db": "leads out of the datastore",
        "inbox://passwd.csv": "leads out of the datastore",
        "inbox://a\\..\\..\\state.db": "is not a valid path",
    }
    for reference, problem in attempts.items():
        answer = team.plane.post("register_data", {"name": "stolen", "path": reference}, dev)
        assert answer.status_code == 400, (reference, answer.text)
        assert problem in answer.json()["message"], (reference, answer.text)
    assert team.plane.post("list_data", {}, dev).json() == []
    missing = team.plane.post(
        "register_data", {"name": "nothing", "path": "inbox://./nothing//here.csv"}, dev
    )
    assert missing.status_code == 404
    assert missing.json()["message"] == "inbox://nothing/here.csv does not exist"
    assert str(project) not in missing.text and "/tmp" not in missing.text
    # Where the instance lives on the server is shown to admins only; the others see it as ".".
    seen = team.plane.post("status", {}, dev)
    assert seen.status_code == 200 and str(project) not in seen.text, seen.text
    shown = seen.json()
    assert shown["root"] == "." and shown["stores"]["dev"]["tracking_uri"].startswith(
        "sqlite:///./.loopline/"
    )
    assert all(m["source_uri"].startswith("file://./.loopline/") for m in shown["models"]), shown["models"]
    admin = team.plane.post("status", {}, team.tokens["ada"]).json()
    assert admin["root"] == str(project) and admin["stores"] != shown["stores"]


def _testids(page: str, prefix: str) -> set[str]:
    return set(re.findall(rf'data-testid="{prefix}([^"]+)"', page))


def test_every_dashboard_page_shows_a_role_exactly_what_the_api_lets_it_read(
    trained_project: ProjectFactory,
) -> None:
    project = trained_project("full")
    commit = git(project, "rev-parse", "HEAD")
    loopline.outer_loop_test(project)
    loopline.outer_loop_prod(project)
    for team in start_team(project):
        team.ensure_fixtures()
        loopline.create_batch_endpoint("prod-batch", "prod", project=project)
        # A reader of dev alone: what the other workspaces hold is not theirs to see.
        loopline.user_add("vera", project=project)
        loopline.user_grant("vera", "reader", "dev", project=project)
        team.tokens["vera"] = str(loopline.token_create("vera", project=project).secret)
        everything = [(e.workspace, e.name) for e in loopline.list_endpoints(project=project)]
        assert {w for w, _ in everything} == {"dev", "test", "prod"}
        for user in team.tokens:
            _walk(team, commit, everything, user)
        # Nobody is shown anything only because of the page they asked for: the refusals are audited alike.
        assert loopline.history(project, kind="refused")


def _walk(team: Team, commit: str, everything: list[tuple[str, str]], user: str) -> None:
    """Every page and action of the dashboard against the API's answers for the same data, as ``user``."""
    token, project = team.tokens[user], team.project
    cookies = {"loopline_token": token}

    def page(path: str) -> httpx.Response:
        return httpx.get(f"{team.plane.url}/ui{path}", cookies=cookies, timeout=60)

    def api(route: str, body: dict[str, Any]) -> httpx.Response:
        return team.plane.post(route, body, token)

    listed = {(e["workspace"], e["name"]) for e in api("list_endpoints", {}).json()}
    endpoints_page = page("/endpoints").text
    assert _testids(endpoints_page, "endpoint-") == {f"{w}-{n}" for w, n in listed}, user
    for workspace, name in everything:
        allowed = (workspace, name) in listed
        shown = api("get_endpoint", {"name": name, "workspace": workspace}).status_code
        metrics = page(f"/endpoints/{workspace}/{name}/metrics.json").status_code
        releases = api("releases", {"endpoint": name, "workspace": workspace}).status_code
        checks = api("latest_check", {"endpoint": name, "workspace": workspace}).status_code
        assert (shown == 200, metrics == 200) == (allowed, allowed), (user, workspace, name)
        assert (releases == 403, checks == 403) == (not allowed, not allowed), (user, workspace, name)
        assert (f'rollback-target-{workspace}-{name}"' in endpoints_page) <= allowed
    status = api("status", {}).json()
    models = {(m["workspace"], m["version"]) for m in status["models"]}
    assert _testids(page("/models").text, "provenance-") == {f"{w}-{v}" for w, v in models}, user
    batch = {(e["workspace"], e["name"]) for e in api("list_batch_endpoints", {}).json()}
    assert {(e["workspace"], e["name"]) for e in status["batch_endpoints"]} == batch, user
    assert _testids(page("/batch").text, "batch-endpoint-") == {f"{w}-{n}" for w, n in batch}, user
    assert (("prod", "prod-batch") in batch) == (user != "vera" and user != "dev"), user
    history = {r["seq"] for r in api("history", {"limit": 500}).json()}
    assert _testids(page("/history").text, "event-") == {str(seq) for seq in history}, user
    commit_page = page(f"/commits/{commit}").text
    of_commit = {f"{w}-{v}" for w, v in models if w}
    shown_versions = _testids(commit_page, "version-")
    assert shown_versions <= of_commit and {v.split("-")[0] for v in shown_versions} == {
        m["workspace"] for m in api("status", {}).json()["models"] if m["git_commit"] == commit
    }, user
    report_api = api("validation_report", {"commit": commit}).status_code
    report_page = page(f"/commits/{commit}/report").status_code
    assert (report_api == 200) == (report_page == 200), (user, report_api, report_page)
    # An action: the same traffic again, through the dashboard's form and through the API.
    csrf = re.search(r'<meta name="csrf-token" content="([^"]+)">', endpoints_page)
    assert csrf is not None, user
    form = {
        "csrf": csrf.group(1),
        "endpoint": "proj",
        "workspace": "prod",
        "share:" + live_name(project): "100",
    }
    acted = httpx.post(
        f"{team.plane.url}/ui/actions/traffic", data=form, cookies=cookies, follow_redirects=False
    )
    api_traffic = api(
        "set_traffic", {"name": "proj", "workspace": "prod", "traffic": {live_name(project): 100}}
    )
    refused = "error=" in acted.headers["location"] and "may+not" in acted.headers["location"]
    assert refused == (api_traffic.status_code == 403), (
        user,
        acted.headers["location"],
        api_traffic.text,
    )


def live_name(project: Path) -> str:
    """The deployment taking prod's traffic."""
    info = loopline.get_endpoint("proj", workspace="prod", project=project)
    return next(d.name for d in info.deployments if d.traffic == 100)


BAD_TOKEN = "ll_000000000000_" + "x" * 43


def test_the_sign_in_limit_counts_the_real_client_and_the_dashboard_and_cannot_be_aimed_at_a_victim(
    new_project: ProjectFactory,
) -> None:
    project = new_project("full")
    # Without trusted proxies, X-Forwarded-For is the client's own words: rotating it changes nothing.
    for team in start_team(project):
        rotating = [
            team.plane.post("status", token=BAD_TOKEN, headers={"X-Forwarded-For": f"198.51.100.{i}"})
            for i in range(12)
        ]
        assert [r.status_code for r in rotating] == [401] * 10 + [429] * 2
    # Behind a trusted proxy (here: this machine), the nearest untrusted hop is the client.
    for team in start_team(project, LOOPLINE_CONTROL_PLANE__TRUSTED_PROXIES="127.0.0.1"):
        good = team.tokens["rita"]
        for _ in range(10):  # a client at 203.0.113.5 that writes the victim's address first
            forged = {"X-Forwarded-For": "10.0.0.9, 203.0.113.5"}
            assert team.plane.post("status", token=BAD_TOKEN, headers=forged).status_code == 401
        limited = team.plane.post("status", token=good, headers={"X-Forwarded-For": "203.0.113.5"})
        assert limited.status_code == 429 and "203.0.113.5" in limited.json()["message"]
        victim = team.plane.post("status", token=good, headers={"X-Forwarded-For": "10.0.0.9"})
        assert victim.status_code == 200, victim.text
        # Failed dashboard sessions count too, against the same limit as the API.
        cookie = {"loopline_token": BAD_TOKEN}
        for _ in range(10):
            httpx.get(f"{team.plane.url}/ui/", cookies=cookie, headers={"X-Forwarded-For": "192.0.2.7"})
        api = team.plane.post("status", token=good, headers={"X-Forwarded-For": "192.0.2.7"})
        assert api.status_code == 429, api.text
        signin = httpx.post(
            f"{team.plane.url}/ui/signin", data={"token": good}, headers={"X-Forwarded-For": "192.0.2.7"}
        )
        assert "too many failed sign-ins from 192.0.2.7" in signin.text


def test_a_dashboard_form_is_read_no_further_than_a_form_needs(new_project: ProjectFactory) -> None:
    project = new_project("simple")
    for team in start_team(project):
        # Before anyone signs in, a sign-in form that streams field after field is answered once past
        # 64 KiB (each field under a megabyte, a thousand of them, is what a form parser alone would read).
        form, field = "application/x-www-form-urlencoded", b"f=" + b"a" * 65530 + b"&"
        status, sent = _stream_until_answered(team.plane.port, "/ui/signin", "", field, 200 << 20, form)
        assert b" 413 " in status and sent < 32 << 20, (status, sent)
        signin = f"{team.plane.url}/ui/signin"
        said = httpx.post(signin, content=b"token=" + b"a" * (100 << 10), headers={"Content-Type": form})
        assert said.status_code == 413 and "the form is over 64 KiB" in said.text
        # Nor does a multipart form of files and fields get read (the dashboard's forms post none).
        files = {"token": (None, "x"), "upload": ("big.bin", b"\0" * (2 << 20))}
        multipart = httpx.post(signin, files=files)
        assert multipart.status_code == 200 and "takes its own forms only" in multipart.text
        assert "signed in" not in multipart.text
        # A signed-in member's action form past the limit comes back to the page with the reason, undone.
        ada = {"loopline_token": team.tokens["ada"]}
        action = f"{team.plane.url}/ui/actions/traffic"
        shares = {f"share:{i}": "1" for i in range(7000)}
        before = len(loopline.history(project))
        big = httpx.post(action, data={"endpoint": "dev-ep", "reason": "x", **shares}, cookies=ada)
        assert big.status_code == 303 and "form+is+over+64+KiB" in big.headers["location"], big.headers
        assert len(loopline.history(project)) == before  # not tried, not refused: not read
        # The sign-in form the page posts still signs in.
        good = httpx.post(signin, data={"token": team.tokens["ada"]})
        assert good.status_code == 303 and "signed+in+as+ada" in good.headers["location"]


def test_a_nul_character_in_an_argument_is_refused_before_any_store_sees_it(
    new_project: ProjectFactory, on_postgres: Any
) -> None:
    project = new_project("simple")  # on PostgreSQL, which keeps no NUL in any text
    for team in start_team(project):
        ada = team.tokens["ada"]
        before = len(loopline.history(project))
        retired = team.plane.post("retire_endpoint", {"name": "dev-ep", "reason": "why\u0000not"}, ada)
        assert retired.status_code == 400, retired.text
        assert (
            retired.json()["message"]
            == "reason holds a NUL character (\\0), which loopline keeps in no store; remove it"
        )
        assert "dev-ep" in {e.name for e in loopline.list_endpoints(project=project)}  # nothing retired
        listed = team.plane.post("history", {"actor": "a\u0000"}, ada)
        assert listed.status_code == 400 and "actor holds a NUL character" in listed.json()["message"]
        # The dashboard's filters and forms, on the control plane and at this machine, alike.
        signed_in = {"loopline_token": ada}
        page = httpx.get(f"{team.plane.url}/ui/history?actor=%00", cookies=signed_in)
        assert page.status_code == 400 and "actor holds a NUL character" in page.text
        board = Dashboard(project)
        try:
            page = httpx.get(f"{board.url}/ui/history?actor=%00")
            assert page.status_code == 400 and "actor holds a NUL character" in page.text
        finally:
            board.stop()
        assert len(loopline.history(project)) == before


def _tar(files: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        for name, data in files.items():
            entry = tarfile.TarInfo(name)
            entry.size = len(data)
            archive.addfile(entry, io.BytesIO(data))
    return buffer.getvalue()


def _stream_until_answered(
    port: int, path: str, token: str, chunk: bytes, most: int, kind: str = "application/json"
) -> tuple[bytes, int]:
    """Send a chunked body of ``kind`` to ``path`` until the server answers (or ``most`` bytes went out);
    the answer's status line and how many bytes were sent."""
    sent = 0
    with socket.create_connection(("127.0.0.1", port), timeout=30) as connection:
        connection.sendall(
            f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {token}\r\n"
            f"Content-Type: {kind}\r\nTransfer-Encoding: chunked\r\n\r\n".encode()
        )
        try:
            while sent < most and not select.select([connection], [], [], 0)[0]:
                connection.sendall(f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n")
                sent += len(chunk)
        except OSError:  # the server closed the connection after answering
            pass
        return connection.recv(4096).split(b"\r\n")[0], sent


def test_bodies_uploads_names_data_and_locks_are_bounded(trained_project: ProjectFactory) -> None:
    project = trained_project("full")
    limits = {
        "LOOPLINE_CONTROL_PLANE__MAX_UPLOAD_MB": "1",
        "LOOPLINE_CONTROL_PLANE__MAX_UPLOAD_EXPANDED_MB": "2",
        "LOOPLINE_CONTROL_PLANE__MAX_UPLOAD_FILES": "20",
    }
    for team in start_team(project, **limits):
        dev, ada = team.tokens["dev"], team.tokens["ada"]
        uploads = project / ".loopline" / "uploads"
        # A JSON body is refused as it streams past 1 MiB, not after the whole of it has been read.
        status, sent = _stream_until_answered(team.plane.port, "/v1/status", dev, b" " * 65536, 200 << 20)
        assert b" 413 " in status and sent < 32 << 20, (status, sent)
        with socket.create_connection(("127.0.0.1", team.plane.port), timeout=30) as connection:
            connection.sendall(  # a body it says is 200 MB: refused before any of it is sent
                f"POST /v1/status HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {dev}\r\n"
                "Content-Type: application/json\r\nContent-Length: 200000000\r\n\r\n".encode()
            )
            assert b" 413 " in connection.recv(4096).split(b"\r\n")[0]
        # An unknown argument name of 900 kB is not echoed back.
        named = team.plane.post("status", {"x" * 900_000: 1}, dev)
        assert named.status_code == 400 and len(named.content) < 1024, named.text[:300]
        assert named.json()["message"].startswith("status has no argument xxxx")
        # Nor is a name of 50 kB given in any argument: the message keeps its start, cut, and the way out.
        for route, body in (
            ("history", {"kind": "Z" * 50_000}),
            ("get_endpoint", {"name": "Z" * 50_000, "workspace": "dev"}),
        ):
            echoed = team.plane.post(route, body, ada)
            assert echoed.status_code in (400, 404) and len(echoed.content) < 1500, echoed.text[:300]
            assert "ZZZ..." in echoed.json()["message"]
        # A scoring call cannot hold the control plane without end, nor send a header no request holds.
        invoke, blue = {"name": "dev-ep", "payload": {"inputs": [[1.0]]}}, "\u84dd"
        for odd, said in (
            ({"timeout": -1}, "timeout is -1 seconds; give more than 0 and at most 600"),
            ({"timeout": 1e308}, "timeout is 1e+308 seconds"),
            ({"wait": 10**19}, "wait is 1e+19 seconds; give 0 to 600"),
            ({"deployment": blue * 100}, f"deployment name '{blue * 64}...' must be lowercase"),
            ({"deployment": "blue\nX-Injected: 1"}, "deployment name 'blue\\nX-Injected: 1' must be"),
            ({"content_type": "text/csv\r\nX-Injected: 1"}, "content type must be a media type"),
        ):
            answer = team.plane.post("invoke_endpoint", {**invoke, **odd}, ada)
            assert answer.status_code == 400 and said in answer.json()["message"], (odd, answer.text)
            assert len(answer.content) < 1024, odd
        # Uploads: over the compressed size, over the unpacked size, too many files. Nothing stays behind.
        headers = {"Content-Type": "application/gzip"}
        big = team.plane.post("uploads", token=dev, content=os.urandom(3 << 19), headers=headers)
        assert big.status_code == 413 and "control_plane.max_upload_mb" in big.json()["message"]
        data = team.plane.post(
            "uploads?for=upload_data", token=dev, content=os.urandom(3 << 19), headers=headers
        )
        assert data.status_code == 413 and data.json()["message"].endswith(
            "copy the files into the inbox with this machine's credentials for it: "
            "`loopline data upload NAME SOURCE --direct`"
        )
        assert list(uploads.iterdir()) == []
        mlmodel = (model_files(project) / "MLmodel").read_bytes()
        bombs = {
            "control_plane.max_upload_expanded_mb": {"model/MLmodel": mlmodel, "model/zeros": bytes(3 << 20)},
            "control_plane.max_upload_files": {f"model/f{i}": b"x" for i in range(30)},
        }
        for setting, files in bombs.items():
            taken = team.plane.post("uploads", token=dev, content=_tar(files), headers=headers)
            assert taken.status_code == 200, taken.text
            identity = {"commit": git(project, "rev-parse", "HEAD"), "branch": "main", "dirty_files": []}
            body = {"upload": taken.json()["upload"], "identity": identity, "run": {"metrics": CLAIMS}}
            refused = team.plane.post("inner_loop", body, dev)
            assert refused.status_code == 413 and setting in refused.json()["message"], refused.text
            assert list(uploads.iterdir()) == []
        # A malformed CSV is a named 400 remotely and exit 1 locally, never an unexpected error.
        (project / ".loopline" / "datastores" / "inbox" / "broken.csv").write_text("a,b\n1,2\n3,4,5,6\n")
        registered_data = team.plane.post(
            "register_data", {"name": "broken", "path": "inbox://broken.csv"}, dev
        )
        assert registered_data.status_code == 200, registered_data.text
        batch = team.plane.post(
            "create_batch_deployment", {"endpoint": "dev-batch", "name": "b", "version": 1}, dev
        )
        assert batch.status_code == 200, batch.text
        scored = team.plane.post("batch_invoke", {"endpoint": "dev-batch", "data": "broken"}, dev)
        assert scored.status_code == 400 and scored.json()["error_code"] == "INVALID_DATA", scored.text
        assert scored.json()["message"].startswith("inbox://broken.csv is not a valid CSV table: ")
        local = cli_process("batch", "invoke", "dev-batch", "--input", "broken", cwd=project)
        assert local.exit_code == 1 and "Traceback" not in local.stderr
        assert local.stderr.strip().count("\n") == 0 and "inbox://broken.csv" in local.stderr
        # A lock whose holder is gone for good: anyone may see it, only an admin breaks it, audited.
        now = loopline_now()
        with Instance.open(project).db.write() as connection:
            connection.execute(
                insert(locks).values(
                    name="release:prod:proj",
                    owner="paul",
                    host="ci-runner-7",
                    pid=4242,
                    acquired_at=now,
                    expires_at=now + timedelta(hours=1),
                )
            )
        seen = team.plane.post("list_locks", {}, team.tokens["rita"])
        assert [(lock["name"], lock["host"]) for lock in seen.json()] == [
            ("release:prod:proj", "ci-runner-7")
        ]
        assert team.plane.post("unlock", {"name": "release:prod:proj"}, dev).status_code == 403
        broken = team.plane.post("unlock", {"name": "release:prod:proj", "reason": "runner lost"}, ada)
        assert broken.status_code == 200 and broken.json()["pid"] == 4242, broken.text
        assert team.plane.post("list_locks", {}, ada).json() == []
        event = loopline.history(project, kind="lock-broken")[-1].event
        assert (event.actor, event.target, event.reason) == ("ada", "release:prod:proj", "runner lost")
        assert event.details == {"holder": "paul", "host": "ci-runner-7", "pid": 4242}
        again = team.plane.post("unlock", {"name": "release:prod:proj"}, ada)
        assert again.status_code == 404 and "`loopline locks`" in again.json()["message"]
        # The dashboard cannot be framed, and runs only its own scripts.
        page = httpx.get(f"{team.plane.url}/ui/models", cookies={"loopline_token": team.tokens["rita"]})
        assert page.status_code == 200 and page.headers["x-frame-options"] == "DENY"
        policy = page.headers["content-security-policy"]
        assert "frame-ancestors 'none'" in policy and "script-src 'self'" in policy
        assert page.headers["x-content-type-options"] == "nosniff"


def _failed(team: Team, user: str) -> list[dict[str, Any]]:
    answer = team.plane.post("notifications_failed", {}, team.tokens[user])
    assert answer.status_code == 200, answer.text
    return list(answer.json())


def _deliver_until_failed(team: Team, workspaces: set[str]) -> bool:
    """Send what is due once more (as an admin); True once deliveries of events of ``workspaces`` failed."""
    team.plane.post("notifications_deliver", {}, team.tokens["ada"])
    return workspaces <= {f["workspace"] for f in _failed(team, "ada")}


def test_a_reader_sees_the_failed_deliveries_of_the_events_it_may_read_and_no_others(
    trained_project: ProjectFactory,
) -> None:
    project = trained_project("full")
    # A receiver that takes nothing: each event it is sent after it is first seen is kept as failed.
    chat = {"url": "http://127.0.0.1:9/hook", "events": ["endpoint-created"]}
    hook = {"webhooks": {"chat": chat}, "attempts": 1, "timeout_seconds": 1}
    edit_yaml(project / "loopline.yaml", notifications=hook)
    for team in start_team(project):
        for name, workspace in (("prod-only", "prod"), ("dev-only", "dev")):
            made = team.plane.post(
                "create_endpoint", {"name": name, "workspace": workspace}, team.tokens["ada"]
            )
            assert made.status_code == 200, made.text
        wait_until(
            lambda team=team: _deliver_until_failed(team, {"prod", "dev"}),
            60,
            "prod and dev deliveries failing",
        )
        for user in ("rita", "dev"):
            seen = _failed(team, user)
            history = {r["seq"] for r in team.plane.post("history", {"limit": 500}, team.tokens[user]).json()}
            assert {f["seq"] for f in seen} <= history, user  # what the history shows them, no more
            assert ("prod" in {f["workspace"] for f in seen}) == (user == "rita"), (user, seen)
            assert "dev" in {f["workspace"] for f in seen}, (user, seen)
