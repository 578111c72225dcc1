"""From experimentation to simple to full: the files stay byte-identical and the right workflows run."""

from __future__ import annotations

from pathlib import Path

import pytest

import loopline
from tests.conftest import ProjectFactory
from tests.helpers import cli, commit_all, git

pytestmark = pytest.mark.slow

RUNS = {
    "inner-loop": ("merge_group", {}),
    "python-ci": ("push", {}),
    "outer-loop-test": ("workflow_run", {}),
    "outer-loop-prod": ("release", {}),
    "model-rollback": ("workflow_dispatch", {"commit": "HEAD7", "reason": "drill"}),
    "monitoring": ("schedule", {}),
}
ON = {
    "experimentation": {"inner-loop", "python-ci"},
    "simple": {"inner-loop", "python-ci", "outer-loop-prod", "model-rollback", "monitoring"},
    "full": set(RUNS),
}


def files(project: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in (project / ".github" / "workflows").iterdir()}


@pytest.mark.long
def test_switching_tiers_keeps_the_files_and_turns_on_the_right_workflows(
    new_project: ProjectFactory,
) -> None:
    project = new_project("experimentation")
    original = files(project)
    for tier in ("experimentation", "simple", "full"):
        if tier != "experimentation":
            change = loopline.set_tier(tier, project=project)
            assert change.changed and files(project) == original
            commit_all(project, f"Move to the {tier} tier")
        head = git(project, "rev-parse", "HEAD")
        for name, (event, inputs) in RUNS.items():
            if (name == "python-ci" and tier != "experimentation") or tier == "full":
                # The same work in every tier where they are on: run once, and only asked after that. The
                # full tier's inner loop, validation, release and rollback run in the demo's test.
                assert loopline.workflow_enabled(name, project=project).enabled == (name in ON[tier])
                continue
            values = {k: head[:7] if v == "HEAD7" else v for k, v in inputs.items()}
            run = loopline.workflow_run(name, event=event, inputs=values, project=project)
            assert run.enabled == (name in ON[tier]), (tier, name)
            assert run.succeeded, (tier, name, [j.to_dict() for j in run.jobs])
            main = [job for job in run.jobs if job.id != "gate"]
            assert all(job.status == ("success" if name in ON[tier] else "skipped") for job in main), (
                tier,
                name,
            )
            check(tier, name, run, head)
    assert files(project) == original


def check(tier: str, name: str, run: loopline.api.WorkflowRun, head: str) -> None:  # type: ignore[name-defined]
    """What each enabled workflow's outputs and summary must say."""
    if name not in ON[tier]:
        return
    outputs = {k: v for job in run.jobs for k, v in job.outputs.items()}
    if name == "inner-loop":
        assert outputs["registered"] == "true" and outputs["git_commit"] == head
        assert "## Inner loop: registered" in run.summary
    if name == "outer-loop-test":
        assert outputs["validation_status"] == "passed"
        assert "## Validation of proj-classifier" in run.summary
    if name == "outer-loop-prod":
        assert outputs["released"] == "true" and outputs["deployment"].endswith(head[:7])
        assert "## Outer loop prod: released" in run.summary
    if name == "monitoring":  # no traffic yet: too few samples, the run ends without a decision
        assert outputs["evidence"] == "insufficient" and outputs["decision"] == ""
    if name == "model-rollback":
        assert "## Model rollback" in run.summary and "already live" in run.summary


def test_a_loop_the_tier_lacks_is_refused_naming_the_command_that_moves_to_a_tier_with_it(
    new_project: ProjectFactory, capsys: pytest.CaptureFixture[str]
) -> None:
    project = new_project("experimentation")
    for words, move in (
        (["outer-loop", "prod"], "`loopline tier set simple`, or `full`"),
        (["rollback", "--previous"], "`loopline tier set simple`, or `full`"),
        (["outer-loop", "test"], "`loopline tier set full`"),
    ):
        refused = cli(capsys, "-C", str(project), *words)
        assert refused.exit_code == 1 and move in refused.stderr, refused.stderr
    moved = cli(capsys, "-C", str(project), "tier", "set", "simple")
    assert moved.exit_code == 0, moved.stderr
    assert "no prod workspace" not in cli(capsys, "-C", str(project), "rollback", "--previous").stderr
