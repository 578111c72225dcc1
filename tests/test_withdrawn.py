"""Withdrawing a model version found wrong after it was registered: nothing takes it again until it is
reinstated, whichever way it is asked for; both decisions are audited."""

from __future__ import annotations

import re
import sqlite3
from pathlib import Path

import pytest

import loopline
from loopline.config import load_config
from loopline.errors import LooplineError, Refused
from tests.helpers import cli, mlflow_client

pytestmark = pytest.mark.slow


def test_a_withdrawn_version_is_never_released_deployed_or_rolled_back_to_until_reinstated(
    a_live_b_registered: tuple[Path, str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    project, first, second = a_live_b_registered
    where = ("-C", str(project))
    loopline.create_batch_endpoint("nightly", "prod", project=project)
    loopline.create_batch_deployment("nightly", "live", version=1, project=project)
    # The live model, it turns out, was trained on leaked labels.
    withdrawn = cli(capsys, "withdraw", "--commit", first[:7], "--reason", "trained on leaked labels", *where)
    assert withdrawn.exit_code == 0, withdrawn.stderr
    assert f"withdrawn proj-classifier v1 ({first[:7]}) by " in withdrawn.stdout
    loopline.outer_loop_prod(project, commit=second)  # what replaces it
    listed = cli(capsys, "status", "--json", *where).json()["models"]
    assert {(m["workspace"], m["withdrawn"]) for m in listed if m["git_commit"] == first} == {
        ("dev", True),
        ("shared", True),
        ("prod", True),
    }
    assert not any(m["withdrawn"] for m in listed if m["git_commit"] == second)
    # MLflow's UI and stock clients see it too: every copy is tagged, and no other version is.
    assert set(_mlflow_withdrawn(project, first)) == {"dev", "shared", "prod"}

    told = f"proj-classifier v1 in prod ({first[:7]}) was withdrawn by "
    back = cli(capsys, "rollback", "--previous", *where)
    assert back.exit_code == 1 and "every earlier release of endpoint 'proj' is withdrawn" in back.stderr
    for asked in (("--commit", first[:7]), ("--version", "1")):
        deployed = cli(capsys, "deployment", "create", "proj", "again", *asked, "-w", "prod", *where)
        assert deployed.exit_code == 1 and told in deployed.stderr, deployed.stderr
        assert (
            "trained on leaked labels" in deployed.stderr
            and f"reinstate --commit {first[:7]}" in deployed.stderr
        )
    with pytest.raises(Refused, match=r"proj-classifier v1 in the registry \(\w{7}\) was withdrawn by"):
        loopline.outer_loop_prod(project, commit=first)
    with pytest.raises(Refused, match=r"v1 in prod \(\w{7}\) was withdrawn by .*or batch job takes it"):
        loopline.batch_invoke("nightly", "scoring", project=project)  # a batch deployment pinning it
    with pytest.raises(Refused, match="is withdrawn already"):
        loopline.withdraw(first, reason="twice", project=project)
    live = loopline.get_endpoint("proj", workspace="prod", project=project)
    assert [d.git_commit for d in live.deployments if d.traffic == 100] == [second]
    assert [e.event.reason for e in loopline.history(project, kind="version-withdrawn")] == [
        "trained on leaked labels"
    ]

    # The labels were fine after all: reinstated, the rollback goes back to it.
    loopline.reinstate(first, reason="the leak was in the copy, not the training data", project=project)
    returned = loopline.rollback(project, previous=True)
    assert returned.git_commit == first
    assert not any(m.withdrawn for m in loopline.status(project).models)
    assert _mlflow_withdrawn(project, first) == {}
    with pytest.raises(Refused, match="is not withdrawn: nothing to reinstate"):
        loopline.reinstate(first, reason="again", project=project)
    listed = cli(capsys, "withdrawals", "--json", *where)
    assert [(d["action"], d["git_commit"]) for d in listed.json()["withdrawals"]] == [
        ("reinstated", first),
        ("withdrawn", first),
    ]
    assert [e.event.kind for e in loopline.history(project, kind="version-reinstated")] == [
        "version-reinstated"
    ]
    assert loopline.audit_verify(project=project).intact


def _mlflow_withdrawn(project: Path, commit: str) -> dict[str, str]:
    """The ``withdrawn`` tag of the commit's version in each workspace's MLflow registry that has one,
    found by a stock MLflow client with the filter docs/outer-loops.md gives."""
    tagged: dict[str, str] = {}
    for workspace in ("dev", "shared", "test", "prod"):
        found = mlflow_client(project, workspace).search_model_versions(
            f"tags.git_commit = '{commit}' AND tags.withdrawn != ''"
        )
        for version in found:
            assert re.fullmatch(
                r"by \S+ on [\d-]+ [\d:]+ UTC: trained on leaked labels", version.tags["withdrawn"]
            )
            tagged[workspace] = version.tags["withdrawn"]
    return tagged


def test_a_withdrawal_a_registry_refuses_to_tag_is_not_recorded_and_changes_no_tag(
    a_live_b_registered: tuple[Path, str, str],
) -> None:
    project, first, _ = a_live_b_registered
    prod = load_config(project).store("prod").tracking_uri.removeprefix("sqlite:///")
    locked = sqlite3.connect(prod, timeout=0)
    locked.execute("BEGIN EXCLUSIVE")  # prod's MLflow store refuses every write (another writer holds it)
    try:
        with pytest.raises(LooplineError, match="prod"):
            loopline.withdraw(first, reason="trained on leaked labels", project=project)
    finally:
        locked.rollback()
        locked.close()
    assert loopline.withdrawals(project=project) == []
    assert _mlflow_withdrawn(project, first) == {}  # dev's tag, set before prod refused, taken off again
    assert not any(m.withdrawn for m in loopline.status(project).models)


def test_two_people_withdrawing_one_version_at_once_record_one_decision(
    a_live_b_registered: tuple[Path, str, str],
) -> None:
    import threading

    project, first, _ = a_live_b_registered
    start = threading.Barrier(3)
    outcomes: dict[str, str] = {}

    def withdraw(reason: str) -> None:
        start.wait()
        try:
            loopline.withdraw(first, reason=reason, project=project)
            outcomes[reason] = "recorded"
        except Refused as refused:
            outcomes[reason] = str(refused)
        except Exception as exc:  # shown in the failure (a thread's own exception would be lost)
            outcomes[reason] = f"{type(exc).__name__}: {exc}"

    threads = [threading.Thread(target=withdraw, args=(f"{who} found leaked labels",)) for who in "abc"]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    recorded = [reason for reason, outcome in outcomes.items() if outcome == "recorded"]
    assert len(outcomes) == 3 and len(recorded) == 1, outcomes
    assert all("is withdrawn already" in o for o in outcomes.values() if o != "recorded"), outcomes
    decisions = loopline.withdrawals(project=project)
    assert [d.reason for d in decisions] == recorded
    assert [e.event.reason for e in loopline.history(project, kind="version-withdrawn")] == recorded
    # MLflow's tags say the decision that stands, whichever mirror wrote last.
    tags = {
        workspace: version.tags["withdrawn"]
        for workspace in ("dev", "shared", "prod")
        for version in mlflow_client(project, workspace).search_model_versions(f"tags.git_commit = '{first}'")
    }
    assert set(tags) == {"dev", "shared", "prod"}
    assert all(tag.endswith(recorded[0]) for tag in tags.values()), tags
    assert loopline.audit_verify(project=project).intact
