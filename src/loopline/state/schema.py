"""The tables of loopline's own database (SQLAlchemy Core; Alembic migrates them)."""

from __future__ import annotations

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

metadata = MetaData()

model_versions = Table(
    "model_versions",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("workspace", String(32), nullable=False),
    Column("name", String(200), nullable=False),
    Column("version", Integer, nullable=False),
    Column("git_commit", String(40), nullable=False),
    Column("git_branch", String(255), nullable=False),
    Column("git_dirty", Boolean, nullable=False),
    Column("diff_digest", String(80), nullable=True),
    Column("content_digest", String(80), nullable=False),
    Column("source_uri", Text, nullable=False),
    Column("run_id", String(64), nullable=True),
    Column("source_workspace", String(32), nullable=False),
    Column("validation_status", String(16), nullable=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("created_by", String(200), nullable=False),
    Column("provenance", String(16), nullable=False, server_default="built-here"),
    Column("provenance_detail", JSON, nullable=True),
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
    Column("version", Integer, nullable=False),
)

events = Table(
    "events",
    metadata,
    Column("seq", Integer, primary_key=True, autoincrement=True),
    Column("event_id", String(36), nullable=False, unique=True),
    Column("at", DateTime(timezone=True), nullable=False),
    Column("kind", String(40), nullable=False),
    Column("actor", String(200), nullable=False),
    Column("workspace", String(32), nullable=True),
    Column("model", String(200), nullable=True),
    Column("version", Integer, nullable=True),
    Column("git_commit", String(40), nullable=True),
    Column("source", Text, nullable=True),
    Column("target", Text, nullable=True),
    Column("reason", Text, nullable=True),
    Column("outcome", String(40), nullable=False),
    Column("details", JSON, nullable=False),
    Column("prev_hash", String(64), nullable=False),
    Column("hash", String(64), nullable=False),
    Column("keyed", Boolean, nullable=False, server_default=false()),  # hash is an HMAC with the audit key
    Index("ix_events_commit", "git_commit"),
    Index("ix_events_kind", "kind"),
)

# One row (id = 1): the sequence number and hash of the newest event. Appending locks this row, so the
# chain stays linear under concurrent writers on any database, and a deleted newest event is noticed.
audit_head = Table(
    "audit_head",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("seq", Integer, nullable=False),
    Column("hash", String(64), nullable=False),
)

locks = Table(
    "locks",
    metadata,
    Column("name", String(200), primary_key=True),
    Column("owner", String(200), nullable=False),
    Column("host", String(200), nullable=False),
    Column("pid", Integer, nullable=False),
    Column("acquired_at", DateTime(timezone=True), nullable=False),
    Column("expires_at", DateTime(timezone=True), nullable=False),
)

endpoints = Table(
    "endpoints",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("name", String(64), nullable=False),
    Column("workspace", String(32), nullable=False),
    Column("auth", String(8), nullable=False),
    Column("mirror_deployment", String(64), nullable=True),
    Column("mirror_percent", Integer, nullable=False, default=0),
    Column("generation", Integer, nullable=False, default=1),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("created_by", String(200), nullable=False),
    Column("sensitive", Boolean, nullable=False, default=False),
    Column("strict", Boolean, nullable=False, default=False),
    # sha256 of the key loopline calls the endpoint with, so serving replicas need not read the secret
    Column("system_key_hash", String(64), nullable=True),
    UniqueConstraint("workspace", "name", name="uq_endpoints_workspace_name"),
    Index("ix_endpoints_workspace", "workspace"),
)

# Keys are stored only as sha256 hashes; the key itself is shown once, when made.
endpoint_keys = Table(
    "endpoint_keys",
    metadata,
    Column("endpoint_id", Integer, ForeignKey("endpoints.id", ondelete="CASCADE"), primary_key=True),
    Column("slot", String(16), primary_key=True),
    Column("key_hash", String(64), nullable=False),
    Column("prefix", String(16), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
)

deployments = Table(
    "deployments",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("endpoint_id", Integer, ForeignKey("endpoints.id", ondelete="CASCADE"), nullable=False),
    Column("name", String(64), nullable=False),
    Column("model_name", String(200), nullable=False),
    Column("model_version", Integer, nullable=False),
    Column("git_commit", String(40), nullable=False),
    Column("content_digest", String(80), nullable=False),
    Column("source_uri", Text, nullable=False),
    Column("traffic", Integer, nullable=False, default=0),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("created_by", String(200), nullable=False),
    UniqueConstraint("endpoint_id", "name", name="uq_deployments_name"),
)

# Named random values of the instance (the secret behind loopline's own calls to its endpoints).
instance_secrets = Table(
    "instance_secrets",
    metadata,
    Column("name", String(64), primary_key=True),
    Column("value", String(128), nullable=False),
)

# Per-second request counts and latency histograms of each serving process, per deployment: what the
# canary watch judges and the dashboard draws, summed across replicas.
serving_stats = Table(
    "serving_stats",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("workspace", String(32), nullable=False),
    Column("endpoint", String(64), nullable=False),
    Column("deployment", String(64), nullable=False),
    Column("replica", String(120), nullable=False),
    Column("second", Integer, nullable=False),
    Column("requests", Integer, nullable=False),
    Column("errors", Integer, nullable=False),
    Column("rejected", Integer, nullable=False),
    Column("latency_sum", Float, nullable=False),
    Column("latency_counts", JSON, nullable=False),
    Index("ix_serving_stats_window", "workspace", "endpoint", "deployment", "second"),
)

# Every version that took an endpoint's main traffic, in order: releases and rollbacks.
releases = Table(
    "releases",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("endpoint", String(64), nullable=False),
    Column("deployment", String(64), nullable=False),
    Column("model", String(200), nullable=False),
    Column("version", Integer, nullable=False),
    Column("git_commit", String(40), nullable=False),
    Column("kind", String(16), nullable=False),
    Column("at", DateTime(timezone=True), nullable=False),
    Column("actor", String(200), nullable=False),
    Column("reason", Text, nullable=True),
    Column("workspace", String(32), nullable=False, server_default="prod"),
    Index("ix_releases_endpoint", "workspace", "endpoint"),
)

# A release in progress, step by step, so that a rerun after a crash continues where it stopped.
release_progress = Table(
    "release_progress",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("workspace", String(32), nullable=False),
    Column("endpoint", String(64), nullable=False),
    Column("deployment", String(64), nullable=False),
    Column("model", String(200), nullable=False),
    Column("version", Integer, nullable=False),
    Column("git_commit", String(40), nullable=False),
    Column("content_digest", String(80), nullable=False),
    Column("before", JSON, nullable=False),  # the endpoint's split and mirror before the release began
    Column("steps", JSON, nullable=False),
    Column("watch_seconds", Float, nullable=False),
    Column("step", Integer, nullable=False),  # the index of the step whose traffic is set (-1: none yet)
    Column("step_started_at", DateTime(timezone=True), nullable=True),
    Column("state", String(16), nullable=False),  # running, released, rolled-back, abandoned
    Column("reason", Text, nullable=True),
    Column("started_at", DateTime(timezone=True), nullable=False),
    Column("finished_at", DateTime(timezone=True), nullable=True),
    Column("actor", String(200), nullable=False),
    Index("ix_release_progress_endpoint", "workspace", "endpoint", "state"),
)

# Versioned data assets: a path in a datastore pinned by the content digest of its files.
data_assets = Table(
    "data_assets",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("name", String(100), nullable=False),
    Column("version", Integer, nullable=False),
    Column("datastore", String(32), nullable=False),
    Column("path", Text, nullable=False),
    Column("digest", String(80), nullable=False),
    Column("manifest", JSON, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("created_by", String(200), nullable=False),
    UniqueConstraint("name", "version", name="uq_data_assets_version"),
)

batch_endpoints = Table(
    "batch_endpoints",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("name", String(64), nullable=False),
    Column("workspace", String(32), nullable=False),
    Column("default_deployment", String(64), nullable=True),
    Column("previous_default", String(64), nullable=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("created_by", String(200), nullable=False),
    UniqueConstraint("workspace", "name", name="uq_batch_endpoints_workspace_name"),
)

batch_deployments = Table(
    "batch_deployments",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("endpoint_id", Integer, ForeignKey("batch_endpoints.id", ondelete="CASCADE"), nullable=False),
    Column("name", String(64), nullable=False),
    Column("model_name", String(200), nullable=False),
    Column("model_version", Integer, nullable=False),
    Column("git_commit", String(40), nullable=False),
    Column("content_digest", String(80), nullable=False),
    Column("source_uri", Text, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("created_by", String(200), nullable=False),
    UniqueConstraint("endpoint_id", "name", name="uq_batch_deployments_name"),
)

batch_jobs = Table(
    "batch_jobs",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("endpoint", String(64), nullable=False),
    Column("deployment", String(64), nullable=False),
    Column("model", String(200), nullable=False),
    Column("version", Integer, nullable=False),
    Column("git_commit", String(40), nullable=False),
    Column("content_digest", String(80), nullable=False),
    Column("input_asset", String(100), nullable=False),
    Column("input_version", Integer, nullable=False),
    Column("input_digest", String(80), nullable=False),
    Column("chunk_rows", Integer, nullable=False),
    Column("status", String(16), nullable=False),
    Column("chunks_done", Integer, nullable=False),
    Column("rows", Integer, nullable=False),
    Column("output", Text, nullable=False),
    Column("error", Text, nullable=True),
    Column("started_at", DateTime(timezone=True), nullable=False),
    Column("finished_at", DateTime(timezone=True), nullable=True),
    Column("actor", String(200), nullable=False),
    Column("workspace", String(32), nullable=False, server_default="prod"),
    Column("host", String(200), nullable=True),  # where the job runs, and its process ...
    Column("pid", Integer, nullable=True),
    Column("heartbeat_at", DateTime(timezone=True), nullable=True),  # ... alive as of then
    Index("ix_batch_jobs_endpoint", "endpoint"),
)

# A bounded, rotating sample of what each online deployment was asked and answered.
monitor_samples = Table(
    "monitor_samples",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("endpoint", String(64), nullable=False),
    Column("deployment", String(64), nullable=False),
    Column("at", Float, nullable=False),
    Column("features", JSON, nullable=False),
    Column("prediction", JSON, nullable=True),
    Column("workspace", String(32), nullable=False, server_default="prod"),
    Index("ix_monitor_samples_window", "workspace", "endpoint", "deployment", "at"),
)

# Each model's reference profile (from its training data), by content digest.
reference_profiles = Table(
    "reference_profiles",
    metadata,
    Column("content_digest", String(80), primary_key=True),
    Column("model", String(200), nullable=False),
    Column("profile", JSON, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
)

monitor_checks = Table(
    "monitor_checks",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("endpoint", String(64), nullable=False),
    Column("deployment", String(64), nullable=False),
    Column("model", String(200), nullable=False),
    Column("version", Integer, nullable=False),
    Column("git_commit", String(40), nullable=False),
    Column("window_seconds", Integer, nullable=False),
    Column("samples", Integer, nullable=False),
    Column("signals", JSON, nullable=False),
    Column("outcome", String(16), nullable=False),
    Column("run_id", String(64), nullable=True),
    Column("at", DateTime(timezone=True), nullable=False),
    Column("workspace", String(32), nullable=False, server_default="prod"),
    Index("ix_monitor_checks_endpoint", "workspace", "endpoint"),
)

users = Table(
    "users",
    metadata,
    Column("name", String(100), primary_key=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("created_by", String(200), nullable=False),
)

# A role on one workspace, or on every workspace when workspace is "*".
grants = Table(
    "grants",
    metadata,
    Column("user", String(100), ForeignKey("users.name"), primary_key=True),
    Column("workspace", String(32), primary_key=True),
    Column("role", String(16), nullable=False),
)

# API tokens, stored only as the SHA-256 of the secret (the secret has 256 random bits).
tokens = Table(
    "tokens",
    metadata,
    Column("id", String(16), primary_key=True),
    Column("user", String(100), ForeignKey("users.name"), nullable=False),
    Column("secret_hash", String(64), nullable=False, unique=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("expires_at", DateTime(timezone=True), nullable=True),
    Column("revoked_at", DateTime(timezone=True), nullable=True),
    Column("last_used_at", DateTime(timezone=True), nullable=True),
)
