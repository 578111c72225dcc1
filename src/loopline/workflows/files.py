"""The workflow files: identical in every tier; each asks loopline whether its tier enables it."""

from __future__ import annotations

import hashlib
import json
import os
import re
import shlex
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from loopline.domain import WORKFLOW_TIERS, Tier
from loopline.errors import UsageError
from loopline.git import toplevel
from loopline.rendering import render_templates

__all__ = [
    "INSTALL",
    "WORKFLOWS",
    "DvcFetch",
    "WorkflowLayout",
    "WorkflowSetup",
    "WorkflowSwitch",
    "digest",
    "fit",
    "is_enabled",
    "recorded_digest",
    "relative_to",
    "templates",
    "workflow_files",
    "workflow_layout",
]

WORKFLOWS = tuple(WORKFLOW_TIERS)
FOLDER = Path(".github") / "workflows"
# The templates' install step: the sample project's requirements.txt lists loopline, pytest and ruff.
INSTALL = "pip install -r requirements.txt"
LINT = "python -m ruff check ."  # the templates' lint step, with the repository's ruff configuration
# Without one: only what stops the code (syntax errors, undefined names), as GitHub's starter Python
# workflow fails its builds only on these, so a repository's first pull request is not failed for style.
CRITICAL_LINT = "python -m ruff check --select E9,F63,F7,F82 ."


_MARK = "# Written by loopline from its template "
_MARK_LINE = re.compile(rf"^{re.escape(_MARK)}([0-9a-f]{{16}})\b.*\n")


def digest(template: str) -> str:
    """The digest of a workflow template, as the first line of a file made from it names it."""
    return hashlib.sha256(template.encode()).hexdigest()[:16]


def recorded_digest(text: str) -> tuple[str | None, str]:
    """The template digest ``text``'s first line names (None: no such line), and the text without it."""
    found = _MARK_LINE.match(text)
    return (found[1], text[found.end() :]) if found else (None, text)


@dataclass(frozen=True)
class WorkflowLayout:
    """Where a project's workflow files live and where their steps run.

    GitHub reads workflows only from the ``.github/workflows`` folder at the top of a repository. A project
    in a folder of its repository (``ml/churn``) has its files there, named after the project
    (``churn-inner-loop.yml``, so that several projects can share the repository), with
    ``defaults.run.working-directory`` set to its folder and concurrency groups of its own.
    """

    workspace: Path  # the repository's top folder, GITHUB_WORKSPACE
    folder: str  # the project's folder in it ("" at the top)
    project: str

    @property
    def prefix(self) -> str:
        """What the project's workflow file names start with."""
        return f"{self.project}-" if self.folder else ""

    def path(self, workflow: str) -> Path:
        """The file of ``workflow`` (a name such as ``inner-loop``)."""
        return self.workspace / FOLDER / f"{self.prefix}{workflow.removesuffix('.yml')}.yml"

    @property
    def inner_loop(self) -> str:
        """The inner-loop file as GitHub's OIDC tokens name it (``job_workflow_ref``), from the top."""
        return (FOLDER / f"{self.prefix}inner-loop.yml").as_posix()


def workflow_layout(root: Path, project: str) -> WorkflowLayout:
    """The layout of the project at ``root`` (which may not exist yet), named ``project``."""
    existing = next(folder for folder in (root, *root.parents) if folder.is_dir())
    top = toplevel(existing)
    if top is None or top == root:
        return WorkflowLayout(root, "", project)
    return WorkflowLayout(top, root.relative_to(top).as_posix(), project)


@dataclass(frozen=True)
class DvcFetch:
    """How the jobs that train or test fetch the data a repository keeps with DVC: the package pip
    installs (DVC with the extra its default remote needs) and the repository secrets its credentials come
    from, each as the environment variable of the same name."""

    package: str = "dvc"
    secrets: tuple[str, ...] = ()
    allow_missing: bool = True
    """``dvc pull --allow-missing``, as loopline writes it now; False: plain ``dvc pull``, as an earlier
    loopline wrote it (how ``workflow update`` makes such a file again, to bring it to today's)."""


@dataclass(frozen=True)
class WorkflowSetup:
    """How the workflow files fit a repository: the branch merges land on (outer-loop test runs on pushes
    to it), the jobs' Python version, and the command that installs the project with the tools the steps
    run (loopline, pytest, ruff), Python CI's lint, and whether the checkouts of the jobs that train or
    test fetch the files Git LFS keeps."""

    branch: str = "main"
    python: str = "3.11"
    install: str = INSTALL
    lint: str = LINT
    lfs: bool = False  # the repository keeps files in Git LFS: the jobs that train or test fetch them
    submodules: bool = False  # the repository has submodules: the same jobs' checkouts fetch them
    dvc: DvcFetch | None = None  # the repository keeps data with DVC: the same jobs pull it


def workflow_files(layout: WorkflowLayout, setup: WorkflowSetup = WorkflowSetup()) -> dict[Path, bytes]:
    """Every workflow file of ``layout`` by its path, fitted to the repository as ``setup`` says (default:
    the sample project's, on main, whose requirements.txt lists the tools)."""
    return {
        layout.path(name): fit(name, content.decode(), layout, setup).encode()
        for name, content in templates().items()
    }


def templates() -> dict[str, bytes]:
    """The workflow templates of this loopline, by file name (``inner-loop.yml``)."""
    return render_templates("workflows", {})


def fit(name: str, template: str, layout: WorkflowLayout, setup: WorkflowSetup) -> str:
    """``template``, the workflow file ``name`` as loopline ships it, fitted to the repository as ``setup``
    says, its first line naming the template."""
    text = template.replace(f"run: {INSTALL}\n", f"run: {setup.install}\n")
    if setup.lint != LINT:
        said = "        # The repository configures no ruff: only the errors that stop the code.\n"
        text = text.replace(f"        run: {LINT}\n", f"{said}        run: {setup.lint}\n")
    text = text.replace('python-version: "3.11"', f'python-version: "{setup.python}"')
    text = text.replace("branches: [main]\n", f"branches: [{json.dumps(setup.branch)}]\n")
    if setup.lfs and name in _DATA_JOBS:
        text = _with_checkout(text, _DATA_JOBS[name], _LFS)
    if setup.submodules and name in _DATA_JOBS:
        text = _with_checkout(text, _DATA_JOBS[name], _SUBMODULES)
    if setup.dvc and name in _DATA_JOBS:
        text = _with_dvc(text, _DATA_JOBS[name], setup.dvc)
    if layout.folder:
        text = _in_folder(text, layout, name)
    return (
        f"{_MARK}{digest(template)}; `loopline workflow update` brings it to a newer loopline's, keeping "
        f"your edits.\n{text}"
    )


_DATA_JOBS = {"inner-loop.yml": "inner-loop", "python-ci.yml": "lint-and-test"}  # they read the files
_CHECKOUT = "      - uses: actions/checkout@v4\n"
_OWN_WITH = re.compile(r"(?:        #.*\n)*        with:\n")  # the step's comments, then its `with:`


# The files the repository keeps in Git LFS: a checkout leaves their pointers otherwise, which a training
# cannot read.
_LFS = "          lfs: true   # the files the repository keeps in Git LFS\n"
# The repository's submodules (the code a training imports from them): a checkout leaves their folders
# empty otherwise. The job's own token reads those of public repositories and of this one's owner where
# it may; one in another private repository needs a token that reads it.
_SUBMODULES = (
    "          submodules: recursive   # the repository's submodules (.gitmodules)\n"
    "          # a submodule in another private repository: a token that reads it, in this secret\n"
    "          token: ${{ secrets.SUBMODULES_TOKEN || github.token }}\n"
)


def _with_checkout(text: str, job: str, inputs: str) -> str:
    """``text`` with the checkout of ``job`` given the ``inputs`` (lines of its ``with:``)."""
    head, job_line, rest = text.partition(f"\n  {job}:\n")
    before, checkout, after = rest.partition(_CHECKOUT)
    assert checkout, f"the {job} job has no checkout step"
    own = _OWN_WITH.match(after)
    after = own.group(0) + inputs + after[own.end() :] if own else "        with:\n" + inputs + after
    return head + job_line + before + checkout + after


_INSTALL_STEP = re.compile(r"      - name: Install the project\n(?:        .*\n)*?        run: .*\n")


def _with_dvc(text: str, job: str, fetch: DvcFetch) -> str:
    """``text`` with ``job`` running ``dvc pull`` after it installs the project, its remote's credentials
    from the repository's secrets. Only on GitHub: a local run reads the working tree's data, as a
    training started by hand does. ``--allow-missing``: a stage's outputs that were never pushed (a
    ``dvc repro`` run before the commit without a ``dvc push``) do not stop the job, where the training's
    ``dvc repro`` makes them again; a missing input stops the training, which names it."""
    head, job_line, rest = text.partition(f"\n  {job}:\n")
    install = _INSTALL_STEP.search(rest)
    assert install, f"the {job} job has no install step"
    env = "".join(f"          {name}: ${{{{ secrets.{name} }}}}\n" for name in fetch.secrets)
    step = (
        "      - name: Fetch the data DVC keeps\n"
        "        if: env.LOOPLINE_LOCAL_RUN != 'true'\n"
        f"        run: pip install {shlex.quote(fetch.package)} && dvc pull"
        + (" --allow-missing\n" if fetch.allow_missing else "\n")
    ) + (f"        env:\n{env}" if env else "")
    return head + job_line + rest[: install.end()] + step + rest[install.end() :]


def _in_folder(text: str, layout: WorkflowLayout, name: str) -> str:
    """The workflow file ``name`` made for a project in a folder of its repository: its steps run in that
    folder, its name and concurrency groups are the project's, and Python CI runs only for changes there."""
    defaults = f"defaults:\n  run:\n    working-directory: {layout.folder}\n\njobs:\n"
    text = text.replace("\njobs:\n", f"\n{defaults}", 1)
    text = text.replace("\nname: ", f"\nname: {layout.project} ", 1)
    # Outer-loop test follows the inner loop by its name, which is the project's now.
    text = text.replace(
        "workflows: [inner-loop]", f"workflows: [{json.dumps(layout.project + ' inner-loop')}]"
    )
    text = text.replace("group: ", f"group: {layout.project}-")
    if name.endswith("python-ci.yml"):
        own = layout.path(name).relative_to(layout.workspace).as_posix()
        paths = f'    paths: ["{layout.folder}/**", "{own}"]\n'
        text = text.replace("  pull_request:\n  push:\n", f"  pull_request:\n{paths}  push:\n{paths}", 1)
    return text


def relative_to(root: Path, path: Path) -> str:
    """``path`` as seen from ``root`` (``../../.github/...`` for a file above it)."""
    return Path(os.path.relpath(path, root)).as_posix()


@dataclass(frozen=True)
class WorkflowSwitch:
    """Whether a workflow runs in a tier."""

    workflow: str
    tier: Tier
    enabled: bool

    @property
    def notice(self) -> str:
        """One line for the run's log."""
        if self.enabled:
            return f"{self.workflow} runs in the {self.tier.value} tier"
        tiers = ", ".join(sorted(t.value for t in WORKFLOW_TIERS[self.workflow]))
        return (
            f"{self.workflow} is off in the {self.tier.value} tier (it runs in: {tiers}); this run ends here"
        )

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready mapping."""
        return {
            "workflow": self.workflow,
            "tier": self.tier.value,
            "enabled": self.enabled,
            "notice": self.notice,
        }


def is_enabled(workflow: str, tier: Tier) -> WorkflowSwitch:
    """Whether ``workflow`` runs in ``tier``."""
    name = workflow.removesuffix(".yml")
    if name not in WORKFLOW_TIERS:
        raise UsageError(f"no workflow named '{workflow}'; the workflows are {', '.join(WORKFLOWS)}")
    return WorkflowSwitch(name, tier, tier in WORKFLOW_TIERS[name])
