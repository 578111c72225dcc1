"""The SDK: every CLI command is one call of a function here, and each returns a value.

The functions run here, in this process; ``loopline.connect(url, token)`` runs the same ones on a control
plane, and the operation table (``operations.py``) says which may, under which name and rule.

One module per area (``project``, ``endpoints``, ``releases``, ``data``, ``monitoring``, ``notifying``,
``admin``), the
result types the facade defines in ``results``, and what they share in ``_common``. Each imports its
services on first use, so a quick command such as ``status`` loads only what it needs; the names its
annotations need only for type checkers sit in its ``if TYPE_CHECKING:`` block, which the wire codec
(``remote/codec.py``) reads when it builds an operation's signature.

import loopline
loopline.up(project="my-project")
result = loopline.inner_loop(project="my-project")
print(result.shared.version, result.git_commit)
"""

from __future__ import annotations

from loopline.api.admin import (
    audit_checkpoint,
    audit_verify,
    k8s_render,
    list_locks,
    migrate_state,
    migrate_tracking,
    token_create,
    token_list,
    token_revoke,
    unlock,
    user_add,
    user_grant,
    user_list,
)
from loopline.api.data import (
    batch_invoke,
    batch_job,
    batch_jobs,
    batch_promote,
    batch_resume,
    batch_rollback,
    create_batch_deployment,
    create_batch_endpoint,
    get_batch_endpoint,
    get_data,
    list_batch_endpoints,
    list_data,
    register_data,
    stage_data,
    upload_data,
)
from loopline.api.endpoints import (
    create_deployment,
    create_endpoint,
    delete_deployment,
    delete_endpoint,
    endpoint_keys,
    get_endpoint,
    invoke_endpoint,
    list_endpoints,
    retire_endpoint,
    set_traffic,
    update_endpoint,
)
from loopline.api.monitoring import endpoint_metrics, latest_check, monitor_check, policy_evaluate
from loopline.api.notifying import notifications_deliver, notifications_failed, notifications_retry
from loopline.api.project import (
    compare,
    history,
    import_inner_loop,
    init,
    init_existing,
    inner_loop,
    report_experiment,
    set_tier,
    status,
    sweep,
    sweeps,
    up,
    use_workspace,
    workflow_enabled,
    workflow_list,
    workflow_run,
    workflow_update,
)
from loopline.api.releases import (
    approval_requests,
    approvals,
    approve,
    outer_loop_prod,
    outer_loop_test,
    releases,
    rollback,
    validation_report,
)
from loopline.api.results import (
    EndpointKeys,
    EndpointMetrics,
    NewEndpoint,
    Status,
    ValidationReport,
    WorkspaceInfo,
)

__all__ = [
    "EndpointKeys",
    "EndpointMetrics",
    "NewEndpoint",
    "Status",
    "ValidationReport",
    "WorkspaceInfo",
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
    "migrate_tracking",
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
    "stage_data",
    "status",
    "sweep",
    "sweeps",
    "token_create",
    "token_list",
    "token_revoke",
    "unlock",
    "up",
    "update_endpoint",
    "upload_data",
    "use_workspace",
    "user_add",
    "user_grant",
    "user_list",
    "validation_report",
    "workflow_enabled",
    "workflow_list",
    "workflow_run",
    "workflow_update",
]
