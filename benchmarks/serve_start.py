"""How soon a started `loopline serve` answers with its model, against `mlflow models serve` on the same
model files and a bare `import mlflow`.

    .venv/bin/python benchmarks/serve_start.py [--runs 5]

Measured from the process's start to the first moment the deployment answers: `/readyz` naming it
ready for loopline, `/ping` answering 200 for MLflow's server (which loads the model before it
listens). The sample model is scikit-learn's, which loopline loads without importing MLflow.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path

BIN = Path(sys.executable).parent
ENV = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}"}  # MLflow's server runs `uvicorn`


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _get(url: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=1) as answer:
            return answer.status, answer.read()
    except OSError:
        return 0, b""


def _loopline_ready(port: int) -> bool:
    status, body = _get(f"http://127.0.0.1:{port}/readyz")
    if status != 200:
        return False
    served = json.loads(body).get("endpoints", {})
    return any(state == "ready" for deployments in served.values() for state in deployments.values())


def _mlflow_ready(port: int) -> bool:
    return _get(f"http://127.0.0.1:{port}/ping")[0] == 200


def started(argv: list[str], cwd: Path, ready: Callable[[int], bool]) -> float:
    """Seconds from starting ``argv`` (its ``--port`` a free port) until ``ready(port)``; the process is
    stopped after."""
    port = free_port()
    argv = [*argv, "--port", str(port)]
    began = time.perf_counter()
    process = subprocess.Popen(argv, cwd=cwd, env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        while not ready(port):
            if process.poll() is not None:
                raise SystemExit(f"{argv[0]} exited with {process.returncode} before it answered")
            time.sleep(0.02)
        return time.perf_counter() - began
    finally:
        process.terminate()
        process.wait(timeout=30)


def median_of(runs: int, measure: Callable[[], float]) -> float:
    measure()  # warm-up: the file system's caches
    return statistics.median(measure() for _ in range(runs))


def released_project(scratch: Path) -> Path:
    """The sample project with its first model released to prod."""
    project = scratch / "bench"
    loopline = str(BIN / "loopline")
    subprocess.run([loopline, "init", str(project), "--tier", "simple"], check=True, capture_output=True)
    for step in (
        ["git", "add", "-A"],
        ["git", "-c", "user.name=b", "-c", "user.email=b@example.com", "commit", "-qm", "sample"],
        [loopline, "up"],
        [loopline, "inner-loop", "--quiet"],
        [loopline, "outer-loop", "prod"],
    ):
        subprocess.run(step, cwd=project, check=True, capture_output=True)
    return project


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        project = released_project(Path(scratch))
        (model,) = [path.parent for path in (project / ".loopline" / "models").glob("sha256/*/MLmodel")]
        ours = median_of(
            args.runs,
            lambda: started([str(BIN / "loopline"), "serve", "-w", "prod"], project, _loopline_ready),
        )
        mlflow_serve = [str(BIN / "mlflow"), "models", "serve", "-m", str(model), "--env-manager", "local"]
        theirs = median_of(args.runs, lambda: started(mlflow_serve, project, _mlflow_ready))
        imported = median_of(args.runs, lambda: _timed([sys.executable, "-c", "import mlflow"], project))
    print(f"{'start until the model answers':<36}{'median s':>10}")
    for name, value in [
        ("python -c 'import mlflow'", imported),
        ("mlflow models serve (baseline)", theirs),
        ("loopline serve", ours),
    ]:
        print(f"{name:<36}{value:>10.3f}")
    print(f"\nloopline serve answers in {ours / theirs:.2f}x the time mlflow models serve takes")


def _timed(argv: list[str], cwd: Path) -> float:
    began = time.perf_counter()
    subprocess.run(argv, cwd=cwd, check=True, capture_output=True)
    return time.perf_counter() - began


if __name__ == "__main__":
    main()
