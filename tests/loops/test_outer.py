"""The outer loops and rollback: the whole story of several commits, through real stores and servers."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import mlflow
import pandas as pd
import pytest
import yaml
from mlflow import MlflowClient

import loopline
from loopline.config import load_config
from loopline.errors import GateFailed, NotFound, Refused, TierDisabled, UsageError
from tests.conftest import ProjectFactory
from tests.helpers import Steps, cli, cli_process, commit_all, edit_yaml, git, mlflow_pointed_at
from tests.servers import AZURITE_ACCOUNT, Dashboard, Server

pytestmark = pytest.mark.slow


def prod_client(project: Path) -> MlflowClient:
    location = load_config(project).store("prod")
    return MlflowClient(location.tracking_uri, location.registry_uri)


def live(project: Path) -> dict[str, int]:
    return loopline.get_endpoint("proj", project=project).traffic


def live_commit(project: Path) -> str:
    info = loopline.get_endpoint("proj", project=project)
    return next(d.git_commit for d in info.deployments if d.traffic == 100)


def new_commit(project: Path, message: str, **params: float) -> str:
    edit_yaml(project / "params.yaml", **params)
    return commit_all(project, message)


@pytest.mark.long
def test_the_full_tier_story_in_team_mode_on_postgres_and_azure_blob(
    new_project: ProjectFactory,
    on_postgres: Any,
    on_azurite: str,
    capsys: pytest.CaptureFixture[str],
) -> None:
    project = new_project("full")
    loopline.inner_loop(project)
    full_tier_story(project, capsys)

    assert loopline.status(project).state_url.startswith("postgresql")
    assert not list((project / ".loopline").glob("**/*.db")), "no SQLite file may be written"
    assert not list((project / ".loopline").glob("**/MLmodel")), "no model file may be written locally"
    assert loopline.audit_verify(project=project).intact
    moves = [e.event for e in loopline.history(project) if e.event.kind in {"shared", "promoted"}]
    assert len(moves) >= 6 and not any(e.details["bytes_copied"] for e in moves)
    versions = [m for m in loopline.status(project).models if m.workspace == "prod"]
    # Sources as MLflow names Azure Blob (it reads no az://), in the model store's container and folder.
    container, _, folder = on_azurite.removeprefix("az://").partition("/")
    within = f"wasbs://{container}@{AZURITE_ACCOUNT}.blob.core.windows.net/{folder}/sha256/"
    assert versions and all(m.source_uri.startswith(within) for m in versions), [
        m.source_uri for m in versions
    ]
    # A stock MLflow client loads and scores a released version straight from the blob store.
    with mlflow_pointed_at(project, "prod"):
        loaded = mlflow.pyfunc.load_model("models:/proj-classifier@production")
        rows = pd.read_csv(project / "data" / "inbox" / "heldout.csv").drop(columns=["label"]).head(3)
        assert len(loaded.predict(rows)) == 3
        # Clients that still load by stage (models:/proj-classifier/Production) find it on PostgreSQL too.
        prod = MlflowClient()
        with pytest.warns(FutureWarning):
            staged = prod.get_latest_versions("proj-classifier", ["Production"])
        live = prod.get_model_version_by_alias("proj-classifier", "production")
        assert [str(v.version) for v in staged] == [str(live.version)]
    location = load_config(project).store("shared")
    shared = MlflowClient(location.tracking_uri, location.registry_uri)
    report = shared.get_model_version("proj-classifier", "1").tags["validation_report"]
    assert report.startswith("wasbs://artifacts@")
    downloaded = Path(mlflow.artifacts.download_artifacts(artifact_uri=report, dst_path=str(project.parent)))
    assert "accuracy" in downloaded.read_text()
    # The dashboard links each validated version to its report (read from the object store).
    a = loopline.history(project, kind="rolled-back")[-1].event.git_commit
    board = Dashboard(project)
    try:
        models = httpx.get(f"{board.url}/ui/models?commit={a[:7]}").text
        assert f"/ui/commits/{a}/report" in models
        page = httpx.get(f"{board.url}/ui/commits/{a}/report")
        assert page.status_code == 200 and "accuracy" in page.text and "passed" in page.text
        missing = httpx.get(f"{board.url}/ui/commits/{'0' * 7}/report")
        assert missing.status_code == 404 and "has no validation report" in missing.text
    finally:
        board.stop()


def full_tier_story(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Commit A released; B fails validation and never reaches prod; C released; rollback to A."""
    a = git(project, "rev-parse", "HEAD")
    tested = loopline.outer_loop_test(project)
    assert tested.passed and tested.report["metrics"]["accuracy"] >= 0.9
    assert tested.report["champion"] is None
    released = loopline.outer_loop_prod(project)
    assert released.changed and live_commit(project) == a
    assert (
        prod_client(project).get_model_version_by_alias("proj-classifier", "production").tags["git_commit"]
        == a
    )

    b = new_commit(project, "Noisy labels", label_noise=0.4)
    loopline.inner_loop(project)
    result = cli(capsys, "outer-loop", "test", "-C", str(project))
    assert result.exit_code == 1 and "validation failed: accuracy = " in result.stderr
    assert f"## Validation of proj-classifier v2 ({b[:7]}): FAILED" in result.stderr  # the report, for people
    report = loopline.validation_report(b, project=project).data
    assert report["champion"]["git_commit"] == a and not report["challenger"]["passed"]
    registry = [m for m in loopline.status(project).models if m.workspace == "shared" and m.git_commit == b]
    assert registry[0].validation_status == "failed"
    result = cli(capsys, "outer-loop", "prod", "-C", str(project))
    assert result.exit_code == 1 and "failed validation in test" in result.stderr
    assert live_commit(project) == a
    assert not [m for m in loopline.status(project).models if m.workspace == "prod" and m.git_commit == b]

    c = new_commit(project, "Less regularisation", label_noise=0.0, C=0.5)
    loopline.inner_loop(project)
    assert loopline.outer_loop_test(project).report["champion"]["git_commit"] == a
    released = loopline.outer_loop_prod(project)
    assert live_commit(project) == c
    # B never reached prod: the registry's v3 is prod's v2; the release names both, the registry's first
    assert released.message == f"released proj-classifier v3 ({c[:7]}; v2 in prod) to prod endpoint proj"

    back = loopline.rollback(project, commit=a[:7], reason="drill")
    assert back.changed and live_commit(project) == a and back.previous["git_commit"] == c  # type: ignore[index]
    assert (
        prod_client(project).get_model_version_by_alias("proj-classifier", "production").tags["git_commit"]
        == a
    )
    again = loopline.rollback(project, commit=a[:7])
    assert not again.changed and "already live" in again.message

    story = [
        (e.event.kind, e.event.workspace, e.event.outcome) for e in loopline.history(project, commit=a[:7])
    ]
    assert story == [
        ("gate-evaluated", "dev", "passed"),
        ("registered", "dev", "ok"),
        ("shared", "shared", "ok"),
        ("promoted", "test", "ok"),
        ("deployed", "test", "ok"),
        ("gate-evaluated", "test", "passed"),
        ("promoted", "prod", "ok"),
        ("deployed", "prod", "ok"),
        ("released", "prod", "ok"),
        ("rolled-back", "prod", "ok"),
    ]
    shown = cli(capsys, "outer-loop", "report", "--commit", a[:7], "--json", "-C", str(project))
    assert shown.exit_code == 0 and shown.json()["outcome"] == "passed" and shown.json()["git_commit"] == a
    head = cli(capsys, "outer-loop", "report", "-C", str(project))
    assert head.exit_code == 0 and "accuracy" in head.stdout  # HEAD is C, validated and released
    passed = loopline.validation_report(a[:7], project=project)
    assert (
        passed.outcome == "passed"
        and "accuracy" in passed.markdown
        and passed.data["metrics"]["accuracy"] > 0.9
    )
    failed = loopline.validation_report(b, project=project)
    assert failed.outcome == "failed" and failed.git_commit == b and failed.uri != passed.uri
    b_story = [e.event.kind for e in loopline.history(project, commit=b[:7])]
    assert "promoted" in b_story and "refused" in b_story and "released" not in b_story
    kinds = [e.event.kind for e in loopline.history(project) if e.event.kind in {"released", "rolled-back"}]
    assert kinds == ["released", "released", "rolled-back"]


def test_outer_loop_test_of_a_simple_tier_project_never_set_up_says_the_tier(tmp_path: Path) -> None:
    # before `loopline up` the refusal is the tier's, and no empty database is left behind
    loopline.init(tmp_path / "proj", "simple")
    with pytest.raises(TierDisabled, match="full tier"):
        loopline.outer_loop_test(tmp_path / "proj")
    assert not (tmp_path / "proj" / ".loopline" / "state.db").exists()


def test_the_simple_tier_story(
    a_live_b_registered: tuple[Path, str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    project, a, b = a_live_b_registered
    with pytest.raises(TierDisabled, match="full tier"):
        loopline.outer_loop_test(project)
    loopline.create_batch_endpoint("nightly", "prod", project=project)  # scoring with A, as prod serves
    loopline.create_batch_deployment("nightly", "blue", version=1, project=project)
    released = loopline.outer_loop_prod(project)
    assert live_commit(project) == b
    assert live(project) == {f"v1-{a[:7]}": 0, f"v2-{b[:7]}": 100}
    # The release moved the online endpoint only, and says which batch endpoint still scores with A.
    nightly = {
        "endpoint": "nightly",
        "workspace": "prod",
        "deployment": "blue",
        "version": 1,
        "git_commit": a,
    }
    assert released.batch_behind == [nightly]
    back = loopline.rollback(project, previous=True)
    assert live_commit(project) == a and back.git_commit == a and back.batch_behind == []
    # A client written before aliases asks MLflow for the Production stage (models:/NAME/Production).
    stages = {v.tags["git_commit"]: v.current_stage for v in prod_client(project).search_model_versions("")}
    assert stages == {a: "Production", b: "Archived"}
    forward = cli(capsys, "rollback", "--previous", "--json", "-C", str(project))
    assert live_commit(project) == b and forward.json()["git_commit"] == b
    assert forward.json()["batch_behind"] == [nightly]
    assert " ".join(forward.stderr.split()).endswith(
        f"warning: batch endpoint nightly still scores with blue (v1, {a[:7]}) by default; to score with "
        f"{b[:7]} too: `loopline batch-deployment create nightly NAME --commit {b[:7]} --workspace prod`, "
        "then `loopline batch promote nightly NAME --workspace prod`"
    )
    with pytest.raises(NotFound) as never:  # a commit prod never had: said, with where to look
        loopline.rollback(project, commit="0000000")
    assert never.value.message == (
        "no version of 'proj-classifier' in prod comes from a commit starting with 0000000; "
        "`loopline status` lists each workspace's versions with their commits"
    )
    history = loopline.releases(project=project)
    assert [(r.kind, r.git_commit) for r in history] == [
        ("release", a),
        ("release", b),
        ("rollback", a),
        ("rollback", b),
    ]


def test_a_canary_step_without_enough_requests_rolls_back_where_the_team_asks_for_evidence(
    a_live_b_registered: tuple[Path, str, str],
) -> None:
    project, a, b = a_live_b_registered
    config = yaml.safe_load((project / "loopline.yaml").read_text())
    config.setdefault("release", {}).update(too_few_requests="roll-back", min_requests=5)
    (project / "loopline.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    said = r"canary breach at 10%: too few requests to judge \([0-2], release\.min_requests is 5"
    with pytest.raises(Refused, match=said):
        # none but the release's own in the second it began: the smoke test's, and the live model's
        # request that the new one must take
        loopline.outer_loop_prod(project, canary=[10, 100], watch=1)
    assert live(project) == {f"v1-{a[:7]}": 100, f"v2-{b[:7]}": 0} and live_commit(project) == a
    rolled = loopline.history(project, kind="rolled-back")[-1].event
    assert rolled.outcome == "automatic" and "release.too_few_requests is roll-back" in (rolled.reason or "")


def test_a_commit_may_be_named_by_a_git_ref_as_a_release_tag_names_it(
    a_live_b_registered: tuple[Path, str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    project, a, b = a_live_b_registered
    git(project, "tag", "v1.0", a)
    released = cli(capsys, "outer-loop", "prod", "--commit", "HEAD", "-C", str(project))
    assert released.exit_code == 0 and live_commit(project) == b, released.stderr
    back = cli(capsys, "rollback", "--commit", "v1.0", "-C", str(project))
    assert back.exit_code == 0 and live_commit(project) == a, back.stderr
    assert {r.event.git_commit for r in loopline.history(project, commit="HEAD~1")} == {a}
    for wrong in ("no-such-tag", "--help"):
        refused = cli(capsys, "rollback", "--commit", wrong, "-C", str(project))
        assert refused.exit_code == 2 and live_commit(project) == a
        assert refused.stderr.strip() == (
            f"error: '{wrong}' is not a commit: give a SHA (or a prefix of 7 or more hex digits), or a git "
            "ref of the project's repository such as HEAD~1, a branch or a tag"
        )


def test_a_project_whose_path_has_spaces_goes_from_training_to_prod_and_to_a_batch_job(
    new_project: ProjectFactory,
) -> None:
    """MLflow writes local artifact locations as file URIs, a space as %20: read back as paths."""
    project = new_project("simple", "my proj")
    made = loopline.inner_loop(project)
    assert made.created and made.shared.source_uri.startswith("file://") and "%20" in made.shared.source_uri
    released = loopline.outer_loop_prod(project)
    assert released.changed
    assert loopline.get_endpoint(released.endpoint, project=project).traffic == {released.deployment: 100}
    with mlflow_pointed_at(project, "prod"):
        loaded = mlflow.pyfunc.load_model(f"models:/{released.model}@production")
        staged = mlflow.pyfunc.load_model(f"models:/{released.model}/Production")  # as older clients ask
    rows = pd.read_csv(project / "data" / "inbox" / "heldout.csv").drop(columns=["label"])
    assert len(loaded.predict(rows.head(3))) == 3
    assert list(staged.predict(rows.head(3))) == list(loaded.predict(rows.head(3)))
    loopline.register_data("heldout", "inbox://heldout.csv", project=project)
    loopline.create_batch_endpoint("nightly", "prod", project=project)
    loopline.create_batch_deployment("nightly", "blue", version=released.version, project=project)
    job = loopline.batch_invoke("nightly", "heldout", project=project)
    assert job.status == "succeeded" and job.rows == len(rows)


def test_the_experimentation_tier_refuses_prod_naming_the_tier(
    new_project: ProjectFactory, capsys: pytest.CaptureFixture[str]
) -> None:
    project = new_project("experimentation")
    for argv in (["outer-loop", "prod"], ["outer-loop", "test"], ["rollback", "--previous"]):
        result = cli(capsys, *argv, "-C", str(project))
        assert result.exit_code == 1
        assert "'experimentation' tier" in result.stderr and len(result.stderr.strip().splitlines()) == 1


def test_an_override_releases_an_unvalidated_version_and_is_audited(trained_project: ProjectFactory) -> None:
    project = trained_project("full")
    with pytest.raises(Refused, match="not validated in test"):
        loopline.outer_loop_prod(project)
    loopline.outer_loop_prod(project, override_reason="hotfix for incident 42")
    released = loopline.history(project, kind="released")[-1].event
    assert released.reason == "hotfix for incident 42" and released.details["override"] is True


def test_outer_loop_test_validates_on_a_data_asset_of_held_out_rows(trained_project: ProjectFactory) -> None:
    project = trained_project("full")
    config = yaml.safe_load((project / "loopline.yaml").read_text())
    config["validation"] = {**config.get("validation", {}), "data": "holdout"}
    (project / "loopline.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    commit_all(project, "Validate on the holdout data asset")
    with pytest.raises(NotFound) as missing:
        loopline.outer_loop_test(project)
    assert missing.value.message == (
        "the held-out data 'holdout' (validation.data) is neither a data asset nor a file in the inbox; "
        "upload held-out rows with their labels: `loopline data upload holdout PATH`"
    )
    # refused before anything moved: nothing copied into test, deployed or audited
    assert not [v for v in loopline.status(project).models if v.workspace == "test"]
    assert not [e for e in loopline.history(project) if e.event.workspace == "test"]
    asset, _ = loopline.upload_data("holdout", project / "data" / "inbox" / "heldout.csv", project=project)
    result = loopline.outer_loop_test(project)
    assert result.passed, result.report_markdown
    data = result.report["data"]
    assert (data["asset"], data["digest"], data["path"]) == ("holdout:1", asset.digest, asset.reference)
    assert "Held-out data: data asset holdout:1, `inbox://holdout/" in result.report_markdown
    # Validated again (stricter thresholds), the same version keeps both reports, each its event's.
    config["validation"]["thresholds"] = {"accuracy": {"max": 0.5}}
    (project / "loopline.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    commit_all(project, "Stricter validation")
    with pytest.raises(GateFailed):
        loopline.outer_loop_test(project)
    events = [
        e.event for e in loopline.history(project, kind="gate-evaluated") if e.event.workspace == "test"
    ]
    assert [(e.version, e.outcome) for e in events] == [(1, "passed"), (1, "failed")]
    uris = [e.details["report_uri"] for e in events]
    assert len(set(uris)) == 2
    from loopline.instance import Instance

    shared = Instance.open(project).store("shared")
    first, second = (shared.read_text(uri).splitlines()[0] for uri in uris)
    assert first == result.report_markdown.splitlines()[0] and first.endswith(": passed")
    assert second == loopline.validation_report(project=project).markdown.splitlines()[0]
    assert second.endswith(": FAILED")


def test_a_commit_without_a_registry_version_is_named(new_project: ProjectFactory) -> None:
    project = new_project("simple")
    with pytest.raises(NotFound, match="run `loopline inner-loop` at that commit first"):
        loopline.outer_loop_prod(project)


def test_rollback_redeploys_a_version_that_is_no_longer_loaded(
    a_live_b_registered: tuple[Path, str, str],
) -> None:
    project, a, b = a_live_b_registered
    edit_yaml(project / "loopline.yaml", release={"keep_deployments": 1})
    commit_all(project, "Keep only the live deployment")
    loopline.outer_loop_prod(project, commit=b)
    assert [d.name for d in loopline.get_endpoint("proj", project=project).deployments] == [f"v2-{b[:7]}"]
    loopline.rollback(project, commit=a[:8])
    assert live_commit(project) == a


def _no_server_left(project: Path, timeout: float = 15) -> bool:
    """True once no `loopline serve` of ``project`` runs any more."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        running = []
        for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
            try:
                argv = cmdline.read_bytes().split(b"\0")
            except OSError:
                continue
            if b"serve" in argv and str(project).encode() in argv:
                running.append(argv)
        if not running:
            return True
        time.sleep(0.2)
    return False


@pytest.mark.parametrize(
    "failpoint",
    [
        "copy-to-prod-after-files",
        "copy-to-prod-after-register",
        "release-after-deploy",
        "release-mid-traffic",
    ],
)
def test_a_release_killed_at_any_step_leaves_prod_consistent_and_a_rerun_finishes(
    a_live_b_registered: tuple[Path, str, str], failpoint: str
) -> None:
    project, a, b = a_live_b_registered
    crashed = cli_process(
        "outer-loop",
        "prod",
        "--canary",
        "50,100",
        "--watch",
        "0",
        cwd=project,
        env={"LOOPLINE_FAILPOINT": failpoint},
    )
    assert crashed.exit_code == 137, crashed.stderr
    assert _no_server_left(project), "the killed release left its temporary server running"
    versions = prod_client(project).search_model_versions("name = 'proj-classifier'")
    assert all("content_digest" in v.tags for v in versions)  # nothing half-registered
    alias = prod_client(project).get_model_version_by_alias("proj-classifier", "production")
    assert alias.tags["git_commit"] == a
    assert sum(live(project).values()) == 100
    rerun = cli_process("outer-loop", "prod", "--canary", "50,100", "--watch", "0", "--json", cwd=project)
    assert rerun.exit_code == 0, rerun.stderr
    assert live_commit(project) == b
    prod_versions = [
        m for m in loopline.status(project).models if m.workspace == "prod" and m.git_commit == b
    ]
    assert len(prod_versions) == 1 and "production" in prod_versions[0].aliases
    assert [r.git_commit for r in loopline.releases(project=project)] == [a, b]


@pytest.mark.parametrize("failpoint", ["release-step-30", "release-watch-30", "release-step-100"])
def test_a_canary_release_killed_at_any_step_continues_from_that_step_with_its_watch_window(
    a_live_b_registered: tuple[Path, str, str], failpoint: str
) -> None:
    project, a, b = a_live_b_registered
    release = ("outer-loop", "prod", "--canary", "30,100", "--watch", "2", "--json")
    crashed = cli_process(*release, cwd=project, env={"LOOPLINE_FAILPOINT": failpoint})
    assert crashed.exit_code == 137, crashed.stderr
    reached = int(failpoint.rsplit("-", 1)[1])
    assert {d.git_commit: d.traffic for d in loopline.get_endpoint("proj", project=project).deployments} == {
        a: 100 - reached,
        b: reached,
    }
    alias = prod_client(project).get_model_version_by_alias("proj-classifier", "production")
    assert alias.tags["git_commit"] == a  # the alias moves only when the last step is done

    # Run again with other options: the release goes on with its own steps, from the step it reached.
    rerun = cli_process("outer-loop", "prod", "--json", cwd=project)
    assert rerun.exit_code == 0, rerun.stderr
    result = json.loads(rerun.stdout)
    assert [step["percent"] for step in result["steps"]] == [30, 100][[30, 100].index(reached) :]
    # The step it stopped in is watched for what was left of its window, counted from before the crash.
    assert all(step["seconds"] >= 2 for step in result["steps"])
    assert "continuing the release of proj-classifier v2" in rerun.stderr
    assert live_commit(project) == b
    assert [r.git_commit for r in loopline.releases(project=project)] == [a, b]
    alias = prod_client(project).get_model_version_by_alias("proj-classifier", "production")
    assert alias.tags["git_commit"] == b
    again = cli_process(*release, cwd=project)
    assert again.exit_code == 0 and "already live" in json.loads(again.stdout)["message"]


def test_another_release_waits_for_an_unfinished_one_and_a_rollback_ends_it(
    a_live_b_registered: tuple[Path, str, str],
) -> None:
    project, a, b = a_live_b_registered
    cut_short_at_50(project)
    c = new_commit(project, "Third model", C=0.6)
    loopline.inner_loop(project)
    with pytest.raises(
        Refused,
        match=rf"the release of proj-classifier v2 \({b[:7]}\), stopped at 50%, has not ended: run "
        rf"`loopline outer-loop prod --commit {b[:7]}` to finish it, or `loopline rollback --commit "
        rf"{a[:7]}` to return to what was live before it$",
    ):
        loopline.outer_loop_prod(project, commit=c)
    back = loopline.rollback(project, previous=True)  # over a release cut short: what was live before it
    assert back.changed and back.git_commit == a
    assert live_commit(project) == a and live(project)[f"v2-{b[:7]}"] == 0
    released = loopline.outer_loop_prod(project, commit=c, canary=[100])
    assert released.changed and live_commit(project) == c


@contextmanager
def canary_watching(project: Path, commit: str) -> Iterator[subprocess.Popen[str]]:
    """`outer-loop prod --commit COMMIT` in a child process, watching its first canary step (10%) for ten
    minutes when the block begins; killed after the block."""
    script = Path(sys.executable).with_name("loopline")
    argv = [str(script), "outer-loop", "prod", "--commit", commit, "--canary", "10,100", "--watch", "10m"]
    release = subprocess.Popen(argv, cwd=project, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 120
        while live(project).get(f"v2-{commit[:7]}") != 10:
            assert release.poll() is None and time.monotonic() < deadline, release.communicate()
            time.sleep(0.2)
        yield release
    finally:
        release.kill()


def cut_short_at_50(project: Path) -> None:
    """A release of HEAD in canary steps 50, 100, killed once it moved 50% of the traffic."""
    crashed = cli_process(
        "outer-loop", "prod", "--canary", "50,100", "--watch", "0", cwd=project,
        env={"LOOPLINE_FAILPOINT": "release-step-50"},
    )  # fmt: skip
    assert crashed.exit_code == 137, crashed.stderr


def alias_stayed_and_nothing_blocks(project: Path, stopped: str) -> None:
    """After a release of ``stopped`` (prod v2) was ended midway: the production alias never left v1, and
    nothing unfinished blocks releasing it again."""
    assert [m.aliases for m in loopline.status(project).models if m.workspace == "prod"] == [
        ("production",),
        (),
    ]
    released = loopline.outer_loop_prod(project, commit=stopped, canary=[100])
    assert released.changed and live_commit(project) == stopped


def test_a_rollback_stops_a_canary_in_progress_instead_of_waiting_for_its_watch(
    a_live_b_registered: tuple[Path, str, str],
) -> None:
    project, a, b = a_live_b_registered
    with canary_watching(project, b) as release:
        # A rollback that is refused stops nothing.
        unknown = cli_process("rollback", "--commit", "0000000", cwd=project, timeout=120)
        assert unknown.exit_code == 1 and "0000000" in unknown.stderr, unknown.stderr
        assert release.poll() is None and live(project)[f"v2-{b[:7]}"] == 10
        # One that goes ahead ends the release at once, rather than wait ten minutes for the lock.
        back = cli_process(
            "rollback", "--previous", "--reason", "bad canary", "--json", cwd=project, timeout=120
        )
        _, stderr = release.communicate(timeout=60)
    assert back.exit_code == 0, back.stderr
    assert f"stopping the release of proj-classifier v2 ({b[:7]}) in progress" in back.stderr
    assert back.json()["git_commit"] == a and back.json()["changed"]  # --previous: what was live before
    assert live_commit(project) == a and live(project)[f"v2-{b[:7]}"] == 0
    assert release.returncode == 1
    rolled = loopline.history(project, kind="rolled-back")[-1].event
    assert rolled.reason == "bad canary" and rolled.details["stopped_release"] == b
    # the release says who ended it, how, and when
    said = f"the release of proj-classifier v2 ({b[:7]}) was stopped by {rolled.actor}'s "
    assert re.search(re.escape(said) + r"rollback to the previous release at \d\d:\d\d:\d\d UTC;", stderr), (
        stderr
    )
    alias_stayed_and_nothing_blocks(project, b)


def test_a_split_set_by_hand_during_a_canary_ends_the_release_so_it_moves_no_more_traffic(
    a_live_b_registered: tuple[Path, str, str],
) -> None:
    project, a, b = a_live_b_registered
    old = next(
        d.name for d in loopline.get_endpoint("proj", project=project).deployments if d.git_commit == a
    )
    with canary_watching(project, b) as release:
        loopline.set_traffic("proj", {old: 100}, project=project, reason="pull it")
        _, stderr = release.communicate(timeout=60)
    by = loopline.history(project, kind="traffic-changed")[-1].event.actor
    assert release.returncode == 1 and f"was stopped by {by}'s split set by hand at " in stderr, stderr
    assert live(project) == {old: 100, f"v2-{b[:7]}": 0}
    alias_stayed_and_nothing_blocks(project, b)


def test_an_endpoint_deleted_with_a_release_cut_short_leaves_nothing_that_blocks_the_next_one(
    a_live_b_registered: tuple[Path, str, str],
) -> None:
    project, _, b = a_live_b_registered
    cut_short_at_50(project)
    loopline.delete_endpoint("proj", workspace="prod", force=True, project=project)
    released = loopline.outer_loop_prod(project, commit=b)  # a new endpoint of the same name
    assert released.changed and live_commit(project) == b


def test_a_release_whose_smoke_test_fails_ends_there_and_blocks_no_other(
    a_live_b_registered: tuple[Path, str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    project, a, b = a_live_b_registered
    # prod's servers refuse a body as large as the model's input example: the smoke test gets a 413
    monkeypatch.setenv("LOOPLINE_SERVING__MAX_BODY_BYTES", "64")
    with pytest.raises(Refused, match=r"the smoke test of deployment 'v2-\w+' failed: 413"):
        loopline.outer_loop_prod(project, commit=b)
    assert live_commit(project) == a and sum(live(project).values()) == 100
    monkeypatch.delenv("LOOPLINE_SERVING__MAX_BODY_BYTES")
    c = new_commit(project, "Third model", C=0.6)
    loopline.inner_loop(project)
    released = loopline.outer_loop_prod(project, commit=c, canary=[100])  # no rollback needed first
    assert released.changed and live_commit(project) == c
    assert [r.git_commit for r in loopline.releases(project=project)] == [a, c]


@pytest.mark.long
def test_two_releases_at_once_are_serialised_and_the_audit_order_matches(
    a_live_b_registered: tuple[Path, str, str],
) -> None:
    project, _, b = a_live_b_registered
    c = new_commit(project, "C", C=0.6)
    loopline.inner_loop(project)
    script = Path(__import__("sys").executable).with_name("loopline")
    import subprocess

    def race(*commits: str) -> list[dict[str, object]]:
        children = [
            subprocess.Popen(
                [str(script), "outer-loop", "prod", "--commit", sha, "--json"],
                cwd=project,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            for sha in commits
        ]
        outputs = [child.communicate(timeout=300) for child in children]
        assert [child.returncode for child in children] == [0] * len(commits), [err for _, err in outputs]
        return [json.loads(out) for out, _ in outputs]

    same = race(b, b)  # the same commit twice at once: released once, the other finds it live
    assert sorted(r["changed"] for r in same) == [False, True]  # type: ignore[type-var]
    race(c, b)  # two commits at once: one waits for the other; the last release audited is the one live
    released = [e.event.git_commit for e in loopline.history(project, kind="released")]
    assert released[-1] == live_commit(project)
    assert released.count(c) == 1
    assert (
        len([m for m in loopline.status(project).models if m.workspace == "prod" and m.git_commit == b]) == 1
    )


def test_a_first_release_goes_live_only_once_its_smoke_test_passes_and_never_on_another_server(
    trained_project: ProjectFactory, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    project = trained_project("simple")
    # Another server answers at prod's address: dev's, serving an endpoint of dev (as another project's
    # server on the same port would).
    loopline.create_endpoint("proj", "dev", project=project)
    loopline.create_deployment("proj", "blue", workspace="dev", version=1, project=project)
    with Server(project, "dev") as other:
        monkeypatch.setenv("LOOPLINE_WORKSPACES__PROD__ENDPOINTS_URL", other.url)
        # the temporary server the release starts refuses the input example: its smoke test gets a 413
        monkeypatch.setenv("LOOPLINE_SERVING__MAX_BODY_BYTES", "64")
        steps = Steps()
        with pytest.raises(Refused, match=r"the smoke test of deployment 'v1-\w+' failed: 413"):
            loopline.outer_loop_prod(project, reporter=steps)
        assert steps.seen[1].startswith(
            f"the server at {other.url} is not prod's (another project's?): it serves none of its endpoints; "
            "smoke-testing on a temporary one"
        )
        # the endpoint's first deployment was made at 0%: nothing failing went live
        prod = loopline.get_endpoint("proj", workspace="prod", project=project)
        assert [d.traffic for d in prod.deployments] == [0]
        assert not [
            e for e in loopline.history(project, kind="traffic-changed") if e.event.workspace == "prod"
        ]

        monkeypatch.delenv("LOOPLINE_SERVING__MAX_BODY_BYTES")
        released = loopline.outer_loop_prod(project)
        assert released.changed and released.temporary_server
        prod = loopline.get_endpoint("proj", workspace="prod", project=project)
        assert prod.traffic == {released.deployment: 100}
        # a request sent to prod's address reaches the other server, which says so
        request = project / "request.json"
        answer = cli(
            capsys, "endpoint", "invoke", "proj", "-w", "prod", "-f", str(request), "-C", str(project)
        )
        assert answer.exit_code == 4
        assert (
            f"the server of endpoint 'proj' at {other.url} is unavailable: it serves another project's"
            in (answer.stderr)
        )


def test_a_dev_endpoint_named_like_the_prod_one_does_not_stop_a_release(
    trained_project: ProjectFactory,
) -> None:
    project = trained_project("simple")
    loopline.create_endpoint("proj", "dev", project=project)
    released = loopline.outer_loop_prod(project)
    assert released.changed and released.endpoint == "proj"
    prod = loopline.get_endpoint("proj", workspace="prod", project=project)
    dev = loopline.get_endpoint("proj", workspace="dev", project=project)
    assert prod.traffic == {released.deployment: 100} and dev.deployments == ()
    assert prod.url.endswith(":8700/endpoints/proj") and dev.url.endswith(":8701/endpoints/proj")


def test_a_commit_that_only_changes_configuration_releases_its_newest_registered_ancestor(
    trained_project: ProjectFactory,
) -> None:
    project = trained_project("simple")
    trained = git(project, "rev-parse", "HEAD")
    edit_yaml(project / "loopline.yaml", release={"endpoint": "churn", "canary": []})
    commit_all(project, "Release under another endpoint name")
    commit_all(project, "Nothing but a message")
    released = loopline.outer_loop_prod(project)
    assert released.git_commit == trained and released.endpoint == "churn"
    assert loopline.get_endpoint("churn", project=project).workspace == "prod"


def test_a_merge_that_changed_nothing_in_training_paths_is_tested_and_released_as_its_ancestor(
    trained_project: ProjectFactory,
) -> None:
    """The workflows name the commit (`--commit "$GITHUB_SHA"`); in a larger repository most merges do not
    touch the project, and the inner loop trained nothing for them (training.paths)."""
    project = trained_project("full")
    trained = git(project, "rev-parse", "HEAD")
    training = load_config(project).config.training
    edit_yaml(project / "loopline.yaml", training={"command": training.command, "paths": ["train.py"]})
    (project / "NOTES.md").write_text("Only documentation and configuration changed.\n")
    merged = commit_all(project, "Documentation only")
    steps = Steps()
    tested = loopline.outer_loop_test(project, commit=merged[:7], reporter=steps)
    assert tested.passed and tested.git_commit == trained
    assert any(
        step.startswith(f"{merged[:7]} changed nothing in train.py (training.paths) since {trained[:7]}")
        for step in steps.seen
    )
    assert loopline.outer_loop_prod(project, commit=merged).git_commit == trained
    # The merge's validation report is the one of the version it was tested as.
    for asked in (merged[:7], None):  # None: HEAD, the merge
        report = loopline.validation_report(asked, project=project)
        assert (report.git_commit, report.outcome) == (trained, "passed")

    # A commit that changed the model and was never trained has no version, as before.
    (project / "train.py").write_text((project / "train.py").read_text() + "\n# a change\n")
    changed = commit_all(project, "A change to the model")
    with pytest.raises(
        NotFound, match=rf"commit {changed[:7]} has no version of 'proj-classifier' in shared$"
    ):
        loopline.outer_loop_test(project, commit=changed)
    with pytest.raises(NotFound, match=rf"commit {changed[:7]} has no validation report"):
        loopline.validation_report(changed[:7], project=project)
    # A shallow clone (actions/checkout fetches one commit unless told otherwise) holds no ancestor to
    # compare with: it says how to fetch them instead of "run the inner loop".
    (project / ".git" / "shallow").write_text(f"{merged}\n")
    with pytest.raises(NotFound, match=r"this clone is shallow.*fetch-depth: 0"):
        loopline.outer_loop_test(project, commit=merged)


def test_a_rollback_to_a_commit_that_changed_nothing_in_training_paths_returns_to_its_ancestor(
    a_live_b_registered: tuple[Path, str, str],
) -> None:
    """The commit to return to is often the merge before the bad release, which need not have touched
    the model: it names the version of its newest ancestor in prod when training.paths did not change."""
    project, a, b = a_live_b_registered
    training = load_config(project).config.training
    edit_yaml(
        project / "loopline.yaml",
        training={"command": training.command, "paths": ["train.py", "params.yaml"]},
    )
    configured = commit_all(project, "Watch the model's files only")
    loopline.outer_loop_prod(project, commit=b, canary=[100])
    git(project, "checkout", "--quiet", "-b", "docs", a)
    (project / "NOTES.md").write_text("Only documentation changed.\n")
    documented = commit_all(project, "Documentation only, after A")
    git(project, "checkout", "--quiet", "main")

    steps = Steps()
    back = loopline.rollback(project, commit=documented[:7], reporter=steps)
    assert back.changed and back.git_commit == a and live_commit(project) == a
    assert any(
        step.startswith(f"{documented[:7]} changed nothing in train.py, params.yaml (training.paths) since")
        and step.endswith("taking its version, prod v1")
        for step in steps.seen
    )
    forward = loopline.rollback(project, commit=configured)  # changed only loopline.yaml since B
    assert forward.git_commit == b and live_commit(project) == b
    # A deployment named by such a commit takes the same version, online and batch.
    online = loopline.create_deployment("proj", "docs", commit=documented[:7], check=False, project=project)
    assert {d.name: d.git_commit for d in online.deployments}["docs"] == a
    loopline.create_batch_endpoint("nightly", "prod", project=project)
    batch = loopline.create_batch_deployment("nightly", "docs", commit=documented, project=project)
    assert [(d.name, d.git_commit) for d in batch.deployments] == [("docs", a)]

    # A commit that changed the model since its newest version in prod has none to return to.
    edit_yaml(project / "params.yaml", C=0.3)
    changed = commit_all(project, "A model never released")
    with pytest.raises(NotFound, match=rf"commit {changed[:7]} has no version of 'proj-classifier' in prod$"):
        loopline.rollback(project, commit=changed)
    assert live_commit(project) == b


@pytest.mark.long
def test_a_renamed_model_rolls_back_to_the_versions_released_under_its_old_name(
    a_live_b_registered: tuple[Path, str, str],
) -> None:
    project, a, b = a_live_b_registered
    config = load_config(project).config
    edit_yaml(
        project / "loopline.yaml", model={"name": "proj-churn", "artifact_path": config.model.artifact_path}
    )
    renamed = commit_all(project, "Name the model after what it predicts")
    loopline.inner_loop(project)
    loopline.outer_loop_prod(project, canary=[100])
    prod = prod_client(project)
    assert prod.get_model_version_by_alias("proj-churn", "production").version == 1

    back = loopline.rollback(project, previous=True)  # to what the endpoint had: the old name's version
    assert (
        back.changed and (back.model, back.git_commit) == ("proj-classifier", a) and live_commit(project) == a
    )
    assert prod.get_model_version_by_alias("proj-classifier", "production").version == 1
    # one model is in production: the name no longer live keeps neither the alias nor MLflow's stage
    with pytest.raises(mlflow.exceptions.MlflowException):
        prod.get_model_version_by_alias("proj-churn", "production")
    assert prod.get_model_version("proj-churn", "1").current_stage == "Archived"
    assert {(v.name, v.aliases) for v in loopline.status(project).models if v.workspace == "prod"} == {
        ("proj-classifier", ("production",)),
        ("proj-churn", ()),
    }

    assert loopline.rollback(project, commit=renamed[:7]).git_commit == renamed  # the new name's
    assert loopline.rollback(project, commit=a[:7]).model == "proj-classifier"  # by commit, the old name's
    assert live_commit(project) == a

    # B, registered before the rename and never released: its release takes the name B's loopline.yaml
    # gave the model, and says so
    steps = Steps()
    released = loopline.outer_loop_prod(project, commit=b[:7], canary=[100], reporter=steps)
    assert (released.model, released.git_commit, live_commit(project)) == ("proj-classifier", b, b)
    assert (
        f"{b[:7]} registered the model as 'proj-classifier' (model.name then); taking its version"
        in steps.seen
    )
    assert prod_client(project).get_model_version_by_alias("proj-classifier", "production").version == 2
    # a model named on purpose is that model: no other name is taken for it
    with pytest.raises(NotFound, match=f"commit {renamed[:7]} has no version of 'proj-classifier' in shared"):
        loopline.outer_loop_prod(project, commit=renamed, model="proj-classifier")
    # a commit whose version is nowhere is refused as before, though loopline.yaml named another model
    edit_yaml(project / "params.yaml", C=0.3)
    never = commit_all(project, "A model never trained")
    with pytest.raises(NotFound, match=f"commit {never[:7]} has no version of 'proj-churn' in shared"):
        loopline.outer_loop_prod(project, commit=never)


def test_a_release_that_cannot_have_its_endpoint_copies_nothing(trained_project: ProjectFactory) -> None:
    project = trained_project("simple")
    edit_yaml(project / "loopline.yaml", release={"endpoint": "Not A Name"})
    commit_all(project, "A bad endpoint name")
    with pytest.raises(UsageError, match="lowercase letters"):
        loopline.outer_loop_prod(project)
    assert prod_client(project).search_model_versions("") == []
    assert [m.workspace for m in loopline.status(project).models] == ["dev", "shared"]


@pytest.mark.parametrize(("steps", "needle"), [([50, 10, 100], "increasing"), ([10, 50], "must be 100")])
def test_canary_steps_are_checked_for_every_caller_before_anything_moves(
    trained_project: ProjectFactory, steps: list[int], needle: str
) -> None:
    project = trained_project("simple")
    with pytest.raises(UsageError, match=needle):
        loopline.outer_loop_prod(project, canary=steps)
    assert prod_client(project).search_model_versions("") == []


def test_after_the_model_store_moves_to_a_teams_blob_store_releases_copy_from_where_versions_were(
    a_live_b_registered: tuple[Path, str, str],
    azurite: Any,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    project, a, b = a_live_b_registered  # made on a laptop: model files in .loopline's folder
    old = load_config(project).store("shared").model_store
    versions = {(m.workspace, m.git_commit): m for m in loopline.status(project).models}
    monkeypatch.setenv("AZURE_STORAGE_CONNECTION_STRING", azurite.connection_string)
    team = f"{azurite.container('models')}/{tmp_path.name.lower().replace('_', '-')}"
    for workspace in ("dev", "prod", "shared"):  # the team's store, from now on
        monkeypatch.setenv(f"LOOPLINE_WORKSPACES__{workspace.upper()}__MODEL_STORE", team)

    released = loopline.outer_loop_prod(project, commit=b)  # B was registered while the files were local

    assert released.changed and live_commit(project) == b
    from loopline.storage.models import open_model_store

    store = open_model_store(team)
    assert store.contains(versions[("shared", b)].content_digest)  # copied over, checked against the digest
    prod_b = next(m for m in loopline.status(project).models if m.workspace == "prod" and m.git_commit == b)
    assert prod_b.source_uri.startswith(f"wasbs://models@{AZURITE_ACCOUNT}.blob.core.windows.net/")
    # A version that stayed in the folder deploys from there (dev's v1, made from A).
    loopline.create_endpoint("try-out", "dev", project=project)
    made = loopline.create_deployment("try-out", "old", version=1, project=project).deployments
    assert [(d.name, d.version, d.git_commit) for d in made] == [("old", 1, a)]
    # Gone from both: the error names what to do.
    (Path(old) if Path(old).is_absolute() else project / old).rename(tmp_path / "elsewhere")
    with pytest.raises(NotFound, match=r"is gone, copy its sha256/ folder here"):
        loopline.create_deployment("try-out", "older", version=1, project=project)
