"""The lifecycle demo: a fresh sample project driven through its own workflow files.

Commit A goes through inner-loop, outer-loop-test and outer-loop-prod; a few live predictions come back
from the prod endpoint; commit B (a worse model, `label_noise: 0.4`) is stopped at test; commit C (a
better one) is released in watched canary steps while traffic flows; model-rollback returns prod to A by
its short SHA. Every step runs through `loopline workflow run`, as GitHub would run the files.
"""

from __future__ import annotations

import contextlib
import json
import shutil
import subprocess
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from loopline.domain import Tier
from loopline.errors import Refused
from loopline.git import run_git
from loopline.net import free_port
from loopline.progress import NullReporter, Reporter

__all__ = ["DemoResult", "run_demo"]


@dataclass
class DemoResult:
    """What the demo did and where every commit stands at its end."""

    path: Path
    kept: bool
    tier: Tier
    seconds: float = 0.0
    steps: list[str] = field(default_factory=list)
    commits: list[dict[str, Any]] = field(default_factory=list)
    predictions: list[dict[str, Any]] = field(default_factory=list)
    traffic: dict[str, int] = field(default_factory=dict)
    models: list[dict[str, Any]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready mapping."""
        return {
            "path": str(self.path),
            "kept": self.kept,
            "tier": self.tier.value,
            "seconds": round(self.seconds, 1),
            "steps": self.steps,
            "commits": self.commits,
            "predictions": self.predictions,
            "traffic": self.traffic,
            "models": self.models,
        }


def _commit(root: Path, message: str) -> str:
    run_git(root, "add", "-A")
    run_git(
        root,
        "-c",
        "user.name=loopline demo",
        "-c",
        "user.email=demo@loopline.invalid",
        "commit",
        "--quiet",
        "-m",
        message,
    )
    return run_git(root, "rev-parse", "HEAD").strip()


def _edit(path: Path, **changes: Any) -> None:
    data = yaml.safe_load(path.read_text())
    data.update(changes)
    path.write_text(yaml.safe_dump(data, sort_keys=False))


class _Demo:
    def __init__(self, path: Path, tier: Tier, reporter: Reporter) -> None:
        from loopline import api

        self.api = api
        self.path = path
        self.tier = tier
        self.report = reporter
        self.result = DemoResult(path, False, tier)
        self.servers: list[subprocess.Popen[bytes]] = []
        self.commits: dict[str, tuple[str, str]] = {}

    def step(self, message: str) -> None:
        self.result.steps.append(message)
        self.report.step(message)

    def workflow(self, name: str, event: str, expect: bool = True, **inputs: str) -> Any:
        run = self.api.workflow_run(name, event=event, inputs=inputs, project=self.path)
        if run.enabled is False:
            self.step(f"{name} ({event}): off in the {self.tier.value} tier")
        elif run.succeeded != expect:
            detail = [
                f"{s.job}.{s.id} {s.status}" for j in run.jobs for s in j.steps if s.status == "failure"
            ]
            raise RuntimeError(f"the demo expected {name} to {'succeed' if expect else 'fail'}: {detail}")
        else:
            self.step(f"{name} ({event}): {'succeeded' if run.succeeded else 'failed, as it should'}")
        return run

    def setup(self) -> None:
        # A repository of its own, even in a folder of another (`--keep ./demo-project` in a checkout):
        # the demo commits, and must never commit to the repository around it.
        if not self.path.is_dir() or not any(self.path.iterdir()):
            self.path.mkdir(parents=True, exist_ok=True)
            run_git(self.path, "init", "--quiet", "--initial-branch=main")
        self.api.init(self.path, self.tier, name="demo")
        ports = {"prod": free_port(), "test": free_port(), "dev": free_port()}
        config = self.path / "loopline.yaml"
        text = config.read_text()
        assert "  watch_seconds: 30\n" in text, "the sample's loopline.yaml changed; update the demo"
        text = text.replace(
            "  watch_seconds: 30\n",
            "  watch_seconds: 1             # short, for the demo\n  min_requests: 10\n",
        )
        text += "\n# Free ports for the demo's servers.\nworkspaces:\n" + "".join(
            f"  {w}:\n    endpoints_url: http://127.0.0.1:{p}\n" for w, p in ports.items()
        )
        config.write_text(text)
        self.commits["A"] = (_commit(self.path, "Sample project from loopline init"), "the sample model")
        self.step(
            f"created the sample project in {self.path} ({self.tier.value} tier); commit A "
            f"{self.commits['A'][0][:7]}"
        )
        self.api.up(self.path)
        self.step("provisioned the workspaces, the shared registry and the datastores")
        for workspace in ("test", "prod"):
            if workspace in self.api.status(self.path).workspaces:
                self.serve(workspace, ports[workspace])

    def serve(self, workspace: str, port: int) -> None:
        from loopline.endpoints.client import start_server

        log = self.path / ".loopline" / "logs" / f"serve-{workspace}.log"
        self.servers.append(start_server(self.path, workspace, port, log))
        self.step(f"serving the {workspace} workspace at http://127.0.0.1:{port}")

    def release(self, label: str, expect_test: bool = True, canary: str = "") -> None:
        commit = self.commits[label][0]
        self.workflow("inner-loop", "merge_group")
        if self.tier is Tier.FULL:
            self.workflow("outer-loop-test", "workflow_run", expect=expect_test)
        if self.tier is not Tier.EXPERIMENTATION and expect_test:
            self.workflow("outer-loop-prod", "workflow_dispatch", commit=commit, canary=canary)

    def predict(self) -> None:
        prod = self.api.get_endpoint("demo", project=self.path)
        columns, rows = _heldout(self.path)
        for row in rows[:3]:
            answer = self.api.invoke_endpoint(
                prod.name, {"dataframe_split": {"columns": columns, "data": [row]}}, project=self.path
            )
            if not answer.ok:
                raise Refused(f"the prod endpoint answered {answer.status}: {answer.body}")
            self.result.predictions.append(
                {
                    "prediction": answer.body["predictions"][0],
                    "deployment": answer.deployment,
                    "git_commit": answer.git_commit,
                }
            )
        first = self.result.predictions[0]
        self.step(
            f"scored {len(self.result.predictions)} rows through the prod endpoint: answered by "
            f"{first['deployment']} ({str(first['git_commit'])[:7]})"
        )

    def traffic_during(self, work: Any) -> None:
        """Keep a client's requests flowing to prod while ``work`` runs, so a canary has something to be
        judged on (what loopline itself sends, with its own key, is not what a canary's watch judges)."""
        from loopline.net import http_client

        stop = threading.Event()
        columns, rows = _heldout(self.path)
        body = json.dumps({"dataframe_split": {"columns": columns, "data": [rows[0]]}}).encode()
        key = self.api.endpoint_keys("demo", regenerate="secondary", project=self.path).regenerated
        url = f"{self.api.get_endpoint('demo', project=self.path).url}/invocations"
        headers = {"Authorization": f"Bearer {key['secondary']}", "Content-Type": "application/json"}
        self.step("a client of the prod endpoint sends requests with its secondary key")

        def send() -> None:
            with http_client(timeout=5) as client:
                while not stop.is_set():
                    with contextlib.suppress(Exception):  # the canary's verdict, not the client, decides
                        client.post(url, content=body, headers=headers)
                    time.sleep(0.02)

        thread = threading.Thread(target=send, daemon=True)
        thread.start()
        try:
            work()
        finally:
            stop.set()
            thread.join(timeout=10)

    def story(self) -> None:
        self.release("A")
        if self.tier is not Tier.EXPERIMENTATION:
            self.predict()
        if self.tier is Tier.FULL:
            _edit(self.path / "params.yaml", label_noise=0.4)
            self.commits["B"] = (_commit(self.path, "Flip 40% of the training labels"), "a worse model")
            self.step(f"commit B {self.commits['B'][0][:7]}: label_noise 0.4")
            self.release("B", expect_test=False)
        _edit(self.path / "params.yaml", label_noise=0.0, C=0.5)
        self.commits["C"] = (_commit(self.path, "Less regularisation"), "a better model")
        self.step(f"commit C {self.commits['C'][0][:7]}: C=0.5")
        if self.tier is Tier.EXPERIMENTATION:
            self.release("C")
            return
        self.traffic_during(lambda: self.release("C", canary="10,50,100"))
        self.workflow(
            "model-rollback",
            "workflow_dispatch",
            commit=self.commits["A"][0][:7],
            reason="the demo returns to A",
        )

    def summarise(self) -> None:
        status = self.api.status(self.path)
        self.result.models = [m.to_dict() for m in status.models]
        endpoint = next((e for e in status.endpoints if e["name"] == "demo"), None)
        self.result.traffic = dict(endpoint["traffic"]) if endpoint else {}
        live = {d["git_commit"]: d["traffic"] for d in (endpoint or {}).get("deployments", [])}
        for label, (sha, change) in self.commits.items():
            where = {m.workspace: m for m in status.models if m.git_commit == sha}
            shared = where.get("shared")
            self.result.commits.append(
                {
                    "label": label,
                    "git_commit": sha,
                    "change": change,
                    "dev": where["dev"].version if "dev" in where else None,
                    "registry": shared.version if shared else None,
                    "validation": shared.validation_status if shared else None,
                    "prod": where["prod"].version if "prod" in where else None,
                    "traffic": live.get(sha),
                    "production": bool("prod" in where and "production" in where["prod"].aliases),
                }
            )

    def stop(self) -> None:
        for server in self.servers:
            server.terminate()
        for server in self.servers:
            try:
                server.wait(timeout=30)
            except subprocess.TimeoutExpired:
                server.kill()


def _heldout(path: Path) -> tuple[list[str], list[list[float]]]:
    import csv

    with (path / "data" / "inbox" / "heldout.csv").open() as handle:
        rows = list(csv.reader(handle))
    label = rows[0].index("label")
    columns = [c for i, c in enumerate(rows[0]) if i != label]
    return columns, [[float(v) for i, v in enumerate(r) if i != label] for r in rows[1:]]


def run_demo(
    tier: Tier = Tier.FULL, keep: Path | None = None, reporter: Reporter | None = None
) -> DemoResult:
    """Run the whole lifecycle on a fresh sample project through its workflow files."""
    started = time.monotonic()
    path = keep.expanduser().resolve() if keep else Path(tempfile.mkdtemp(prefix="loopline-demo-")) / "demo"
    demo = _Demo(path, tier, reporter or NullReporter())
    try:
        demo.setup()
        demo.story()
        demo.summarise()
    finally:
        demo.stop()
        if keep is None:
            shutil.rmtree(path.parent, ignore_errors=True)
    demo.result.kept = keep is not None
    demo.result.seconds = time.monotonic() - started
    return demo.result
