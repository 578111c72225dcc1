"""Rollbacks and promotions under load: how fast traffic moves, and whether any request fails.

    .venv/bin/python benchmarks/rollback.py [--rounds 10] [--clients 32]

A prod endpoint serves two released versions (A and B, both loaded) from `loopline serve`. 32 concurrent
clients score it without pause while `loopline rollback --commit A` and `loopline outer-loop prod
--commit B` alternate, each as a real command. For each command the time from its start to the moment
after which every answer comes from its target is printed. Targets: under 1 second, zero failed requests.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx

BIN = Path(sys.executable).parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Clients:
    """Concurrent clients recording (time, status, deployment) of every answer."""

    def __init__(self, url: str, body: bytes, key: str, count: int) -> None:
        self.url, self.body, self.key, self.count = url, body, key, count
        self.answers: list[tuple[float, int, str]] = []
        self.stop = threading.Event()

    async def _one(self, client: httpx.AsyncClient) -> None:
        headers = {"content-type": "application/json", "authorization": f"Bearer {self.key}"}
        while not self.stop.is_set():
            try:
                answer = await client.post(self.url, content=self.body, headers=headers)
                self.answers.append(
                    (time.monotonic(), answer.status_code, answer.headers.get("loopline-deployment", ""))
                )
            except httpx.HTTPError as exc:
                self.answers.append((time.monotonic(), 0, type(exc).__name__))

    async def _all(self) -> None:
        limits = httpx.Limits(max_connections=self.count, max_keepalive_connections=self.count)
        async with httpx.AsyncClient(limits=limits, timeout=10) as client:
            await asyncio.gather(*[self._one(client) for _ in range(self.count)])

    def start(self) -> threading.Thread:
        thread = threading.Thread(target=lambda: asyncio.run(self._all()), daemon=True)
        thread.start()
        return thread

    def settled(self, since: float, until: float, target: str) -> float | None:
        """Seconds from ``since`` to the last answer not from ``target`` (0 if none came after ``since``)."""
        window = [a for a in self.answers if since <= a[0] <= until]
        others = [a[0] for a in window if a[2] != target]
        if not any(a[2] == target for a in window):
            return None
        return max(others) - since if others else 0.0


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--clients", type=int, default=32)
    args = parser.parse_args()
    scratch = Path(tempfile.mkdtemp(prefix="loopline-rollback-"))
    port = free_port()
    env = {
        **os.environ,
        "GIT_AUTHOR_NAME": "b",
        "GIT_AUTHOR_EMAIL": "b@example.com",
        "GIT_COMMITTER_NAME": "b",
        "GIT_COMMITTER_EMAIL": "b@example.com",
        "LOOPLINE_WORKSPACES__PROD__ENDPOINTS_URL": f"http://127.0.0.1:{port}",
    }

    def run(*argv: object, cwd: Path) -> str:
        done = subprocess.run(
            [str(a) for a in argv], cwd=cwd, env=env, capture_output=True, text=True, check=False
        )
        if done.returncode != 0:
            raise SystemExit(f"{' '.join(map(str, argv))} failed:\n{done.stderr[-2000:]}")
        return done.stdout

    server = None
    try:
        project = scratch / "bench"
        run(BIN / "loopline", "init", project, "--tier", "simple", cwd=scratch)
        run("git", "add", "-A", cwd=project)
        run("git", "commit", "-qm", "A", cwd=project)
        run(BIN / "loopline", "up", cwd=project)
        run(BIN / "loopline", "inner-loop", "-q", cwd=project)
        a = run("git", "rev-parse", "HEAD", cwd=project).strip()
        run(BIN / "loopline", "outer-loop", "prod", cwd=project)
        (project / "params.yaml").write_text(
            (project / "params.yaml").read_text().replace("C: 1.0", "C: 0.5")
        )
        run("git", "commit", "-qam", "B", cwd=project)
        run(BIN / "loopline", "inner-loop", "-q", cwd=project)
        b = run("git", "rev-parse", "HEAD", cwd=project).strip()
        server = subprocess.Popen(
            [str(BIN / "loopline"), "serve", "-w", "prod", "--port", str(port)],
            cwd=project,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/readyz").status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.2)
        run(BIN / "loopline", "outer-loop", "prod", cwd=project)
        status = json.loads(run(BIN / "loopline", "status", "--json", cwd=project))
        deployments = {d["git_commit"]: d["name"] for d in status["endpoints"][0]["deployments"]}
        key = json.loads(
            run(
                BIN / "loopline",
                "endpoint",
                "keys",
                "bench",
                "--regenerate",
                "secondary",
                "--json",
                cwd=project,
            )
        )["regenerated"]["secondary"]
        example = json.loads(
            (
                Path(
                    next(m for m in status["models"] if m["workspace"] == "prod")["source_uri"].removeprefix(
                        "file://"
                    )
                )
                / "input_example.json"
            ).read_text()
        )
        body = json.dumps(
            {"input_data": {"columns": example["columns"], "data": example["data"][:1]}}
        ).encode()
        time.sleep(0.5)
        clients = Clients(f"http://127.0.0.1:{port}/endpoints/bench/score", body, key, args.clients)
        thread = clients.start()
        time.sleep(2.0)
        moves: list[tuple[str, float | None]] = []
        for _ in range(args.rounds):
            for label, argv, target in (
                ("rollback", ["rollback", "--commit", a[:7], "--reason", "benchmark"], deployments[a]),
                ("promotion", ["outer-loop", "prod", "--commit", b[:7]], deployments[b]),
            ):
                started = time.monotonic()
                run(BIN / "loopline", *argv, cwd=project)
                time.sleep(1.5)
                moves.append((label, clients.settled(started, time.monotonic(), target)))
        clients.stop.set()
        thread.join(timeout=30)
        failed = sum(1 for _, code, _ in clients.answers if code != 200)
        print(
            f"{len(clients.answers)} requests from {args.clients} clients during {len(moves)} traffic moves; "
            f"failed: {failed} (target 0)"
        )
        for label in ("rollback", "promotion"):
            times = [t for name, t in moves if name == label and t is not None]
            print(
                f"  {label:<10} command start -> all traffic on target: "
                f"median {statistics.median(times):.3f} s, "
                f"max {max(times):.3f} s"
            )
        worst = max(t for _, t in moves if t is not None)
        print(
            f"\nworst move {worst:.3f} s (target < 1 s: {'met' if worst < 1 else 'MISSED'}); failed requests "
            f"{failed} (target 0: {'met' if failed == 0 else 'MISSED'})"
        )
    finally:
        if server is not None:
            server.terminate()
            server.wait(timeout=30)
        shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    main()
