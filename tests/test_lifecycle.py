"""The lifecycle demo, as the README's first command runs it: the whole story through the workflow files."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.helpers import cli_process, commit_all, git

pytestmark = pytest.mark.slow


@pytest.mark.long
def test_the_demo_tells_the_whole_story_through_the_workflows(tmp_path: Path) -> None:
    # Kept in a folder of another repository, as `./scripts/demo --keep ./demo-project` does in a checkout
    # of loopline: the demo's commits go to a repository of its own, never to the one around it.
    outer = tmp_path / "checkout"
    outer.mkdir()
    git(outer, "init", "--quiet")
    (outer / "README.md").write_text("ours\n")
    commit_all(outer, "Our repository")
    before = git(outer, "rev-parse", "HEAD")
    demo = outer / "demo-project"
    # Run as on a GitHub-hosted runner, whose disk loopline refuses for stores, except the demo's by design.
    hosted = {"RUNNER_ENVIRONMENT": "github-hosted"}
    result = cli_process("demo", "--keep", str(demo), "--json", timeout=600, env=hosted)
    assert result.exit_code == 0, result.stderr
    document = json.loads(result.stdout)
    assert document["kept"] and document["tier"] == "full"
    rows = {row["label"]: row for row in document["commits"]}
    assert set(rows) == {"A", "B", "C"}
    a, b, c = rows["A"], rows["B"], rows["C"]
    assert (a["validation"], a["prod"], a["traffic"], a["production"]) == ("passed", 1, 100, True)
    assert (b["validation"], b["prod"], b["traffic"]) == ("failed", None, None)
    assert (c["validation"], c["prod"], c["traffic"], c["production"]) == ("passed", 2, 0, False)
    assert [row["git_commit"] for row in document["commits"]] == git(
        demo, "log", "--format=%H", "--reverse"
    ).splitlines()
    assert git(outer, "rev-parse", "HEAD") == before and not (outer / ".github").exists()
    assert git(outer, "status", "--porcelain").splitlines() == ["?? demo-project/"]
    assert document["predictions"] and all(
        p["git_commit"] == a["git_commit"] for p in document["predictions"]
    )
    steps = "\n".join(document["steps"])
    for expected in (
        "inner-loop (merge_group): succeeded",
        "outer-loop-test (workflow_run): failed, as it should",
        "outer-loop-prod (workflow_dispatch): succeeded",
        "model-rollback (workflow_dispatch): succeeded",
    ):
        assert expected in steps
    history = cli_process("history", "--json", cwd=demo)
    kinds = [e["kind"] for e in json.loads(history.stdout)["events"]]
    assert kinds.count("released") == 2 and kinds[-1] in {"rolled-back", "traffic-changed"}
    steps_changed = [
        e
        for e in json.loads(history.stdout)["events"]
        if e["kind"] == "traffic-changed" and e["workspace"] == "prod"
    ]
    assert len(steps_changed) >= 4  # the canary's 10, 50 and 100, and the rollback
    # A client's requests flowed to C's canary while it was watched (loopline's own are not counted).
    from loopline.instance import Instance
    from loopline.serving.stats import window_stats

    canary = [e for e in json.loads(history.stdout)["events"] if e["kind"] == "released"][-1]
    deployment = canary["target"].split("/", 1)[1]
    assert canary["git_commit"] == c["git_commit"], canary
    assert window_stats(Instance.open(demo).db, "prod", "demo", deployment, 0).requests >= 10


def test_the_demo_refuses_a_folder_that_holds_files(tmp_path: Path) -> None:
    (tmp_path / "taken").mkdir()
    (tmp_path / "taken" / "file").write_text("x")
    result = cli_process("demo", "--keep", str(tmp_path / "taken"))
    assert result.exit_code == 1
    assert "is not empty" in result.stderr
    assert [p.name for p in (tmp_path / "taken").iterdir()] == ["file"]
