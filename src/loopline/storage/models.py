"""A content-addressed store of model folders: one folder per content digest, written atomically.

Workspaces whose configuration names the same model store share a version's bytes: registering a
version in another workspace on the same store copies nothing. A folder becomes visible under its
digest only when complete and durable, and every read checks the files against the digest.

Two kinds: a local folder (files and folders fsynced, then renamed into place) and an object store
(``az://``, ``s3://``: the files uploaded, then a manifest written last that makes the folder visible;
reads download once into a local cache, which is itself a checked folder store).

Checking 200 MB of model files costs a tenth of a second; checking them at every promotion and deploy
would cost more than the promotion itself. So, like git's index, the store remembers each file's size,
modification and change times and inode from the last full check, next to the folder, and hashes again
only what changed. Any write to a file changes its change time (which no user can set), so a modified
file is always hashed again and refused.

Stock MLflow 3.17 clients loading a version from a local folder write ``registered_model_meta`` into it (see
``storage/digest.py``); that file is no part of the model's content, so it is left out of the digest and
of copies, and a version stays deployable whatever MLflow client read it. The stored files are read-only.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from loopline.errors import IntegrityViolation, LooplineError, NotFound, UsageError
from loopline.storage.digest import CLIENT_WRITTEN, PREFIX, digest_tree, file_digest, manifest
from loopline.storage.fs import cache_dir, filesystem, is_remote, local_path

__all__ = [
    "FolderModelStore",
    "ModelStore",
    "ObjectModelStore",
    "model_store_of",
    "open_model_store",
    "store_holding",
]


def _stat(folder: Path) -> dict[str, list[int]]:
    found = {}
    for path in sorted(folder.rglob("*")):
        if path.parent == folder and path.name in CLIENT_WRITTEN:
            continue
        if path.is_file() and not path.is_symlink():
            info = path.stat()
            found[path.relative_to(folder).as_posix()] = [
                info.st_size,
                info.st_mtime_ns,
                info.st_ctime_ns,
                info.st_ino,
            ]
    return found


def _read_only(folder: Path) -> None:
    """Make a stored folder's files read-only: a client writing into one (not as root) gets an error."""
    for path in folder.rglob("*"):
        if path.is_file() and not path.is_symlink():
            path.chmod(0o444)


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
    """What every model store does; ``open_model_store`` picks the kind from the location."""

    location: str

    def uri(self, digest: str) -> str:
        """Where the files of ``digest`` are, as this store's filesystem names them."""
        raise NotImplementedError

    def source(self, digest: str) -> str:
        """The URI MLflow records as the source of a version holding ``digest``: one a stock MLflow client
        loads (``model_store_of`` finds the store again from it)."""
        return self.uri(digest)

    def contains(self, digest: str) -> bool:
        """True when complete files for ``digest`` are in the store."""
        raise NotImplementedError

    def put(self, source: Path, digest: str | None = None) -> str:
        """Add the local folder ``source``; return its digest. The same content twice copies nothing."""
        raise NotImplementedError

    def verify(self, digest: str) -> Path:
        """A local folder holding ``digest``'s files, checked against the digest; refused otherwise."""
        raise NotImplementedError

    def copy_from(self, other: ModelStore, digest: str) -> bool:
        """Make ``digest`` (held by ``other``) present here; True when any bytes moved."""
        if self == other:
            other.verify(digest)
            return False
        if self.contains(digest):
            return False
        self.put(other.verify(digest), digest)
        return True


def _client_written(top: Path) -> Callable[[str, list[str]], list[str]]:
    """A ``copytree`` filter that leaves out the files stock MLflow clients wrote into ``top``."""
    resolved = Path(top).resolve()
    return lambda folder, names: [
        n for n in names if n in CLIENT_WRITTEN and Path(folder).resolve() == resolved
    ]


# Where a version's files are in neither its workspace's store nor the one it was registered from.
_MOVED = (
    "; where model_store named another place when the version was registered and that place is gone, copy "
    "its sha256/ folder here"
)


def _hex(digest: str) -> str:
    if not digest.startswith(PREFIX) or len(digest) != len(PREFIX) + 64:
        raise UsageError(f"'{digest}' is not a content digest (sha256:<64 hex digits>)")
    return digest[len(PREFIX) :]


def open_model_store(location: str) -> ModelStore:
    """The model store at a folder or an object store URL (``az://container/prefix``, ``s3://...``)."""
    return ObjectModelStore(location) if is_remote(location) else FolderModelStore(location)


_AZURE = ("az", "abfs")


def model_store_of(source_uri: str) -> ModelStore:
    """The store that holds a version whose MLflow source is ``source_uri`` (``.../sha256/<hex>``)."""
    base = source_uri.rstrip("/").rsplit("/", 2)[0]
    if base.startswith(("wasbs://", "wasb://")):  # wasbs://container@account.blob.core.windows.net/path
        container, _, rest = base.partition("://")[2].partition("@")
        base = f"az://{container}/{rest.partition('/')[2]}".rstrip("/")
    if not is_remote(base):
        return FolderModelStore(str(local_path(base)))
    return ObjectModelStore(base)


def store_holding(store: ModelStore, digest: str, source_uri: str) -> ModelStore:
    """The store that holds ``digest``: ``store`` (its workspace's, as configured now), or, where that no
    longer holds it (a project folder moved or renamed: the source names the old path; a laptop's folder
    given up for a team's object store), the store the version's MLflow source names while that still
    does; ``store`` where neither does (its ``verify`` says so)."""
    if store.contains(digest):
        return store
    try:
        named = model_store_of(source_uri)
        return named if named != store and named.contains(digest) else store
    except (LooplineError, OSError, ValueError):  # a source no store of this machine reads
        return store


class FolderModelStore(ModelStore):
    """Model folders under ``<location>/sha256/<hex>/``."""

    def __init__(self, location: str) -> None:
        self.location = location
        self.root = local_path(location)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, FolderModelStore) and self.root.resolve() == other.root.resolve()

    def __hash__(self) -> int:
        return hash(self.root.resolve())

    def path(self, digest: str) -> Path:
        """Where the folder of ``digest`` lives (whether or not it exists)."""
        return self.root / "sha256" / _hex(digest)

    def _checked(self, digest: str) -> Path:
        return self.path(digest).with_name(self.path(digest).name + ".checked")

    def uri(self, digest: str) -> str:
        """The ``file://`` URI of the folder of ``digest``."""
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
            shutil.copytree(source, staging, ignore=_client_written(source))
            _read_only(staging)
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
            raise NotFound(f"model files for {digest} are not in the model store {self.root}{_MOVED}")
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


class ObjectModelStore(ModelStore):
    """Model files in an object store: ``<url>/sha256/<hex>/...`` and ``<url>/sha256/<hex>.manifest``.

    The manifest (one ``<sha256>  <path>`` line per file, the text whose hash is the digest) is written
    last, by one atomic PUT: until it exists the version's files are invisible, whatever a crash left.
    Copies between two locations of one object store account happen inside the service (server-side
    copy); no byte passes through loopline.
    """

    def __init__(self, location: str) -> None:
        self.location = location.rstrip("/")
        self.fs = filesystem(self.location, "model store")
        self.cache = FolderModelStore(str(cache_dir() / "models"))

    def __eq__(self, other: object) -> bool:
        return isinstance(other, ObjectModelStore) and self.location == other.location

    def __hash__(self) -> int:
        return hash(self.location)

    def uri(self, digest: str) -> str:
        return f"{self.location}/sha256/{_hex(digest)}"

    def source(self, digest: str) -> str:
        """Azure Blob as MLflow names it (``wasbs://container@account.blob.core.windows.net/...``): MLflow
        reads no ``az://``; S3 and Google Cloud Storage URLs are the same for both."""
        scheme, _, rest = self.uri(digest).partition("://")
        if scheme not in _AZURE:
            return self.uri(digest)
        container, _, path = rest.partition("/")
        # adlfs knows the account from a connection string only through its client.
        account = self.fs.account_name or self.fs.service_client.account_name
        return f"wasbs://{container}@{account}.blob.core.windows.net/{path}"

    def _manifest(self, digest: str) -> str:
        return f"{self.uri(digest)}.manifest"

    def contains(self, digest: str) -> bool:
        return bool(self.fs.exists(self._manifest(digest)))

    def _read_manifest(self, digest: str) -> list[tuple[str, str]]:
        try:
            text = self.fs.cat_file(self._manifest(digest)).decode()
        except FileNotFoundError:
            raise NotFound(
                f"model files for {digest} are not in the model store {self.location}{_MOVED}"
            ) from None
        if PREFIX + hashlib.sha256(text.encode()).hexdigest() != digest:
            raise IntegrityViolation(
                location=self._manifest(digest), expected=digest, actual="another manifest"
            )
        return [(line[:64], line[66:]) for line in text.splitlines()]

    def put(self, source: Path, digest: str | None = None) -> str:
        if not source.is_dir():  # a folder holding nothing would pass for a model of no files
            raise NotFound(f"model folder {source} does not exist")
        text = manifest(source)
        actual = PREFIX + hashlib.sha256(text.encode()).hexdigest()
        if digest is not None and actual != digest:
            raise IntegrityViolation(location=source, expected=digest, actual=actual)
        if self.contains(actual):
            return actual
        target = self.uri(actual)
        files = [line.split("  ", 1)[1] for line in text.splitlines()]
        with ThreadPoolExecutor(max_workers=8) as pool:
            list(pool.map(lambda name: self.fs.put_file(str(source / name), f"{target}/{name}"), files))
        self.fs.pipe_file(self._manifest(actual), text.encode())
        return actual

    def copy_from(self, other: ModelStore, digest: str) -> bool:
        if self == other:
            self._read_manifest(digest)  # present and intact; the files are checked where they are used
            return False
        if self.contains(digest):
            return False
        if isinstance(other, ObjectModelStore) and type(other.fs) is type(self.fs):
            entries = other._read_manifest(digest)
            source, target = other.uri(digest), self.uri(digest)
            with ThreadPoolExecutor(max_workers=8) as pool:
                list(pool.map(lambda e: self.fs.copy(f"{source}/{e[1]}", f"{target}/{e[1]}"), entries))
            self.fs.copy(other._manifest(digest), self._manifest(digest))
            return True
        return super().copy_from(other, digest)

    def verify(self, digest: str) -> Path:
        if self.cache.contains(digest):
            return self.cache.verify(digest)
        entries = self._read_manifest(digest)
        staging = self.cache.root / ".downloads" / uuid.uuid4().hex
        try:
            source = self.uri(digest)

            def fetch(entry: tuple[str, str]) -> None:
                local = staging / entry[1]
                local.parent.mkdir(parents=True, exist_ok=True)
                self.fs.get_file(f"{source}/{entry[1]}", str(local))
                if file_digest(local) != entry[0]:
                    raise IntegrityViolation(
                        location=f"{source}/{entry[1]}", expected=entry[0], actual=file_digest(local)
                    )

            with ThreadPoolExecutor(max_workers=8) as pool:
                list(pool.map(fetch, entries))
            self.cache.put(staging, digest)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        return self.cache.verify(digest)
