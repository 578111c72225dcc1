"""How the workflows of a repository that already trains fit it: its default branch, the Python it pins,
and the command that installs it as it says (its requirements file, uv's lock, the package it builds),
with the tools the workflows' steps run; a requirements file written where it has none; what a dry run of
its training left in its working tree, and the files written into it (never over one that exists)."""

from __future__ import annotations

import ast
import re
import shlex
import sys
from collections.abc import Iterable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from loopline.config import STATE_DIR
from loopline.dvc_repo import default_remote, kept_by_dvc
from loopline.git import default_branch, run_git, toplevel
from loopline.repo_install import install_command, installable, pyproject_of, table, up_to_top
from loopline.requirements import source_code, training_file
from loopline.workflows.files import CRITICAL_LINT, LINT, WORKFLOWS, DvcFetch, WorkflowSetup

__all__ = [
    "DVC_TOOLS",
    "NOTEBOOK_NOTE",
    "NOTEBOOK_TOOLS",
    "TOOLS",
    "extend_gitignore",
    "ignored_data",
    "output_notes",
    "workflow_setup",
    "worktree_changes",
    "write_new",
]

TOOLS = ("loopline", "pytest", "ruff")
# What running a notebook takes besides: papermill and the kernel it starts.
NOTEBOOK_TOOLS = ("papermill", "ipykernel")
DVC_TOOLS = ("dvc",)  # for a training command that runs DVC's pipeline (`dvc repro`)
NOTEBOOK_NOTE = (
    "the training is a notebook: papermill runs it top to bottom in its own folder, on a kernel of this "
    "Python, and its cells' output goes to the training log; the workflows install papermill and ipykernel"
)


def _configures_ruff(root: Path) -> bool:
    """Whether ruff finds a configuration for the project: a ``ruff.toml``, ``.ruff.toml`` or
    ``pyproject.toml`` with ``[tool.ruff]`` in its folder or one above it in the repository."""
    return any(
        (folder / "ruff.toml").is_file()
        or (folder / ".ruff.toml").is_file()
        or "ruff" in table(pyproject_of(folder), "tool")
        for folder in up_to_top(root)
    )


def console_scripts(root: Path) -> dict[str, str]:
    """The commands the repository's package installs (``[project.scripts]``, Poetry's
    ``[tool.poetry.scripts]``), each name's ``module:function``; none where it is no package pip installs."""
    pyproject = pyproject_of(root)
    if not installable(root, pyproject):
        return {}
    found: dict[str, Any] = {**table(pyproject, "tool", "poetry", "scripts")}
    found.update(table(pyproject, "project", "scripts"))
    scripts = {}
    for name, value in found.items():
        if isinstance(value, dict) and value.get("type", "console") == "console":  # Poetry's table form
            value = value.get("reference")
        if isinstance(value, str) and ":" in value:
            scripts[name] = value.partition("[")[0].replace(" ", "")  # without its extras
    return scripts


def workflow_setup(
    root: Path,
    requirements: Sequence[str],
    tools: tuple[str, ...],
    command: str,
    conda_file: str = "",
    scripts: Sequence[str] = (),
) -> tuple[WorkflowSetup, dict[str, bytes], list[str]]:
    """How the workflows fit this repository: its default branch, its Python (``.python-version``, else the
    dry run's), and the command that installs it with the tools the steps run; a requirements file to
    write where the repository has none it installs from; notes. ``conda_file``: the conda environment
    file the training ran in elsewhere (an Azure ML job's), from the root; ``scripts``: the scripts the
    training command runs in turn (an Azure ML pipeline's steps), from the root."""
    python, why = _python_version(root)
    setup, notes = WorkflowSetup(default_branch(root), python), []
    if why:
        notes.append(
            f"the workflows run Python {python}, {why}; the dry run used "
            f"{sys.version_info.major}.{sys.version_info.minor}"
        )
    if _keeps_lfs_files(root):
        setup = replace(setup, lfs=True)
        notes.append(
            "the repository keeps files in Git LFS (.gitattributes): the inner loop's and Python CI's "
            "checkouts fetch them (lfs: true), which counts against the repository's LFS bandwidth"
        )
    if submodules := _submodules(root):
        setup = replace(setup, submodules=True)
        notes.append(_submodules_note(submodules))
    fetch, dvc_notes = _dvc_fetch(root)
    setup = replace(setup, dvc=fetch)
    notes += dvc_notes
    if tested := _tested_by_own_workflows(root):
        notes.append(
            f"the repository's own workflows already test its Python on pushes or pull requests "
            f"({'; '.join(tested)}), as python-ci.yml does: each pull request would run its tests twice; "
            "keep one of them (loopline needs python-ci.yml for nothing else)"
        )
    if not _configures_ruff(root):
        setup = replace(setup, lint=CRITICAL_LINT)
        notes.append(
            "the repository configures no ruff, so python-ci lints only for errors that stop the code "
            "(syntax errors, undefined names); configure ruff ([tool.ruff] in pyproject.toml, or ruff.toml) "
            f"and change its lint step to `{LINT}` to lint as that says"
        )
    setup, files, more = install_command(root, requirements, tools, setup, (command, scripts), conda_file)
    return setup, files, notes + more


_TESTING = re.compile(r"(?<![\w.-])(pytest|tox|nox|ruff|flake8|pylint|unittest)(?![\w-])")
"""The tools a step of a workflow tests or lints Python with."""


def _tested_by_own_workflows(root: Path) -> list[str]:
    """The repository's own workflow files (not loopline's) that test or lint its Python on pushes or pull
    requests, each with the tools its steps run."""
    import yaml

    folder = (toplevel(root) or root) / ".github" / "workflows"
    ours = {f"{name}.yml" for name in WORKFLOWS}
    found = []
    for path in sorted(folder.glob("*.y*ml")) if folder.is_dir() else []:
        try:
            document = yaml.safe_load(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, yaml.YAMLError):
            continue
        if path.name in ours or not isinstance(document, dict):
            continue
        on = document.get("on", document.get(True))  # YAML 1.1 reads a bare `on` as true
        triggers = on if isinstance(on, dict | list) else [on]
        if not {"push", "pull_request"} & {t for t in triggers if isinstance(t, str)}:
            continue
        jobs = table(document, "jobs")
        runs = [
            step["run"]
            for job in jobs.values()
            if isinstance(job, dict) and isinstance(job.get("steps"), list)
            for step in job["steps"]
            if isinstance(step, dict) and isinstance(step.get("run"), str)
        ]
        if tools := sorted({match[1] for run in runs for match in _TESTING.finditer(run)}):
            found.append(f".github/workflows/{path.name}: {', '.join(tools)}")
    return found


# DVC remotes by URL scheme: the extra of dvc that reaches them, and the environment variables their
# credentials come from in a job (each from the repository secret of the same name).
_DVC_REMOTES: dict[str, tuple[str, tuple[str, ...]]] = {
    "s3": ("s3", ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY")),
    "azure": ("azure", ("AZURE_STORAGE_CONNECTION_STRING",)),
    "gs": ("gs", ()),
    "gdrive": ("gdrive", ("GDRIVE_CREDENTIALS_DATA",)),
    "ssh": ("ssh", ()),
    "hdfs": ("hdfs", ()),
    "oss": ("oss", ()),
    "webdav": ("webdav", ()),
    "webdavs": ("webdav", ()),
    "http": ("", ()),
    "https": ("", ()),
}


def _dvc_fetch(root: Path) -> tuple[DvcFetch | None, list[str]]:
    """How the workflows fetch the data the repository keeps with DVC (its default remote), with notes;
    None where it keeps none, or where a runner could not reach its remote."""
    folders = up_to_top(root)
    config = next((folder / ".dvc" / "config" for folder in folders if (folder / ".dvc").is_dir()), None)
    if config is None:
        return None, []
    name, url = default_remote(config)
    if not url:
        return None, [
            "the repository keeps data with DVC but its committed .dvc/config gives no default remote with "
            "a URL, so the workflows cannot fetch it: add one (`dvc remote add -d NAME URL`, committed) and "
            "run init again"
        ]
    scheme = url.split("://", 1)[0].lower() if "://" in url else ""
    if not scheme or scheme == "file":
        return None, [
            f"the repository keeps data with DVC in remote {name}, a folder of this machine ({url}), which "
            "GitHub's runners cannot reach: point it at storage they can (`dvc remote modify "
            f"{name} url s3://...`) and run init again"
        ]
    extra, secrets = _DVC_REMOTES.get(scheme, ("", ()))
    fetch = DvcFetch(f"dvc[{extra}]" if extra else "dvc", secrets)
    where = f"add the repository secrets {', '.join(secrets)}" if secrets else "give the jobs access to it"
    return fetch, [
        f"the repository keeps data with DVC (remote {name}, {url}): the inner loop's training and Python "
        f"CI's tests run `dvc pull` on GitHub after installing the project; {where}"
    ]


def _keeps_lfs_files(root: Path) -> bool:
    """Whether a ``.gitattributes`` git tracks (or one about to be committed) hands files to Git LFS."""
    pathspec = ":(glob)**/.gitattributes"
    listed = run_git(root, "ls-files", "-z", "--cached", "--others", "--exclude-standard", "--", pathspec)
    for name in filter(None, listed.split("\0")):
        try:
            text = (root / name).read_text(encoding="utf-8", errors="replace")
        except OSError:
            continue
        if re.search(r"^[^#\n]*\sfilter=lfs\b", text, re.M):
            return True
    return False


def _submodules(root: Path) -> dict[str, str]:
    """The submodules of the repository ``root`` is in, as its committed ``.gitmodules`` lists them (or
    the one about to be committed): each one's path and URL."""
    top = toplevel(root)
    if top is None or not (top / ".gitmodules").is_file():
        return {}
    listed = run_git(
        top,
        "config",
        "-z",
        "--file",
        ".gitmodules",
        "--get-regexp",
        r"^submodule\..*\.(path|url)$",
        check=False,
    )
    found: dict[str, dict[str, str]] = {}
    for entry in filter(None, listed.split("\0")):
        key, _, value = entry.partition("\n")
        name, _, field = key.removeprefix("submodule.").rpartition(".")
        found.setdefault(name, {})[field] = value
    return {item["path"]: item.get("url", "") for item in found.values() if item.get("path")}


def _submodules_note(submodules: dict[str, str]) -> str:
    """What the workflows do with the repository's ``submodules`` (path: URL), and what they cannot."""
    local = [
        path
        for path, url in submodules.items()
        if url.startswith(("/", "file:", "~")) or re.match(r"[A-Za-z]:[\\/]", url)
    ]
    note = (
        f"the repository has submodules ({', '.join(submodules)}): the inner loop's training and Python "
        "CI's tests check them out (submodules: recursive); one in another private repository needs a "
        "token that reads it, as the repository secret SUBMODULES_TOKEN"
    )
    if local:
        note += (
            f"; {', '.join(local)} comes from a folder of this machine, which GitHub's runners cannot reach: "
            "point its URL in .gitmodules at a repository they can (`git submodule set-url PATH URL`)"
        )
    return note


def _python_version(root: Path) -> tuple[str, str]:
    """The Python the workflows run, and why where it is not the one the dry run used: the version the
    nearest ``.python-version`` pins (as pyenv and uv read it, from the project's folder up to the
    repository's top), else the dry run's where the nearest ``pyproject.toml`` that says which Pythons the
    project takes (``requires-python``, or Poetry's ``python`` dependency) takes it, else the one nearest it
    that does (pip refuses to install the project on another)."""
    here = f"{sys.version_info.major}.{sys.version_info.minor}"
    for folder in up_to_top(root):
        try:
            first = (folder / ".python-version").read_text(encoding="utf-8").split("\n", 1)[0].strip()
        except (OSError, UnicodeDecodeError):
            continue
        if re.fullmatch(r"3\.\d+(\.\d+)?", first):
            return first, "as .python-version says" if first.split(".")[:2] != here.split(".") else ""
    for folder in up_to_top(root):
        if (taken := _pythons_taken(pyproject_of(folder))) is None:
            continue
        said, allowed = taken
        if allowed.contains(_NEWEST_OF.format(sys.version_info.minor)):
            break
        fits = [n for n in _SETUP_PYTHONS if allowed.contains(_NEWEST_OF.format(n))]
        if fits:
            chosen = min(fits, key=lambda n: (abs(n - sys.version_info.minor), n))
            return f"3.{chosen}", f"as pyproject.toml's {said} allows"
        break
    return here, ""


_SETUP_PYTHONS = range(8, 15)
"""The minor versions of Python 3 actions/setup-python installs on GitHub's runners."""
_NEWEST_OF = "3.{}.99"
"""A release of a minor version past any it has had: setup-python installs the newest of one."""


def _pythons_taken(pyproject: dict[str, Any]) -> tuple[str, Any] | None:
    """What ``pyproject``'s project says of the Pythons it takes, and that as a ``SpecifierSet``; None
    where it says nothing pip reads (Poetry's ``^3.12`` and ``~3.12`` read as Poetry means them)."""
    from packaging.specifiers import InvalidSpecifier, SpecifierSet

    said = table(pyproject, "project").get("requires-python")
    name = f"requires-python ({said})"
    if not isinstance(said, str):
        said = table(pyproject, "tool", "poetry", "dependencies").get("python")
        name = f"Poetry python dependency ({said})"
    if not isinstance(said, str):
        return None
    text = said.strip()
    if caret := re.fullmatch(r"\^\s*3\.(\d+)(\.\d+)?", text):
        text = f">=3.{caret[1]}{caret[2] or ''},<4"
    elif tilde := re.fullmatch(r"~\s*3\.(\d+)(\.\d+)?", text):
        text = f">=3.{tilde[1]}{tilde[2] or ''},<3.{int(tilde[1]) + 1}"
    try:
        return name, SpecifierSet(text.replace(" ", ""))
    except InvalidSpecifier:
        return None


_DATA = frozenset(
    {
        ".csv",
        ".tsv",
        ".parquet",
        ".pq",
        ".feather",
        ".arrow",
        ".json",
        ".jsonl",
        ".xlsx",
        ".xls",
        ".npy",
        ".npz",
    }
    | {".h5", ".hdf5", ".pkl", ".pickle", ".zip", ".gz", ".txt"}
)
_OWN = frozenset({".git", ".loopline", "mlruns"})


def ignored_data(root: Path, command: str) -> list[str]:
    """The data files and folders the training names (its command's arguments, its code's strings) that git
    ignores: the fresh checkout the workflows train in has none of them. Asked before the training runs,
    so what it writes is not taken for what it reads."""
    script = training_file(root, command)
    try:
        names = set(shlex.split(command))
    except ValueError:
        names = set()
    names |= {name.split("=", 1)[1] for name in names if "=" in name}  # --data=PATH, DATA=PATH python ...
    names |= code_strings(source_code(script) if script else None)
    bases = [root, script.parent] if script else [root]
    return _ignored(root, {path for name in names if (path := _data_path(root, bases, name)) is not None})


def code_strings(text: str | None) -> set[str]:
    """The string constants of the Python code ``text``; none where it does not parse (a notebook's magics,
    say)."""
    try:
        tree = ast.parse(text) if text else None
    except (SyntaxError, ValueError):
        return set()
    if tree is None:
        return set()
    return {n.value for n in ast.walk(tree) if isinstance(n, ast.Constant) and isinstance(n.value, str)}


def ignored_reads(root: Path, read: Iterable[str], named: Iterable[str] = ()) -> list[str]:
    """The data files of the repository among ``read`` (paths a training opened to read, see
    ``run_script.OPENED_LOG``) that git ignores, less those in a folder of ``named`` (``ignored_data``'s)."""
    named = set(named)
    folders = tuple(n for n in named if n.endswith("/"))
    found = {path for name in read if (path := _data_path(root, [root], name)) is not None}
    return _ignored(root, {path for path in found - named if not path.startswith(folders)})


def _ignored(root: Path, found: set[str]) -> list[str]:
    """Those of ``found`` that git ignores, less those DVC keeps (the workflows pull or make them)."""
    if not found:
        return []
    said = run_git(root, "check-ignore", "--", *sorted(found), check=False)
    ignored = {line.strip() for line in said.splitlines() if line.strip()}
    return sorted(ignored - kept_by_dvc(root, ignored))


def _data_path(root: Path, bases: list[Path], name: str) -> str | None:
    """``name`` as an existing data file or folder of the repository (from one of ``bases``), or None."""
    if not name or len(name) > 300 or "\n" in name or name.startswith("-") or "://" in name:
        return None
    for base in bases:
        try:
            path = (base / name).resolve()
        except (OSError, ValueError):
            continue
        if path == root or not path.is_relative_to(root) or not path.exists():
            continue
        relative = path.relative_to(root).as_posix()
        if relative.split("/")[0] in _OWN or (path.is_file() and path.suffix.lower() not in _DATA):
            continue
        return relative + ("/" if path.is_dir() else "")
    return None


def write_new(root: Path, files: dict[str, bytes]) -> tuple[list[str], list[str]]:
    """Write each of ``files`` (relative to ``root``) that does not exist; those written, those kept."""
    written, kept = [], []
    for relative, content in files.items():
        target = root / relative
        if target.exists():
            kept.append(relative)
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(content)
        written.append(relative)
    return written, kept


# loopline's local state, and the stores MLflow makes where a training runs by hand without a tracking
# URI (a SQLite file in MLflow 3, a folder before): files in them would make the working tree dirty.
_LOCAL_STORES = (
    (f"{STATE_DIR}/", f"{STATE_DIR}/state.db"),
    ("mlruns/", "mlruns/0"),
    ("mlflow.db", "mlflow.db"),
)


def worktree_changes(root: Path) -> tuple[set[str], set[str]]:
    """The untracked paths of the working tree (a new folder as ``folder/``) other than loopline's and
    MLflow's local stores, and the tracked files changed."""
    stores = tuple(pattern for pattern, _probe in _LOCAL_STORES)
    untracked = run_git(root, "ls-files", "--others", "--exclude-standard", "--directory", "-z", check=False)
    changed = run_git(root, "diff", "--name-only", "--relative", "-z", check=False)
    return (
        {path for path in untracked.split("\0") if path and not path.startswith(stores)},
        {path for path in changed.split("\0") if path},
    )


def output_notes(made: list[str], changed: list[str]) -> list[str]:
    """What to know of the files the dry run of the training wrote into the repository."""
    notes = []
    if made:
        notes.append(
            f"the training wrote {', '.join(made)} into the repository: added to .gitignore, since an inner "
            "loop refuses a working tree its last training left dirty (delete them if they are not wanted)"
        )
    if changed:
        notes.append(
            f"the training changed {', '.join(changed)}, which git tracks: an inner loop refuses a working "
            "tree its last training left dirty, so make the training write them elsewhere (or stop tracking "
            "them)"
        )
    return notes


def extend_gitignore(root: Path, outputs: list[str]) -> list[str]:
    """Add each of ``.loopline/``, ``mlruns/`` and ``mlflow.db``, and the training's ``outputs`` (anchored
    at the top), to ``.gitignore`` unless git already ignores it; the ones added."""
    added = [
        pattern
        for pattern, probe in _LOCAL_STORES
        if not run_git(root, "check-ignore", "--no-index", probe, check=False).strip()
    ] + [f"/{path}" for path in outputs]
    if added:
        path = root / ".gitignore"
        text = path.read_text() if path.exists() else ""
        path.write_text(
            text + ("" if not text or text.endswith("\n") else "\n") + "".join(f"{a}\n" for a in added)
        )
    return added
