"""Promoting a model version whose files hold an extra 200 MB, against the naive way.

    .venv/bin/python benchmarks/promotion.py [--megabytes 200] [--repeat 3]

One run, one machine, page cache warm for everyone:
- same storage: loopline copies the shared registry's version into test (both on one model store) against
  the naive way (download the version's files from one MLflow store, `log_artifacts` them to a run of the
  other, register that run's model). Target: at least 20x faster.
- across storages: loopline copies the version into prod, whose model store is another folder, against a
  plain durable copy of the same files (`shutil.copytree` + fsync, as a crash-safe copy must be; the
  copy without fsync is shown too). Target: within 2x.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BIN = Path(sys.executable).parent
ENV = {
    **os.environ,
    "GIT_AUTHOR_NAME": "bench",
    "GIT_AUTHOR_EMAIL": "bench@example.com",
    "GIT_COMMITTER_NAME": "bench",
    "GIT_COMMITTER_EMAIL": "bench@example.com",
}


def run(*argv: object, cwd: Path) -> None:
    done = subprocess.run(
        [str(a) for a in argv], cwd=cwd, env=ENV, capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(map(str, argv))} failed:\n{done.stderr[-2000:]}")


def project_with_a_big_model(scratch: Path, megabytes: int, other_store: Path) -> Path:
    project = scratch / "bench"
    run(BIN / "loopline", "init", project, "--tier", "full", cwd=scratch)
    (project / "blob.bin").write_bytes(os.urandom(megabytes * 1024 * 1024))
    train = project / "train.py"
    train.write_text(
        train.read_text().replace(
            '            name="model",\n', '            name="model",\n            code_paths=["blob.bin"],\n'
        )
    )
    (project / ".gitignore").write_text((project / ".gitignore").read_text() + "blob.bin\n")
    with (project / "loopline.yaml").open("a") as handle:
        handle.write(f"workspaces:\n  prod:\n    model_store: {other_store}\n")
    run("git", "add", "-A", cwd=project)
    run("git", "commit", "-qm", "a big model", cwd=project)
    run(BIN / "loopline", "up", cwd=project)
    run(BIN / "loopline", "inner-loop", "-q", cwd=project)
    return project


def naive_promotion(source_uri: str, tracking_uri: str, name: str, scratch: Path) -> float:
    """Download from one store, log and register in another: what teams script by hand."""
    import mlflow
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri, tracking_uri)
    experiment = client.get_experiment_by_name("naive") or client.get_experiment(
        client.create_experiment("naive")
    )
    started = time.perf_counter()
    local = Path(tempfile.mkdtemp(dir=scratch))
    downloaded = mlflow.artifacts.download_artifacts(artifact_uri=source_uri, dst_path=str(local))
    run_info = client.create_run(experiment.experiment_id)
    client.log_artifacts(run_info.info.run_id, downloaded, "model")
    client.set_terminated(run_info.info.run_id)
    with contextlib.suppress(Exception):  # already there from an earlier repeat
        client.create_registered_model(name)
    client.create_model_version(name, f"runs:/{run_info.info.run_id}/model", run_info.info.run_id)
    elapsed = time.perf_counter() - started
    shutil.rmtree(local, ignore_errors=True)
    return elapsed


def plain_copy(folder: Path, scratch: Path, durable: bool) -> float:
    target = scratch / f"plain-{time.monotonic_ns()}"
    started = time.perf_counter()
    shutil.copytree(folder, target)
    if durable:
        for path in target.rglob("*"):
            descriptor = os.open(path, os.O_RDONLY | (os.O_DIRECTORY if path.is_dir() else 0))
            os.fsync(descriptor)
            os.close(descriptor)
    elapsed = time.perf_counter() - started
    shutil.rmtree(target)
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--megabytes", type=int, default=200)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    scratch = Path(tempfile.mkdtemp(prefix="loopline-promotion-"))
    try:
        project = project_with_a_big_model(scratch, args.megabytes, scratch / "other-store")
        os.chdir(project)
        from loopline import registry
        from loopline.instance import Instance
        from loopline.loops.outer import registry_version

        instance = Instance.open(project)
        shared = registry_version(instance, instance.settings.config.model.name, None)
        folder = Path(shared.source_uri.removeprefix("file://"))
        size = sum(p.stat().st_size for p in folder.rglob("*") if p.is_file()) / 1e6
        instance.store("test").client.search_registered_models()  # open the stores before timing
        instance.store("prod").client.search_registered_models()
        same, across, naive, durable, fast = [], [], [], [], []
        for _ in range(args.repeat):
            started = time.perf_counter()
            registry.copy_version(instance, shared, "test")
            same.append(time.perf_counter() - started)
            started = time.perf_counter()
            registry.copy_version(instance, shared, "prod")
            across.append(time.perf_counter() - started)
            shutil.rmtree(scratch / "other-store" / "sha256")  # the next repeat copies again
            naive.append(
                naive_promotion(
                    shared.source_uri, instance.settings.store("test").tracking_uri, "naive-model", scratch
                )
            )
            durable.append(plain_copy(folder, scratch, durable=True))
            fast.append(plain_copy(folder, scratch, durable=False))
        rows = [
            ("loopline, same storage (shared -> test)", same),
            ("naive download + log + register", naive),
            ("loopline, across storages (shared -> prod)", across),
            ("plain copy + fsync", durable),
            ("plain copy, no fsync", fast),
        ]
        print(f"model folder: {size:.0f} MB, median of {args.repeat}")
        for label, samples in rows:
            print(f"  {label:<44}{statistics.median(samples):>8.3f} s")
        speedup = statistics.median(naive) / statistics.median(same)
        ratio = statistics.median(across) / statistics.median(durable)
        print(
            f"\nsame storage: {speedup:.0f}x faster than the naive way (target >= 20x: "
            f"{'met' if speedup >= 20 else 'MISSED'})"
        )
        print(
            f"across storages: {ratio:.2f}x a plain durable copy "
            f"(target <= 2x: {'met' if ratio <= 2 else 'MISSED'}); "
            f"{statistics.median(across) / statistics.median(fast):.2f}x a copy without fsync"
        )
    finally:
        os.chdir("/")
        shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    main()
