"""How the workflows install a repository that already trains, as it says: its requirements file (the
nearest, up to the repository's top), uv's or Poetry's lock, or the package it builds, with the tools the
workflows' steps run; or, where it names none, a requirements file to write from what the model and the
training need."""

from __future__ import annotations

import os
import re
import shlex
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from loopline.git import toplevel
from loopline.requirements import training_file, training_requirements
from loopline.workflows.files import INSTALL, WorkflowSetup

__all__ = [
    "POETRY_INSTALL",
    "UV_INSTALL",
    "builds_package",
    "install_command",
    "installable",
    "pyproject_of",
    "requirement_lines",
    "requirement_names",
    "table",
    "up_to_top",
]


# How the workflows install a project that uv locks: the locked versions, exported to a requirements file
# that pip installs into the job's Python with the tools (the project itself too, where uv builds it).
UV_INSTALL = (
    'pip install uv && uv export --frozen --no-hashes --output-file "$RUNNER_TEMP/requirements.txt" && '
    'pip install -r "$RUNNER_TEMP/requirements.txt"'
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


def _tools_missing(requirements: list[str], tools: tuple[str, ...], own: Sequence[str] = ()) -> list[str]:
    """What to install beside ``requirements``: the dependencies ``own`` declares that they do not name
    (shell-quoted), then the ``tools`` of the workflows' steps that neither names."""
    names = requirement_names(requirements)
    extra = [line for line in own if not requirement_names([line]) & names]
    named = names | requirement_names(extra)
    return [shlex.quote(line) for line in extra] + [tool for tool in tools if tool not in named]


def _own_dependencies(root: Path, home: Path) -> list[str]:
    """The dependencies the project's own ``pyproject.toml`` declares where the project is installed from
    a folder above it (a monorepo's requirements file at its top): the workflows install them too."""
    if home == root.resolve():
        return []
    declared = table(pyproject_of(root), "project").get("dependencies", [])
    return [line for line in declared if isinstance(line, str) and line.strip()]


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


def up_to_top(root: Path) -> list[Path]:
    """``root`` and each folder above it up to the repository's top, nearest first (tools read their
    settings from these)."""
    top = toplevel(root) or root.resolve()
    return [root.resolve(), *(p for p in root.resolve().parents if p.is_relative_to(top))]


def pyproject_of(root: Path) -> dict[str, Any]:
    import tomllib

    try:
        return tomllib.loads((root / "pyproject.toml").read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError):
        return {}


def table(document: dict[str, Any], *keys: str) -> dict[str, Any]:
    """``document``'s table at ``keys`` (``table(pyproject, "tool", "poetry")``); an empty one where a key is
    missing or holds something else (as a file written by hand may)."""
    for key in keys:
        found = document.get(key)
        document = found if isinstance(found, dict) else {}
    return document


def installable(root: Path, pyproject: dict[str, Any] | None = None) -> bool:
    """Whether the repository is a package pip installs: a ``[build-system]`` in its ``pyproject.toml``,
    and not a Poetry application (``package-mode = false``)."""
    pyproject = pyproject_of(root) if pyproject is None else pyproject
    return "build-system" in pyproject and not _poetry_application(pyproject)


def builds_package(root: Path, pyproject: dict[str, Any] | None = None) -> bool:
    """Whether pip builds the repository as a package, ``installable`` or of setuptools' older kind (a
    ``setup.py`` alone): where its modules are under ``src/``, Python finds them only installed. (Only
    ``installable`` decides that pip installs the package alone: a ``setup.py`` often declares none of
    what the training needs.)"""
    return installable(root, pyproject) or (root / "setup.py").is_file()


def _poetry_application(pyproject: dict[str, Any]) -> bool:
    """Whether Poetry's configuration says the project is no package (``package-mode = false``)."""
    return table(pyproject, "tool", "poetry").get("package-mode", True) is False


def _install_home(root: Path) -> Path:
    """The folder whose files say how to install the project: the nearest, from the project's folder up to
    the repository's top, with a requirements file, a lock of uv or Poetry, or a package pip installs (a
    project in a folder of a larger repository is often installed from the repository's top)."""
    for folder in up_to_top(root):
        pyproject = pyproject_of(folder)
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


def install_command(
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
    own = _own_dependencies(root, home)
    # the commands run in the project's folder: the home's files are named from there (uv and Poetry
    # find their project in the folders above it themselves)
    up = os.path.relpath(home, root.resolve())
    pyproject = pyproject_of(home)
    declared = list(table(pyproject, "project").get("dependencies", []))
    package = installable(home, pyproject)
    if (home / "requirements.txt").is_file():
        listed = requirement_lines(home / "requirements.txt")
        install = INSTALL if up == "." else f"pip install -r {up}/requirements.txt"
        # a training in the package under src/ imports it as installed: the package goes in beside them
        package_too = [up] if builds_package(home, pyproject) and _in_src(home, root, training[0]) else []
        return (
            replace(setup, install=" ".join([install, *package_too, *_tools_missing(listed, tools, own)])),
            {},
            [],
        )
    if (home / "uv.lock").is_file() and "project" in pyproject:  # uv's locked versions, the project's own
        groups = pyproject.get("dependency-groups", {}).get("dev", [])
        listed = declared + [line for line in groups if isinstance(line, str)]
        note = "uv.lock: the workflows install the versions it locks (uv export --frozen), as uv sync would"
        return replace(setup, install=" ".join([UV_INSTALL, *_tools_missing(listed, tools, own)])), {}, [note]
    if (home / "poetry.lock").is_file():  # Poetry's locked versions, as `poetry install` has them
        return _poetry_install(pyproject, declared, tools, setup, up if package else "", own)
    if package:  # pip installs it and its dependencies
        install = " ".join([f"pip install {up}", *_tools_missing(declared, tools, own)])
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
    poetry = table(pyproject, "tool", "poetry")
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
    own: Sequence[str] = (),
) -> tuple[WorkflowSetup, dict[str, bytes], list[str]]:
    """The install of a project Poetry locks: the locked versions of its dependencies and of the groups
    ``poetry install`` installs, the package itself (in the folder ``package``) where it is one, the
    tools."""
    groups = _poetry_groups(pyproject)
    poetry = table(pyproject, "tool", "poetry")
    listed = declared + [name for name in poetry.get("dependencies") or {} if name != "python"]
    for group in groups.values():
        listed += group
    chosen = f" --with {','.join(groups)}" if groups else ""
    install = " ".join(
        [
            POETRY_INSTALL.format(groups=chosen),
            *([package] if package else []),
            *_tools_missing(listed, tools, own),
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
