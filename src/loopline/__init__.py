"""loopline: models from a commit to production and back, on one laptop or a team's infrastructure.

The SDK functions (``loopline.init``, ``up``, ``status``, ``inner_loop``, ``history``, ``create_endpoint``,
``serve``, ...) live in ``loopline.api`` and are imported on first use, so ``import loopline`` stays fast.
"""

# ruff: noqa: F405 (the names below come from loopline.api, imported on first use)
from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

__all__ = [
    "__version__",
    "audit_checkpoint",
    "audit_verify",
    "batch_invoke",
    "batch_job",
    "batch_jobs",
    "batch_promote",
    "batch_resume",
    "batch_rollback",
    "connect",
    "create_batch_deployment",
    "create_batch_endpoint",
    "create_deployment",
    "create_endpoint",
    "delete_deployment",
    "delete_endpoint",
    "demo",
    "endpoint_keys",
    "endpoint_metrics",
    "get_batch_endpoint",
    "get_data",
    "get_endpoint",
    "history",
    "import_inner_loop",
    "init",
    "init_existing",
    "inner_loop",
    "invoke_endpoint",
    "k8s_render",
    "latest_check",
    "list_batch_endpoints",
    "list_data",
    "list_endpoints",
    "list_locks",
    "migrate_state",
    "monitor_check",
    "outer_loop_prod",
    "outer_loop_test",
    "policy_evaluate",
    "register_data",
    "releases",
    "rollback",
    "serve",
    "server",
    "set_tier",
    "set_traffic",
    "status",
    "token_create",
    "token_list",
    "token_revoke",
    "ui",
    "unlock",
    "up",
    "update_endpoint",
    "use_workspace",
    "user_add",
    "user_grant",
    "user_list",
    "validation_report",
    "workflow_enabled",
    "workflow_list",
    "workflow_run",
]

if TYPE_CHECKING:  # what a type checker sees; at run time __getattr__ below imports on first use
    from loopline.api import *  # noqa: F403
    from loopline.launch import demo, serve, server, ui


_LAUNCHERS = frozenset({"demo", "serve", "server", "ui"})


def __getattr__(name: str) -> Any:
    if name == "connect":
        from loopline.remote.client import connect

        return connect
    if name in _LAUNCHERS:
        from loopline import launch

        return getattr(launch, name)
    if name in __all__:
        # With LOOPLINE_URL set, an operation the control plane serves runs there (as from the CLI).
        from loopline.remote.client import from_environment

        return from_environment(name)
    raise AttributeError(f"module 'loopline' has no attribute '{name}'")
