"""Content digests: sha256 over a manifest of relative path and file digest."""

from __future__ import annotations

import hashlib
from pathlib import Path

__all__ = ["PREFIX", "digest_tree", "file_digest", "manifest"]

PREFIX = "sha256:"
_CHUNK = 1 << 20


def file_digest(path: Path) -> str:
    """The sha256 of one file, read in chunks."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def manifest(root: Path) -> str:
    """One line per file under ``root``: ``<sha256>  <relative posix path>``, sorted by path.

    Symbolic links are refused: a model's bytes must live inside its folder.
    """
    lines = []
    for path in sorted(root.rglob("*")):
        if path.is_symlink():
            raise ValueError(f"{path} is a symbolic link; model folders must hold real files")
        if path.is_file():
            lines.append(f"{file_digest(path)}  {path.relative_to(root).as_posix()}\n")
    return "".join(sorted(lines, key=lambda line: line.split("  ", 1)[1]))


def digest_tree(root: Path) -> str:
    """The content digest of the folder ``root``: ``sha256:`` and the hash of its manifest."""
    return PREFIX + hashlib.sha256(manifest(root).encode()).hexdigest()
