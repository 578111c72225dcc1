"""Data assets: a path in a datastore, versioned and pinned by the content digest of its files."""

from __future__ import annotations

import re
import shlex
from collections.abc import Collection
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from sqlalchemy import func, insert, select

from loopline import audit
from loopline.domain import utcnow
from loopline.errors import IntegrityViolation, InvalidData, NotFound, UsageError
from loopline.events import DataRegistered
from loopline.instance import Instance
from loopline.state import as_utc
from loopline.state.schema import data_assets
from loopline.storage.datastores import Datastore, hive_partitions, split_reference, with_partitions
from loopline.storage.digest import file_digest, manifest_digest

__all__ = [
    "DataAsset",
    "StagedData",
    "files_digest",
    "get_asset",
    "list_assets",
    "local_files",
    "parse_asset",
    "partition_values",
    "register_asset",
    "stage_files",
    "upload_asset",
    "verified_files",
]

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")


@dataclass(frozen=True)
class DataAsset:
    """One version of a data asset."""

    name: str
    version: int
    datastore: str
    path: str
    digest: str
    manifest: list[dict[str, Any]]
    created_at: str
    created_by: str

    @property
    def single_file(self) -> bool:
        """Whether it pins one file named on its own (not a folder)."""
        return len(self.manifest) == 1 and self.manifest[0]["file"] == self.path.strip("/")

    @property
    def reference(self) -> str:
        """Where it lives, as ``inbox://path``."""
        return f"{self.datastore}://{self.path}"

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready mapping."""
        return {
            "name": self.name,
            "version": self.version,
            "path": self.reference,
            "digest": self.digest,
            "files": len(self.manifest),
            "manifest": self.manifest,
            "created_at": self.created_at,
            "created_by": self.created_by,
        }


def _asset(row: Any) -> DataAsset:
    return DataAsset(
        row["name"],
        row["version"],
        row["datastore"],
        row["path"],
        row["digest"],
        row["manifest"],
        as_utc(row["created_at"]).isoformat(timespec="seconds"),
        row["created_by"],
    )


def parse_asset(text: str) -> tuple[str, int | None]:
    """``name`` or ``name:version``."""
    name, sep, version = text.partition(":")
    if sep and version.startswith("//"):  # inbox://rows.csv, az://...: where files are, not an asset
        stem = re.sub(r"[^A-Za-z0-9._-]+", "-", PurePosixPath(version.rstrip("/")).name.split(".")[0])
        raise UsageError(
            f"'{text}' is a datastore path, not a data asset: make it one (`loopline data register "
            f"{stem.strip('-') or 'NAME'} --path {shlex.quote(text)}`) and give its name"
        )
    if sep and not version.isdigit():
        raise UsageError(f"'{text}' is not NAME or NAME:VERSION")
    return name, int(version) if sep else None


def _check_name(name: str) -> None:
    if not _NAME.match(name):
        raise UsageError(f"data asset name '{name}' must be letters, digits, '.', '_' and '-'")


def register_asset(
    instance: Instance, name: str, reference: str, *, digest: str | None = None
) -> tuple[DataAsset, bool]:
    """Pin the files at ``reference`` under ``name``; a new version only when the files changed. With
    ``digest``, only when the files there are those bytes (as an upload read them)."""
    _check_name(name)
    instance.db.require_current(instance.root)
    store_name, path = split_reference(reference)
    found, manifest = instance.datastore(store_name).digest(path)
    if digest is not None and found != digest:  # changed on its way, or by someone else at that path
        raise IntegrityViolation(
            f"the files at {store_name}://{path} are not the ones uploaded ({found[:19]}… is not "
            f"{digest[:19]}…): they changed while they were read; upload again once nothing writes to them"
        )
    return _pin(instance, name, store_name, path, found, manifest)


def local_files(source: Path) -> list[tuple[str, Path]]:
    """The files to upload from ``source``, each with its path in the pinned folder: a file by its name;
    a folder's files (hidden ones and what is under hidden folders left out, as a datastore's listing
    leaves them) by their path inside it."""
    if source.is_file():
        return [(source.name, source)]
    if not source.is_dir():
        raise UsageError(f"{source} is not a file or folder on this machine; give the one to upload")
    found = [
        (path.relative_to(source).as_posix(), path)
        for path in sorted(source.rglob("*"))
        if path.is_file() and not any(part.startswith(".") for part in path.relative_to(source).parts)
    ]
    if not found:
        raise UsageError(f"{source} holds no files to upload")
    return found


def files_digest(files: list[tuple[str, Path]]) -> str:
    """The content digest of the files :func:`local_files` lists, read here (as the pinned folder has it)."""
    return manifest_digest([{"path": inside, "sha256": file_digest(path)} for inside, path in files])


@dataclass(frozen=True)
class StagedData:
    """Files of this machine copied into the inbox datastore, not yet pinned."""

    reference: str
    """Where they are: ``inbox://NAME/<digest>/...``."""
    digest: str
    """The content digest of the bytes read here (what ``register`` must find there)."""
    files: int

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready mapping."""
        return {"reference": self.reference, "digest": self.digest, "files": self.files}


def stage_files(
    inbox: Datastore, name: str, source: Path, *, digest: str | None = None, overwrite: bool = False
) -> StagedData:
    """Copy a file or folder of this machine into ``inbox`` at a path named by its content digest
    (``NAME/<digest>/...``), each file whole or not at all, skipping the files already there (unless
    ``overwrite``); with ``digest``, nothing unless the files are those bytes."""
    _check_name(name)
    source = source.expanduser()
    files = local_files(source)
    local = files_digest(files)
    if digest is not None and local != digest:
        raise IntegrityViolation(
            f"the files of {name} that arrived are not the ones sent ({local[:19]}… is not {digest[:19]}…); "
            "upload again"
        )
    folder = f"{name}/{local.removeprefix('sha256:')[:16]}"
    for inside, path in files:
        if overwrite or not inbox.exists(f"{folder}/{inside}"):
            inbox.put_file(f"{folder}/{inside}", str(path))
    pinned = f"{folder}/{files[0][0]}" if source.is_file() else folder
    return StagedData(f"{inbox.name}://{pinned}", local, len(files))


def upload_asset(
    instance: Instance, name: str, source: Path, *, digest: str | None = None
) -> tuple[DataAsset, bool]:
    """Copy a file or folder of this machine into the inbox datastore and pin it under ``name``:
    uploading the same bytes again copies nothing and makes no new version. Nothing is registered
    unless every file arrived whole, with the bytes read here (and, with ``digest``, unless those are the
    bytes the caller read, as an upload through a control plane names them)."""
    _check_name(name)
    instance.db.require_current(instance.root)
    inbox = instance.datastore("inbox")
    staged = stage_files(inbox, name, source, digest=digest)
    try:
        return register_asset(instance, name, staged.reference, digest=staged.digest)
    except IntegrityViolation:  # a file left at that path by an upload cut short, or changed there since
        staged = stage_files(inbox, name, source, digest=digest, overwrite=True)
        return register_asset(instance, name, staged.reference, digest=staged.digest)


def _pin(
    instance: Instance, name: str, store_name: str, path: str, digest: str, manifest: list[dict[str, Any]]
) -> tuple[DataAsset, bool]:
    """Record the files at ``store_name://path`` (their ``digest`` and ``manifest``) as the next version
    of ``name``, unless its newest version holds them already."""
    with instance.db.write() as connection:
        latest = (
            connection.execute(
                select(data_assets)
                .where(data_assets.c.name == name)
                .order_by(data_assets.c.version.desc())
                .limit(1)
            )
            .mappings()
            .first()
        )
        if (
            latest is not None
            and latest["digest"] == digest
            and latest["path"] == path
            and latest["datastore"] == store_name
        ):
            return _asset(latest), False
        version = (latest["version"] if latest else 0) + 1
        connection.execute(
            insert(data_assets).values(
                name=name,
                version=version,
                datastore=store_name,
                path=path,
                digest=digest,
                manifest=manifest,
                created_at=utcnow(),
                created_by=instance.actor,
            )
        )
        audit.append(
            connection,
            DataRegistered(
                actor=instance.actor,
                target=f"{name}:{version}",
                source=f"{store_name}://{path}",
                details={"digest": digest, "files": len(manifest)},
            ),
        )
        row = (
            connection.execute(
                select(data_assets).where(data_assets.c.name == name, data_assets.c.version == version)
            )
            .mappings()
            .one()
        )
    return _asset(row), True


def list_assets(instance: Instance, name: str | None = None) -> list[DataAsset]:
    """Every data asset version (of ``name`` when given), by name and version."""
    statement = select(data_assets).order_by(data_assets.c.name, data_assets.c.version)
    if name:
        statement = statement.where(data_assets.c.name == name)
    with instance.db.read() as connection:
        return [_asset(row) for row in connection.execute(statement).mappings()]


_TABLES = (".csv", ".parquet", ".pq", ".json", ".jsonl", ".tsv", ".txt")


def _path_like(instance: Instance, text: str) -> bool:
    """Whether ``text``, given where a data asset's name goes, is the path of a file instead."""
    return (
        not _NAME.match(text)
        or text.lower().endswith(_TABLES)
        or Path(text).exists()
        or (instance.root / text).exists()
    )


def get_asset(instance: Instance, name: str, version: int | None = None) -> DataAsset:
    """One version (default: the newest) of a data asset."""
    with instance.db.read() as connection:
        newest = connection.execute(
            select(func.max(data_assets.c.version)).where(data_assets.c.name == name)
        ).scalar()
        row = (
            None
            if newest is None
            else connection.execute(
                select(data_assets).where(
                    data_assets.c.name == name,
                    data_assets.c.version == (newest if version is None else version),
                )
            )
            .mappings()
            .first()
        )
    if newest is None:
        if _path_like(instance, name):
            raise NotFound(
                f"no data asset is named '{name}', which is a file's path: make the file a data asset "
                f"(`loopline data upload NAME {name}`) and give its NAME"
            )
        raise NotFound(f"no data asset {name}; `loopline data register {name} --path inbox://...` makes one")
    if row is None:
        raise NotFound(f"data asset {name} has no version {version}; its versions are 1 to {newest}")
    return _asset(row)


def partition_values(asset: DataAsset) -> dict[str, dict[str, Any]]:
    """The partition columns of each of the asset's files (by its path in the datastore), from the
    ``key=value`` folders below the asset's own (see ``hive_partitions``)."""
    if asset.single_file:
        return {}
    found = hive_partitions([entry["path"] for entry in asset.manifest])
    return {entry["file"]: found[entry["path"]] for entry in asset.manifest if found[entry["path"]]}


def read_asset(instance: Instance, asset: DataAsset, texts: Collection[str] = ()) -> Any:
    """The rows of a data asset's tables as one DataFrame, read from its verified bytes (the CSV columns
    ``texts`` as text: see ``csv_options``), with the columns of a partitioned folder's paths."""
    import pandas as pd

    store = instance.datastore(asset.datastore)
    partitions = partition_values(asset)
    frames = [
        with_partitions(store.frame(file, texts), partitions.get(file, {}), texts)
        for file in verified_files(instance, asset)
    ]
    return pd.concat(frames, ignore_index=True) if len(frames) > 1 else frames[0]


def named_asset(instance: Instance, text: str) -> DataAsset | None:
    """The data asset ``text`` names (``NAME`` or ``NAME:VERSION``), or None where no asset has that name
    (a setting that takes an asset or a datastore path reads it as a path then)."""
    name, sep, version = text.partition(":")
    if not _NAME.match(name) or (sep and not version.isdigit()):
        return None
    if not list_assets(instance, name):
        return None
    return get_asset(instance, name, int(version) if sep else None)


def verified_files(instance: Instance, asset: DataAsset, *, tables: bool = True) -> list[str]:
    """The asset's table files (with ``tables=False``, all of them), after checking that the bytes of all
    its files are the ones registered.

    In a folder, files and folders whose names start with ``_`` or ``.`` are not tables, as Spark, Hadoop
    and pyarrow hold (``_SUCCESS``, ``_committed_*``, ``_temporary/``, ``.crc``); they are pinned with
    the rest but never read as rows."""
    store = instance.datastore(asset.datastore)
    digest, _ = store.digest(asset.path)
    if digest != asset.digest:
        raise IntegrityViolation(
            f"data asset {asset.name}:{asset.version} ({asset.reference}) changed since it was registered "
            f"({asset.digest[:19]}… is now {digest[:19]}…); register it again to make a new version"
        )
    entries = sorted(asset.manifest, key=lambda m: m["path"])
    if not tables or asset.single_file:
        return [entry["file"] for entry in entries]  # a file named on its own is read whatever its name
    found = [e["file"] for e in entries if not any(p.startswith(("_", ".")) for p in e["path"].split("/"))]
    if not found:
        raise InvalidData(
            f"data asset {asset.name}:{asset.version} ({asset.reference}) holds no table files, only files "
            "whose names start with '_' or '.' (markers such as _SUCCESS); register the folder of the tables"
        )
    return found
