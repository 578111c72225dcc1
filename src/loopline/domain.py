"""Plain domain types: tiers, workspaces, commit identity, model versions and the audit events."""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from pathlib import PurePath
from typing import Any

from loopline.errors import InvalidReference, UsageError, shorten

__all__ = [
    "LLM_KEYS",
    "PRODUCTION",
    "SHARED",
    "TIER_WORKSPACES",
    "WORKFLOW_TIERS",
    "CommitRef",
    "DeploymentInfo",
    "EndpointInfo",
    "GateResult",
    "MetricCheck",
    "ModelVersionInfo",
    "Provenance",
    "ServingPath",
    "Tier",
    "canary_steps",
    "llm_request",
    "parse_duration",
    "utcnow",
]

SHARED = "shared"
"""The name of the shared registry, the store through which models move between workspaces."""

PRODUCTION = "production"
"""The alias of prod's live version (and, for clients written before aliases, its MLflow stage)."""

LLM_KEYS = ("messages", "prompt", "input")
"""The fields that make a scoring request a language model's or an agent's (a chat's ``messages``, a
completion's ``prompt``, a ResponsesAgent's ``input``), handed to the model as it came: MLflow's
``SUPPORTED_LLM_FORMATS``."""


def llm_request(document: Any) -> bool:
    """Whether a JSON document is a language model's request: an object holding any of ``LLM_KEYS``."""
    return isinstance(document, dict) and any(key in document for key in LLM_KEYS)


class Tier(StrEnum):
    """How many workspaces an instance has, and so which workflows it runs."""

    EXPERIMENTATION = "experimentation"
    SIMPLE = "simple"
    FULL = "full"


TIER_WORKSPACES: dict[Tier, tuple[str, ...]] = {
    Tier.EXPERIMENTATION: ("dev",),
    Tier.SIMPLE: ("dev", "prod"),
    Tier.FULL: ("dev", "test", "prod"),
}

WORKFLOW_TIERS: dict[str, frozenset[Tier]] = {
    "inner-loop": frozenset(Tier),
    "python-ci": frozenset(Tier),
    "outer-loop-test": frozenset({Tier.FULL}),
    "outer-loop-prod": frozenset({Tier.SIMPLE, Tier.FULL}),
    "model-rollback": frozenset({Tier.SIMPLE, Tier.FULL}),
    "monitoring": frozenset({Tier.SIMPLE, Tier.FULL}),
}

_HEX = re.compile(r"^[0-9a-f]+$")


@dataclass(frozen=True)
class CommitRef:
    """A commit as a user names it: the full SHA or a unique prefix of 7 or more hex digits."""

    text: str

    def __post_init__(self) -> None:
        value = self.text.strip().lower()
        if not (7 <= len(value) <= 40) or not _HEX.match(value):
            raise InvalidReference(
                f"'{self.text}' is not a commit: give the full 40-character SHA or a prefix of 7 or more "
                "hex digits"
            )
        object.__setattr__(self, "text", value)

    @property
    def is_full(self) -> bool:
        """True when the reference is a whole 40-character SHA."""
        return len(self.text) == 40


_DURATION = re.compile(r"^(\d+(?:\.\d+)?)([smhdw])$")
_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
_LONGEST = timedelta(days=36525)  # a span added to now stays a date (and a window a number of seconds)


def parse_duration(text: str, what: str = "duration") -> timedelta:
    """``90s``, ``30m``, ``1h``, ``2d`` or ``1w`` as a positive time span; a usage error names ``what``."""
    match = _DURATION.match(text.strip())
    if not match or float(match.group(1)) <= 0:
        raise UsageError(f"{what} '{shorten(text)}' is not a duration such as 30m, 1h, 2d or 1w")
    seconds = float(match.group(1)) * _SECONDS[match.group(2)]
    if seconds > _LONGEST.total_seconds():
        raise UsageError(
            f"{what} '{shorten(text)}' is longer than loopline counts (100 years); give a shorter one"
        )
    return timedelta(seconds=seconds)


def canary_steps(steps: list[int]) -> list[int]:
    """``steps`` when they are increasing percentages from 1 to 100 ending at 100, else a usage error."""
    if any(isinstance(step, bool) or not isinstance(step, int) for step in steps):
        raise UsageError(f"canary steps are whole percentages, such as [10, 50, 100] (got {steps!r:.60})")
    if any(not 0 < step <= 100 for step in steps) or steps != sorted(set(steps)):
        raise UsageError("canary steps are increasing percentages from 1 to 100, e.g. [10, 50, 100]")
    if steps and steps[-1] != 100:
        raise UsageError("the last canary step must be 100")
    return steps


def utcnow() -> datetime:
    """The current time, timezone-aware in UTC."""
    return datetime.now(UTC)


_UNSAFE_IN_NAME = re.compile(r"[^A-Za-z0-9._-]+")


def project_name(folder: PurePath) -> str:
    """The project name a folder gives when none is chosen: its name, accented letters without their
    accents (``données`` gives ``donnees``), other unsafe runs made ``-``."""
    plain = unicodedata.normalize("NFKD", folder.name).encode("ascii", "ignore").decode()
    return _UNSAFE_IN_NAME.sub("-", plain).strip("-.") or "project"


def pinned(subject: Any) -> dict[str, Any]:
    """``model``, ``version`` and ``git_commit`` of what ``subject`` pins (a model version, a deployment, a
    job), as the audit events and the tables name them."""
    model = subject.model if hasattr(subject, "model") else subject.name
    return {"model": model, "version": subject.version, "git_commit": subject.git_commit}


class Provenance(StrEnum):
    """How far loopline could verify where a model version came from."""

    BUILT_HERE = "built-here"
    """The inner loop trained it on this host, at a commit the repository holds."""
    UPLOADED = "uploaded"
    """Trained elsewhere and uploaded by a signed-in caller; metrics loopline did not compute are claims."""
    CI_ATTESTED = "ci-attested"
    """Uploaded by a GitHub Actions run whose OIDC token names the repository, commit and workflow."""


@dataclass(frozen=True)
class ModelVersionInfo:
    """One model version in one workspace (or the shared registry), as loopline's catalog knows it."""

    workspace: str
    name: str
    version: int
    git_commit: str
    git_branch: str
    git_dirty: bool
    content_digest: str
    source_uri: str
    run_id: str | None = None
    diff_digest: str | None = None
    validation_status: str | None = None
    source_workspace: str = "dev"
    created_at: datetime | None = None
    withdrawn: bool = False  # its files are withdrawn from every release (loopline withdraw)
    aliases: tuple[str, ...] = field(default=())
    provenance: Provenance = Provenance.BUILT_HERE
    provenance_detail: dict[str, Any] = field(default_factory=dict)
    """Who uploaded it, which metrics are the caller's claims and which loopline computed, which CI run."""

    @property
    def short_commit(self) -> str:
        """The first seven characters of the commit."""
        return self.git_commit[:7]

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready mapping in the shape ``loopline status --json`` reports."""
        return {
            "workspace": self.workspace,
            "name": self.name,
            "version": self.version,
            "git_commit": self.git_commit,
            "git_branch": self.git_branch,
            "git_dirty": self.git_dirty,
            "diff_digest": self.diff_digest,
            "content_digest": self.content_digest,
            "aliases": list(self.aliases),
            "validation_status": self.validation_status,
            "withdrawn": self.withdrawn,
            "run_id": self.run_id,
            "source_uri": self.source_uri,
            "created_at": self.created_at.isoformat() if self.created_at else None,
            "provenance": self.provenance.value,
            "provenance_detail": self.provenance_detail,
        }


@dataclass(frozen=True)
class MetricCheck:
    """One metric against its thresholds."""

    metric: str
    value: float | None
    min: float | None
    max: float | None

    @property
    def passed(self) -> bool:
        """A missing metric fails; otherwise each given bound must hold."""
        if self.value is None:
            return False
        if self.min is not None and self.value < self.min:
            return False
        return not (self.max is not None and self.value > self.max)

    def describe(self) -> str:
        """A short human statement of the failure or success."""
        if self.value is None:
            return f"{self.metric} is missing"
        bounds = []
        if self.min is not None:
            bounds.append(f">= {self.min:g}")
        if self.max is not None:
            bounds.append(f"<= {self.max:g}")
        return f"{self.metric} = {self.value:.4g} (needs {' and '.join(bounds)})"

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready mapping."""
        return {
            "metric": self.metric,
            "value": self.value,
            "min": self.min,
            "max": self.max,
            "passed": self.passed,
        }


@dataclass(frozen=True)
class GateResult:
    """The outcome of checking a run's metrics against a thresholds file."""

    name: str
    checks: tuple[MetricCheck, ...]

    @property
    def passed(self) -> bool:
        """True when every check passed."""
        return all(check.passed for check in self.checks)

    @property
    def failures(self) -> tuple[MetricCheck, ...]:
        """The checks that failed."""
        return tuple(check for check in self.checks if not check.passed)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready mapping."""
        return {"gate": self.name, "passed": self.passed, "checks": [c.to_dict() for c in self.checks]}


@dataclass(frozen=True)
class ServingPath:
    """What answers a deployment in one serving process (a compiled form or the model's own predict, and
    why), as that process reported it when it loaded the deployment's files; ``seen_at`` is when it last
    said so (every minute while it runs)."""

    replica: str
    path: str
    seen_at: datetime
    environment: tuple[str, ...] = ()
    """The model's requirements that the packages of that process do not meet (``scikit-learn==1.5.2
    (1.9.1 here)``)."""

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready mapping."""
        return {
            "replica": self.replica,
            "path": self.path,
            "seen_at": self.seen_at.isoformat(),
            "environment": list(self.environment),
        }


@dataclass(frozen=True)
class DeploymentInfo:
    """One deployment of an online endpoint: a model version and its share of the traffic."""

    name: str
    model: str
    version: int
    git_commit: str
    content_digest: str
    source_uri: str
    traffic: int
    created_at: datetime | None = None
    created_by: str | None = None
    compute: str | None = None
    """A batch deployment's compute target (None: ``compute.default``)."""
    output_file: str | None = None
    """A batch deployment's one CSV file of each job's predictions beside the parts (None: parts only)."""
    serving: tuple[ServingPath, ...] | None = None
    """What answers it in each serving process that loaded it; None where not asked for."""
    environment: tuple[str, ...] | None = None
    """The model's requirements that the packages where it was deployed do not meet; None where not
    asked for (only the deployment a call creates says)."""

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready mapping."""
        shown: dict[str, Any] = {
            "name": self.name,
            "model": self.model,
            "version": self.version,
            "git_commit": self.git_commit,
            "content_digest": self.content_digest,
            "traffic": self.traffic,
            "created_at": self.created_at.isoformat() if self.created_at else None,
            "created_by": self.created_by,
        }
        if self.serving is not None:
            shown["serving"] = [path.to_dict() for path in self.serving]
        if self.environment is not None:
            shown["environment"] = list(self.environment)
        if self.output_file:
            shown["output_file"] = self.output_file
        return {**shown, "compute": self.compute} if self.compute else shown


@dataclass(frozen=True)
class EndpointInfo:
    """An online endpoint: its workspace, URL, auth mode, deployments, traffic and mirror."""

    name: str
    workspace: str
    auth: str
    url: str
    deployments: tuple[DeploymentInfo, ...]
    mirror: dict[str, int]
    generation: int
    created_at: datetime | None = None
    sensitive: bool = False
    strict: bool = False

    @property
    def traffic(self) -> dict[str, int]:
        """Each deployment's percentage of live traffic."""
        return {d.name: d.traffic for d in self.deployments}

    def deployment(self, name: str) -> DeploymentInfo | None:
        """The deployment called ``name``, if any."""
        return next((d for d in self.deployments if d.name == name), None)

    def main_deployment(self) -> DeploymentInfo | None:
        """The deployment that takes the most live traffic, if any takes some."""
        live = [d for d in self.deployments if d.traffic > 0]
        return max(live, key=lambda d: d.traffic) if live else None

    @staticmethod
    def url_under(base_url: str, name: str) -> str:
        """Where the endpoint ``name`` answers on the server at ``base_url``."""
        return f"{base_url.rstrip('/')}/endpoints/{name}"

    def at(self, base_url: str) -> EndpointInfo:
        """This endpoint as the server at ``base_url`` serves it."""
        return replace(self, url=self.url_under(base_url, self.name))

    def to_dict(self) -> dict[str, Any]:
        """The JSON shape ``status --json`` and ``endpoint show --json`` print (no keys, ever)."""
        return {
            "workspace": self.workspace,
            "name": self.name,
            "url": self.url,
            "auth": self.auth,
            "deployments": [d.to_dict() for d in self.deployments],
            "traffic": self.traffic,
            "mirror": self.mirror,
            "generation": self.generation,
            "sensitive": self.sensitive,
            "strict": self.strict,
            "created_at": self.created_at.isoformat() if self.created_at else None,
        }
