"""The SDK: every CLI command is one call of a function here, and each returns a value.

import loopline
loopline.up(project="my-project")
result = loopline.inner_loop(project="my-project")
print(result.shared.version, result.git_commit)
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from loopline.config import DATASTORES, redact
from loopline.domain import SHARED, ModelVersionInfo, Tier
from loopline.errors import UsageError
from loopline.instance import Instance

if TYPE_CHECKING:
    # Services load on first use, so a quick command such as `status` imports only what it needs.
    from loopline.audit import AuditRecord
    from loopline.lifecycle import DemoResult
    from loopline.loops.inner import InnerLoopResult
    from loopline.progress import Reporter
    from loopline.provision import UpResult
    from loopline.scaffold import InitResult

__all__ = [
    "Status",
    "WorkspaceInfo",
    "demo",
    "history",
    "init",
    "inner_loop",
    "status",
    "up",
    "use_workspace",
]

PathLike = str | os.PathLike[str]


def _tier(value: str | Tier) -> Tier:
    try:
        return Tier(value)
    except ValueError:
        raise UsageError(
            f"tier '{value}' does not exist; use one of {', '.join(t.value for t in Tier)}"
        ) from None


def init(
    path: PathLike,
    tier: str | Tier = Tier.SIMPLE,
    *,
    project: str | None = None,
    model: str | None = None,
    git: bool = True,
) -> InitResult:
    """Write a runnable sample project into a new or empty folder."""
    from loopline.scaffold import init_project

    return init_project(Path(path), _tier(tier), project=project, model=model, git=git)


def up(project: PathLike | None = None, *, reporter: Reporter | None = None) -> UpResult:
    """Create the tier's workspaces, the shared registry and the datastores; idempotent."""
    from loopline.provision import provision

    return provision(Instance.open(project), reporter)


def inner_loop(
    project: PathLike | None = None,
    *,
    model: str | None = None,
    allow_dirty: bool = False,
    reporter: Reporter | None = None,
) -> InnerLoopResult:
    """Train at the current commit, check the gate, register in dev and share to the registry."""
    from loopline.loops.inner import run_inner_loop

    return run_inner_loop(Instance.open(project), model=model, allow_dirty=allow_dirty, reporter=reporter)


@dataclass(frozen=True)
class Status:
    """Where everything of an instance stands."""

    project: str
    root: Path
    tier: Tier
    workspaces: tuple[str, ...]
    provisioned: bool
    stores: dict[str, dict[str, str]]
    datastores: dict[str, str]
    state_url: str
    models: tuple[ModelVersionInfo, ...]
    endpoints: tuple[dict[str, Any], ...] = field(default=())

    def to_dict(self) -> dict[str, Any]:
        """The JSON shape ``loopline status --json`` prints."""
        return {
            "project": self.project,
            "root": str(self.root),
            "tier": self.tier.value,
            "workspaces": list(self.workspaces),
            "registry": SHARED,
            "provisioned": self.provisioned,
            "stores": self.stores,
            "datastores": self.datastores,
            "state_url": self.state_url,
            "models": [m.to_dict() for m in self.models],
            "endpoints": list(self.endpoints),
        }


def status(project: PathLike | None = None) -> Status:
    """The tier, workspaces, stores and every model version loopline registered."""
    from loopline import catalog

    instance = Instance.open(project)
    settings = instance.settings
    provisioned = instance.db.revision() is not None
    models = tuple(catalog.list_versions(instance.db)) if provisioned else ()
    return Status(
        project=settings.config.project,
        root=settings.root,
        tier=settings.tier,
        workspaces=settings.workspaces,
        provisioned=provisioned,
        stores={
            name: {k: redact(v) for k, v in settings.store(name).to_dict().items()}
            for name in instance.store_names
        },
        datastores={name: redact(settings.datastore(name)) for name in DATASTORES},
        state_url=instance.db.redacted_url,
        models=models,
    )


def history(
    project: PathLike | None = None,
    *,
    commit: str | None = None,
    workspace: str | None = None,
    model: str | None = None,
    kind: str | None = None,
    actor: str | None = None,
    limit: int | None = None,
) -> list[AuditRecord]:
    """The audit log, oldest first, filtered by commit prefix, workspace, model, kind or actor."""
    from loopline import audit

    instance = Instance.open(project)
    instance.db.require_current(instance.root)
    return audit.query(
        instance.db, commit=commit, workspace=workspace, model=model, kind=kind, actor=actor, limit=limit
    )


@dataclass(frozen=True)
class WorkspaceInfo:
    """The MLflow locations of one workspace, as ``use_workspace`` set them."""

    workspace: str
    tracking_uri: str
    registry_uri: str
    experiment: str


def use_workspace(workspace: str = "dev", project: PathLike | None = None) -> WorkspaceInfo:
    """Point this process's MLflow at a workspace and its experiment (for notebooks and scripts)."""
    instance = Instance.open(project)
    instance.require_workspace(workspace)
    instance.db.require_current(instance.root)
    location = instance.settings.store(workspace)
    store = instance.store(workspace)
    experiment = instance.settings.experiment
    store.experiment_id(experiment)
    import mlflow

    mlflow.set_tracking_uri(location.tracking_uri)
    mlflow.set_registry_uri(location.registry_uri)
    mlflow.set_experiment(experiment)
    return WorkspaceInfo(
        workspace=workspace,
        tracking_uri=location.tracking_uri,
        registry_uri=location.registry_uri,
        experiment=experiment,
    )


def demo(
    tier: str | Tier = Tier.FULL, keep: PathLike | None = None, *, reporter: Reporter | None = None
) -> DemoResult:
    """Run the model lifecycle on a fresh sample project (kept in ``keep`` when given)."""
    from loopline.lifecycle import run_demo

    return run_demo(_tier(tier), Path(keep) if keep is not None else None, reporter)
