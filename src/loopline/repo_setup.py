"""How the workflows of a repository that already trains fit it: its default branch, the Python it pins,
and the command that installs it as it says (its requirements file, uv's lock, the package it builds),
with the tools the workflows' steps run; a requirements file written where it has none; what a dry run of
its training left in its working tree, and the files written into it (never over one that exists)."""

from __future__ import annotations

import ast
import os
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
from loopline.requirements import source_code, training_file, training_requirements
from loopline.workflows.files import CRITICAL_LINT, INSTALL, LINT, DvcFetch, WorkflowSetup

__all__ = [
    "DVC_TOOLS",
    "NOTEBOOK_NOTE",
    "NOTEBOOK_TOOLS",
    "POETRY_INSTALL",
    "TOOLS",
    "UV_INSTALL",
    "extend_gitignore",
    "ignored_data",
    "output_notes",
    "requirement_lines",
    "requirement_names",
    "workflow_setup",
    "worktree_changes",
    "write_new",
]

TOOLS = ("loopline", "pytest", "ruff")
# How the workflows install a project that uv locks: the locked versions, exported to a requirements file
# that pip installs into the job's Python with the tools (the project itself too, where uv builds it).
UV_INSTALL = (
    'pip install uv && uv export --frozen --no-hashes --output-file "$RUNNER_TEMP/requirements.txt" && '
    'pip install -r "$RUNNER_TEMP/requirements.txt"'
)
# What running a notebook takes besides: papermill and the kernel it starts.
NOTEBOOK_TOOLS = ("papermill", "ipykernel")
DVC_TOOLS = ("dvc",)  # for a training command that runs DVC's pipeline (`dvc repro`)
NOTEBOOK_NOTE = (
    "the training is a notebook: papermill runs it top to bottom in its own folder, on a kernel of this "
    "Python, and its cells' output goes to the training log; the workflows install papermill and ipykernel"
)


def requirement_lines(path: Path, seen: frozenset[Path] = frozenset()) -> list[str]:
    """The requirements of a requirements file (following ``-r`` includes), one specifier a line."""
    if not path.is_file() or path in seen:
        return []
    lines = []
    for raw in path.read_text(encoding="utf-8", errors="replace").splitlines():
        line = raw.split(" #", 1)[0].strip()
        if line.startswith(("-r ", "--requirement ")):
            included = path.parent / line.split(maxsplit=1)[1].strip()
            lines += requirement_lines(included, seen | {path})
        elif line and not line.startswith(("#", "-")):
            lines.append(line)
    return lines


def requirement_names(requirements: list[str]) -> set[str]:
    """The distributions ``requirements`` name, normalised (``scikit_learn`` is ``scikit-learn``)."""
    from packaging.requirements import InvalidRequirement, Requirement
    from packaging.utils import canonicalize_name

    names: set[str] = set()
    for line in requirements:
        try:
            names.add(canonicalize_name(Requirement(line).name))
        except InvalidRequirement:
            continue
    return names


def _tools_missing(requirements: list[str], tools: tuple[str, ...]) -> list[str]:
    """The ``tools`` of the workflows' steps that ``requirements`` do not name."""
    names = requirement_names(requirements)
    return [tool for tool in tools if tool not in names]


# How the workflows install a project that Poetry locks: Poetry exports the locked versions (of the groups
# `poetry install` installs) to a requirements file that pip installs with the tools, and the project too
# where it is a package.
POETRY_INSTALL = (
    "pip install poetry poetry-plugin-export && poetry export --without-hashes{groups} --output "
    '"$RUNNER_TEMP/requirements.txt" && pip install -r "$RUNNER_TEMP/requirements.txt"'
)
_POETRY_APPLICATION = (
    "the project is not a package (Poetry's package-mode = false), which pip cannot install, and it has "
    "no poetry.lock: the workflows install the requirements.txt written here, pinned to the versions "
    "installed here"
)


def _up_to_top(root: Path) -> list[Path]:
    """``root`` and each folder above it up to the repository's top, nearest first (tools read their
    settings from these)."""
    top = toplevel(root) or root.resolve()
    return [root.resolve(), *(p for p in root.resolve().parents if p.is_relative_to(top))]


def _configures_ruff(root: Path) -> bool:
    """Whether ruff finds a configuration for the project: a ``ruff.toml``, ``.ruff.toml`` or
    ``pyproject.toml`` with ``[tool.ruff]`` in its folder or one above it in the repository."""
    return any(
        (folder / "ruff.toml").is_file()
        or (folder / ".ruff.toml").is_file()
        or "ruff" in _pyproject(folder).get("tool", {})
        for folder in _up_to_top(root)
    )


def _pyproject(root: Path) -> dict[str, Any]:
    import tomllib

    try:
        return tomllib.loads((root / "pyproject.toml").read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError):
        return {}


def installable(root: Path, pyproject: dict[str, Any] | None = None) -> bool:
    """Whether the repository is a package pip installs: a ``[build-system]`` in its ``pyproject.toml``,
    and not a Poetry application (``package-mode = false``)."""
    pyproject = _pyproject(root) if pyproject is None else pyproject
    return "build-system" in pyproject and not _poetry_application(pyproject)


def console_scripts(root: Path) -> dict[str, str]:
    """The commands the repository's package installs (``[project.scripts]``, Poetry's
    ``[tool.poetry.scripts]``), each name's ``module:function``; none where it is no package pip installs."""
    pyproject = _pyproject(root)
    if not installable(root, pyproject):
        return {}
    found: dict[str, Any] = {**pyproject.get("tool", {}).get("poetry", {}).get("scripts", {})}
    found.update(pyproject.get("project", {}).get("scripts", {}))
    scripts = {}
    for name, value in found.items():
        if isinstance(value, dict) and value.get("type", "console") == "console":  # Poetry's table form
            value = value.get("reference")
        if isinstance(value, str) and ":" in value:
            scripts[name] = value.partition("[")[0].replace(" ", "")  # without its extras
    return scripts


def _poetry_application(pyproject: dict[str, Any]) -> bool:
    """Whether Poetry's configuration says the project is no package (``package-mode = false``)."""
    return pyproject.get("tool", {}).get("poetry", {}).get("package-mode", True) is False


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
    setup, notes = WorkflowSetup(default_branch(root), _python_version(root)), []
    if setup.python.split(".")[:2] != [str(sys.version_info.major), str(sys.version_info.minor)]:
        notes.append(
            f"the workflows run Python {setup.python}, as .python-version says; the dry run used "
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
    if not _configures_ruff(root):
        setup = replace(setup, lint=CRITICAL_LINT)
        notes.append(
            "the repository configures no ruff, so python-ci lints only for errors that stop the code "
            "(syntax errors, undefined names); configure ruff ([tool.ruff] in pyproject.toml, or ruff.toml) "
            f"and change its lint step to `{LINT}` to lint as that says"
        )
    setup, files, more = _install(root, requirements, tools, setup, (command, scripts), conda_file)
    return setup, files, notes + more


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
    folders = _up_to_top(root)
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


def _python_version(root: Path) -> str:
    """The Python the workflows run: the version the nearest ``.python-version`` pins (as pyenv and uv
    read it, from the project's folder up to the repository's top), else the one the dry run used."""
    for folder in _up_to_top(root):
        try:
            first = (folder / ".python-version").read_text(encoding="utf-8").split("\n", 1)[0].strip()
        except (OSError, UnicodeDecodeError):
            continue
        if re.fullmatch(r"3\.\d+(\.\d+)?", first):
            return first
    return f"{sys.version_info.major}.{sys.version_info.minor}"


def _install_home(root: Path) -> Path:
    """The folder whose files say how to install the project: the nearest, from the project's folder up to
    the repository's top, with a requirements file, a lock of uv or Poetry, or a package pip installs (a
    project in a folder of a larger repository is often installed from the repository's top)."""
    for folder in _up_to_top(root):
        pyproject = _pyproject(folder)
        if (
            (folder / "requirements.txt").is_file()
            or ((folder / "uv.lock").is_file() and "project" in pyproject)
            or (folder / "poetry.lock").is_file()
            or installable(folder, pyproject)
        ):
            return folder
    return root.resolve()


def _without_local_label(line: str) -> str:
    """A pin without its local version label (``torch==2.5.1+cpu`` is ``torch==2.5.1``): MLflow keeps the
    label of a package it finds imported while it loads the model, and no package index but the
    vendor's serves it, so ``pip install`` would fail on GitHub's runners."""
    return re.sub(r"(===?\s*[^\s,;+]+)\+[A-Za-z0-9.]+", r"\1", line)


def _install(
    root: Path,
    requirements: Sequence[str],
    tools: tuple[str, ...],
    setup: WorkflowSetup,
    training: tuple[str, Sequence[str]],
    conda_file: str = "",
) -> tuple[WorkflowSetup, dict[str, bytes], list[str]]:
    """The command that installs the repository as it says, with the ``tools`` it does not list; a
    requirements file to write where it has none to install from (with what the ``training`` command, and
    the scripts it runs, import); notes."""
    home = _install_home(root)
    # the commands run in the project's folder: the home's files are named from there (uv and Poetry
    # find their project in the folders above it themselves)
    up = os.path.relpath(home, root.resolve())
    pyproject = _pyproject(home)
    declared = list(pyproject.get("project", {}).get("dependencies", []))
    package = installable(home, pyproject)
    if (home / "requirements.txt").is_file():
        listed = requirement_lines(home / "requirements.txt")
        install = INSTALL if up == "." else f"pip install -r {up}/requirements.txt"
        # a training in the package under src/ imports it as installed: the package goes in beside them
        # (a package of setuptools' older kind, a setup.py alone, too)
        builds = package or (home / "setup.py").is_file()
        own = [up] if builds and _in_src(home, root, training[0]) else []
        return replace(setup, install=" ".join([install, *own, *_tools_missing(listed, tools)])), {}, []
    if (home / "uv.lock").is_file() and "project" in pyproject:  # uv's locked versions, the project's own
        groups = pyproject.get("dependency-groups", {}).get("dev", [])
        listed = declared + [line for line in groups if isinstance(line, str)]
        note = "uv.lock: the workflows install the versions it locks (uv export --frozen), as uv sync would"
        return replace(setup, install=" ".join([UV_INSTALL, *_tools_missing(listed, tools)])), {}, [note]
    if (home / "poetry.lock").is_file():  # Poetry's locked versions, as `poetry install` has them
        return _poetry_install(pyproject, declared, tools, setup, up if package else "")
    if package:  # pip installs it and its dependencies
        install = " ".join([f"pip install {up}", *_tools_missing(declared, tools)])
        return replace(setup, install=install), {}, []
    lines = list(declared)
    for line in [*map(_without_local_label, requirements), *training_requirements(root, *training)]:
        if not requirement_names([line]) & requirement_names(lines):
            lines.append(line)
    lines += _tools_missing(lines, tools)
    text = (
        "# What the workflows install (written by `loopline init --existing`): the dependencies the\n"
        "# model was logged with, as MLflow inferred them, what else the training imports, as installed\n"
        "# here, and loopline's tools.\n"
    ) + "".join(f"{line}\n" for line in lines)
    note = (
        "the repository has no requirements.txt: one is written from the model's requirements (as "
        "MLflow inferred them), what else the training imports (as installed here) and loopline's "
        "tools, for the workflows to install; check it before you commit it"
    )
    notes = [note, *([_POETRY_APPLICATION] if _poetry_application(pyproject) else [])]
    conda, packages = _conda_environment(root, conda_file)
    if conda:
        notes.append(
            _conda_note(
                conda, [name for name in packages if not requirement_names([name]) & requirement_names(lines)]
            )
        )
    return setup, {"requirements.txt": text.encode()}, notes


def _poetry_groups(pyproject: dict[str, Any]) -> dict[str, list[str]]:
    """The dependency groups ``poetry install`` installs (Poetry's own but the optional ones, Poetry 1's
    dev-dependencies, and the standard ``[dependency-groups]``), each with what it lists."""
    poetry = pyproject.get("tool", {}).get("poetry", {})
    groups: dict[str, list[str]] = {}
    for name, group in (poetry.get("group") or {}).items():
        if isinstance(group, dict) and not group.get("optional", False):
            groups[name] = list(group.get("dependencies") or {})
    if isinstance(poetry.get("dev-dependencies"), dict):  # Poetry 1's, its dev group
        groups.setdefault("dev", []).extend(poetry["dev-dependencies"])
    for name, lines in (pyproject.get("dependency-groups") or {}).items():
        if isinstance(lines, list):
            groups.setdefault(name, []).extend(line for line in lines if isinstance(line, str))
    return groups


def _in_src(home: Path, root: Path, command: str) -> bool:
    """Whether the file ``command`` runs (in the project's folder ``root``) is under the ``src/`` of the
    folder the project is installed from (a src layout's package)."""
    script = training_file(root, command)
    return script is not None and script.resolve().is_relative_to((home / "src").resolve())


def _poetry_install(
    pyproject: dict[str, Any],
    declared: list[str],
    tools: tuple[str, ...],
    setup: WorkflowSetup,
    package: str,
) -> tuple[WorkflowSetup, dict[str, bytes], list[str]]:
    """The install of a project Poetry locks: the locked versions of its dependencies and of the groups
    ``poetry install`` installs, the package itself (in the folder ``package``) where it is one, the
    tools."""
    groups = _poetry_groups(pyproject)
    poetry = pyproject.get("tool", {}).get("poetry", {})
    listed = declared + [name for name in poetry.get("dependencies") or {} if name != "python"]
    for group in groups.values():
        listed += group
    chosen = f" --with {','.join(groups)}" if groups else ""
    install = " ".join(
        [
            POETRY_INSTALL.format(groups=chosen),
            *([package] if package else []),
            *_tools_missing(listed, tools),
        ]
    )
    with_groups = f" and its {', '.join(groups)} group{'s' if len(groups) > 1 else ''}" if groups else ""
    note = (
        f"poetry.lock: the workflows install the versions it locks (poetry export) of the project's "
        f"dependencies{with_groups}, as poetry install would{', and the package itself' if package else ''}"
    )
    return replace(setup, install=install), {}, [note]


# Conda environment files, as conda and Azure ML name them.
_CONDA_FILES = ("environment.yml", "environment.yaml", "conda.yml", "conda.yaml")
_CONDA_TOOLS = frozenset({"python", "pip", "setuptools", "wheel"})
_LARGEST_CONDA_FILE = 1 << 20


def _conda_environment(root: Path, named: str = "") -> tuple[str, list[str]]:
    """The repository's conda environment file (``named``, else one at its root; empty where it has none)
    and the names of the packages it lists, conda's and its pip section's (conda's own tools and Python
    aside)."""
    import yaml

    for name in [named] if named else _CONDA_FILES:
        path = (root / name).resolve()
        try:
            if not path.is_relative_to(root.resolve()) or path.stat().st_size > _LARGEST_CONDA_FILE:
                continue  # not the repository's, or not a page of YAML
            data = yaml.safe_load(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, yaml.YAMLError):
            continue
        dependencies = data.get("dependencies") if isinstance(data, dict) else None
        if not isinstance(dependencies, list):
            continue
        specs = [str(item) for item in dependencies if isinstance(item, str)]
        for item in dependencies:
            if isinstance(item, dict) and isinstance(item.get("pip"), list):
                specs += [str(line).strip() for line in item["pip"] if not str(line).strip().startswith("-")]
        names = [re.split(r"[\s=<>!~\[;@]", spec.split("::")[-1].strip())[0] for spec in specs]
        return name, list(dict.fromkeys(n for n in names if n and n.lower() not in _CONDA_TOOLS))
    return "", []


def _conda_note(name: str, left_out: list[str]) -> str:
    """What the workflows make of a conda environment file (``left_out``: the packages it lists that the
    requirements written do not)."""
    shown = ", ".join(left_out[:6]) + (", ..." if len(left_out) > 6 else "")
    return (
        f"{name} (a conda environment) is not read: the workflows install requirements.txt with pip on "
        "GitHub's Python"
        + (
            f"; of the packages it lists, {shown} are not in requirements.txt (add those the jobs need)"
            if left_out
            else ""
        )
    )


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
        names = set(shlex.split(command)[1:])
    except ValueError:
        names = set()
    text = source_code(script) if script else None
    try:
        tree = ast.parse(text) if text else None
    except SyntaxError:  # a notebook's magics, say: its command's arguments still count
        tree = None
    if tree is not None:
        names |= {n.value for n in ast.walk(tree) if isinstance(n, ast.Constant) and isinstance(n.value, str)}
    bases = [root, script.parent] if script else [root]
    return _ignored(root, {path for name in names if (path := _data_path(root, bases, name)) is not None})


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
