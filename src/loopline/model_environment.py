"""How a model's requirements differ from the Python environment that loads it.

MLflow writes the packages a model was logged with into the model's ``requirements.txt``, pinned as they
were installed (``scikit-learn==1.5.2``). A model pickled by one version of its library and loaded by
another may load and answer otherwise, or not at all (scikit-learn promises nothing across versions), so
deploying, checking and serving compare the two, as MLflow's own loader does. Nothing runs: the file is
read as text (its bytes are the uploader's, so only its first 64 KiB) and the installed versions come
from the distributions' metadata.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name
from packaging.version import InvalidVersion, Version

__all__ = ["Difference", "differences", "said", "warning"]

_MOST_BYTES = 64 * 1024  # MLflow writes a few hundred bytes
_MOST_SHOWN = 4
_COMMENT = re.compile(r"(^|\s)#.*")  # pip's comments: a '#' at the start or after a space (not in a URL)


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
    meet, in the file's order; none where the model has no such file."""
    try:
        with (folder / "requirements.txt").open("rb") as opened:
            text = opened.read(_MOST_BYTES).decode("utf-8", "replace")
    except OSError:
        return ()
    found = (_unmet(_COMMENT.sub("", line).strip()) for line in text.splitlines())
    return tuple(difference for difference in found if difference is not None)


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
        installed = version(requirement.name)
    except PackageNotFoundError:
        return Difference(line, None)
    try:
        if Version(installed).is_devrelease or requirement.specifier.contains(installed, prereleases=True):
            return None
    except InvalidVersion:
        return None
    return Difference(line, installed)


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
