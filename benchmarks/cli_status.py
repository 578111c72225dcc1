"""How fast `loopline status` answers, against starting a bare Python and importing MLflow.

    .venv/bin/python benchmarks/cli_status.py [--runs 15]

Target: `loopline status` within 0.5 s on a provisioned project (MLflow stays out of its import path).
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BIN = Path(sys.executable).parent


def timed(argv: list[str], cwd: Path, runs: int) -> float:
    """Median wall time of ``argv`` over ``runs`` runs, after one warm-up."""
    subprocess.run(argv, cwd=cwd, check=True, capture_output=True)
    samples = []
    for _ in range(runs):
        started = time.perf_counter()
        subprocess.run(argv, cwd=cwd, check=True, capture_output=True)
        samples.append(time.perf_counter() - started)
    return statistics.median(samples)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=15)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        project = Path(scratch) / "bench"
        subprocess.run(
            [BIN / "loopline", "init", str(project), "--tier", "full"], check=True, capture_output=True
        )
        subprocess.run([BIN / "loopline", "up"], cwd=project, check=True, capture_output=True)
        python = timed([sys.executable, "-c", "pass"], project, args.runs)
        mlflow = timed([sys.executable, "-c", "import mlflow"], project, max(3, args.runs // 3))
        status = timed([str(BIN / "loopline"), "status"], project, args.runs)
        status_json = timed([str(BIN / "loopline"), "status", "--json"], project, args.runs)
    print(f"{'command':<28}{'median s':>10}")
    for name, value in [
        ("python -c pass (baseline)", python),
        ("python -c 'import mlflow'", mlflow),
        ("loopline status", status),
        ("loopline status --json", status_json),
    ]:
        print(f"{name:<28}{value:>10.3f}")
    print(
        f"\nloopline status: {status:.3f} s (target <= 0.5 s: {'met' if status <= 0.5 else 'MISSED'}); "
        f"{status / mlflow:.2f}x the time of importing MLflow alone; "
        f"{status / python:.1f}x a bare Python start"
    )


if __name__ == "__main__":
    main()
