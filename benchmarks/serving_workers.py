"""Thread pools of `loopline serve --workers 2`: each worker's share of the cores against every worker
sizing its pools to all of them.

    .venv/bin/python benchmarks/serving_workers.py [--seconds 5] [--rounds 3] [--model boosting]

OpenMP (scikit-learn's histogram boosting, treelite's walk, LightGBM, XGBoost) and BLAS start a thread
per core in every process. loopline gives each of N workers its share (cores / N) unless the environment
sets OMP_NUM_THREADS, OPENBLAS_NUM_THREADS or MKL_NUM_THREADS. The baseline is the same server with
those variables set to every core, as the libraries would choose. In one run: a histogram gradient
boosting classifier (by default) is trained, registered and deployed; both servers answer 100-row and
1,000-row requests from wrk at 32 connections, in alternating rounds; the ratio is the median of each
round's pair.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

from loopline import children
from serving import BIN, ENV, MODELS, free_port, prepare, wait_http, wait_workers, wrk

SIZES = (100, 1000)
CLIENTS = 32  # many, so that the random spread of connections over the two workers evens out


def served(project: Path, env: dict[str, str]) -> tuple[subprocess.Popen[bytes], str, float]:
    """A `loopline serve --workers 2` with ``env``, its scoring URL and the seconds until both workers
    answered (each loads the model and times its predictors on batches of every size)."""
    port = free_port()
    log = project.parent / f"serve-{port}.err"
    started = time.monotonic()
    with log.open("wb") as errors:
        process = subprocess.Popen(
            [str(BIN / "loopline"), "serve", "-w", "dev", "--port", str(port), "--workers", "2"],
            cwd=project,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=errors,
            start_new_session=True,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_http(f"{url}/readyz")
        wait_workers(log, 2)
    except BaseException:
        stop(process)
        raise
    return process, f"{url}/endpoints/bench/score", time.monotonic() - started


def stop(process: subprocess.Popen[bytes]) -> None:
    os.killpg(process.pid, signal.SIGTERM)
    process.wait(timeout=30)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seconds", type=int, default=5)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--model", choices=list(MODELS), default="boosting")
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is not installed: apt-get install wrk (benchmarks/run does it)")
    cores = str(children.cores())
    quiet = {
        k: v
        for k, v in ENV.items()
        if k not in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")
    }
    setups = {
        "share (loopline)": quiet,
        f"{cores} threads each (baseline)": {
            **quiet,
            "OMP_NUM_THREADS": cores,
            "OPENBLAS_NUM_THREADS": cores,
            "MKL_NUM_THREADS": cores,
        },
    }
    scratch = Path(tempfile.mkdtemp(prefix="loopline-bench-"))
    try:
        project, _, key, bodies = prepare(scratch, args.model, SIZES)
        rates: dict[tuple[str, int], list[float]] = {(name, rows): [] for name in setups for rows in SIZES}
        startups: dict[str, list[float]] = {name: [] for name in setups}
        print(f"{'thread pools':<26}{'rows':>6}{'req/s':>9}{'p99 ms':>9}")
        for round_number in range(args.rounds):
            names = list(setups) if round_number % 2 == 0 else list(reversed(setups))
            for name in names:
                process, url, seconds = served(project, setups[name])
                startups[name].append(seconds)
                print(f"{name:<26}  both workers answered {seconds:.1f} s after the start")
                try:
                    for rows in SIZES:
                        result = wrk(url, bodies[("score", rows)], CLIENTS, args.seconds, key)
                        rates[(name, rows)].append(result["rps"])
                        print(f"{name:<26}{rows:>6}{result['rps']:>9.0f}{result['p99']:>9.1f}")
                finally:
                    stop(process)
        print(f"\nloopline serve --workers 2, {args.model} model, {CLIENTS} clients, on {cores} cores:")
        ours, base = setups
        for rows in SIZES:
            ratios = [a / b for a, b in zip(rates[(ours, rows)], rates[(base, rows)], strict=True)]
            print(
                f"  {rows}-row requests: {statistics.median(ratios):.2f}x the baseline's requests/s "
                f"(median of {len(ratios)} rounds, {min(ratios):.2f}-{max(ratios):.2f})"
            )
        print(
            f"  start-up until both workers answer: {statistics.median(startups[ours]):.1f} s "
            f"against {statistics.median(startups[base]):.1f} s (medians)"
        )
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    main()
