"""Moving the datastores (``inbox``, ``predictions``) to other places at once (a laptop's folders to the
team's object store): every file is copied, then every data asset version pinned in a datastore is checked
at the new place against the digest it was registered with. Data assets and batch jobs name paths within a
datastore (``inbox://...``), so nothing in loopline's database changes; nothing is deleted where the files
were. A file already at the new place with the same bytes is not copied again, so a move cut short is
finished by running it again."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from loopline import audit
from loopline.config import redact
from loopline.data import list_assets
from loopline.errors import IntegrityViolation, NotFound, Refused, UsageError
from loopline.events import DatastoresMigrated
from loopline.instance import Instance
from loopline.storage.datastores import Datastore

__all__ = ["DatastoresMoved", "move_datastores"]


@dataclass(frozen=True)
class DatastoresMoved:
    """What was copied, and what was checked at the new places."""

    targets: dict[str, str]
    """Each datastore moved, with its new URL."""
    files: dict[str, int]
    """Files each new place holds now of the datastore's."""
    copied: dict[str, int]
    """Of those, the ones copied by this move (the others were there with the same bytes)."""
    assets: int
    """Data asset versions found whole at their new place."""

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready mapping."""
        return {k: getattr(self, k) for k in self.__dataclass_fields__}


def _listing(store: Datastore) -> list[str]:
    """Every file of the datastore (none where it holds nothing yet)."""
    try:
        return store.files("")
    except NotFound:
        return []


def _copy(source: Datastore, target: Datastore) -> tuple[int, int]:
    """Copy every file of ``source`` to ``target``: (files, of them copied now)."""
    files = _listing(source)
    copied = 0
    for file in files:
        if target.exists(file):
            if target.file_digest(file) != source.file_digest(file):
                raise Refused(
                    f"{target.location(file)} holds other bytes than {source.name}://{file}; move it away, "
                    "or move the datastore to an empty place"
                )
            continue
        target.copy_from(source, file)
        copied += 1
    return len(files), copied


def move_datastores(instance: Instance, targets: dict[str, str]) -> DatastoresMoved:
    """Copy each datastore named in ``targets`` to its new URL, then check every data asset version pinned
    in it there; the move is audited. Running it again copies nothing more."""
    if not targets:
        raise UsageError("name a datastore to move and its new place: --inbox URL, --predictions URL")
    moves = {name: (instance.datastore(name), Datastore(name, url)) for name, url in targets.items()}
    for name, (source, target) in moves.items():
        if source.url.rstrip("/") == target.url.rstrip("/"):
            raise UsageError(f"datastore {name} is at {redact(target.url)} already; name another place")
    files: dict[str, int] = {}
    copied: dict[str, int] = {}
    for name, (source, target) in moves.items():
        files[name], copied[name] = _copy(source, target)
    checked = 0
    for asset in list_assets(instance):
        if asset.datastore not in moves:
            continue
        try:
            found, _ = moves[asset.datastore][1].digest(asset.path)
        except NotFound:
            found = "no files"
        if found != asset.digest:
            raise IntegrityViolation(
                f"data asset {asset.name}:{asset.version} ({asset.reference}) is not whole at the new place "
                f"({found[:19]}… is not {asset.digest[:19]}…); its files changed since it was registered, "
                "or the copy did not finish: run the move again"
            )
        checked += 1
    result = DatastoresMoved({n: redact(t.url) for n, (_, t) in moves.items()}, files, copied, checked)
    with instance.db.write() as writer:
        audit.append(
            writer,
            DatastoresMigrated(
                actor=instance.actor, target=", ".join(result.targets.values()), details=result.to_dict()
            ),
        )
    return result
