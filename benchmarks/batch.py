"""Batch scoring throughput and memory: `loopline batch invoke` against one in-process predict call.

    .venv/bin/python benchmarks/batch.py [--rows 1000000]

The sample model scores a Parquet data asset of 1,000,000 rows (30 features). The baseline reads the
whole file into memory and calls the model's predict once; loopline reads, scores and writes Parquet in
chunks of `batch.chunk_rows`, checks the input's digest and writes the lineage record. Both run in
processes of their own; rows per second and peak memory (max RSS) are printed with their ratio.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

BIN = Path(sys.executable).parent
ENV = {
    **os.environ,
    "GIT_AUTHOR_NAME": "b",
    "GIT_AUTHOR_EMAIL": "b@example.com",
    "GIT_COMMITTER_NAME": "b",
    "GIT_COMMITTER_EMAIL": "b@example.com",
}

BASELINE = textwrap.dedent("""
    import json, sys, time
    import mlflow.sklearn, pandas as pd
    model = mlflow.sklearn.load_model(sys.argv[1])
    started = time.perf_counter()
    frame = pd.read_parquet(sys.argv[2])
    model.predict(frame.to_numpy())
    print(json.dumps({"seconds": time.perf_counter() - started}))
""")


def run(*argv: object, cwd: Path) -> str:
    done = subprocess.run(
        [str(a) for a in argv], cwd=cwd, env=ENV, capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(map(str, argv))} failed:\n{done.stderr[-2000:]}")
    return done.stdout


def peak(*argv: object, cwd: Path) -> tuple[str, float]:
    """Run a command; its stdout and its peak resident memory in MB (as /usr/bin/time measures it)."""
    with tempfile.NamedTemporaryFile(suffix=".rss") as report:
        out = run("/usr/bin/time", "-o", report.name, "-f", "%M", *argv, cwd=cwd)
        return out, float(Path(report.name).read_text().split()[-1]) / 1024


def prepare(scratch: Path, rows: int) -> tuple[Path, Path, str]:
    """A project whose inbox holds a Parquet data asset of ``rows`` rows; its batch endpoint `bench`."""
    import numpy as np
    import pandas as pd

    project = scratch / "bench"
    run(BIN / "loopline", "init", project, "--tier", "simple", cwd=scratch)
    run("git", "add", "-A", cwd=project)
    run("git", "commit", "-qm", "bench", cwd=project)
    run(BIN / "loopline", "up", cwd=project)
    run(BIN / "loopline", "inner-loop", "-q", cwd=project)
    heldout = pd.read_csv(project / "data" / "inbox" / "heldout.csv").drop(columns=["label"])
    rng = np.random.default_rng(0)
    frame = heldout.sample(n=rows, replace=True, random_state=0).reset_index(drop=True)
    frame = frame * rng.uniform(0.95, 1.05, size=frame.shape)
    data = project / ".loopline" / "datastores" / "inbox" / "million.parquet"
    frame.to_parquet(data, index=False)
    run(BIN / "loopline", "data", "register", "million", "--path", "inbox://million.parquet", cwd=project)
    run(BIN / "loopline", "batch-endpoint", "create", "bench", cwd=project)
    run(BIN / "loopline", "batch-deployment", "create", "bench", "blue", "--version", "1", cwd=project)
    status = json.loads(run(BIN / "loopline", "status", "--json", cwd=project))
    return project, data, next(m for m in status["models"] if m["workspace"] == "dev")["source_uri"]


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rows", type=int, default=1_000_000)
    args = parser.parse_args()
    scratch = Path(tempfile.mkdtemp(prefix="loopline-batch-"))
    try:
        project, data, model = prepare(scratch, args.rows)
        (scratch / "baseline.py").write_text(BASELINE)
        out, baseline_rss = peak(sys.executable, scratch / "baseline.py", model, data, cwd=scratch)
        baseline = {**json.loads(out), "rss_mb": baseline_rss}
        out, batch_rss = peak(
            BIN / "loopline", "batch", "invoke", "bench", "--input", "million", "--json", cwd=project
        )
        folder = project / ".loopline" / "datastores" / "predictions" / "bench" / json.loads(out)["id"]
        lineage = json.loads((folder / "_lineage.json").read_text())
        ours = {"seconds": lineage["seconds"], "rss_mb": batch_rss}
        print(
            f"{args.rows:,} rows, {data.stat().st_size / 2**20:.0f} MB of Parquet; chunks of "
            f"{lineage['chunk_rows']:,} rows"
        )
        print(f"{'':<34}{'rows/s':>12}{'seconds':>10}{'peak MB':>10}")
        for label, result in (("in-process predict, one call", baseline), ("loopline batch invoke", ours)):
            print(
                f"{label:<34}{args.rows / result['seconds']:>12,.0f}{result['seconds']:>10.2f}"
                f"{result['rss_mb']:>10.0f}"
            )
        print(
            f"\nloopline: {baseline['seconds'] / ours['seconds']:.2f}x the throughput of one in-process "
            f"call, {ours['rss_mb'] / baseline['rss_mb']:.2f}x its peak memory (and it writes Parquet "
            "predictions, checks the input's digest and records lineage)"
        )
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    main()
