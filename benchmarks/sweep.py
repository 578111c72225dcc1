"""loopline's overhead per sweep trial beyond the training script's own time.

    .venv/bin/python benchmarks/sweep.py [--trials 6]

Makes the sample project (simple tier). The baseline: its training script run by itself, as many times as
there are trials, with MLflow pointed at a scratch store of the same kind (SQLite) the way loopline points
it. Then `loopline sweep --trials N` on the same project: each trial is timed from the moment loopline
starts it (Optuna asks for values) to the moment its value is told, which holds the script's own run and
everything loopline does around it (the parameters file, the session's tags, finding the runs and the
model, reading the metric). Goal: the median trial under the median script run + 0.3 s.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import loopline

BIN = Path(sys.executable).parent


class Clock:
    """A reporter that notes when each step was reported."""

    def __init__(self) -> None:
        self.steps: list[tuple[float, str]] = []

    def step(self, message: str) -> None:
        self.steps.append((time.monotonic(), message))

    def output(self, line: str) -> None:
        pass


def _git(path: Path, *args: str) -> None:
    subprocess.run(["git", *args], cwd=path, check=True, capture_output=True)


def baseline(project: Path, runs: int) -> list[float]:
    """The training script by itself, ``runs`` times (after one warm-up run)."""
    scratch = project.parent / "baseline-mlruns"
    scratch.mkdir()
    env = {
        **os.environ,
        "MLFLOW_TRACKING_URI": f"sqlite:///{scratch / 'mlflow.db'}",
        "MLFLOW_EXPERIMENT_NAME": "baseline",
        "_MLFLOW_SERVER_ARTIFACT_ROOT": str(scratch / "artifacts"),
    }
    times = []
    for index in range(runs + 1):
        started = time.monotonic()
        subprocess.run(
            [str(BIN / "python"), "train.py"], cwd=project, env=env, check=True, capture_output=True
        )
        if index:
            times.append(time.monotonic() - started)
    return times


def trials(clock: Clock) -> list[float]:
    """Each trial's time from its start to its value, from the reporter's steps."""
    started: dict[str, float] = {}
    spans = []
    for at, message in clock.steps:
        if message.startswith("trial ") and " of " in message:
            started[message.split()[1]] = at
        elif message.startswith("trial ") and ": " in message and message.split()[1].rstrip(":") in started:
            spans.append(at - started[message.split()[1].rstrip(":")])
    return spans


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=6)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        project = Path(folder) / "bench"
        loopline.init(project, "simple")
        _git(project, "add", "-A")
        _git(project, "commit", "-q", "-m", "sample")
        loopline.up(project)
        script = baseline(project, args.trials)
        clock = Clock()
        loopline.sweep(project, trials=args.trials, reporter=clock)
        spans = trials(clock)
    alone, trial = statistics.median(script), statistics.median(spans)
    print(f"training script alone:  median {alone:.2f} s over {len(script)} runs")
    print(f"loopline sweep trial:   median {trial:.2f} s over {len(spans)} trials")
    print(f"overhead per trial:     {trial - alone:+.2f} s (goal under 0.30 s); ratio {trial / alone:.2f}x")


if __name__ == "__main__":
    main()
