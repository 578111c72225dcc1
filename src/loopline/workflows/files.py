"""The workflow files: identical in every tier; each asks loopline whether its tier enables it."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from loopline.domain import WORKFLOW_TIERS, Tier
from loopline.errors import UsageError
from loopline.rendering import render_templates

__all__ = ["WORKFLOWS", "WorkflowSwitch", "is_enabled", "workflow_files", "write_workflows"]

WORKFLOWS = tuple(WORKFLOW_TIERS)
FOLDER = Path(".github") / "workflows"


def workflow_files() -> dict[str, bytes]:
    """Every workflow file by its path in a project."""
    return {str(FOLDER / name): content for name, content in render_templates("workflows", {}).items()}


def write_workflows(root: Path) -> list[str]:
    """Write the workflow files into a project; return their paths."""
    written = []
    for relative, content in workflow_files().items():
        target = root / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(content)
        written.append(relative)
    return sorted(written)


@dataclass(frozen=True)
class WorkflowSwitch:
    """Whether a workflow runs in a tier."""

    workflow: str
    tier: Tier
    enabled: bool

    @property
    def notice(self) -> str:
        """One line for the run's log."""
        if self.enabled:
            return f"{self.workflow} runs in the {self.tier.value} tier"
        tiers = ", ".join(sorted(t.value for t in WORKFLOW_TIERS[self.workflow]))
        return (
            f"{self.workflow} is off in the {self.tier.value} tier (it runs in: {tiers}); this run ends here"
        )

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready mapping."""
        return {
            "workflow": self.workflow,
            "tier": self.tier.value,
            "enabled": self.enabled,
            "notice": self.notice,
        }


def is_enabled(workflow: str, tier: Tier) -> WorkflowSwitch:
    """Whether ``workflow`` runs in ``tier``."""
    name = workflow.removesuffix(".yml")
    if name not in WORKFLOW_TIERS:
        raise UsageError(f"no workflow named '{workflow}'; the workflows are {', '.join(WORKFLOWS)}")
    return WorkflowSwitch(name, tier, tier in WORKFLOW_TIERS[name])
