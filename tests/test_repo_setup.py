"""How the workflows fit a repository that already trains (``init --existing``), without its dry run."""

from __future__ import annotations

from pathlib import Path

import yaml

from loopline.repo_setup import TOOLS, workflow_setup
from loopline.workflows.files import relative_to, workflow_files, workflow_layout
from tests.helpers import actionlint, git


def checkouts(root: Path, workflow: str) -> dict[str, dict[str, object]]:
    """The ``with:`` of each job's checkout step in ``workflow``, by job."""
    jobs = yaml.safe_load((root / ".github" / "workflows" / workflow).read_text())["jobs"]
    return {
        name: next(
            s.get("with") or {} for s in job["steps"] if s.get("uses", "").startswith("actions/checkout")
        )
        for name, job in jobs.items()
    }


def test_files_kept_in_git_lfs_are_fetched_by_the_checkouts_that_train_or_test(tmp_path: Path) -> None:
    root = tmp_path / "repo"
    root.mkdir()
    git(root, "init", "--quiet", "--initial-branch=main")
    (root / "requirements.txt").write_text("scikit-learn\n")
    (root / "data").mkdir()
    (root / "data" / ".gitattributes").write_text("*.csv filter=lfs diff=lfs merge=lfs -text\n")
    setup, _files, notes = workflow_setup(root, [], TOOLS, "python train.py")
    assert setup.lfs
    assert any(note.startswith("the repository keeps files in Git LFS (.gitattributes)") for note in notes)
    for path, content in workflow_files(workflow_layout(root, "repo"), setup).items():
        target = root / relative_to(root, path)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(content)
    assert actionlint(root) == ""
    # the training's checkout keeps its whole history; the jobs that only read loopline.yaml fetch no LFS
    assert checkouts(root, "inner-loop.yml") == {"gate": {}, "inner-loop": {"fetch-depth": 0, "lfs": True}}
    assert checkouts(root, "python-ci.yml") == {"gate": {}, "lint-and-test": {"lfs": True}}
    assert all(
        "lfs" not in step
        for name in ("outer-loop-test.yml", "outer-loop-prod.yml", "model-rollback.yml")
        for step in checkouts(root, name).values()
    )
    # a repository without LFS: no change
    (root / "data" / ".gitattributes").write_text("*.csv text eol=lf\n")
    assert not workflow_setup(root, [], TOOLS, "python train.py")[0].lfs
