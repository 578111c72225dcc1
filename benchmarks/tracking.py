"""What MLflow logging through the control plane (``/mlflow/dev``) costs, call by call.

    .venv/bin/python benchmarks/tracking.py [--metrics 300]

Makes the sample project (simple tier) with a developer and a token, and starts `loopline server`. The
baseline: a stock `mlflow server` (one worker, artifacts proxied, on a SQLite file of its own), which is
what a team runs when every member holds the store's credentials. The same client work against each,
with stock MLflow: a run, 20 params, METRICS metric steps logged one call each, 5 small files and a
scikit-learn model, then reading the run back. Printed: the median time of one `log_metric` call and of
the whole run on each, and the ratios. The control plane checks the token, the role and whose run it is
on each call before MLflow's own server (the same code as the baseline) answers it.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import tempfile
from pathlib import Path

import loopline
from serving import BIN, free_port, wait_http  # the serving benchmark's helpers, beside this file

CLIENT = """
import statistics, sys, time
import mlflow
from sklearn.linear_model import LogisticRegression

metrics = int(sys.argv[1])
mlflow.set_experiment(sys.argv[2])
started = time.perf_counter()
calls = []
with mlflow.start_run() as run:
    mlflow.log_params({f"p{i}": i for i in range(20)})
    for step in range(metrics):
        at = time.perf_counter()
        mlflow.log_metric("loss", 1.0 / (step + 1), step=step)
        calls.append(time.perf_counter() - at)
    for i in range(5):
        mlflow.log_text("x" * 1000, f"files/f{i}.txt")
    mlflow.sklearn.log_model(LogisticRegression().fit([[0], [1]], [0, 1]), name="model",
                             pip_requirements=["scikit-learn"])
mlflow.get_run(run.info.run_id)
print(statistics.median(calls), time.perf_counter() - started)
"""


def _git(path: Path, *args: str) -> None:
    subprocess.run(["git", *args], cwd=path, check=True, capture_output=True)


def _client(
    folder: Path, env: dict[str, str], metrics: int, experiment: str, runs: int
) -> list[tuple[float, float]]:
    script = folder / "client.py"
    script.write_text(CLIENT)
    results = []
    for _ in range(runs):
        done = subprocess.run(
            [str(BIN / "python"), str(script), str(metrics), experiment],
            cwd=folder,
            env=env,
            check=True,
            capture_output=True,
            text=True,
        )
        call, whole = done.stdout.split()[-2:]
        results.append((float(call), float(whole)))
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--metrics", type=int, default=300)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    quiet = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "LOOPLINE_"))}
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        project = root / "bench"
        loopline.init(project, "simple")
        _git(project, "add", "-A")
        _git(project, "commit", "-q", "-m", "sample")
        loopline.up(project)
        loopline.user_add("dev", project=project)
        loopline.user_grant("dev", "developer", "dev", project=project)
        token = loopline.token_create("dev", project=project).secret
        assert token is not None

        stock_port, plane_port = free_port(), free_port()
        (root / "stock").mkdir()
        stock = subprocess.Popen(
            [
                str(BIN / "mlflow"),
                "server",
                "--backend-store-uri",
                f"sqlite:///{root / 'stock' / 'mlflow.db'}",
                "--artifacts-destination",
                str(root / "stock" / "artifacts"),
                "--serve-artifacts",
                "--host",
                "127.0.0.1",
                "--port",
                str(stock_port),
                "--workers",
                "1",
            ],
            env={**quiet, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"},
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        plane = subprocess.Popen(
            [str(BIN / "loopline"), "server", "--port", str(plane_port), "-C", str(project)],
            env=quiet,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            wait_http(f"http://127.0.0.1:{stock_port}/health")
            wait_http(f"http://127.0.0.1:{plane_port}/healthz")
            baseline = _client(
                root,
                {**quiet, "MLFLOW_TRACKING_URI": f"http://127.0.0.1:{stock_port}"},
                args.metrics,
                "bench",
                args.runs,
            )
            through = _client(
                root,
                {
                    **quiet,
                    "MLFLOW_TRACKING_URI": f"http://127.0.0.1:{plane_port}/mlflow/dev",
                    "MLFLOW_TRACKING_TOKEN": token,
                },
                args.metrics,
                "bench",
                args.runs + 1,
            )[1:]  # the first run starts MLflow's server behind the control plane
        finally:
            plane.terminate()
            os.killpg(stock.pid, 15)
            plane.wait(30)
            stock.wait(30)
    base_call = statistics.median(c for c, _ in baseline)
    plane_call = statistics.median(c for c, _ in through)
    base_run = statistics.median(w for _, w in baseline)
    plane_run = statistics.median(w for _, w in through)
    print(f"log_metric, stock mlflow server:        median {base_call * 1000:.1f} ms")
    print(
        f"log_metric, through the control plane:  median {plane_call * 1000:.1f} ms "
        f"({plane_call / base_call:.2f}x)"
    )
    print(
        f"a run of {args.metrics} steps + files + model, stock:  median {base_run:.2f} s over {len(baseline)}"
    )
    print(
        f"the same through the control plane:     median {plane_run:.2f} s over {len(through)} "
        f"({plane_run / base_run:.2f}x)"
    )


if __name__ == "__main__":
    main()
