"""The result types the SDK facade defines itself (the services define the rest): cheap to import."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from loopline.domain import SHARED, EndpointInfo, ModelVersionInfo, Tier


@dataclass(frozen=True)
class Status:
    """Where everything of an instance stands."""

    project: str
    root: Path
    tier: Tier
    workspaces: tuple[str, ...]
    provisioned: bool
    stores: dict[str, dict[str, str | None]]  # artifact_location None: a tracking server's own
    datastores: dict[str, str]
    state_url: str
    models: tuple[ModelVersionInfo, ...]
    endpoints: tuple[dict[str, Any], ...] = field(default=())
    repository_url: str | None = None
    batch_endpoints: tuple[dict[str, Any], ...] = field(default=())
    model: str = ""

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
            "batch_endpoints": list(self.batch_endpoints),
            "repository_url": self.repository_url,
            "model": self.model,
        }


@dataclass(frozen=True)
class WorkspaceInfo:
    """The MLflow locations of one workspace, as ``use_workspace`` set them."""

    workspace: str
    tracking_uri: str
    registry_uri: str
    experiment: str


@dataclass(frozen=True)
class NewEndpoint:
    """A new endpoint and, with key auth, its two keys: shown this once, stored only as hashes."""

    endpoint: EndpointInfo
    keys: dict[str, str]

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready mapping (the one place keys appear: the answer to the request that made them)."""
        return {"endpoint": self.endpoint.to_dict(), "keys": self.keys}


@dataclass(frozen=True)
class EndpointKeys:
    """An endpoint's keys as listings show them, and a regenerated key (shown this once)."""

    endpoint: str
    keys: list[dict[str, str]]
    regenerated: dict[str, str]

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready mapping."""
        return {"endpoint": self.endpoint, "keys": self.keys, "regenerated": self.regenerated}


@dataclass(frozen=True)
class ValidationReport:
    """The newest outer-loop test report of a commit, as written next to its registry version."""

    git_commit: str
    model: str
    version: int | None
    outcome: str
    uri: str
    markdown: str
    data: dict[str, Any]

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready mapping."""
        return {k: getattr(self, k) for k in self.__dataclass_fields__}


@dataclass(frozen=True)
class EndpointMetrics:
    """An endpoint's traffic over a recent window, in buckets, summed over deployments and replicas."""

    endpoint: str
    minutes: int
    step_seconds: int
    points: list[dict[str, Any]]

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready mapping."""
        return {
            "endpoint": self.endpoint,
            "minutes": self.minutes,
            "step_seconds": self.step_seconds,
            "points": self.points,
        }


@dataclass(frozen=True)
class CheckpointWritten:
    """A signed head of the audit log, and where it was kept."""

    seq: int
    hash: str
    at: str
    keyed_from: int | None
    signature: str
    stored: str | None

    def checkpoint(self) -> dict[str, Any]:
        """The checkpoint itself, as its file holds it."""
        return {key: value for key, value in asdict(self).items() if key != "stored"}

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready mapping."""
        return asdict(self)
