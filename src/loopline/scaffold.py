"""``loopline init``: write a runnable sample project from the templates shipped in the package."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from loopline.config import endpoint_slug
from loopline.domain import Tier, project_name
from loopline.errors import DirectoryNotEmpty, UsageError, on_path
from loopline.git import default_branch, is_git_repo, run_git
from loopline.rendering import render_templates
from loopline.workflows.files import WorkflowSetup, relative_to, workflow_files, workflow_layout

__all__ = ["InitResult", "init_project", "project_context"]


@dataclass(frozen=True)
class InitResult:
    """What ``init`` wrote."""

    path: Path
    project: str
    tier: Tier
    model: str
    files: tuple[str, ...]
    git_initialised: bool

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready mapping."""
        return {
            "path": str(self.path),
            "project": self.project,
            "tier": self.tier.value,
            "model": self.model,
            "files": list(self.files),
            "git_initialised": self.git_initialised,
        }


def project_context(name: str, tier: Tier, model: str, attested_workflow: str = "") -> dict[str, Any]:
    """What the sample project's templates are rendered with (by ``init``, and by ``init --existing`` for
    the files it takes from them)."""
    return {
        "project": name,
        "endpoint": endpoint_slug(name),
        "tier": tier.value,
        "model_name": model,
        "attested_workflow": attested_workflow,
    }


def init_project(
    path: Path, tier: Tier, *, name: str | None = None, model: str | None = None, git: bool = True
) -> InitResult:
    """Write the sample project into ``path`` (new, empty or an empty repository); ``git init`` it unless
    already in a repo. Inside a larger repository, its workflows go to that repository's top."""
    path = path.expanduser().resolve()
    if path.exists() and not path.is_dir():
        raise UsageError(f"{path} is a file; give a folder to create the project in")
    if path.is_dir() and (entries := [e for e in path.iterdir() if e.name != ".git"]):
        raise DirectoryNotEmpty(path=path, count=len(entries))  # a repository of its own may be new
    name = name or project_name(path)
    layout = workflow_layout(path, name)
    # In a repository already (a folder of a larger one, or an empty one): the branch its merges land on.
    in_repository = layout.workspace.is_dir() and is_git_repo(layout.workspace)
    branch = default_branch(layout.workspace) if in_repository else "main"
    workflows = workflow_files(layout, WorkflowSetup(branch=branch))
    taken = sorted(relative_to(layout.workspace, p) for p in workflows if p.exists())
    if taken:
        raise UsageError(
            f"the repository at {layout.workspace} has {', '.join(taken)} already (a project named {name}?); "
            "choose another name with --name"
        )
    context = project_context(name, tier, model or f"{name}-classifier", layout.folder and layout.inner_loop)
    files = {path / relative: content for relative, content in render_templates("project", context).items()}
    files.update(workflows)
    with on_path("create the project in", path, "give a folder you may write"):
        path.mkdir(parents=True, exist_ok=True)
    for target, content in files.items():
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(content)
    initialised = False
    if git and not is_git_repo(path):
        run_git(path, "init", "--quiet", "--initial-branch=main")
        initialised = True
    return InitResult(
        path=path,
        project=name,
        tier=tier,
        model=context["model_name"],
        files=tuple(sorted(relative_to(path, target) for target in files)),
        git_initialised=initialised,
    )
