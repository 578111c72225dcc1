"""Changing an instance's tier: provision what the new tier adds, refuse to drop what still serves."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from typing import Any

from loopline import audit
from loopline.config import CONFIG_FILE, load_config
from loopline.domain import TIER_WORKSPACES, Tier
from loopline.endpoints import service
from loopline.errors import ConfigError, Refused
from loopline.events import TierChanged
from loopline.instance import Instance
from loopline.progress import Reporter
from loopline.provision import provision

__all__ = ["TierChange", "set_tier"]

_TIER_LINE = re.compile(r"^tier:[ \t]*[A-Za-z]+[ \t]*(#.*)?$", re.M)


@dataclass(frozen=True)
class TierChange:
    """What changing the tier did."""

    before: Tier
    after: Tier
    added: tuple[str, ...]
    dropped: tuple[str, ...]
    created: tuple[str, ...]

    @property
    def changed(self) -> bool:
        """False when the instance was already in that tier."""
        return self.before != self.after

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready mapping."""
        return {
            "before": self.before.value,
            "after": self.after.value,
            "changed": self.changed,
            "added": list(self.added),
            "dropped": list(self.dropped),
            "created": list(self.created),
        }


def _check_idle(instance: Instance, dropped: tuple[str, ...]) -> None:
    for workspace in dropped:
        for endpoint in service.list_endpoints(instance, workspace):
            busy = [f"{d.name} {d.traffic}%" for d in endpoint.deployments if d.traffic]
            if busy:
                raise Refused(
                    f"workspace {workspace} still serves traffic on endpoint '{endpoint.name}' "
                    f"({', '.join(busy)}); delete it first "
                    f"(loopline endpoint delete {endpoint.name} --force), then change the tier"
                )


def set_tier(instance: Instance, tier: Tier, reporter: Reporter | None = None) -> TierChange:
    """Move the instance to ``tier``; the workflow files stay as they are."""
    before = instance.settings.tier
    added = tuple(w for w in TIER_WORKSPACES[tier] if w not in TIER_WORKSPACES[before])
    dropped = tuple(w for w in TIER_WORKSPACES[before] if w not in TIER_WORKSPACES[tier])
    if tier == before:
        return TierChange(before, tier, (), (), ())
    if os.environ.get("LOOPLINE_TIER"):
        raise ConfigError(
            "LOOPLINE_TIER is set in the environment and wins over loopline.yaml; change it there"
        )
    instance.db.require_current(instance.root)
    _check_idle(instance, dropped)
    path = instance.root / CONFIG_FILE
    text = path.read_text(encoding="utf-8")
    if len(_TIER_LINE.findall(text)) != 1:
        raise ConfigError(f"{CONFIG_FILE} has no single top-level 'tier:' line to change; set it by hand")
    changed = _TIER_LINE.sub(
        lambda m: f"tier: {tier.value}" + (f"  {m.group(1)}" if m.group(1) else ""), text
    )
    path.write_text(changed, encoding="utf-8")
    moved = Instance(load_config(instance.root))
    result = provision(moved, reporter)
    audit.record(
        moved.db,
        TierChanged(
            actor=moved.actor,
            source=before.value,
            target=tier.value,
            details={"added": list(added), "dropped": list(dropped)},
        ),
    )
    return TierChange(before, tier, added, dropped, result.created)
