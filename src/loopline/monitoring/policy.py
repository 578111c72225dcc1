"""`loopline policy evaluate`: a versioned policy turns the latest monitoring signals into a decision.

```yaml
version: 1
rules:                         # the first rule whose conditions all hold decides
  - name: data drift
    when: {max_psi: {above: 0.25}}
    action: rollback
  - name: performance
    when: {performance_drop: {above: 0.05}}
    action: retrain
default: no-change
```

Conditions compare a signal with ``above``, ``below``, ``at_least`` or ``at_most``; a signal the check
did not compute never matches. The decision's ID is a hash of the policy and the evidence, so the same
evidence under the same policy always gives the same ID.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import select

from loopline import audit
from loopline.errors import ConfigError, InsufficientEvidence
from loopline.events import PolicyDecided
from loopline.gates import parse_yaml, read_text
from loopline.instance import Instance
from loopline.state.schema import monitor_checks

__all__ = ["ACTIONS", "Decision", "advice", "evaluate_policy", "load_policy", "record"]

ACTIONS = ("no-change", "rollback", "retrain", "data-refresh", "alert")
OPERATORS = {
    "above": lambda a, b: a > b,
    "below": lambda a, b: a < b,
    "at_least": lambda a, b: a >= b,
    "at_most": lambda a, b: a <= b,
}


@dataclass(frozen=True)
class Policy:
    """A parsed policy file."""

    path: str
    version: int
    rules: list[dict[str, Any]]
    default: str
    digest: str


@dataclass
class Decision:
    """What the policy decided, on what evidence, and what was done."""

    decision_id: str
    action: str
    rule: str | None
    endpoint: str
    check_id: int
    policy: dict[str, Any]
    evidence: dict[str, Any]
    acted: bool = False
    outcome: str | None = None
    matched: list[str] = field(default_factory=list)
    workspace: str = "prod"

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready mapping."""
        return dict(self.__dict__)


def load_policy(path: Path) -> Policy:
    """Read and check a policy file."""
    text = read_text(path, "write one (see docs/monitoring.md) or name another", what="policy file")
    data = parse_yaml(text, path.name)
    if not isinstance(data, dict) or not isinstance(data.get("rules"), list) or "version" not in data:
        raise ConfigError(f"{path.name}: a policy has 'version' and a list of 'rules'")
    for index, rule in enumerate(data["rules"]):
        where = f"{path.name}: rules[{index}]"
        if (
            not isinstance(rule, dict)
            or rule.get("action") not in ACTIONS
            or not isinstance(rule.get("when"), dict)
        ):
            raise ConfigError(
                f"{where} needs 'when' (signal conditions) and an action among {', '.join(ACTIONS)}"
            )
        for signal, condition in rule["when"].items():
            if not isinstance(condition, dict) or not condition or set(condition) - set(OPERATORS):
                raise ConfigError(f"{where}: '{signal}' needs one of {', '.join(OPERATORS)} with a number")
            if not all(isinstance(v, int | float) and not isinstance(v, bool) for v in condition.values()):
                raise ConfigError(f"{where}: the thresholds of '{signal}' must be numbers")
            if any(v != v for v in condition.values()):  # NaN: a condition no signal ever meets
                raise ConfigError(
                    f"{where}: a threshold of '{signal}' is .nan, which no signal meets; give a number"
                )
    default = data.get("default", "no-change")
    if default not in ACTIONS:
        raise ConfigError(f"{path.name}: default '{default}' is not among {', '.join(ACTIONS)}")
    return Policy(
        str(path),
        int(data["version"]),
        data["rules"],
        default,
        "sha256:" + hashlib.sha256(text.encode()).hexdigest(),
    )


def _matches(rule: dict[str, Any], signals: dict[str, Any]) -> bool:
    for signal, condition in rule["when"].items():
        value = signals.get(signal)
        if not isinstance(value, int | float) or isinstance(value, bool):
            return False
        if not all(OPERATORS[op](value, threshold) for op, threshold in condition.items()):
            return False
    return True


def latest_check(instance: Instance, endpoint: str, workspace: str) -> Any:
    """The newest monitoring check of ``workspace``'s endpoint, or insufficient evidence."""
    with instance.db.read() as connection:
        row = (
            connection.execute(
                select(monitor_checks)
                .where(monitor_checks.c.endpoint == endpoint, monitor_checks.c.workspace == workspace)
                .order_by(monitor_checks.c.id.desc())
                .limit(1)
            )
            .mappings()
            .first()
        )
    if row is None:
        raise InsufficientEvidence(
            f"insufficient evidence: endpoint '{endpoint}' has no monitoring check yet; run "
            f"`loopline monitor check --endpoint {endpoint}` first"
        )
    if row["outcome"] != "ok":
        raise InsufficientEvidence(
            f"insufficient evidence: the latest check of '{endpoint}' had too few samples "
            f"({row['samples']}); no decision"
        )
    return row


def evaluate_policy(instance: Instance, policy_path: Path, endpoint: str, workspace: str) -> Decision:
    """Decide from the latest check of ``workspace``'s endpoint (what to do, not doing it: the loop above
    carries a decision out, then :func:`record` audits it)."""
    policy = load_policy(policy_path)
    check = latest_check(instance, endpoint, workspace)
    signals = dict(check["signals"])
    rule = next((r for r in policy.rules if _matches(r, signals)), None)
    action = rule["action"] if rule else policy.default
    evidence = {
        "check": check["id"],
        "deployment": check["deployment"],
        "version": check["version"],
        "git_commit": check["git_commit"],
        "signals": signals,
    }
    body = json.dumps({"policy": policy.digest, "evidence": evidence}, sort_keys=True, default=str)
    return Decision(
        decision_id=hashlib.sha256(body.encode()).hexdigest()[:16],
        action=action,
        rule=rule.get("name", f"rules[{policy.rules.index(rule)}]") if rule else None,
        endpoint=endpoint,
        workspace=workspace,
        check_id=int(check["id"]),
        policy={"path": policy.path, "version": policy.version, "digest": policy.digest},
        evidence=evidence,
        matched=[r.get("name", "") for r in policy.rules if _matches(r, signals)],
    )


def record(instance: Instance, decision: Decision) -> Decision:
    """Audit a decision, with what was done about it."""
    evidence = decision.evidence
    audit.record(
        instance.db,
        PolicyDecided(
            actor=instance.actor,
            workspace=decision.workspace,
            model=None,
            version=evidence["version"],
            git_commit=evidence["git_commit"],
            target=decision.endpoint,
            outcome=decision.action,
            reason=decision.rule,
            details={
                "decision_id": decision.decision_id,
                "check": decision.check_id,
                "acted": decision.acted,
                "policy": decision.policy,
                "outcome": decision.outcome,
            },
        ),
    )
    return decision


def advice(action: str) -> str:
    """What a person should do for a decision loopline does not carry out itself."""
    return {
        "retrain": "retrain: refresh the training data, then dispatch the inner-loop workflow "
        "(gh workflow run inner-loop.yml)",
        "data-refresh": "data-refresh: refresh the inbox data asset the model depends on",
        "alert": "alert: a person should look at the signals",
    }.get(action, "no change")
