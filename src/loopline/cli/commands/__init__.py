"""Every command module registers itself on the app when imported."""

from loopline.cli.commands import (
    admin,
    batch,
    demo,
    endpoints,
    inner_loop,
    notify,
    outer_loop,
    project,
    report,
    team,
    workflows,
)

__all__ = [
    "admin",
    "batch",
    "demo",
    "endpoints",
    "inner_loop",
    "notify",
    "outer_loop",
    "project",
    "report",
    "team",
    "workflows",
]
