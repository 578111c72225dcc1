"""Content digests: sha256 over a manifest of relative path and file digest."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

__all__ = [
    "CLIENT_WRITTEN",
    "PREFIX",
    "digest_tree",
    "file_digest",
    "manifest",
    "manifest_digest",
    "model_files",
]

PREFIX = "sha256:"
_CHUNK = 1 << 20

CLIENT_WRITTEN = frozenset({"registered_model_meta"})
"""Files at the top of a model folder that stock MLflow clients write there themselves, and so are no part
of the model: ``mlflow.pyfunc.load_model("models:/NAME/N")`` (and ``mlflow models serve``, and
``mlflow.artifacts.download_artifacts`` without a destination) use a local version's folder in place, and
MLflow 3.17 writes ``registered_model_meta`` (the model's name and version) into it (3.18 no longer does)."""


def model_files(root: Path) -> list[Path]:
    """The files of the model folder ``root`` that make its content, sorted; symbolic links are refused."""
    found = []
    for path in sorted(root.rglob("*")):
        if path.is_symlink():
            raise ValueError(f"{path} is a symbolic link; model folders must hold real files")
        if path.is_file() and not (path.parent == root and path.name in CLIENT_WRITTEN):
            found.append(path)
    return found


def file_digest(path: Path) -> str:
    """The sha256 of one file, read in chunks."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def manifest(root: Path) -> str:
    """One line per file under ``root``: ``<sha256>  <relative posix path>``, sorted by path.

    Symbolic links are refused: a model's bytes must live inside its folder. The files stock MLflow clients
    write into it (``CLIENT_WRITTEN``) are left out.
    """
    lines = [f"{file_digest(path)}  {path.relative_to(root).as_posix()}\n" for path in model_files(root)]
    return "".join(sorted(lines, key=lambda line: line.split("  ", 1)[1]))


def manifest_digest(entries: list[dict[str, Any]]) -> str:
    """The content digest of files listed with their ``path`` (relative to what is pinned) and ``sha256``:
    the same as :func:`digest_tree` gives a folder holding them."""
    text = "".join(f"{e['sha256']}  {e['path']}\n" for e in sorted(entries, key=lambda e: e["path"]))
    return PREFIX + hashlib.sha256(text.encode()).hexdigest()


def digest_tree(root: Path) -> str:
    """The content digest of the folder ``root``: ``sha256:`` and the hash of its manifest."""
    return PREFIX + hashlib.sha256(manifest(root).encode()).hexdigest()
