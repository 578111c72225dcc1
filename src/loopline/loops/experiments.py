"""The experiment report: dev's recent runs, their metrics and commits, the trend between the newest
commit and the one before, and a chart per metric (``loopline report experiment``).

The report is Markdown with SVG charts drawn by matplotlib beside it. For GitHub (the step summary, a
comment on the pull request) the same report carries its charts as Mermaid ``xychart-beta`` blocks,
which GitHub draws itself, since a comment cannot show files of the runner.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from loopline import catalog, markdown
from loopline.errors import LooplineError, NotFound, Refused, UsageError, on_path
from loopline.gates import load_thresholds
from loopline.instance import Instance
from loopline.loops.candidates import MAX_RUNS, candidate_of
from loopline.loops.trained import SWEEP, SWEEP_PARENT, SWEEP_TRIAL
from loopline.net import http_request
from loopline.ranking import Candidate

__all__ = [
    "ExperimentReport",
    "ExperimentRuns",
    "SweepSummary",
    "comment_on_pull_request",
    "experiment_runs",
    "publish",
    "pull_request_number",
    "report_folder",
    "sweeps",
    "write_report",
]

DEV = "dev"
MAX_METRICS = 8
_CHARTED = 4


@dataclass
class ExperimentReport:
    """What ``loopline report experiment`` wrote and found."""

    markdown: str
    github_markdown: str
    folder: str
    charts: list[str]
    runs: list[dict[str, Any]]
    metrics: list[str]
    latest_commit: str | None
    previous_commit: str | None
    trend: list[dict[str, Any]] = field(default_factory=list)
    comment_url: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready mapping (without the GitHub variant of the Markdown)."""
        data = dict(self.__dict__)
        data.pop("github_markdown")
        return data


def _metrics(instance: Instance, runs: list[Candidate]) -> list[str]:
    """The gate's metrics first, then the others by name; at most eight."""
    found = sorted({name for run in runs for name in run.metrics})
    try:
        gated = [name for name in load_thresholds(instance.settings.gate_file).bounds if name in found]
    except LooplineError:  # a report does not need the gate file to be valid
        gated = []
    return [*gated, *[name for name in found if name not in gated]][:MAX_METRICS]


def _cell(value: float | None) -> str:
    return "-" if value is None else f"{value:.4g}"


def _per_commit(instance: Instance, runs: list[Candidate]) -> dict[str, Candidate]:
    """Each commit's run: the one its dev version was made from, else its newest run."""
    registered = {v.run_id for v in catalog.list_versions(instance.db, workspace=DEV)}
    chosen: dict[str, Candidate] = {}
    for run in runs:  # newest first: a commit keeps its place by its newest run
        current = chosen.get(run.git_commit)
        if run.git_commit and (
            current is None or (run.run_id in registered and current.run_id not in registered)
        ):
            chosen[run.git_commit] = run
    return chosen


def _trend(metrics: list[str], latest: Candidate | None, previous: Candidate | None) -> list[dict[str, Any]]:
    rows = []
    for name in metrics:
        now = latest.metrics.get(name) if latest else None
        before = previous.metrics.get(name) if previous else None
        change = now - before if now is not None and before is not None else None
        rows.append({"metric": name, "latest": now, "previous": before, "change": change})
    return rows


def _chart(folder: Path, metric: str, runs: list[Candidate]) -> str | None:
    """An SVG of ``metric`` over the runs, oldest first, one colour per commit."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    points = [(index, run) for index, run in enumerate(reversed(runs)) if metric in run.metrics]
    if not points:
        return None
    figure, axes = plt.subplots(figsize=(5.0, 2.4), dpi=100)
    try:
        commits = list(dict.fromkeys(run.git_commit[:7] or "?" for _, run in points))
        for commit in commits[-8:]:
            mine = [(i, run.metrics[metric]) for i, run in points if (run.git_commit[:7] or "?") == commit]
            axes.plot([i for i, _ in mine], [v for _, v in mine], marker="o", linestyle="-", label=commit)
        axes.plot([i for i, _ in points], [run.metrics[metric] for _, run in points], color="#bbb", zorder=0)
        axes.set_title(metric, fontsize=10)
        axes.set_xlabel("run, oldest to newest", fontsize=8)
        if len(points) < 10:  # a tick a run: the locator pads a run or two with fractions (3.8 ... 4.2)
            axes.set_xticks([i for i, _ in points])
            axes.set_xlim(points[0][0] - 0.5, points[-1][0] + 0.5)
        else:
            axes.xaxis.set_major_locator(MaxNLocator(integer=True))
        axes.tick_params(labelsize=7)
        axes.legend(fontsize=7, title="commit", title_fontsize=7, loc="best")
        figure.tight_layout()
        name = re.sub(r"[^A-Za-z0-9._-]", "_", metric)[:80] + ".svg"
        (folder / "charts").mkdir(parents=True, exist_ok=True)
        figure.savefig(folder / "charts" / name, format="svg", metadata={"Date": None})
    finally:
        plt.close(figure)
    return f"charts/{name}"


def _mermaid(metric: str, runs: list[Candidate]) -> str:
    values = [run.metrics[metric] for run in reversed(runs) if metric in run.metrics]
    low, high = min(values), max(values)
    pad = (high - low) * 0.1 or abs(high) * 0.01 or 0.01
    return "\n".join(
        [
            "```mermaid",
            "xychart-beta",
            f'    title "{" ".join(metric.split()).replace(chr(34), "")}"',
            f"    x-axis [{', '.join(str(i + 1) for i in range(len(values)))}]",
            f"    y-axis {low - pad:.6g} --> {high + pad:.6g}",
            f"    line [{', '.join(f'{v:.6g}' for v in values)}]",
            "```",
        ]
    )


def _markdown(data: ExperimentRuns, charts: dict[str, str | None] | None) -> str:
    runs, metrics, latest, previous = data.runs, data.metrics, data.latest_commit, data.previous_commit
    lines = [f"# Experiment report: {markdown.text(data.project)}", ""]
    distinct = len({r.git_commit for r in runs if r.git_commit})
    lines.append(f"The newest {len(runs)} finished runs of dev, from {distinct} commit(s).")
    if latest:
        against = f" against `{previous[:7]}`" if previous else " (no earlier commit to compare with)"
        lines += ["", f"## Trend: `{latest[:7]}`{against}", ""]
        lines += ["| metric | latest | previous | change |", "|---|---:|---:|---:|"]
        for row in data.trend:
            change = row["change"]
            arrow = "" if change is None or change == 0 else (" ▲" if change > 0 else " ▼")
            shown = "-" if change is None else f"{change:+.4g}{arrow}"
            lines.append(
                f"| {markdown.text(row['metric'])} | {_cell(row['latest'])} | {_cell(row['previous'])} | "
                f"{shown} |"
            )
    lines += ["", "## Runs, newest first", ""]
    lines.append("| run | commit | started | " + " | ".join(markdown.text(m) for m in metrics) + " |")
    lines.append("|---|---|---|" + "---:|" * len(metrics))
    for run in runs:
        started = datetime.fromtimestamp(run.start_time / 1000, UTC).strftime("%Y-%m-%d %H:%M")
        values = " | ".join(_cell(run.metrics.get(m)) for m in metrics)
        lines.append(f"| `{run.run_id[:8]}` | `{(run.git_commit or '-')[:7]}` | {started} | {values} |")
    lines += ["", "## Charts", ""]
    for metric in metrics[:_CHARTED]:
        if charts is None:
            lines += [_mermaid(metric, runs), ""]
        elif charts.get(metric):
            lines += [f"![{markdown.text(metric)}]({charts[metric]})", ""]
    return "\n".join(lines).rstrip() + "\n"


@dataclass(frozen=True)
class ExperimentRuns:
    """dev's newest finished runs with what a report shows of them, read where dev's store is (here, or
    on a control plane for a caller that reaches neither it nor loopline's database)."""

    project: str
    runs: list[Candidate]
    """Newest first."""
    metrics: list[str]
    """The gate's metrics first, then the others by name; at most eight."""
    latest_commit: str | None
    previous_commit: str | None
    trend: list[dict[str, Any]]
    """Each metric at the latest commit and the one before (the run each one's dev version was made from,
    else its newest)."""


def experiment_runs(instance: Instance, *, last: int = 20) -> ExperimentRuns:
    """dev's newest ``last`` finished runs, for a report."""
    if not 1 <= last <= MAX_RUNS:
        raise UsageError(f"--last must be between 1 and {MAX_RUNS}, not {last}")
    store = instance.store(DEV)
    found = store.search_all_runs("attributes.status = 'FINISHED'", limit=last)
    # A sweep's parent run holds its best trial's figures again: the trials are the runs.
    runs = [candidate_of(run) for run in found if run.metrics and run.tags.get(SWEEP_PARENT) != "true"]
    if not runs:
        raise NotFound("dev has no finished runs with metrics to report; run the inner loop first")
    metrics = _metrics(instance, runs)
    chosen = _per_commit(instance, runs)
    order = list(chosen)  # commits by their newest run, newest first
    latest = order[0] if order else None
    previous = order[1] if len(order) > 1 else None
    trend = _trend(metrics, chosen.get(latest or ""), chosen.get(previous or ""))
    return ExperimentRuns(instance.settings.config.project, runs, metrics, latest, previous, trend)


def write_report(data: ExperimentRuns, folder: Path) -> ExperimentReport:
    """Write the report of ``data`` (Markdown, and an SVG chart per metric) into ``folder``."""
    with on_path("write the report into", folder, "name a folder you may write with --out"):
        folder.mkdir(parents=True, exist_ok=True)
        charts = {metric: _chart(folder, metric, data.runs) for metric in data.metrics[:_CHARTED]}
        markdown = _markdown(data, charts)
        (folder / "experiment.md").write_text(markdown)
    rows = [
        {"run_id": r.run_id, "git_commit": r.git_commit, "start_time": r.start_time, "metrics": r.metrics}
        for r in data.runs
    ]
    return ExperimentReport(
        markdown=markdown,
        github_markdown=_markdown(data, None),
        folder=str(folder),
        charts=[str(folder / path) for path in charts.values() if path],
        runs=rows,
        metrics=data.metrics,
        latest_commit=data.latest_commit,
        previous_commit=data.previous_commit,
        trend=data.trend,
    )


def report_folder(root: Path) -> Path:
    """Where a report goes by default: ``.loopline/reports/experiment-<time>`` of the project."""
    stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
    return root / ".loopline" / "reports" / f"experiment-{stamp}"


def publish(report: ExperimentReport, comment: bool, pull_request: int | None) -> ExperimentReport:
    """Post ``report`` on pull request ``pull_request`` (or, with ``comment``, this GitHub Actions run's
    own, where it has one); the report, with the comment's URL."""
    number = pull_request or (pull_request_number() if comment else None)
    if comment and number is not None:
        report.comment_url = comment_on_pull_request(report.github_markdown, number)
    return report


@dataclass(frozen=True)
class SweepSummary:
    """A sweep as dev's runs tell it: its parent run, the best trial, and each trial."""

    study: str
    git_commit: str
    parent_run_id: str
    status: str
    metric: str | None
    best_trial: str | None
    trials: list[dict[str, Any]]

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready mapping."""
        return dict(self.__dict__)


def sweeps(instance: Instance, limit: int = 10) -> list[SweepSummary]:
    """The newest ``limit`` sweeps of dev, newest first, from their runs (no Optuna needed)."""
    if not 1 <= limit <= MAX_RUNS:
        raise UsageError(f"limit must be between 1 and {MAX_RUNS}, not {limit}")
    store = instance.store(DEV)
    parents = store.search_all_runs(f"tags.`{SWEEP_PARENT}` = 'true'", limit=limit)
    found = []
    for parent in parents:
        study = parent.tags.get(SWEEP, "")
        trials = [
            run
            for run in store.search_all_runs(f"tags.`{SWEEP}` = '{study}'")
            if run.tags.get(SWEEP_PARENT) != "true" and run.tags.get(SWEEP_TRIAL)
        ]
        metric = next(
            (name.removeprefix("best_") for name in parent.metrics if name.startswith("best_")), None
        )
        rows = [
            {
                "trial": int(run.tags[SWEEP_TRIAL]), "run_id": run.run_id, "status": run.status,
                "params": dict(run.params), "value": run.metrics.get(metric) if metric else None,
            }
            for run in trials
        ]  # fmt: skip
        found.append(
            SweepSummary(
                study=study,
                git_commit=parent.tags.get("loopline.git_commit", ""),
                parent_run_id=parent.run_id,
                status=parent.status,
                metric=metric,
                best_trial=parent.tags.get("best.trial"),
                trials=sorted(rows, key=lambda row: (row["trial"], row["run_id"])),
            )
        )
    return found


def pull_request_number() -> int | None:
    """The pull request of this GitHub Actions run: from a pull_request event, or from the merge queue's
    branch (``gh-readonly-queue/<base>/pr-<number>-<sha>``); None elsewhere."""
    path = os.environ.get("GITHUB_EVENT_PATH")
    if not path:
        return None
    try:
        event = json.loads(Path(path).read_text())
    except (OSError, ValueError):
        return None
    if isinstance(event.get("pull_request"), dict) and isinstance(event["pull_request"].get("number"), int):
        return int(event["pull_request"]["number"])
    head = str((event.get("merge_group") or {}).get("head_ref", ""))
    match = re.search(r"gh-readonly-queue/.+/pr-(\d+)-[0-9a-f]+$", head)
    return int(match.group(1)) if match else None


def comment_on_pull_request(markdown: str, number: int) -> str:
    """Post ``markdown`` as a comment on pull request ``number`` of this run's repository (with the
    workflow's ``GITHUB_TOKEN``); the comment's URL."""
    import httpx

    repository, token = os.environ.get("GITHUB_REPOSITORY"), os.environ.get("GITHUB_TOKEN")
    if not repository or not token:
        raise UsageError(
            "commenting needs GITHUB_REPOSITORY and GITHUB_TOKEN (set them in the workflow step)"
        )
    api = os.environ.get("GITHUB_API_URL", "https://api.github.com").rstrip("/")
    try:
        answer = http_request(
            "POST",
            f"{api}/repos/{repository}/issues/{number}/comments",
            json={"body": markdown},
            headers={"Authorization": f"Bearer {token}", "Accept": "application/vnd.github+json"},
            timeout=30,
        )
    except httpx.HTTPError as exc:
        raise Refused(f"could not comment on pull request #{number}: {exc}") from None
    if not answer.is_success:
        raise Refused(
            f"GitHub refused the comment on pull request #{number} (HTTP {answer.status_code}); the job "
            "needs `pull-requests: write`"
        )
    return str(answer.json().get("html_url", ""))
