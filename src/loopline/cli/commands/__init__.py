"""The command modules, each registering its commands on the app when imported, and which module holds
which top-level command: a command line imports only the module of its command (``loopline status``
starts without the batch, endpoint or team commands' imports), and help or a mistyped name all of them."""

from __future__ import annotations

import importlib

__all__ = ["MODULES", "load"]

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


def load(command: str | None = None) -> None:
    """Register ``command``'s module on the app, or every module where ``command`` is None or unknown."""
    module = MODULES.get(command or "")
    for name in (module,) if module else sorted(set(MODULES.values())):
        importlib.import_module(f"loopline.cli.commands.{name}")
