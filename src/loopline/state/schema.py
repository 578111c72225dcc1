"""The tables of loopline's own database (SQLAlchemy Core; Alembic migrates them)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    Column,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    false,
)
from sqlalchemy.types import TypeEngine

metadata = MetaData()

# Columns are NOT NULL unless a declaration says nullable=True.
_TIME = DateTime(timezone=True)


def _col(name: str, kind: TypeEngine[Any] | type[TypeEngine[Any]], *more: Any, **kw: Any) -> Column[Any]:
    kw.setdefault("nullable", False)
    return Column(name, kind, *more, **kw)


def _str(name: str, length: int, **kw: Any) -> Column[Any]:
    return _col(name, String(length), **kw)


def _serial() -> Column[Any]:
    return Column("id", Integer, primary_key=True, autoincrement=True)


def _made() -> tuple[Column[Any], ...]:
    """When a row was made, and by whom."""
    return _col("created_at", _TIME), _str("created_by", 200)


def _pinned(model: str = "model", version: str = "version", digest: bool = True) -> tuple[Column[Any], ...]:
    """A model version as a row pins it: name, number, commit (and the digest of its files)."""
    columns = (_str(model, 200), _col(version, Integer), _str("git_commit", 40))
    return (*columns, _str("content_digest", 80)) if digest else columns


def _deployment(parent: str) -> tuple[Any, ...]:
    """What an online and a batch deployment have in common: a named, pinned model on an endpoint."""
    return (
        _serial(),
        _col("endpoint_id", Integer, ForeignKey(f"{parent}.id", ondelete="CASCADE")),
        _str("name", 64),
        *_pinned("model_name", "model_version"),
        _col("source_uri", Text),
    )


def _prod_workspace() -> Column[Any]:
    """A workspace column added after the first release of a table: older rows were prod's."""
    return _str("workspace", 32, server_default="prod")


model_versions = Table(
    "model_versions",
    metadata,
    _serial(),
    _str("workspace", 32),
    _str("name", 200),
    _col("version", Integer),
    _str("git_commit", 40),
    _str("git_branch", 255),
    _col("git_dirty", Boolean),
    _str("diff_digest", 80, nullable=True),
    _str("content_digest", 80),
    _col("source_uri", Text),
    _str("run_id", 64, nullable=True),
    _str("source_workspace", 32),
    _str("validation_status", 16, nullable=True),
    *_made(),
    _str("provenance", 16, server_default="built-here"),
    _col("provenance_detail", JSON, nullable=True),
    UniqueConstraint("workspace", "name", "version", name="uq_model_versions_version"),
    Index("ix_model_versions_commit", "git_commit"),
    Index("ix_model_versions_lookup", "workspace", "name", "git_commit"),
)

aliases = Table(
    "aliases",
    metadata,
    Column("workspace", String(32), primary_key=True),
    Column("name", String(200), primary_key=True),
    Column("alias", String(100), primary_key=True),
    _col("version", Integer),
)

events = Table(
    "events",
    metadata,
    Column("seq", Integer, primary_key=True, autoincrement=True),
    _str("event_id", 36, unique=True),
    _col("at", _TIME),
    _str("kind", 40),
    _str("actor", 200),
    _str("workspace", 32, nullable=True),
    _str("model", 200, nullable=True),
    _col("version", Integer, nullable=True),
    _str("git_commit", 40, nullable=True),
    *(_col(name, Text, nullable=True) for name in ("source", "target", "reason")),
    _str("outcome", 40),
    _col("details", JSON),
    _str("prev_hash", 64),
    _str("hash", 64),
    _col("keyed", Boolean, server_default=false()),  # hash is an HMAC with the audit key
    Index("ix_events_commit", "git_commit"),
    Index("ix_events_kind", "kind"),
)

# One row (id = 1): the sequence number and hash of the newest event. Appending locks this row, so the
# chain stays linear under concurrent writers on any database, and a deleted newest event is noticed.
audit_head = Table(
    "audit_head",
    metadata,
    Column("id", Integer, primary_key=True),
    _col("seq", Integer),
    _str("hash", 64),
)

locks = Table(
    "locks",
    metadata,
    Column("name", String(200), primary_key=True),
    _str("owner", 200),
    _str("host", 200),
    _col("pid", Integer),
    _col("acquired_at", _TIME),
    _col("expires_at", _TIME),
)

endpoints = Table(
    "endpoints",
    metadata,
    _serial(),
    _str("name", 64),
    _str("workspace", 32),
    _str("auth", 8),
    _str("mirror_deployment", 64, nullable=True),
    _col("mirror_percent", Integer, default=0),
    _col("generation", Integer, default=1),
    *_made(),
    _col("sensitive", Boolean, default=False),
    _col("strict", Boolean, default=False),
    # sha256 of the key loopline calls the endpoint with, so serving replicas need not read the secret
    _str("system_key_hash", 64, nullable=True),
    UniqueConstraint("workspace", "name", name="uq_endpoints_workspace_name"),
    Index("ix_endpoints_workspace", "workspace"),
)

# Keys are stored only as sha256 hashes; the key itself is shown once, when made.
endpoint_keys = Table(
    "endpoint_keys",
    metadata,
    Column("endpoint_id", Integer, ForeignKey("endpoints.id", ondelete="CASCADE"), primary_key=True),
    Column("slot", String(16), primary_key=True),
    _str("key_hash", 64),
    _str("prefix", 16),
    _col("created_at", _TIME),
)

deployments = Table(
    "deployments",
    metadata,
    *_deployment("endpoints"),
    _col("traffic", Integer, default=0),
    *_made(),
    UniqueConstraint("endpoint_id", "name", name="uq_deployments_name"),
)

# Named random values of the instance (the secret behind loopline's own calls to its endpoints).
instance_secrets = Table(
    "instance_secrets",
    metadata,
    Column("name", String(64), primary_key=True),
    _str("value", 128),
)

# Per-second request counts and latency histograms of each serving process, per deployment: what the
# canary watch judges and the dashboard draws, summed across replicas.
serving_stats = Table(
    "serving_stats",
    metadata,
    _serial(),
    _str("workspace", 32),
    _str("endpoint", 64),
    _str("deployment", 64),
    _str("replica", 120),
    *(_col(name, Integer) for name in ("second", "requests", "errors", "rejected")),
    _col("latency_sum", Float),
    _col("latency_counts", JSON),
    Index("ix_serving_stats_window", "workspace", "endpoint", "deployment", "second"),
)

# What answers each deployment in each serving process (a compiled form or the model's own predict, and
# why), as the process reported it when it loaded the deployment's files; it says it again every minute.
serving_paths = Table(
    "serving_paths",
    metadata,
    Column("workspace", String(32), primary_key=True),
    Column("endpoint", String(64), primary_key=True),
    Column("deployment", String(64), primary_key=True),
    Column("replica", String(120), primary_key=True),
    _str("content_digest", 80),
    _col("path", Text),
    _col("environment", JSON, nullable=True),  # the model's requirements its packages do not meet
    _col("seen_at", _TIME),
)

# Every version that took an endpoint's main traffic, in order: releases and rollbacks.
releases = Table(
    "releases",
    metadata,
    _serial(),
    _str("endpoint", 64),
    _str("deployment", 64),
    *_pinned(digest=False),
    _str("kind", 16),
    _col("at", _TIME),
    _str("actor", 200),
    _col("reason", Text, nullable=True),
    _prod_workspace(),
    Index("ix_releases_endpoint", "workspace", "endpoint"),
)

# A release in progress, step by step, so that a rerun after a crash continues where it stopped.
release_progress = Table(
    "release_progress",
    metadata,
    _serial(),
    _str("workspace", 32),
    _str("endpoint", 64),
    _str("deployment", 64),
    *_pinned(),
    _col("before", JSON),  # the endpoint's split and mirror before the release began
    _col("steps", JSON),
    _col("watch_seconds", Float),
    _col("step", Integer),  # the index of the step whose traffic is set (-1: none yet)
    _col("step_started_at", _TIME, nullable=True),
    _str("state", 16),  # running, released, rolled-back, abandoned
    _col("reason", Text, nullable=True),
    _col("started_at", _TIME),
    _col("finished_at", _TIME, nullable=True),
    _str("actor", 200),
    _str("ended_by", 200, nullable=True),  # who ended it, where someone else did (abandoned) ...
    _col("ended_how", Text, nullable=True),  # ... and how: a rollback, a split set by hand, a deletion
    Index("ix_release_progress_endpoint", "workspace", "endpoint", "state"),
)

# Versioned data assets: a path in a datastore pinned by the content digest of its files.
data_assets = Table(
    "data_assets",
    metadata,
    _serial(),
    _str("name", 100),
    _col("version", Integer),
    _str("datastore", 32),
    _col("path", Text),
    _str("digest", 80),
    _col("manifest", JSON),
    *_made(),
    UniqueConstraint("name", "version", name="uq_data_assets_version"),
)

batch_endpoints = Table(
    "batch_endpoints",
    metadata,
    _serial(),
    _str("name", 64),
    _str("workspace", 32),
    _str("default_deployment", 64, nullable=True),
    _str("previous_default", 64, nullable=True),
    *_made(),
    UniqueConstraint("workspace", "name", name="uq_batch_endpoints_workspace_name"),
)

batch_deployments = Table(
    "batch_deployments",
    metadata,
    *_deployment("batch_endpoints"),
    *_made(),
    _str("compute", 64, nullable=True),  # the compute target its jobs run on (none: compute.default)
    _str("output_file", 255, nullable=True),  # its jobs' predictions also as one CSV file of this name
    UniqueConstraint("endpoint_id", "name", name="uq_batch_deployments_name"),
)

batch_jobs = Table(
    "batch_jobs",
    metadata,
    Column("id", String(40), primary_key=True),
    _str("endpoint", 64),
    _str("deployment", 64),
    *_pinned(),
    _str("input_asset", 100),
    _col("input_version", Integer),
    _str("input_digest", 80),
    _col("chunk_rows", Integer),
    _str("status", 16),
    *(_col(name, Integer) for name in ("chunks_done", "rows")),
    _col("output", Text),
    _col("error", Text, nullable=True),
    _col("started_at", _TIME),
    _col("finished_at", _TIME, nullable=True),
    _str("actor", 200),
    _prod_workspace(),
    _str("host", 200, nullable=True),  # where the job runs, and its process ...
    _col("pid", Integer, nullable=True),
    _col("heartbeat_at", _TIME, nullable=True),  # ... alive as of then
    _str("compute", 64, nullable=True),  # where it scores: local, or a Ray target's name
    _col("keep", Text, nullable=True),  # input columns its parts carry beside the answers (a JSON list)
    Index("ix_batch_jobs_endpoint", "endpoint"),
)

# A bounded, rotating sample of what each online deployment was asked and answered.
monitor_samples = Table(
    "monitor_samples",
    metadata,
    _serial(),
    _str("endpoint", 64),
    _str("deployment", 64),
    _col("at", Float),
    _col("features", JSON),
    _col("prediction", JSON, nullable=True),
    _prod_workspace(),
    Index("ix_monitor_samples_window", "workspace", "endpoint", "deployment", "at"),
)

# Each model's reference profile (from its training data), by content digest.
reference_profiles = Table(
    "reference_profiles",
    metadata,
    Column("content_digest", String(80), primary_key=True),
    _str("model", 200),
    _col("profile", JSON),
    _col("created_at", _TIME),
)

monitor_checks = Table(
    "monitor_checks",
    metadata,
    _serial(),
    _str("endpoint", 64),
    _str("deployment", 64),
    *_pinned(digest=False),
    *(_col(name, Integer) for name in ("window_seconds", "samples")),
    _col("signals", JSON),
    _str("outcome", 16),
    _str("run_id", 64, nullable=True),
    _col("at", _TIME),
    _prod_workspace(),
    Index("ix_monitor_checks_endpoint", "workspace", "endpoint"),
)

users = Table(
    "users",
    metadata,
    Column("name", String(100), primary_key=True),
    *_made(),
)

# A role on one workspace, or on every workspace when workspace is "*".
grants = Table(
    "grants",
    metadata,
    Column("user", String(100), ForeignKey("users.name"), primary_key=True),
    Column("workspace", String(32), primary_key=True),
    _str("role", 16),
)

# API tokens, stored only as the SHA-256 of the secret (the secret has 256 random bits).
tokens = Table(
    "tokens",
    metadata,
    Column("id", String(16), primary_key=True),
    _col("user", String(100), ForeignKey("users.name")),
    _str("secret_hash", 64, unique=True),
    _col("created_at", _TIME),
    *(_col(name, _TIME, nullable=True) for name in ("expires_at", "revoked_at", "last_used_at")),
)

# Where each webhook has got to in the audit log: every event up to ``last_seq`` was delivered or kept
# as failed; the next one waits until ``next_attempt_at`` after ``attempts`` failed tries.
notification_cursors = Table(
    "notification_cursors",
    metadata,
    Column("webhook", String(100), primary_key=True),
    _col("last_seq", Integer),
    _col("attempts", Integer),
    _col("next_attempt_at", _TIME, nullable=True),
    _col("last_error", Text, nullable=True),
)

# Events a webhook did not take after every try, until delivered again by hand (`notifications failed
# --retry`).
notification_failures = Table(
    "notification_failures",
    metadata,
    _serial(),
    _str("webhook", 100),
    _col("seq", Integer, ForeignKey("events.seq")),
    _col("attempts", Integer),
    _col("error", Text),
    _col("failed_at", _TIME),
    UniqueConstraint("webhook", "seq"),
)

# Decisions on releasing a commit's model to prod: by whom, on which version and validation report, until
# when. A release counts the approvals that match what it releases and have not expired.
withdrawals = Table(
    "withdrawals",
    metadata,
    _serial(),
    *_pinned(),
    _str("action", 16),  # withdrawn | reinstated: the newest row of a content digest stands
    _col("reason", Text),
    _str("actor", 200),
    _col("created_at", _TIME),
    Index("ix_withdrawals_digest", "content_digest"),
)

approvals = Table(
    "approvals",
    metadata,
    _serial(),
    *_pinned(),
    _str("report_digest", 80, nullable=True),
    _str("decision", 16),
    _str("approver", 200),
    _str("requested_by", 200, nullable=True),
    _col("reason", Text),
    _col("created_at", _TIME),
    _col("expires_at", _TIME),
    _str("source", 32),
    _col("run_url", Text, nullable=True),
    Index("ix_approvals_commit", "git_commit"),
)
