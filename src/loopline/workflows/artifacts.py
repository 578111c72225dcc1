"""``actions/upload-artifact`` and ``actions/download-artifact`` on this machine: an artifact is a folder
kept for the length of the workflow run, as GitHub keeps one for a run, so a job can hand files to a later
one the way the workflow file says.

What they do follows the actions' documentation (v4): ``path`` is one or more lines of files, folders and
wildcard patterns (``!`` before one excludes what it matches), relative to the workspace; the artifact
holds the files relative to the least common ancestor of the search paths; ``if-no-files-found`` is
``warn`` (the default), ``error`` or ``ignore``; a name uploaded twice in a run is refused unless
``overwrite: true``. A download with a ``name`` puts that artifact's files in ``path`` (default the
workspace); without one, every artifact (those ``pattern`` matches) goes to a folder of its name there, or
all into ``path`` with ``merge-multiple: true``.
"""

from __future__ import annotations

import fnmatch
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

__all__ = ["ACTIONS", "Artifacts", "Outcome"]

UPLOAD = "actions/upload-artifact"
DOWNLOAD = "actions/download-artifact"
ACTIONS = frozenset({UPLOAD, DOWNLOAD})
_WILDCARDS = frozenset("*?[")
_REFUSED_IN_NAMES = frozenset('":<>|*?\r\n\\/')  # as upload-artifact refuses them


@dataclass(frozen=True)
class Outcome:
    """What the action did: its outputs, and a failure or a warning to show (empty where none)."""

    outputs: dict[str, str]
    failure: str = ""
    warning: str = ""


class Artifacts:
    """The artifacts of one workflow run, each a folder of ``folder``."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.count = 0

    def run(self, action: str, given: dict[str, str], workspace: Path) -> Outcome:
        """Do what ``action`` (``UPLOAD`` or ``DOWNLOAD``) does with its ``with:`` values ``given``."""
        if action == UPLOAD:
            return self._upload(given, workspace)
        return self._download(given, workspace)

    def _upload(self, given: dict[str, str], workspace: Path) -> Outcome:
        name = given.get("name") or "artifact"
        if set(name) & _REFUSED_IN_NAMES or name in {".", ".."}:
            refused = "".join(sorted(set(name) & _REFUSED_IN_NAMES)) or name
            return Outcome(
                {}, failure=f"artifact name {name!r} holds what GitHub refuses in one ({refused!r})"
            )
        lines = [line.strip() for line in given.get("path", "").splitlines() if line.strip()]
        if not [line for line in lines if not line.startswith("!")]:
            return Outcome({}, failure="upload-artifact needs a `path` of the files to upload")
        target = self.folder / name
        if target.exists() and given.get("overwrite", "false").lower() != "true":
            return Outcome(
                {},
                failure=f"an artifact named '{name}' was uploaded in this run already: give another name, "
                "or overwrite: true",
            )
        roots, files = _matched(workspace, [line for line in lines if not line.startswith("!")])
        _, excluded = _matched(workspace, [line[1:] for line in lines if line.startswith("!")])
        files = sorted(set(files) - set(excluded))
        if not files:
            said = f"no files were found with the path {', '.join(lines)}; no artifact '{name}' uploaded"
            how = given.get("if-no-files-found", "warn").lower()
            return (
                Outcome({}, failure=said)
                if how == "error"
                else Outcome({}, warning="" if how == "ignore" else said)
            )
        ancestor = Path(os.path.commonpath([str(r) for r in roots]))
        shutil.rmtree(target, ignore_errors=True)
        for file in files:
            copy = target / file.relative_to(ancestor)
            copy.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(file, copy)
        self.count += 1
        return Outcome({"artifact-id": str(self.count), "artifact-url": target.as_uri()})

    def _download(self, given: dict[str, str], workspace: Path) -> Outcome:
        place = Path(os.path.expanduser(given.get("path") or "."))
        place = place if place.is_absolute() else workspace / place
        uploaded = sorted(p.name for p in self.folder.iterdir()) if self.folder.is_dir() else []
        name = given.get("name")
        if name:
            if name not in uploaded:
                listed = ", ".join(uploaded) or "none"
                return Outcome({}, failure=f"no artifact named '{name}' in this run (uploaded: {listed})")
            shutil.copytree(self.folder / name, place, dirs_exist_ok=True)
            return Outcome({"download-path": str(place)})
        merge = given.get("merge-multiple", "false").lower() == "true"
        for each in fnmatch.filter(uploaded, given.get("pattern") or "*"):
            shutil.copytree(self.folder / each, place if merge else place / each, dirs_exist_ok=True)
        return Outcome({"download-path": str(place)})


def _matched(workspace: Path, patterns: list[str]) -> tuple[list[Path], list[Path]]:
    """The search roots of ``patterns`` (what comes before a wildcard; a file's folder) and the files
    they match."""
    roots, files = [], []
    for pattern in patterns:
        path = Path(os.path.expanduser(pattern))
        path = path if path.is_absolute() else workspace / path
        parts = path.parts
        wild = next((i for i, part in enumerate(parts) if _WILDCARDS & set(part)), None)
        if wild is None:
            if path.is_file():
                roots.append(path.parent)
                files.append(path)
            elif path.is_dir():
                roots.append(path)
                files.extend(p for p in path.rglob("*") if p.is_file())
            continue
        root = Path(*parts[:wild])
        roots.append(root)
        for found in root.glob(str(Path(*parts[wild:]))):
            files.extend([found] if found.is_file() else [p for p in found.rglob("*") if p.is_file()])
    return roots, files
