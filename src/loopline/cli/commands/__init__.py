"""The command modules, each registering its commands on the app when imported, and which module holds
which top-level command: a command line imports only the module of its command (``loopline status``
starts without the batch, endpoint or team commands' imports), and help or a mistyped name all of them."""

from __future__ import annotations

import importlib
from typing import Any

__all__ = ["MODULES", "PANELS", "arrange", "load"]

MODULES: dict[str, str] = {
    "init": "project",
    "up": "project",
    "status": "project",
    "history": "project",
    "inner-loop": "inner_loop",
    "compare": "inner_loop",
    "sweep": "inner_loop",
    "outer-loop": "outer_loop",
    "rollback": "outer_loop",
    "approvals": "outer_loop",
    "approve": "outer_loop",
    "withdraw": "outer_loop",
    "reinstate": "outer_loop",
    "withdrawals": "outer_loop",
    "endpoint": "endpoints",
    "deployment": "endpoints",
    "serve": "endpoints",
    "data": "batch",
    "batch-endpoint": "batch",
    "batch-deployment": "batch",
    "batch": "batch",
    "monitor": "batch",
    "policy": "batch",
    "workflow": "workflows",
    "tier": "workflows",
    "report": "report",
    "notifications": "notify",
    "server": "team",
    "ui": "team",
    "user": "team",
    "token": "team",
    "locks": "team",
    "unlock": "team",
    "audit": "admin",
    "k8s": "admin",
    "migrate-state": "admin",
    "migrate-tracking": "admin",
    "migrate-models": "admin",
    "migrate-datastores": "admin",
    "demo": "demo",
}
"""Each top-level command (or group) by the module under ``loopline.cli.commands`` that registers it."""


PANELS: dict[str, tuple[str, ...]] = {
    "Start": ("init", "up", "status", "history", "ui", "demo"),
    "Train and release": (
        "inner-loop", "compare", "sweep", "outer-loop", "rollback", "approve", "approvals", "withdraw",
        "reinstate", "withdrawals", "report",
    ),
    "Serve and score": (
        "endpoint", "deployment", "serve", "data", "batch-endpoint", "batch-deployment", "batch", "monitor",
        "policy",
    ),
    "Workflows": ("workflow", "tier"),
    "Team and administration": (
        "server", "user", "token", "notifications", "locks", "unlock", "audit", "k8s", "migrate-state",
        "migrate-tracking", "migrate-models", "migrate-datastores",
    ),
}  # fmt: skip
"""How ``loopline --help`` groups the top-level commands, in the order a project meets them."""


def arrange(root: Any) -> None:
    """Put ``root``'s commands in their panels, in the order of ``PANELS`` (the lifecycle's, not the
    order the modules happened to register them)."""
    rank = {name: index for index, name in enumerate(n for names in PANELS.values() for n in names)}
    for panel, names in PANELS.items():
        for name in names:
            if name in root.commands:
                root.commands[name].rich_help_panel = panel
    root.commands = dict(sorted(root.commands.items(), key=lambda item: rank.get(item[0], len(rank))))


def load(command: str | None = None) -> None:
    """Register ``command``'s module on the app, or every module where ``command`` is None or unknown."""
    module = MODULES.get(command or "")
    for name in (module,) if module else sorted(set(MODULES.values())):
        importlib.import_module(f"loopline.cli.commands.{name}")
