"""What each dashboard page shows, computed from the SDK's answers (no templates, no HTTP here)."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from loopline import api
from loopline.domain import SHARED, EndpointInfo, ModelVersionInfo
from loopline.operations import call
from loopline.withdrawn import in_force

__all__ = [
    "BATCH_JOBS",
    "BatchView",
    "Behind",
    "Node",
    "Topology",
    "ago",
    "batch_page",
    "commit_page",
    "endpoints_page",
    "experiments_page",
    "models_page",
    "topology",
]

MOVES = {"shared", "promoted", "released", "rolled-back"}
BATCH_JOBS = 20  # the newest jobs the batch page shows of each batch endpoint


def ago(when: datetime | str | None) -> str:
    """``5 min ago`` style age of a time."""
    if when is None:
        return ""
    moment = datetime.fromisoformat(when) if isinstance(when, str) else when
    seconds = int((datetime.now(UTC) - moment.astimezone(UTC)).total_seconds())
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if seconds >= size:
            return f"{seconds // size} {unit} ago"
    return "just now"


@dataclass(frozen=True)
class Node:
    """One workspace (or the shared registry) in the topology, with what it holds now."""

    name: str
    version: int | None
    commit: str | None
    detail: str
    arrived: dict[str, Any] | None = None  # the last move into this workspace
    batch: tuple[tuple[str, int, str], ...] = ()  # (endpoint, version, commit) its batch endpoints score with


@dataclass(frozen=True)
class Topology:
    """The tier drawn as a chain of workspaces."""

    tier: str
    model: str
    nodes: list[Node]
    repository_url: str | None


def _latest(models: tuple[ModelVersionInfo, ...], workspace: str, name: str) -> ModelVersionInfo | None:
    found = [m for m in models if m.workspace == workspace and m.name == name]
    return max(found, key=lambda m: m.version) if found else None


def _live(endpoints: list[EndpointInfo], workspace: str) -> tuple[EndpointInfo, Any] | None:
    for endpoint in endpoints:
        if endpoint.workspace == workspace and (live := endpoint.main_deployment()) is not None:
            return endpoint, live
    return None


def topology(project: Path) -> Topology:
    """dev -> shared -> test -> prod, each with the commit and version it holds, and the last moves."""
    status = call(api.status, project)
    name = status.model
    endpoints = call(api.list_endpoints, project=project)
    moves = sorted(
        (r for kind in MOVES for r in call(api.history, project, kind=kind, limit=20)), key=lambda r: r.seq
    )
    order = ["dev", SHARED, *[w for w in ("test", "prod") if w in status.workspaces]]
    nodes = []
    for workspace in order:
        live = _live(endpoints, workspace) if workspace != SHARED else None
        latest = _latest(status.models, workspace, name)
        if workspace == "dev" and latest is not None:  # what the inner loop made last; an endpoint aside
            serving = f"; v{live[1].version} serving on {live[0].name}" if live is not None else ""
            node = Node(
                workspace,
                latest.version,
                latest.git_commit,
                f"newest of {_count(status, workspace)}{serving}",
            )
        elif live is not None:
            endpoint, deployment = live
            node = Node(
                workspace,
                deployment.version,
                deployment.git_commit,
                f"serving {deployment.name} on {endpoint.name} ({deployment.traffic}%)",
            )
        elif latest is not None:
            node = Node(
                workspace, latest.version, latest.git_commit, f"newest of {_count(status, workspace)}"
            )
        else:
            node = Node(workspace, None, None, "nothing yet")
        arrived = next((r for r in reversed(moves) if r.event.workspace == workspace), None)
        if arrived is not None:
            node = replace(
                node,
                arrived={
                    "kind": arrived.kind,
                    "commit": arrived.event.git_commit,
                    "actor": arrived.event.actor,
                    "ago": ago(arrived.event.at),
                    "at": arrived.event.at.isoformat(),
                },
            )
        nodes.append(replace(node, batch=_batch_defaults(status, workspace)))
    return Topology(status.tier.value, name, nodes, status.repository_url)


def _batch_defaults(status: api.Status, workspace: str) -> tuple[tuple[str, int, str], ...]:
    """What each batch endpoint of ``workspace`` scores with by default: (endpoint, version, commit)."""
    return tuple(
        (endpoint["name"], deployment["version"], deployment["git_commit"])
        for endpoint in status.batch_endpoints
        if endpoint["workspace"] == workspace
        for deployment in endpoint["deployments"]
        if deployment["name"] == endpoint["default"]
    )


def _count(status: api.Status, workspace: str) -> str:
    count = sum(1 for m in status.models if m.workspace == workspace)
    return f"{count} version{'s' if count != 1 else ''}"


@dataclass
class ModelRow:
    """One model version with everything the models table shows."""

    version: ModelVersionInfo
    metrics: dict[str, float] = field(default_factory=dict)
    gate: str | None = None
    report_uri: str | None = None
    deployed: list[str] = field(default_factory=list)


PAGE_ROWS = 50  # model versions on one page of the models table


@dataclass
class ModelsPage:
    """One page of the models table: its rows, newest first, and where it lies among the versions."""

    rows: list[ModelRow]
    names: list[str]  # every model name, for the filter
    page: int  # from 1
    pages: int
    total: int  # versions matching the filters
    repository: str | None  # the repository's web address, for links to commits

    @property
    def first(self) -> int:
        """The position of the page's first row among the matching versions, from 1."""
        return (self.page - 1) * PAGE_ROWS + 1


def models_page(project: Path, model: str | None, commit: str | None, page: int = 1) -> ModelsPage:
    """A page of the model versions across workspaces (filtered), newest first, and the model names."""
    status = call(api.status, project)
    matching = [
        version
        for version in sorted(
            status.models, key=lambda m: m.created_at or datetime.min.replace(tzinfo=UTC), reverse=True
        )
        if (not model or version.name == model)
        and (not commit or version.git_commit.startswith(commit.lower()))
    ]
    pages = max(1, -(-len(matching) // PAGE_ROWS))
    page = min(max(page, 1), pages)
    start = (page - 1) * PAGE_ROWS
    shown = matching[start : start + PAGE_ROWS]
    endpoints = call(api.list_endpoints, project=project)
    gates = {
        (r.event.workspace, r.event.git_commit): r.event
        for r in call(api.history, project, kind="gate-evaluated")
    }
    rows = [_model_row(version, gates, endpoints) for version in shown]
    names = sorted({m.name for m in status.models})
    return ModelsPage(rows, names, page, pages, len(matching), status.repository_url)


def _model_row(
    version: ModelVersionInfo, gates: dict[tuple[str | None, str | None], Any], endpoints: list[EndpointInfo]
) -> ModelRow:
    row = ModelRow(version)
    dev_gate = gates.get(("dev", version.git_commit))
    if dev_gate is not None:
        row.gate = dev_gate.outcome
        checks = dev_gate.details.get("checks", [])
        row.metrics = {c["metric"]: c["value"] for c in checks if c.get("value") is not None}
    test_gate = gates.get(("test", version.git_commit))
    if test_gate is not None:
        row.report_uri = test_gate.details.get("report_uri")
        if version.workspace in ("test", "prod"):
            row.metrics = {
                k: v for k, v in test_gate.details.get("metrics", {}).items() if isinstance(v, float | int)
            }
    for endpoint in endpoints:
        for deployment in endpoint.deployments:
            if (endpoint.workspace, deployment.model, deployment.version) == (
                version.workspace,
                version.name,
                version.version,
            ):
                row.deployed.append(f"{endpoint.name}/{deployment.name} {deployment.traffic}%")
    return row


@dataclass(frozen=True)
class Decided:
    """The newest policy decision about an endpoint, and what came of it."""

    event: Any  # events.PolicyDecided: its outcome is the action, its reason the rule
    what: str


@dataclass
class EndpointView:
    """One endpoint: deployments, traffic, where it can be rolled back to, and its monitoring."""

    info: EndpointInfo
    targets: list[dict[str, Any]]
    check: dict[str, Any] | None
    drift: list[tuple[str, float]]
    signals: list[tuple[str, str]] = field(default_factory=list)  # the check's other signals, shown
    decision: Decided | None = None


_SIGNALS = (
    ("prediction drift (PSI)", "prediction_psi", "{:.3f}"),
    ("missing values", "missing_rate", "{:.1%}"),
    ("error rate", "error_rate", "{:.1%}"),
    ("p99", "p99_ms", "{:.0f} ms"),
    ("performance drop", "performance_drop", "{:.3f}"),
)


def _signals(check: dict[str, Any] | None) -> list[tuple[str, str]]:
    """A check's signals beside the features' drift, as shown: those it measured."""
    measured = (check or {}).get("signals", {}) or {}
    return [
        (label, form.format(float(measured[key])))
        for label, key, form in _SIGNALS
        if isinstance(measured.get(key), int | float)
    ]


def _decision(project: Path, info: EndpointInfo) -> Decided | None:
    """The newest policy decision about the endpoint (among its workspace's latest 50), if any."""
    records = call(api.history, project, kind="policy-decided", workspace=info.workspace, limit=50)
    event = next((r.event for r in reversed(records) if r.event.target == info.name), None)
    if event is None:
        return None
    what = event.details.get("outcome") or ""
    if not what and event.outcome == "rollback":
        what = "not carried out (loopline policy evaluate --act carries a rollback out)"
    return Decided(event, what)


def endpoints_page(project: Path) -> list[EndpointView]:
    """Every online endpoint with its rollback targets and latest monitoring check."""
    views = []
    withdrawn = _withdrawn_commits(project)  # a rollback would refuse them: not offered
    for listed in call(api.list_endpoints, project=project):
        info = call(api.get_endpoint, listed.name, workspace=listed.workspace, serving=True, project=project)
        live = {d.git_commit for d in info.deployments if d.traffic == 100} | withdrawn
        targets: dict[str, dict[str, Any]] = {}
        for record in reversed(call(api.releases, info.name, workspace=info.workspace, project=project)):
            if record.git_commit not in live and record.git_commit not in targets:
                targets[record.git_commit] = {
                    "commit": record.git_commit,
                    "version": record.version,
                    "label": f"{record.git_commit[:7]} (v{record.version}, {record.kind} {ago(record.at)})",
                }
        for deployment in info.deployments:
            if deployment.git_commit not in live and deployment.git_commit not in targets:
                targets[deployment.git_commit] = {
                    "commit": deployment.git_commit,
                    "version": deployment.version,
                    "label": f"{deployment.git_commit[:7]} (v{deployment.version}, as {deployment.name})",
                }
        check = call(api.latest_check, info.name, workspace=info.workspace, project=project)
        psi = (check or {}).get("signals", {}).get("psi", {}) or {}
        drift = sorted(((k, float(v)) for k, v in psi.items()), key=lambda kv: kv[1], reverse=True)
        views.append(
            EndpointView(
                info, list(targets.values()), check, drift, _signals(check), _decision(project, info)
            )
        )
    return views


@dataclass(frozen=True)
class Behind:
    """An online endpoint of a batch endpoint's workspace whose live deployment serves the model of the
    batch endpoint's default from another commit: the batch endpoint's predictions lag what it serves."""

    endpoint: str
    version: int
    git_commit: str
    deployment: str | None  # a deployment of the batch endpoint scoring with that commit, if it has one


@dataclass(frozen=True)
class BatchView:
    """One batch endpoint: its deployments, which one scores by default, its newest jobs with how long
    each ran (by job id; none while it runs), and the online endpoints whose model it lags."""

    info: Any  # batch.service.BatchEndpoint
    jobs: list[Any]  # batch.jobs.BatchJob, newest first
    took: dict[str, str]
    older: bool  # it has older jobs than those shown
    behind: list[Behind] = field(default_factory=list)


def _serving(endpoints: list[EndpointInfo]) -> dict[tuple[str, str], list[tuple[str, Any]]]:
    """(workspace, model): each online endpoint serving it and its deployment with the most live traffic."""
    found: dict[tuple[str, str], list[tuple[str, Any]]] = {}
    for endpoint in endpoints:
        if (live := endpoint.main_deployment()) is not None:
            found.setdefault((endpoint.workspace, live.model), []).append((endpoint.name, live))
    return found


def _behind(info: Any, live: dict[tuple[str, str], list[tuple[str, Any]]]) -> list[Behind]:
    default = info.deployment(None)
    if default is None:
        return []
    return [
        Behind(
            name,
            served.version,
            served.git_commit,
            next((d.name for d in info.deployments if d.git_commit == served.git_commit), None),
        )
        for name, served in live.get((info.workspace, default.model), [])
        if served.git_commit != default.git_commit
    ]


def batch_page(project: Path) -> list[BatchView]:
    """Every batch endpoint the caller may read, with its newest ``BATCH_JOBS`` jobs and the online
    endpoints (of those the caller may read) that serve its default's model from another commit."""
    live = _serving(call(api.list_endpoints, project=project))
    views = []
    for info in call(api.list_batch_endpoints, project=project):
        jobs = call(
            api.batch_jobs, info.name, workspace=info.workspace, limit=BATCH_JOBS + 1, project=project
        )
        shown = jobs[:BATCH_JOBS]
        took = {job.id: duration(job.started_at, job.finished_at) for job in shown if job.finished_at}
        views.append(BatchView(info, shown, took, len(jobs) > BATCH_JOBS, _behind(info, live)))
    return views


def duration(started: str, finished: str) -> str:
    """``1.6 s``, ``2 min 5 s`` or ``1 h 3 min``: the time between two ISO times."""
    seconds = (datetime.fromisoformat(finished) - datetime.fromisoformat(started)).total_seconds()
    if seconds < 60:
        return f"{max(seconds, 0):.1f} s"
    whole = int(seconds)
    if whole < 3600:
        return f"{whole // 60} min {whole % 60} s"
    return f"{whole // 3600} h {whole % 3600 // 60} min"


def _withdrawn_commits(project: Path) -> set[str]:
    """The commits whose versions are withdrawn now (the newest decision on their files stands)."""
    return {d.git_commit for d in in_force(call(api.withdrawals, project=project))}


def commit_page(project: Path, commit: str) -> tuple[list[ModelVersionInfo], list[Any]]:
    """One commit's model versions and its story in the audit log."""
    versions = [m for m in call(api.status, project).models if m.git_commit.startswith(commit.lower())]
    return versions, call(api.history, project, commit=commit)


def experiments_page(root: Path) -> dict[str, Any]:
    """The experiment report of dev's newest runs (its charts inline) and the newest sweeps."""
    import base64
    import tempfile

    from loopline.errors import NotFound

    with tempfile.TemporaryDirectory() as scratch:
        try:
            report = call(api.report_experiment, last=20, out=scratch, project=root)
        except NotFound:
            return {"report": None, "charts": {}, "sweeps": []}
        charts = {
            Path(chart).stem: "data:image/svg+xml;base64,"
            + base64.b64encode(Path(chart).read_bytes()).decode()
            for chart in report.charts
        }
    return {"report": report, "charts": charts, "sweeps": call(api.sweeps, limit=5, project=root)}
