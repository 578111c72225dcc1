"""Carrying out a monitoring policy's decision: a rollback is done here; other actions are advice."""

from __future__ import annotations

from loopline.instance import Instance
from loopline.loops.rollback import run_rollback
from loopline.monitoring.policy import Decision, advice, record

__all__ = ["carry_out"]


def carry_out(instance: Instance, decision: Decision) -> Decision:
    """Do what ``decision`` says where loopline can (roll back), say what to do otherwise; audit it."""
    if decision.action == "rollback":
        result = run_rollback(
            instance,
            previous=True,
            endpoint=decision.endpoint,
            workspace=decision.workspace,
            reason=f"policy decision {decision.decision_id}: {decision.rule}",
            away_from=decision.evidence["git_commit"],
        )
        decision.acted, decision.outcome = result.changed, result.message
    else:
        decision.acted, decision.outcome = False, advice(decision.action)
    return record(instance, decision)
