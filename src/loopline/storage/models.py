"""A content-addressed store of model folders: one folder per content digest, written atomically.

Workspaces whose configuration names the same model store share a version's bytes: registering a
version in another workspace on the same store copies nothing. A folder becomes visible under its
digest only when complete and durable (files and folders fsynced, then renamed into place), and every
read checks the files against the digest.

Checking 200 MB of model files costs a tenth of a second; checking them at every promotion and deploy
would cost more than the promotion itself. So, like git's index, the store remembers each file's size,
modification and change times and inode from the last full check, next to the folder, and hashes again
only what changed. Any write to a file changes its change time (which no user can set), so a modified
file is always hashed again and refused.
"""

from __future__ import annotations

import json
import os
import shutil
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from loopline.errors import IntegrityViolation, NotFound, UsageError
from loopline.storage.digest import PREFIX, digest_tree

__all__ = ["ModelStore"]


def _stat(folder: Path) -> dict[str, list[int]]:
    found = {}
    for path in sorted(folder.rglob("*")):
        if path.is_file() and not path.is_symlink():
            info = path.stat()
            found[path.relative_to(folder).as_posix()] = [
                info.st_size,
                info.st_mtime_ns,
                info.st_ctime_ns,
                info.st_ino,
            ]
    return found


def _fsync_tree(folder: Path) -> None:
    """Make a folder's files and the folders themselves durable."""
    for path in sorted(folder.rglob("*"), reverse=True):
        flags = os.O_RDONLY | (os.O_DIRECTORY if path.is_dir() else 0)
        descriptor = os.open(path, flags)
        try:
            os.fsync(descriptor)
        finally:
            os.close(descriptor)
    _fsync_dir(folder)


def _fsync_dir(folder: Path) -> None:
    descriptor = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


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

    def _checked(self, digest: str) -> Path:
        return self.path(digest).with_name(self.path(digest).name + ".checked")

    def uri(self, digest: str) -> str:
        """The URI MLflow records as the source of a version holding ``digest``."""
        return self.path(digest).resolve().as_uri()

    def contains(self, digest: str) -> bool:
        """True when a complete folder for ``digest`` is in the store."""
        return self.path(digest).is_dir()

    def put(self, source: Path, digest: str | None = None) -> str:
        """Add the folder ``source``; return its digest. Adding the same content twice copies nothing.

        ``digest``, when the caller has just verified ``source`` against it, saves hashing the source
        again; the copy is always hashed and must match.
        """
        digest = digest or digest_tree(source)
        final = self.path(digest)
        if final.is_dir():
            return digest
        staging = self.root / ".staging" / uuid.uuid4().hex
        staging.parent.mkdir(parents=True, exist_ok=True)
        try:
            shutil.copytree(source, staging)
            # Hash the copy (CPU, from the page cache) while fsync waits for the disk.
            with ThreadPoolExecutor(max_workers=1) as pool:
                hashing = pool.submit(digest_tree, staging)
                _fsync_tree(staging)
                copied = hashing.result()
            if copied != digest:
                raise IntegrityViolation(location=source, expected=digest, actual=copied)
            final.parent.mkdir(parents=True, exist_ok=True)
            try:
                os.rename(staging, final)
            except OSError:
                if not final.is_dir():
                    raise
            _fsync_dir(final.parent)
            self._remember(digest)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        return digest

    def _remember(self, digest: str) -> None:
        checked = self._checked(digest)
        staged = checked.with_name(f".{checked.name}.{uuid.uuid4().hex}")
        staged.write_text(json.dumps(_stat(self.path(digest))))
        os.replace(staged, checked)

    def verify(self, digest: str) -> Path:
        """The folder of ``digest`` after checking its files still match; refuse it otherwise."""
        folder = self.path(digest)
        if not folder.is_dir():
            raise NotFound(f"model files for {digest} are not in the model store {self.root}")
        try:
            remembered = json.loads(self._checked(digest).read_text())
        except (OSError, ValueError):
            remembered = None
        if remembered is not None and remembered == _stat(folder):
            return folder
        actual = digest_tree(folder)
        if actual != digest:
            raise IntegrityViolation(location=folder, expected=digest, actual=actual)
        self._remember(digest)
        return folder
