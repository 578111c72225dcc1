"""Finding a model version by commit among many versions: loopline's catalog against MLflow's tag search.

    .venv/bin/python benchmarks/registry_lookup.py [--versions 10000]

Both stores hold the same versions (one model, one commit each); each lookup asks for the version of a
random commit. Target: within 50 ms among 10,000 versions.
"""

from __future__ import annotations

import argparse
import random
import statistics
import tempfile
import time
from pathlib import Path

from sqlalchemy import insert

from loopline import catalog
from loopline.domain import utcnow
from loopline.mlflow_store import quiet_mlflow
from loopline.state import Database
from loopline.state.schema import model_versions


def median_ms(samples: list[float]) -> float:
    return statistics.median(samples) * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--versions", type=int, default=10_000)
    parser.add_argument("--lookups", type=int, default=200)
    args = parser.parse_args()
    quiet_mlflow()
    from mlflow import MlflowClient
    from mlflow.entities.model_registry import ModelVersionTag

    commits = [f"{random.getrandbits(160):040x}" for _ in range(args.versions)]
    with tempfile.TemporaryDirectory() as scratch:
        db = Database(f"sqlite:///{scratch}/state.db")
        db.upgrade()
        with db.write() as connection:
            connection.execute(
                insert(model_versions),
                [
                    dict(
                        workspace="shared",
                        name="m",
                        version=i + 1,
                        git_commit=c,
                        git_branch="main",
                        git_dirty=False,
                        diff_digest=None,
                        content_digest="sha256:" + "0" * 64,
                        source_uri="file:///x",
                        run_id=None,
                        source_workspace="dev",
                        validation_status=None,
                        created_at=utcnow(),
                        created_by="bench",
                    )
                    for i, c in enumerate(commits)
                ],
            )
        uri = f"sqlite:///{Path(scratch) / 'mlflow.db'}"
        client = MlflowClient(uri, uri)
        client.create_registered_model("m")
        started = time.perf_counter()
        store = client._get_registry_client().store
        for commit in commits:
            store.create_model_version("m", "file:///x", tags=[ModelVersionTag("git_commit", commit)])
        print(f"created {args.versions} MLflow versions in {time.perf_counter() - started:.1f} s")
        targets = random.sample(commits, min(args.lookups, len(commits)))
        ours, theirs = [], []
        for commit in targets:
            started = time.perf_counter()
            found = catalog.find_by_commit(db, "shared", "m", commit)
            ours.append(time.perf_counter() - started)
            assert found is not None and found.git_commit == commit
            started = time.perf_counter()
            hits = client.search_model_versions(f"name = 'm' AND tags.git_commit = '{commit}'")
            theirs.append(time.perf_counter() - started)
            assert len(hits) == 1
    print(f"{'lookup by commit':<36}{'median ms':>10}{'p95 ms':>10}")
    for name, samples in [("MLflow search_model_versions (baseline)", theirs), ("loopline catalog", ours)]:
        p95 = sorted(samples)[int(len(samples) * 0.95) - 1] * 1000
        print(f"{name:<36}{median_ms(samples):>10.2f}{p95:>10.2f}")
    print(
        f"\nloopline is {median_ms(theirs) / median_ms(ours):.1f}x faster; "
        f"target <= 50 ms among {args.versions}: {'met' if median_ms(ours) <= 50 else 'MISSED'}"
    )


if __name__ == "__main__":
    main()
