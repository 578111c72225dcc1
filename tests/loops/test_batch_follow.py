"""Prod batch endpoints that follow each release and rollback of the online endpoint
(``release.batch_endpoints``), and those that do not, named where they score with another commit."""

from __future__ import annotations

from pathlib import Path

import pytest

import loopline
from loopline.errors import EXIT_USAGE
from tests.helpers import cli, cli_process, edit_yaml

pytestmark = pytest.mark.slow


def test_a_batch_endpoint_named_to_follow_moves_with_each_release_and_rollback(
    a_live_b_registered: tuple[Path, str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    project, a, b = a_live_b_registered
    for name in ("nightly", "adhoc"):  # both scoring with A, the commit prod serves
        loopline.create_batch_endpoint(name, "prod", project=project)
    loopline.create_batch_deployment("nightly", "blue", version=1, output_file="scores.csv", project=project)
    loopline.create_batch_deployment("adhoc", "blue", version=1, project=project)
    settings = project / "loopline.yaml"
    edit_yaml(settings, release={"batch_endpoints": ["nightly", "gone"]})

    # A batch endpoint named to follow that prod does not have: said before anything moves.
    refused = cli(capsys, "-C", str(project), "outer-loop", "prod")
    assert refused.exit_code == EXIT_USAGE
    assert "release.batch_endpoints names batch endpoint 'gone', which prod does not have" in refused.stderr
    assert {d.git_commit for d in loopline.get_endpoint("proj", project=project).deployments} == {a}

    edit_yaml(settings, release={"batch_endpoints": ["nightly"]})
    # Killed once its traffic moved, before the batch endpoints followed: run again, they do.
    killed = cli_process("outer-loop", "prod", cwd=project, env={"LOOPLINE_FAILPOINT": "batch-follow"})
    assert killed.exit_code == 137
    assert {
        d.git_commit for d in loopline.get_endpoint("proj", project=project).deployments if d.traffic
    } == {b}
    assert loopline.get_batch_endpoint("nightly", workspace="prod", project=project).default == "blue"
    released = loopline.outer_loop_prod(project)
    assert not released.changed  # live already
    follower = loopline.get_batch_endpoint("nightly", workspace="prod", project=project)
    moved = follower.deployment(None)
    assert moved is not None and (moved.name, moved.git_commit) == (f"v2-{b[:7]}", b)
    assert moved.output_file == "scores.csv"  # as the default it replaced wrote
    assert released.batch_moved == [{"endpoint": "nightly", "deployment": f"v2-{b[:7]}", "previous": "blue"}]
    assert [(e["endpoint"], e["git_commit"]) for e in released.batch_behind] == [("adhoc", a)]
    promoted = loopline.history(project, kind="batch-promoted")[-1].event
    assert (promoted.target, promoted.git_commit) == (f"batch:nightly/v2-{b[:7]}", b)
    assert promoted.reason == f"follows the release of {b[:7]}"
    loopline.register_data("heldout", "inbox://heldout.csv", project=project)
    assert loopline.batch_invoke("nightly", "heldout", project=project).git_commit == b

    # The rollback takes it back to the deployment of A it had, and names none behind: adhoc is at A.
    back = cli(capsys, "-C", str(project), "rollback", "--previous", "--json")
    assert back.exit_code == 0, back.stderr
    assert back.json()["batch_moved"] == [
        {"endpoint": "nightly", "deployment": "blue", "previous": moved.name}
    ]
    assert back.json()["batch_behind"] == [] and "warning" not in back.stderr
    assert loopline.get_batch_endpoint("nightly", workspace="prod", project=project).default == "blue"
    assert (
        loopline.history(project, kind="batch-promoted")[-1].event.reason
        == f"follows the rollback to {a[:7]}"
    )

    # A rollback is not held back by a name prod lacks: its traffic moves, then it says what did not follow.
    edit_yaml(settings, release={"batch_endpoints": ["gone", "nightly"]})
    forward = cli(capsys, "-C", str(project), "rollback", "--commit", b, "--json")
    assert forward.exit_code == 0, forward.stderr
    assert {
        d.git_commit for d in loopline.get_endpoint("proj", project=project).deployments if d.traffic
    } == {b}
    assert "batch endpoint gone did not follow: " in " ".join(forward.stderr.split())
    assert [m["endpoint"] for m in forward.json()["batch_moved"]] == ["nightly"]
