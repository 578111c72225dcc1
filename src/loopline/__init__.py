"""loopline: models from a commit to production and back, on one laptop or a team's infrastructure.

The SDK functions (``loopline.init``, ``up``, ``status``, ``inner_loop``, ``history``, ``create_endpoint``,
``serve``, ...) live in ``loopline.api`` and are imported on first use, so ``import loopline`` stays fast.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

_OWN = ("__version__", "connect", "demo", "serve", "server", "ui")
"""What this module defines itself; every other public name is an operation of ``loopline.api``."""

if TYPE_CHECKING:  # what a type checker sees; at run time __getattr__ below imports on first use
    from loopline.api import *  # noqa: F403
    from loopline.launch import demo as demo
    from loopline.launch import serve as serve
    from loopline.launch import server as server
    from loopline.launch import ui as ui


_LAUNCHERS = frozenset({"demo", "serve", "server", "ui"})


# The SDK functions of ``loopline.api`` (a test keeps this equal to its ``__all__``). Named here so that
# asking this module for any other name imports nothing: libraries that look a name up in every loaded
# module (pickle's and skops' ``whichmodule``, run while MLflow infers a model's requirements in a process
# where MLflow's plugins loaded this package) would otherwise load the whole SDK, and every model logged
# beside loopline would list loopline, SQLAlchemy and the rest among its requirements.
_OPERATIONS = frozenset(
    {
        "approval_requests",
        "approvals",
        "approve",
        "audit_checkpoint",
        "audit_verify",
        "batch_invoke",
        "batch_job",
        "batch_jobs",
        "batch_promote",
        "batch_resume",
        "batch_rollback",
        "compare",
        "create_batch_deployment",
        "create_batch_endpoint",
        "create_deployment",
        "create_endpoint",
        "delete_deployment",
        "delete_endpoint",
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
        "notifications_deliver",
        "notifications_failed",
        "notifications_retry",
        "outer_loop_prod",
        "outer_loop_test",
        "policy_evaluate",
        "register_data",
        "releases",
        "report_experiment",
        "retire_endpoint",
        "rollback",
        "set_tier",
        "set_traffic",
        "status",
        "sweep",
        "sweeps",
        "token_create",
        "token_list",
        "token_revoke",
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
    }
)


def __getattr__(name: str) -> Any:
    if name == "__all__":
        return [*_OWN, *sorted(_OPERATIONS)]
    if name == "connect":
        from loopline.remote.client import connect

        return connect
    if name in _LAUNCHERS:
        from loopline import launch

        return getattr(launch, name)
    if name in _OPERATIONS:
        # With LOOPLINE_URL set, an operation the control plane serves runs there (as from the CLI).
        from loopline.remote.client import from_environment

        return from_environment(name)
    raise AttributeError(f"module 'loopline' has no attribute '{name}'")
