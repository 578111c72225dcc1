"""Domain events: every change of state as a typed model with one base; the audit log stores exactly these."""

from __future__ import annotations

from datetime import datetime
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field

from loopline.domain import utcnow

__all__ = [
    "EVENT_TYPES",
    "ApprovalDecided",
    "ApprovalRequested",
    "BatchJobFinished",
    "BatchPromoted",
    "DataRegistered",
    "Deployed",
    "DeploymentDeleted",
    "EndpointCreated",
    "EndpointDeleted",
    "EndpointRetired",
    "EndpointUpdated",
    "Event",
    "GateEvaluated",
    "KeyRotated",
    "LockBroken",
    "ModelsMigrated",
    "MonitorChecked",
    "PolicyDecided",
    "Promoted",
    "Provisioned",
    "RefusedAttempt",
    "Registered",
    "Released",
    "RoleGranted",
    "RolledBack",
    "Shared",
    "StateMigrated",
    "TierChanged",
    "TokenCreated",
    "TokenRevoked",
    "TrackingMigrated",
    "TrafficChanged",
    "UserAdded",
    "VersionReinstated",
    "VersionWithdrawn",
]

EVENT_TYPES: dict[str, type[Event]] = {}
"""Every event class by its ``kind``, filled as the classes are defined."""


class Event(BaseModel):
    """One change of state, as the audit log stores it: who, when, what, from, to, commit, why."""

    model_config = ConfigDict(frozen=True, extra="forbid", defer_build=True)

    kind: ClassVar[str] = "event"

    actor: str
    at: datetime = Field(default_factory=utcnow)
    workspace: str | None = None
    model: str | None = None
    version: int | None = None
    git_commit: str | None = None
    source: str | None = None
    target: str | None = None
    reason: str | None = None
    outcome: str = "ok"
    details: dict[str, Any] = Field(default_factory=dict)

    @classmethod
    def __pydantic_init_subclass__(cls, **kwargs: Any) -> None:
        super().__pydantic_init_subclass__(**kwargs)
        EVENT_TYPES[cls.kind] = cls


class Provisioned(Event):
    """``loopline up`` created stores."""

    kind: ClassVar[str] = "provisioned"


class Registered(Event):
    """A model version was registered in a workspace."""

    kind: ClassVar[str] = "registered"


class Shared(Event):
    """A workspace's model version was copied into the shared registry."""

    kind: ClassVar[str] = "shared"


class GateEvaluated(Event):
    """A gate compared metrics with thresholds."""

    kind: ClassVar[str] = "gate-evaluated"


class RefusedAttempt(Event):
    """An attempt that loopline refused, with the reason."""

    kind: ClassVar[str] = "refused"


class EndpointCreated(Event):
    """An online endpoint was created."""

    kind: ClassVar[str] = "endpoint-created"


class EndpointDeleted(Event):
    """An online endpoint was deleted."""

    kind: ClassVar[str] = "endpoint-deleted"


class EndpointRetired(Event):
    """An online endpoint was retired: its final report archived, its deployments, keys and itself
    removed."""

    kind: ClassVar[str] = "endpoint-retired"


class EndpointUpdated(Event):
    """An online endpoint's settings (strict checks, sensitive) changed."""

    kind: ClassVar[str] = "endpoint-updated"


class Deployed(Event):
    """A model version was deployed to an endpoint."""

    kind: ClassVar[str] = "deployed"


class DeploymentDeleted(Event):
    """A deployment was removed from an endpoint."""

    kind: ClassVar[str] = "deployment-deleted"


class TrafficChanged(Event):
    """An endpoint's traffic split or mirror changed."""

    kind: ClassVar[str] = "traffic-changed"


class KeyRotated(Event):
    """An endpoint key was regenerated (the key itself is never recorded)."""

    kind: ClassVar[str] = "key-rotated"


class Promoted(Event):
    """A registry version was copied into the test or prod workspace."""

    kind: ClassVar[str] = "promoted"


class Released(Event):
    """A version took an endpoint's main traffic; the ``production`` alias follows in prod."""

    kind: ClassVar[str] = "released"


class RolledBack(Event):
    """An endpoint's traffic went back to an earlier version (by hand, or after a canary breach)."""

    kind: ClassVar[str] = "rolled-back"


class TierChanged(Event):
    """The instance moved to another tier."""

    kind: ClassVar[str] = "tier-changed"


class DataRegistered(Event):
    """A data asset version was registered."""

    kind: ClassVar[str] = "data-registered"


class BatchPromoted(Event):
    """A batch endpoint's default deployment changed."""

    kind: ClassVar[str] = "batch-promoted"


class BatchJobFinished(Event):
    """A batch scoring job ended (succeeded or failed)."""

    kind: ClassVar[str] = "batch-job"


class MonitorChecked(Event):
    """Monitoring computed an endpoint's signals."""

    kind: ClassVar[str] = "monitor-checked"


class PolicyDecided(Event):
    """A policy turned monitoring signals into a decision."""

    kind: ClassVar[str] = "policy-decided"


class StateMigrated(Event):
    """loopline's database was copied to another URL."""

    kind: ClassVar[str] = "state-migrated"


class DatastoresMigrated(Event):
    """The datastores' files were copied to other places and the data assets checked there."""

    kind: ClassVar[str] = "datastores-migrated"


class ModelsMigrated(Event):
    """Every version's model files were copied to another model store and named there."""

    kind: ClassVar[str] = "models-migrated"


class TrackingMigrated(Event):
    """A workspace's MLflow database was copied to another URL."""

    kind: ClassVar[str] = "tracking-migrated"


class UserAdded(Event):
    """A control-plane user was added."""

    kind: ClassVar[str] = "user-added"


class RoleGranted(Event):
    """A user's role on a workspace (or on every workspace) was set or removed."""

    kind: ClassVar[str] = "role-granted"


class TokenCreated(Event):
    """An API token was created (the audit log keeps its id, never its secret)."""

    kind: ClassVar[str] = "token-created"


class TokenRevoked(Event):
    """An API token was revoked."""

    kind: ClassVar[str] = "token-revoked"


class LockBroken(Event):
    """An admin broke a lock whose holder could not release it."""

    kind: ClassVar[str] = "lock-broken"


class ApprovalRequested(Event):
    """A release to prod waits for approval (its requester may not approve it)."""

    kind: ClassVar[str] = "approval-requested"


class ApprovalDecided(Event):
    """An approver approved (``outcome`` ok) or denied (``denied``) a commit's release to prod."""

    kind: ClassVar[str] = "approval-decided"


class VersionWithdrawn(Event):
    """A model version was withdrawn: no release, promotion, deployment or rollback may take it."""

    kind: ClassVar[str] = "version-withdrawn"


class VersionReinstated(Event):
    """A withdrawn model version was reinstated."""

    kind: ClassVar[str] = "version-reinstated"
