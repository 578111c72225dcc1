"""``loopline up``: create the tier's workspaces, the shared registry, the datastores and the database."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from loopline import audit
from loopline.config import DATASTORES, DatastoreConfig
from loopline.domain import SHARED
from loopline.errors import ConfigError
from loopline.events import Provisioned
from loopline.instance import Instance
from loopline.moved import relocate
from loopline.progress import NullReporter, Reporter
from loopline.state import HEAD_REVISION
from loopline.storage.datastores import Datastore

__all__ = ["UpResult", "provision"]


@dataclass(frozen=True)
class UpResult:
    """What ``up`` created; empty when everything already existed."""

    project: str
    tier: str
    created: tuple[str, ...]

    @property
    def changed(self) -> bool:
        """True when anything was created."""
        return bool(self.created)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready mapping."""
        return {
            "project": self.project,
            "tier": self.tier,
            "changed": self.changed,
            "created": list(self.created),
        }


def _ensure_folder(location: str, what: str) -> list[str]:
    if "://" in location:
        return []
    path = Path(location)
    if path.is_dir():
        return []
    path.mkdir(parents=True, exist_ok=True)
    return [f"{what} {path}"]


def _seed(root: Path, config: DatastoreConfig | None, store: Datastore) -> list[str]:
    """Copy a datastore's seed files from the project when they are missing (never over newer data)."""
    name = store.name
    if config is None or config.seed is None:
        return []
    source = root / config.seed
    if not source.is_dir():
        raise ConfigError(
            f"loopline.yaml: datastores.{name}.seed '{config.seed}' is not a folder of the project"
        )
    created = []
    for path in sorted(p for p in source.rglob("*") if p.is_file()):
        relative = path.relative_to(source).as_posix()
        if not store.exists(relative):
            store.write_atomic(relative, path.read_bytes())
            created.append(f"{name}://{relative}")
    return created


def provision(instance: Instance, reporter: Reporter | None = None) -> UpResult:
    """Create whatever of the instance does not exist yet; running it again changes nothing."""
    report = reporter or NullReporter()
    settings = instance.settings
    created: list[str] = []
    report.step("loopline's database")
    before = instance.db.revision()
    if instance.db.upgrade():
        migrated = f" (migrated from {before} to {HEAD_REVISION})" if before is not None else ""
        created.append(f"loopline database {instance.db.redacted_url}{migrated}")
    for name in instance.store_names:
        report.step(f"{name} store")
        experiment = None if name == SHARED else settings.experiment
        created.extend(relocate(instance.store(name), settings.root))  # a project folder moved
        created.extend(instance.store(name).provision(experiment))
        created.extend(_ensure_folder(settings.store(name).model_store, "model store"))
    for name in DATASTORES:
        created.extend(_ensure_folder(settings.datastore(name), f"datastore {name}"))
        created.extend(
            _seed(settings.root, settings.config.datastores.get(name), instance.datastore(name))  # type: ignore[call-overload]
        )
    if created:
        audit.record(
            instance.db,
            Provisioned(
                actor=instance.actor,
                target=settings.config.project,
                details={"created": created},
            ),
        )
    return UpResult(project=settings.config.project, tier=settings.tier.value, created=tuple(created))
