"""``loopline workflow update``: bring a project's workflow files to this loopline's templates, keeping the
team's edits.

Each file loopline writes starts with a line naming the digest of the template it was made from. loopline
keeps the templates it shipped before (``templates/workflow-history/<workflow>/<digest>.yml``), so the file
as it was written can be made again, fitted to the repository as the file says (its install command,
Python, branch, lint, Git LFS, DVC). The change from that file to today's template, fitted the same way,
is merged into the file as it is now by ``git merge-file``, as git merges a branch: the team's edits to
other lines stay, and an edit to the same lines as the new template is a conflict, marked in the file for
a person to resolve. A file written before files named their template is taken as it was first committed.
"""

from __future__ import annotations

import re
import shlex
import subprocess
import tempfile
from dataclasses import dataclass, replace
from importlib import resources
from pathlib import Path
from typing import Any

from loopline.errors import UsageError
from loopline.git import default_branch, run_git
from loopline.workflows.files import (
    WORKFLOWS,
    DvcFetch,
    WorkflowLayout,
    WorkflowSetup,
    digest,
    fit,
    recorded_digest,
    relative_to,
    templates,
    workflow_layout,
)

__all__ = ["FileUpdate", "WorkflowsUpdate", "setup_of", "update_workflows"]


@dataclass(frozen=True)
class FileUpdate:
    """What the update did (or, checking, would do) to one workflow file."""

    file: str  # from the repository's top
    outcome: str  # unchanged, updated, merged, conflicts, created, deleted (kept so), unknown base
    conflicts: int = 0
    note: str = ""

    @property
    def changes(self) -> bool:
        """Whether the file is (or would be) written."""
        return self.outcome in {"updated", "merged", "conflicts", "created"}

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready mapping."""
        return {"file": self.file, "outcome": self.outcome, "conflicts": self.conflicts, "note": self.note}


@dataclass(frozen=True)
class WorkflowsUpdate:
    """The update of every workflow file of a project."""

    files: tuple[FileUpdate, ...]
    written: bool  # False for a check: nothing was written

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready mapping."""
        return {"written": self.written, "files": [f.to_dict() for f in self.files]}


def update_workflows(root: Path, project: str, *, check: bool = False) -> WorkflowsUpdate:
    """Bring the workflow files of the project at ``root`` (named ``project``) to this loopline's templates,
    merging the changes into the team's edits; with ``check``, only say what would change."""
    layout = workflow_layout(root, project)
    own = WorkflowLayout(root, "", layout.project)  # files kept in the project's folder
    chosen = {
        name: own if layout.folder and not layout.path(name).exists() and own.path(name).exists() else layout
        for name in WORKFLOWS
    }
    top = layout.workspace
    if not check:
        _refuse_uncommitted(top, [where.path(name) for name, where in chosen.items()])
    today = {name: templates()[f"{name}.yml"].decode() for name in WORKFLOWS}
    branch = default_branch(top)
    updates = [_one(top, name, where, today[name], branch, check) for name, where in chosen.items()]
    return WorkflowsUpdate(tuple(updates), written=not check)


def _refuse_uncommitted(top: Path, paths: list[Path]) -> None:
    changed = run_git(top, "status", "--porcelain", "--", *[relative_to(top, p) for p in paths], check=False)
    if changed.strip():
        names = ", ".join(line[3:] for line in changed.splitlines())
        raise UsageError(
            f"{names} has changes git has not committed: commit or stash them first, so that what the update "
            "changes is yours to review with git diff"
        )


def _one(top: Path, name: str, layout: WorkflowLayout, template: str, branch: str, check: bool) -> FileUpdate:
    """Update the file of workflow ``name`` to ``template`` (today's)."""
    path = layout.path(name)
    relative = relative_to(top, path)
    if not path.exists():
        if _history(top, relative):
            return FileUpdate(relative, "deleted", note="deleted in the repository: left deleted")
        if not check:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(fit(f"{name}.yml", template, layout, WorkflowSetup(branch=branch)))
        return FileUpdate(relative, "created", note="a workflow this loopline adds")
    current = path.read_text()
    base, setup, how = _base(top, (name, template), layout, relative, current, branch)
    if base is None:
        return FileUpdate(relative, "unknown base", note=how)
    fresh = fit(f"{name}.yml", template, layout, _today(setup))
    if fresh == current:
        return FileUpdate(relative, "unchanged")
    if base == current:
        merged, conflicts, outcome = fresh, 0, "updated"
    else:
        merged, conflicts = _merge(current, base, fresh)
        outcome = "conflicts" if conflicts else "merged"
    if merged == current:
        return FileUpdate(relative, "unchanged", note=how)
    if not check:
        path.write_text(merged)
    return FileUpdate(relative, outcome, conflicts, how)


def _today(setup: WorkflowSetup) -> WorkflowSetup:
    """``setup`` as this loopline fits files: a plain ``dvc pull`` (an earlier loopline's) becomes today's
    ``dvc pull --allow-missing``."""
    return replace(setup, dvc=setup.dvc and replace(setup.dvc, allow_missing=True))


def _base(
    top: Path, workflow: tuple[str, str], layout: WorkflowLayout, relative: str, current: str, branch: str
) -> tuple[str | None, WorkflowSetup, str]:
    """The file as loopline wrote it, how it fits the repository, and how it was found (None, and why,
    where it cannot be made again); ``workflow``: its name and today's template."""
    name, today = workflow
    recorded, _ = recorded_digest(current)
    if recorded is None:  # written before files named their template: the version first committed
        commits = _history(top, relative)
        if not commits:
            return current, setup_of(current, branch), "not committed yet: taken as loopline wrote it"
        first = run_git(top, "show", f"{commits[-1]}:{relative}")
        return first, setup_of(first, branch), f"taken as loopline wrote it: the version of {commits[-1][:7]}"
    template = today if digest(today) == recorded else _shipped(name, recorded)
    setup = setup_of(current, branch)
    if template is None:
        why = (
            f"made from a template ({recorded}) this loopline does not know, a newer one's: update loopline, "
            "or edit the file by hand"
        )
        return None, setup, why
    return fit(f"{name}.yml", template, layout, setup), setup, ""


def _shipped(name: str, recorded: str) -> str | None:
    """The template of workflow ``name`` whose digest is ``recorded``, of those loopline shipped before."""
    kept = resources.files("loopline") / "templates" / HISTORY / name / f"{recorded}.yml"
    return kept.read_text(encoding="utf-8") if kept.is_file() else None


HISTORY = "workflow-history"
"""Where loopline keeps the workflow templates it shipped before, by workflow and digest."""


def _history(top: Path, relative: str) -> list[str]:
    """The commits that changed ``relative``, newest first."""
    return run_git(top, "log", "--format=%H", "--", relative, check=False).split()


def _merge(current: str, base: str, fresh: str) -> tuple[str, int]:
    """``git merge-file`` of the change from ``base`` to ``fresh`` into ``current``: the text, with conflict
    markers where both changed the same lines, and how many conflicts."""
    with tempfile.TemporaryDirectory(prefix="loopline-update-") as scratch:
        names = []
        for label, text in (("yours", current), ("base", base), ("loopline", fresh)):
            file = Path(scratch, label)
            file.write_text(text)
            names.append(str(file))
        labels = ["-L", "yours", "-L", "loopline's earlier", "-L", "loopline's now"]
        done = subprocess.run(["git", "merge-file", "-p", *labels, *names], capture_output=True, text=True)
    if done.returncode < 0 or done.returncode > 127:
        raise UsageError(f"git merge-file failed: {done.stderr.strip()}")
    return done.stdout, done.returncode


_INSTALL = re.compile(r"      - name: Install the project\n(?:        .*\n)*?        run: (.*)\n")
_PYTHON = re.compile(r'python-version: "([^"]*)"')
_BRANCHES = re.compile(r"^    branches: \[(.*)\]$", re.M)
_LINT = re.compile(r"      - id: lint\n(?:        #.*\n)*        run: (.*)\n")
_DVC = re.compile(
    r"      - name: Fetch the data DVC keeps\n        if: .*\n"
    r"        run: pip install (.+) && dvc pull( --allow-missing)?\n"  # an earlier loopline's: no option
    r"(?:        env:\n((?:          \w+: .*\n)*))?"
)


def setup_of(text: str, branch: str) -> WorkflowSetup:
    """How a workflow file that loopline wrote fits its repository, read from the file (``branch`` where
    the file names none)."""
    setup = WorkflowSetup(branch=branch)
    if found := _INSTALL.search(text):
        setup = replace(setup, install=found[1])
    if found := _PYTHON.search(text):
        setup = replace(setup, python=found[1])
    if found := _BRANCHES.search(text):  # ["main"] as loopline writes it; [main, dev] after an edit
        named = [item.strip().strip("'\"") for item in found[1].split(",")]
        setup = replace(setup, branch=named[0] or branch)
    if found := _LINT.search(text):
        setup = replace(setup, lint=found[1])
    if "          lfs: true" in text:
        setup = replace(setup, lfs=True)
    if "          submodules: recursive" in text:
        setup = replace(setup, submodules=True)
    if found := _DVC.search(text):
        secrets = tuple(line.split(":")[0].strip() for line in (found[3] or "").splitlines())
        try:
            package = shlex.split(found[1])[0]
        except (ValueError, IndexError):  # quotes an edit left unbalanced: the words as they are
            package = found[1].split()[0]
        setup = replace(setup, dvc=DvcFetch(package, secrets, allow_missing=bool(found[2])))
    return setup
