"""Retiring an online endpoint with evidence (``loopline endpoint retire``).

Before anything is removed, the endpoint's final report is taken: its deployments and their versions,
the traffic each answered over the last day and its errors, its release history, the newest monitoring
check, and its keys (by slot, never the keys). The report is archived in the shared registry's artifact
store (JSON and Markdown) and its digest and location go into the audit event; then the deployments, the
keys and the endpoint are removed in one transaction. A serving process stops answering the endpoint
when it next reads the routing table (within a second).
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from loopline import markdown
from loopline.domain import SHARED
from loopline.endpoints import service
from loopline.endpoints.releases import release_history
from loopline.errors import InsufficientEvidence, UsageError
from loopline.events import EndpointRetired
from loopline.instance import Instance
from loopline.loops import approvals
from loopline.monitoring.policy import latest_check
from loopline.serving.stats import window_stats

__all__ = ["Retired", "retire_endpoint"]

WINDOW_HOURS = 24


@dataclass(frozen=True)
class Retired:
    """A retired endpoint: where its final report is, and what it said."""

    name: str
    workspace: str
    evidence_uri: str
    evidence_digest: str
    evidence: dict[str, Any]

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready mapping."""
        return dict(self.__dict__)


def _traffic(instance: Instance, workspace: str, name: str, deployments: list[str]) -> dict[str, Any]:
    since = time.time() - WINDOW_HOURS * 3600
    found = {}
    for deployment in deployments:
        stats = window_stats(instance.db, workspace, name, deployment, since)
        found[deployment] = {
            "requests": stats.requests, "errors": stats.errors, "rejected": stats.rejected,
            "p99_ms": stats.p99_ms,
        }  # fmt: skip
    return found


def _check(instance: Instance, workspace: str, name: str) -> dict[str, Any] | None:
    try:
        row = latest_check(instance, name, workspace)
    except InsufficientEvidence:
        return None
    return {k: (v.isoformat() if hasattr(v, "isoformat") else v) for k, v in dict(row).items()}


def _markdown(evidence: dict[str, Any]) -> str:
    lines = [
        f"# Endpoint {evidence['endpoint']} ({evidence['workspace']}) retired",
        "",
        f"- by {markdown.text(evidence['retired_by'])} at {evidence['retired_at']}: "
        f"{markdown.text(evidence['reason'])}",
        f"- created {evidence['created_at']}; keys: {', '.join(evidence['keys']) or 'none'}",
        "",
        f"| deployment | model | version | commit | traffic | requests ({WINDOW_HOURS} h) | errors | p99 |",
        "|---|---|---:|---|---:|---:|---:|---:|",
    ]
    for d in evidence["deployments"]:
        seen = evidence["traffic"].get(d["name"], {})
        p99 = seen.get("p99_ms")
        lines.append(
            f"| {d['name']} | {d['model']} | {d['version']} | `{d['git_commit'][:7]}` | {d['traffic']}% | "
            f"{seen.get('requests', 0)} | {seen.get('errors', 0)} | {'-' if p99 is None else f'{p99:.1f}'} |"
        )
    check = evidence["last_check"]
    checked = f"{check['at']} ({check['outcome']})" if check else "none"
    lines += ["", f"Last monitoring check: {checked}"]
    lines += ["", f"Releases: {len(evidence['releases'])}"]
    return "\n".join(lines) + "\n"


def retire_endpoint(instance: Instance, name: str, workspace: str | None, reason: str) -> Retired:
    """Take the endpoint's final report, archive it in the shared registry, then remove its deployments,
    keys and itself, with one audit event naming the report."""
    if not reason.strip():
        raise UsageError("say why with --reason: the audit log and the archived report keep it")
    info = service.get_endpoint(instance, name, workspace)
    where = info.workspace
    if where == approvals.PROD:  # where releases need approvals, so does the end of prod's endpoint
        approvals.require(instance, approvals.retirement(instance, name))
    evidence = {
        "endpoint": name,
        "workspace": where,
        "retired_by": instance.actor,
        "retired_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "reason": reason,
        "created_at": info.created_at.isoformat() if info.created_at else None,
        "deployments": [
            {
                "name": d.name,
                "model": d.model,
                "version": d.version,
                "git_commit": d.git_commit,
                "traffic": d.traffic,
            }
            for d in info.deployments
        ],
        "traffic": _traffic(instance, where, name, [d.name for d in info.deployments]),
        "releases": [r.to_dict() for r in release_history(instance, name, where)],
        "last_check": _check(instance, where, name),
        "keys": [key.slot for key in service.key_listing(instance, name, where)],
    }
    body = json.dumps(evidence, indent=1, sort_keys=True, default=str)
    digest = "sha256:" + hashlib.sha256(body.encode()).hexdigest()
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    uri = instance.store(SHARED).write_artifacts(
        f"retired/{where}/{name}/{stamp}", {"evidence.json": body, "evidence.md": _markdown(evidence)}
    )
    service.delete_endpoint(
        instance, name, where, force=True,
        event=EndpointRetired(
            actor=instance.actor, workspace=where, target=name, reason=reason,
            details={"evidence_uri": uri, "evidence_digest": digest,
                     "deployments": [d.name for d in info.deployments]},
        ),
    )  # fmt: skip
    return Retired(name, where, uri, digest, evidence)
