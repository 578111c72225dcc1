"""A content-addressed store of model folders: one folder per content digest, written atomically.

Workspaces whose configuration names the same model store share a version's bytes: registering a
version in another workspace on the same store copies nothing. A folder becomes visible under its
digest only when complete, and every read checks the files against the digest.
"""

from __future__ import annotations

import os
import shutil
import uuid
from pathlib import Path

from loopline.errors import IntegrityViolation, NotFound, UsageError
from loopline.storage.digest import PREFIX, digest_tree

__all__ = ["ModelStore"]


class ModelStore:
    """Model folders under ``<location>/sha256/<hex>/``."""

    def __init__(self, location: str) -> None:
        if "://" in location and not location.startswith("file://"):
            raise UsageError(
                f"model_store '{location}': only local folders are supported for model files so far; "
                "use a path"
            )
        self.root = Path(location.removeprefix("file://"))

    def __eq__(self, other: object) -> bool:
        return isinstance(other, ModelStore) and self.root.resolve() == other.root.resolve()

    def __hash__(self) -> int:
        return hash(self.root.resolve())

    def path(self, digest: str) -> Path:
        """Where the folder of ``digest`` lives (whether or not it exists)."""
        if not digest.startswith(PREFIX) or len(digest) != len(PREFIX) + 64:
            raise UsageError(f"'{digest}' is not a content digest (sha256:<64 hex digits>)")
        return self.root / "sha256" / digest[len(PREFIX) :]

    def uri(self, digest: str) -> str:
        """The URI MLflow records as the source of a version holding ``digest``."""
        return self.path(digest).resolve().as_uri()

    def contains(self, digest: str) -> bool:
        """True when a complete folder for ``digest`` is in the store."""
        return self.path(digest).is_dir()

    def put(self, source: Path) -> str:
        """Add the folder ``source``; return its digest. Adding the same content twice copies nothing."""
        digest = digest_tree(source)
        final = self.path(digest)
        if final.is_dir():
            return digest
        staging = self.root / ".staging" / uuid.uuid4().hex
        staging.parent.mkdir(parents=True, exist_ok=True)
        try:
            shutil.copytree(source, staging)
            copied = digest_tree(staging)
            if copied != digest:
                raise IntegrityViolation(location=source, expected=digest, actual=copied)
            final.parent.mkdir(parents=True, exist_ok=True)
            try:
                os.rename(staging, final)
            except OSError:
                if not final.is_dir():
                    raise
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        return digest

    def verify(self, digest: str) -> Path:
        """The folder of ``digest`` after checking its files still match; refuse it otherwise."""
        folder = self.path(digest)
        if not folder.is_dir():
            raise NotFound(f"model files for {digest} are not in the model store {self.root}")
        actual = digest_tree(folder)
        if actual != digest:
            raise IntegrityViolation(location=folder, expected=digest, actual=actual)
        return folder
