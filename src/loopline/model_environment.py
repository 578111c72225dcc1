"""How a model's requirements differ from the Python environment that loads it.

MLflow writes the packages a model was logged with into the model's ``requirements.txt``, pinned as they
were installed (``scikit-learn==1.5.2``). A model pickled by one version of its library and loaded by
another may load and answer otherwise, or not at all (scikit-learn promises nothing across versions), so
deploying, checking and serving compare the two, as MLflow's own loader does. Nothing runs: the file is
read as text (its bytes are the uploader's, so only its first 64 KiB) and the installed versions come
from the distributions' metadata.
"""

from __future__ import annotations

import contextlib
import functools
import json
import re
import sys
import zipfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, packages_distributions, version
from pathlib import Path

from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name
from packaging.version import InvalidVersion, Version

__all__ = ["Difference", "differences", "needless", "said", "warning"]

_MOST_BYTES = 64 * 1024  # MLflow writes a few hundred bytes
_MOST_SHOWN = 4
_COMMENT = re.compile(r"(^|\s)#.*")  # pip's comments: a '#' at the start or after a space (not in a URL)
# The array libraries scikit-learn bundles adapters for (sklearn.externals.array_api_compat), by the
# distributions that install them: loading a model saved with skops (MLflow's default format for
# scikit-learn) walks every module of scikit-learn, adapters included, which import these where
# installed, so MLflow, recording what loading imported, lists them for any model trained where they are.
# A model needs one only where its file names its module.
_ADAPTED = re.compile(r"^(torch|dask|cupy)(-cuda\d+x?|-rocm-[\d-]+)?$")
# Packages the libraries that load such a model import for themselves where they are installed, and
# need not be (none depends on them): pytest (scikit-learn's discovery of its estimators walks its test
# utilities), rich (scikit-learn's progress bars), polars (MLflow's datasets), psutil (MLflow's tracing,
# through OpenTelemetry). By distribution, with the module each installs.
_INCIDENTAL = {"pytest": "pytest", "rich": "rich", "polars": "polars", "psutil": "psutil"}
_MOST_SCHEMA_BYTES = 64 * 1024 * 1024


@dataclass(frozen=True)
class Difference:
    """One requirement of a model that the environment here does not meet."""

    requirement: str
    """As the model names it, for example ``scikit-learn==1.5.2``."""
    installed: str | None
    """The version installed here; None where the package is not installed."""

    @property
    def name(self) -> str:
        """The package's name as pip compares names (``scikit-learn`` for ``Scikit_Learn==1.5.2``)."""
        return canonicalize_name(Requirement(self.requirement).name)

    def __str__(self) -> str:
        return (
            f"{self.requirement} ({self.installed} here)"
            if self.installed
            else f"{self.requirement} (not installed)"
        )


def differences(folder: Path) -> tuple[Difference, ...]:
    """The requirements in the model folder's ``requirements.txt`` that the packages installed here do not
    meet, in the file's order (less those the model does not use: see :func:`needless`); none where the
    model has no such file."""
    try:
        with (folder / "requirements.txt").open("rb") as opened:
            text = opened.read(_MOST_BYTES).decode("utf-8", "replace")
    except OSError:
        return ()
    found = [d for d in map(_unmet, (_COMMENT.sub("", line).strip() for line in text.splitlines())) if d]
    unused = needless(folder, [d.name for d in found])
    return tuple(d for d in found if d.name not in unused)


def needless(folder: Path, names: Sequence[str]) -> set[str]:
    """Those of the packages ``names`` (as pip names them, from the model's requirements) that the model in
    ``folder`` does not use: an array library MLflow lists for a scikit-learn model saved with skops where
    it was installed (loading the file imported it), when the model's file names none of its modules; and
    a package the loading libraries import for themselves where installed (pytest, rich, polars, psutil),
    when moreover the file names no module of the user's own, whose imports are not known here."""
    adapted = {name: found.group(1) for name in names if (found := _ADAPTED.match(name))}
    incidental = {name: _INCIDENTAL[name] for name in names if name in _INCIDENTAL}
    files = sorted(folder.glob("*.skops")) if adapted or incidental else []
    if not files:
        return set()
    named: set[str] = set()
    for file in files:
        modules = _skops_modules(file)
        if modules is None:  # a file skops cannot have written: nothing is known of what it uses
            return set()
        named |= modules
    unused = {name for name, module in adapted.items() if module not in named}
    if not (folder / "code").exists() and not _own_modules(named):
        unused |= {name for name, module in incidental.items() if module not in named}
    return unused


def _own_modules(modules: set[str]) -> set[str]:
    """Those of the top-level ``modules`` that neither Python nor an installed distribution provides: the
    user's own (a module of the training's, say), which may import anything."""
    provided = _module_distributions()
    return {m for m in modules if m not in sys.stdlib_module_names and m.lower() not in provided}


def _skops_modules(file: Path) -> set[str] | None:
    """The top-level modules a skops file's schema names (``__module__`` of each object), or None where
    the file holds no schema this can read."""
    try:
        with zipfile.ZipFile(file) as archive:
            entry = archive.getinfo("schema.json")
            if entry.file_size > _MOST_SCHEMA_BYTES:
                return None
            schema = json.loads(archive.read(entry))
    except (OSError, KeyError, ValueError, zipfile.BadZipFile, RuntimeError):
        return None
    return {str(module).split(".", 1)[0] for module in _module_names(schema)}


def _module_names(node: object) -> Iterator[object]:
    stack = [node]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            if "__module__" in item:
                yield item["__module__"]
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)


def _unmet(line: str) -> Difference | None:
    if not line or line.startswith("-"):  # an option of pip's (-r, --index-url, -e): nothing to compare
        return None
    try:
        requirement = Requirement(line)
    except InvalidRequirement:
        return None
    if requirement.url or (requirement.marker is not None and not requirement.marker.evaluate()):
        return None
    try:
        installed: str | None = version(requirement.name)
    except PackageNotFoundError:
        installed = _providing(requirement.name)
    if installed is None:
        return Difference(line, None)
    try:
        if Version(installed).is_devrelease or requirement.specifier.contains(installed, prereleases=True):
            return None
    except InvalidVersion:
        return None
    return Difference(line, installed)


def _providing(name: str) -> str | None:
    """The version of the installed distribution that provides the module ``name`` names under another
    name (``xgboost-cpu``, XGBoost's wheel without CUDA, for ``xgboost``); None where none does."""
    found = _module_distributions().get(name.lower().replace("-", "_"), [])
    for distribution in found:
        with contextlib.suppress(PackageNotFoundError):
            return version(distribution)
    return None


@functools.cache
def _module_distributions() -> dict[str, list[str]]:
    return {module.lower(): names for module, names in packages_distributions().items()}


def said(found: Sequence[object]) -> str:
    """One clause for the differences (or their texts): what the model was logged with and what is
    installed here."""
    shown = ", ".join(str(difference) for difference in found[:_MOST_SHOWN])
    more = f" and {len(found) - _MOST_SHOWN} more" if len(found) > _MOST_SHOWN else ""
    return f"the model was logged with {shown}{more}"


def warning(deployment: str, found: Sequence[object]) -> str:
    """The line that tells of a deployment whose model's requirements the packages here do not meet."""
    return (
        f"warning: deployment {deployment}: {said(found)}; it may load or answer otherwise here: install "
        "its requirements where loopline serves it, or train it again with these"
    )
