"""Data assets: a path in a datastore, versioned and pinned by the content digest of its files."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, insert, select

from loopline import audit
from loopline.domain import utcnow
from loopline.errors import IntegrityViolation, NotFound, UsageError
from loopline.events import DataRegistered
from loopline.instance import Instance
from loopline.state import as_utc
from loopline.state.schema import data_assets
from loopline.storage.datastores import split_reference

__all__ = ["DataAsset", "get_asset", "list_assets", "parse_asset", "register_asset", "verified_files"]

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
    if sep and not version.isdigit():
        raise UsageError(f"'{text}' is not NAME or NAME:VERSION")
    return name, int(version) if sep else None


def register_asset(instance: Instance, name: str, reference: str) -> tuple[DataAsset, bool]:
    """Pin the files at ``reference`` under ``name``; a new version only when the files changed."""
    if not _NAME.match(name):
        raise UsageError(f"data asset name '{name}' must be letters, digits, '.', '_' and '-'")
    instance.db.require_current(instance.root)
    store_name, path = split_reference(reference)
    digest, manifest = instance.datastore(store_name).digest(path)
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
        raise NotFound(f"no data asset {name}; `loopline data register {name} --path inbox://...` makes one")
    if row is None:
        raise NotFound(f"data asset {name} has no version {version}; its versions are 1 to {newest}")
    return _asset(row)


def verified_files(instance: Instance, asset: DataAsset) -> list[str]:
    """The asset's files, after checking that their bytes are the ones registered."""
    store = instance.datastore(asset.datastore)
    digest, _ = store.digest(asset.path)
    if digest != asset.digest:
        raise IntegrityViolation(
            f"data asset {asset.name}:{asset.version} ({asset.reference}) changed since it was registered "
            f"({asset.digest[:19]}… is now {digest[:19]}…); register it again to make a new version"
        )
    return [entry["file"] for entry in sorted(asset.manifest, key=lambda m: m["path"])]
