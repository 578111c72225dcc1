"""The experiment report: real runs of two commits, real charts, the step summary, and a comment on the pull
request through a stand-in for GitHub's REST API (GitHub's own servers cannot be reached from here)."""

from __future__ import annotations

import json
import re
import threading
import xml.etree.ElementTree as ElementTree
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

import loopline
from tests.conftest import ProjectFactory
from tests.helpers import cli

pytestmark = pytest.mark.slow


def test_the_report_shows_each_run_the_trend_between_commits_and_a_chart_per_metric(
    a_live_b_registered: tuple[Path, str, str],
) -> None:
    project, a, b = a_live_b_registered
    report = loopline.report_experiment(project=project)

    runs = {r["git_commit"]: r for r in report.runs}
    assert set(runs) == {a, b} and (report.latest_commit, report.previous_commit) == (b, a)
    accuracy = next(row for row in report.trend if row["metric"] == "accuracy")
    assert accuracy["latest"] == runs[b]["metrics"]["accuracy"]
    assert accuracy["previous"] == runs[a]["metrics"]["accuracy"]
    assert accuracy["change"] == pytest.approx(accuracy["latest"] - accuracy["previous"])
    assert report.metrics[:3] == ["accuracy", "roc_auc", "log_loss"]  # the gate's first

    written = (Path(report.folder) / "experiment.md").read_text()
    assert written == report.markdown
    assert f"## Trend: `{b[:7]}` against `{a[:7]}`" in written
    for run in report.runs:
        assert f"| `{run['run_id'][:8]}` | `{run['git_commit'][:7]}` |" in written
    assert len(report.charts) == 4
    for chart in report.charts:
        assert ElementTree.parse(chart).getroot().tag.endswith("svg")
        assert f"]({Path(chart).relative_to(report.folder)})" in written
    # For GitHub, the charts are drawn by GitHub itself.
    assert "```mermaid\nxychart-beta" in report.github_markdown and "charts/" not in report.github_markdown


def test_a_chart_has_a_tick_for_each_run_and_none_between(trained_project: ProjectFactory) -> None:
    report = loopline.report_experiment(project=trained_project("simple"))  # one run: one point a chart
    assert report.charts
    for chart in report.charts:  # not 3.8, 3.9, 4.0, ... around the one run
        assert len(re.findall(r'<g id="xtick_\d+">', Path(chart).read_text())) == 1, chart


class _GitHub:
    """The REST API's comment endpoint of one repository."""

    def __init__(self) -> None:
        self.comments: list[dict[str, Any]] = []
        github = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                github.comments.append(
                    {"path": self.path, "authorization": self.headers["Authorization"], "body": body["body"]}
                )
                answer = json.dumps({"html_url": "https://github.example/acme/churn/pull/42#issuecomment-1"})
                self.send_response(201)
                self.send_header("Content-Type", "application/json")
                self.end_headers()
                self.wfile.write(answer.encode())

            def log_message(self, *_args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


def test_in_the_merge_queue_the_report_goes_to_the_step_summary_and_the_pull_request(
    trained_project: ProjectFactory,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    project = trained_project("simple")
    github = _GitHub()
    event = tmp_path / "event.json"
    event.write_text(
        json.dumps({"merge_group": {"head_ref": "refs/heads/gh-readonly-queue/main/pr-42-0a1b2c3"}})
    )
    summary = tmp_path / "summary.md"
    for name, value in {
        "GITHUB_ACTIONS": "true", "GITHUB_EVENT_PATH": str(event), "GITHUB_REPOSITORY": "acme/churn",
        "GITHUB_TOKEN": "ghs_test", "GITHUB_API_URL": github.url, "GITHUB_STEP_SUMMARY": str(summary),
    }.items():  # fmt: skip
        monkeypatch.setenv(name, value)
    try:
        done = cli(capsys, "report", "experiment", "--comment", "-C", str(project))
    finally:
        github.server.shutdown()

    assert done.exit_code == 0, done.stderr
    assert "commented on the pull request: https://github.example/acme/churn/pull/42" in done.stdout
    [comment] = github.comments
    assert comment["path"] == "/repos/acme/churn/issues/42/comments"
    assert comment["authorization"] == "Bearer ghs_test"
    assert comment["body"].startswith("# Experiment report: proj") and "xychart-beta" in comment["body"]
    assert comment["body"].strip() in summary.read_text()


def test_without_runs_the_report_says_what_to_run(
    new_project: ProjectFactory, capsys: pytest.CaptureFixture[str]
) -> None:
    project = new_project("simple")
    done = cli(capsys, "report", "experiment", "-C", str(project))
    assert done.exit_code == 1 and "run the inner loop first" in done.stderr
