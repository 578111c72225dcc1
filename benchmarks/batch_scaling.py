"""Batch scoring on a Ray cluster against the local executor, on this machine.

    .venv/bin/python benchmarks/batch_scaling.py [--rows 2000000] [--chunk-rows 100000]

The sample model scores a Parquet data asset of 2,000,000 rows three ways, in the same run: the local
executor (`loopline batch invoke`: one process reading and writing, the model in its sandbox), and a
batch deployment on a local Ray cluster (two CPUs, started here) with one and with two scoring actors.
Each figure is the wall time of the command, Ray's job submission and actor start-up included; Ray's
fixed cost per job is measured on an asset of one chunk and printed too, with how many of the machine's
cores the local executor keeps busy while it scores (its CPU time over its wall time, start-up aside),
which bounds what any executor could gain here. Needs the Ray extra: pip install 'loopline[ray]'.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import sys
import tempfile
import time
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # the tests' local Ray cluster

from tests.ray_cluster import local_ray_cluster

from batch import BIN, prepare, run


def timed(project: Path, *argv: str) -> tuple[float, dict[str, object]]:
    """Wall time of ``loopline batch invoke ... --json``, and its job."""
    seconds, _cpu, job = busy(project, *argv)
    return seconds, job


def busy(project: Path, *argv: str) -> tuple[float, float, dict[str, object]]:
    """Wall time and CPU time (loopline's and its sandbox's, not a Ray cluster's) of ``loopline batch
    invoke ... --json``, and its job."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    out = run(BIN / "loopline", "batch", "invoke", *argv, "--json", cwd=project)
    seconds = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime
    return seconds, cpu, json.loads(out)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rows", type=int, default=2_000_000)
    parser.add_argument("--chunk-rows", type=int, default=100_000)
    args = parser.parse_args()
    scratch = Path(tempfile.mkdtemp(prefix="loopline-scaling-"))
    try:
        project, data, _model = prepare(scratch, args.rows)
        small = data.with_name("one-chunk.parquet")
        import pandas as pd

        pd.read_parquet(data).head(1000).to_parquet(small, index=False)
        run(BIN / "loopline", "data", "register", "small", "--path", f"inbox://{small.name}", cwd=project)
        (scratch / "ray").mkdir()
        with local_ray_cluster(scratch / "ray", cpus=2) as address:
            config = yaml.safe_load((project / "loopline.yaml").read_text())
            target = {"kind": "ray", "address": address, "num_cpus": 1}
            config["compute"] = {
                "targets": {"one": {**target, "workers": 1}, "two": {**target, "workers": 2}}
            }
            config["batch"] = {"chunk_rows": args.chunk_rows, "max_chunk_mb": 1024}
            (project / "loopline.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
            timed(project, "bench", "--input", "small", "--compute", "two")  # the first job installs nothing
            overhead = min(
                timed(project, "bench", "--input", "small", "--compute", "two")[0] for _ in range(2)
            )
            local_small = min(timed(project, "bench", "--input", "small")[0] for _ in range(2))
            # How many cores the local executor keeps busy while it scores (start-up aside): no executor
            # on this machine can score faster than the cores it leaves idle allow.
            small_seconds, small_cpu, _ = busy(project, "bench", "--input", "small")
            local_seconds, local_cpu, local_job = busy(project, "bench", "--input", "million")
            scoring_cores = (local_cpu - small_cpu) / (local_seconds - small_seconds)
            figures = {
                "local executor": (local_seconds, local_job),
                "Ray, 1 actor": timed(project, "bench", "--input", "million", "--compute", "one"),
                "Ray, 2 actors": timed(project, "bench", "--input", "million", "--compute", "two"),
            }
        rows = args.rows
        print(f"{rows:,} rows of Parquet, chunks of {args.chunk_rows:,} rows; a local Ray cluster of 2 CPUs")
        print(f"{'':<20}{'rows/s':>12}{'seconds':>10}{'x local':>10}")
        local_seconds = figures["local executor"][0]
        for label, (seconds, job) in figures.items():
            assert job["rows"] == rows and job["status"] == "succeeded", job
            print(f"{label:<20}{rows / seconds:>12,.0f}{seconds:>10.2f}{local_seconds / seconds:>10.2f}")
        ray_two = figures["Ray, 2 actors"][0]
        print(
            f"\nRay with 2 actors: {local_seconds / ray_two:.2f}x the local executor (goal >= 1.6x). "
            f"Ray's fixed cost per job: {overhead - local_small:.1f} s ({overhead:.1f} s for one chunk of "
            f"1,000 rows, {local_small:.1f} s locally)."
        )
        cores = os.cpu_count() or 1
        print(
            f"While it scores, the local executor keeps {scoring_cores:.2f} of this machine's {cores} cores "
            f"busy (reading and writing in loopline, scoring in its sandbox): no executor here can score "
            f"more than {cores / scoring_cores:.2f}x its rows per second, start-up aside."
        )
        # start-up aside: beyond what the whole command takes for one chunk (loopline's start included)
        per_actor = rows / (ray_two - overhead) / 2
        print(
            f"Scoring rate per actor, start-up aside: {per_actor:,.0f} rows/s; 100 million rows on N nodes "
            f"of 2 actors: about {100e6 / per_actor / 2:,.0f} s / N + {overhead:.0f} s."
        )
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    main()
