"""The sections of ``loopline.yaml`` for a team's deployment: webhooks, the control plane, the audit log,
loopline's own database."""

from __future__ import annotations

import ipaddress
import re
from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from loopline.config.fields import SimpleName, Strict, Url

__all__ = [
    "EVENT_KINDS",
    "NOTIFIED_BY_DEFAULT",
    "AuditConfig",
    "ControlPlaneConfig",
    "NotificationsConfig",
    "StateConfig",
    "WebhookConfig",
]

EVENT_KINDS = (
    "approval-decided", "approval-requested", "batch-job", "batch-promoted", "data-registered",
    "datastores-migrated", "deployed",
    "deployment-deleted", "endpoint-created", "endpoint-deleted", "endpoint-retired", "endpoint-updated",
    "gate-evaluated",
    "key-rotated", "lock-broken", "models-migrated", "monitor-checked", "policy-decided", "promoted",
    "provisioned", "refused", "registered", "released", "role-granted", "rolled-back", "shared",
    "state-migrated", "tier-changed", "token-created", "token-revoked", "tracking-migrated",
    "traffic-changed", "user-added", "version-reinstated", "version-withdrawn",
)  # fmt: skip
"""Every kind of audit event (a test keeps it equal to ``loopline.events``)."""

NOTIFIED_BY_DEFAULT = (
    "registered", "shared", "gate-evaluated", "promoted", "approval-requested", "approval-decided",
    "released", "traffic-changed", "rolled-back", "policy-decided", "batch-job", "endpoint-retired",
    "version-withdrawn", "version-reinstated",
)  # fmt: skip
"""What a webhook is sent when it names no events: the moves of models, and what watches them."""


class WebhookConfig(Strict):
    """One receiver of events: a URL that takes a JSON POST."""

    url: str | None = Field(None, description="Where events are sent (http or https).")
    url_env: str | None = Field(
        None, description="An environment variable holding the URL instead (Slack's and Teams' are secrets)."
    )
    secret_env: str | None = Field(
        None,
        description="An environment variable holding the signing key: each request then carries "
        "X-MLflow-Signature, an HMAC-SHA256 as MLflow's webhooks sign theirs.",
    )
    format: Literal["mlflow", "slack", "teams"] = Field(
        "mlflow",
        description="mlflow: MLflow's webhook payload (entity, action, timestamp, data); slack or teams: "
        "a message for their incoming webhooks.",
    )
    events: list[str] = Field(
        default_factory=lambda: list(NOTIFIED_BY_DEFAULT),
        description="The kinds of audit events sent (default: the moves of models and their watch).",
    )

    @field_validator("url")
    @classmethod
    def _url_is_http(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("http://", "https://")):
            raise ValueError("give an http:// or https:// URL")
        return value

    @field_validator("events")
    @classmethod
    def _known_events(cls, values: list[str]) -> list[str]:
        for value in values:
            if value not in EVENT_KINDS:
                raise ValueError(f"'{value}' is not a kind of event; use some of {', '.join(EVENT_KINDS)}")
        return values

    @model_validator(mode="after")
    def _one_url(self) -> WebhookConfig:
        if (self.url is None) == (self.url_env is None):
            raise ValueError("give the webhook either url or url_env")
        return self


class NotificationsConfig(Strict):
    """Webhooks told of events: delivered in order per webhook, retried with backoff, then kept as failed.
    Delivery runs in a process of its own, so a slow or failing receiver never holds up a move."""

    webhooks: dict[SimpleName, WebhookConfig] = Field({}, description="Receivers by name.")
    attempts: int = Field(5, ge=1, le=50, description="Tries per event before it is kept as failed.")
    retry_seconds: float = Field(
        1, gt=0, description="The wait after the first failed try; each next wait doubles."
    )
    max_retry_seconds: float = Field(300, gt=0, description="The longest wait between two tries.")
    timeout_seconds: float = Field(5, gt=0, le=120, description="How long one request may take.")


class ControlPlaneConfig(Strict):
    """``loopline server``: failed sign-ins and the proxies in front of it."""

    max_failed_sign_ins: int = Field(
        10, gt=0, description="Failed sign-ins from one address within the window before it gets 429."
    )
    sign_in_window_seconds: float = Field(60, gt=0, description="The window failed sign-ins are counted in.")
    max_upload_mb: int = Field(8192, gt=0, description="Largest upload of a trained run (compressed).")
    max_upload_expanded_mb: int = Field(
        16384, gt=0, description="Largest total size of an upload's files once unpacked."
    )
    max_upload_files: int = Field(10_000, gt=0, description="Most files an upload may unpack to.")
    root_path: str = Field(
        "",
        description="The path a reverse proxy serves the control plane under and strips before passing a "
        "request on (/loopline for https://tools.example.com/loopline/); the dashboard's links carry it.",
    )
    trusted_proxies: list[str] = Field(
        default_factory=list,
        description="Addresses or networks (CIDR) of reverse proxies whose X-Forwarded-For names the "
        "client; from anyone else the header is ignored.",
    )

    @field_validator("root_path")
    @classmethod
    def _a_path(cls, value: str) -> str:
        if not re.fullmatch(r"(/[A-Za-z0-9._~-]+)*", value):
            raise ValueError(f"{value!r} is not a path such as /loopline (a leading /, none at the end)")
        return value

    @field_validator("trusted_proxies", mode="before")
    @classmethod
    def _listed(cls, value: Any) -> Any:
        """A list, or (from an environment variable) addresses separated by commas."""
        if isinstance(value, str):
            return [part.strip() for part in value.split(",") if part.strip()]
        return value

    @field_validator("trusted_proxies")
    @classmethod
    def _networks(cls, values: list[str]) -> list[str]:
        for value in values:
            try:
                ipaddress.ip_network(value, strict=False)
            except ValueError:
                raise ValueError(f"'{value}' is not an IP address or network (like 10.0.0.0/8)") from None
        return values


class AuditConfig(Strict):
    """Where ``loopline audit checkpoint`` keeps the signed heads of the audit log."""

    checkpoints: str | None = Field(
        None,
        description="A folder (relative to the project) or an fsspec URL (az://, s3://) that the database's "
        "writers cannot change; `audit verify` checks the log against the newest checkpoint there.",
    )


class StateConfig(Strict):
    """loopline's own database (audit log, catalog, endpoints)."""

    url: Url = Field(None, description="SQLAlchemy URL; default a SQLite file under .loopline/.")
