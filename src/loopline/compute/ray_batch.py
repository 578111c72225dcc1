"""Batch scoring on a Ray cluster: the job's chunks through an actor pool of Ray Data.

loopline submits a Ray job (``python -m loopline.compute.ray_batch``) whose driver runs on the cluster:
it hands the chunks whose part is missing to an actor pool (``map_batches`` with :class:`ChunkScorer`,
``compute.targets.NAME.workers`` actors). Each actor verifies the model's files against their digest and
loads the model once, in loopline's sandbox, then takes chunks: it reads one from the input datastore,
scores it and writes its part to the predictions datastore, exactly as the local executor would (see
``chunks.py``). The driver prints one line per part written; loopline, following the job's log, records
each, so a job killed anywhere resumes without losing or repeating a row.
"""

from __future__ import annotations

import json
import os
import re
import sys
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

from loopline.compute.chunks import Chunk, part_bytes, part_name, read_run, runs
from loopline.compute.ray_jobs import STORE_CREDENTIALS, run_job
from loopline.compute.targets import RayTarget
from loopline.errors import ComputeFailed, LooplineError, ModelFailed
from loopline.storage.datastores import Datastore, text_columns, with_partitions

__all__ = ["ChunkScorer", "main", "score_on_ray"]

SPEC = "loopline-batch.json"
MARK = "loopline-part "
"""How the driver's log says a part was written: ``loopline-part INDEX ROWS BYTES``."""
REFUSED = "loopline-refused "
"""How the driver's log says why the model refused the rows: ``loopline-refused MESSAGE``."""
_PART = re.compile(re.escape(MARK) + r"(\d+) (\d+) (\d+)")


def _say(line: str) -> None:
    """Write ``line`` to the job's log in one write: Ray runs the driver unbuffered, so ``print`` writes a
    line and its newline apart, and a log line of Ray's other threads could land between the two."""
    sys.stdout.flush()
    os.write(sys.stdout.fileno(), f"{line}\n".encode())


class ChunkScorer:
    """One actor of the pool: a model loaded once, and the datastores it reads and writes."""

    def __init__(self, spec: dict[str, Any]) -> None:
        from loopline.sandbox import SandboxedModel
        from loopline.storage.models import model_store_of

        store = model_store_of(spec["source_uri"])
        self.model = SandboxedModel(store.verify(spec["content_digest"]))
        self.inbox = Datastore(**spec["inbox"])
        self.predictions = Datastore(**spec["predictions"])
        self.folder = spec["folder"]
        self.keep = tuple(spec["keep"])
        self.partitions: dict[str, dict[str, Any]] = spec.get("partitions", {})
        self.texts = text_columns(self.model.folder, kept=self.keep)

    def __call__(self, batch: dict[str, Any]) -> dict[str, list[str]]:
        done: list[str] = []
        try:
            for encoded in batch["run"]:
                run = [Chunk(**fields) for fields in json.loads(str(encoded))]
                for chunk, read in read_run(self.inbox, run, self.texts):
                    frame = with_partitions(read, self.partitions.get(chunk.file, {}), self.texts)
                    part = part_name(self.folder, chunk.index)
                    if not self.predictions.exists(part):
                        answers = self.model.score(frame, chunk.start, self.keep)
                        self.predictions.write_atomic(
                            part, part_bytes(answers, chunk.start, frame, self.keep)
                        )
                    done.append(f"{chunk.index} {len(frame)} {int(frame.memory_usage(deep=True).sum())}")
        except LooplineError as refused:  # told to the driver as it is: Ray's wrapping would bury it
            return {"done": [",".join(done)], "refused": [refused.message.splitlines()[0]]}
        return {"done": [",".join(done)], "refused": [""]}  # "INDEX ROWS BYTES" of each chunk

    def __del__(self) -> None:
        model = getattr(self, "model", None)  # absent when __init__ failed (a changed model file, say)
        if model is not None:
            model.close()


def main() -> int:
    """The driver, on the cluster: score the chunks of ``loopline-batch.json`` with an actor pool."""
    import logging

    import ray

    spec = json.loads(Path(SPEC).read_text())
    ray.init(logging_level=logging.ERROR, log_to_driver=False)
    context = ray.data.DataContext.get_current()
    context.enable_progress_bars = False
    context.print_on_execution_start = False
    pieces = spec.pop("runs")
    scored = ray.data.from_items(pieces, override_num_blocks=len(pieces)).map_batches(
        ChunkScorer,
        fn_constructor_kwargs={"spec": spec},
        batch_size=1,
        concurrency=spec["workers"],
        num_cpus=spec["num_cpus"],
        num_gpus=spec["num_gpus"] or None,
        batch_format="numpy",
    )
    for row in scored.iter_rows():
        for done in filter(None, str(row["done"]).split(",")):
            _say(f"{MARK}{done}")
        if str(row["refused"]):  # the same one-line reason as the local executor's; the job ends here
            _say(f"{REFUSED}{row['refused']}")
            return 1
    return 0


def score_on_ray(
    target: RayTarget,
    chunks: list[Chunk],
    *,
    source_uri: str,
    content_digest: str,
    inbox: Datastore,
    predictions: Datastore,
    folder: str,
    log_path: Path,
    on_chunk: Callable[[int, int, int], None],
    keep: Sequence[str] = (),
    partitions: dict[str, dict[str, Any]] | None = None,
) -> None:
    """Score ``chunks`` on the cluster; ``on_chunk(index, rows, bytes)`` as each part is written;
    ``partitions``: the partition columns of the files of a partitioned folder (see ``with_partitions``)."""
    if not chunks:
        return
    workers = min(target.settings.workers, len(chunks))
    spec = {
        # runs of consecutive chunks, about one per actor, each read in one pass
        "runs": [{"run": json.dumps([asdict(c) for c in run])} for run in runs(chunks, workers)],
        "source_uri": source_uri,
        "content_digest": content_digest,
        "inbox": asdict(inbox),
        "predictions": asdict(predictions),
        "folder": folder,
        "keep": list(keep),
        "partitions": {c.file: (partitions or {})[c.file] for c in chunks if c.file in (partitions or {})},
        "workers": workers,
        "num_cpus": target.settings.num_cpus,
        "num_gpus": target.settings.num_gpus,
    }

    refusals: list[str] = []

    def line(text: str) -> None:
        if part := _PART.fullmatch(text):  # a mangled line only costs progress: the parts are checked
            index, rows, size = (int(value) for value in part.groups())
            on_chunk(index, rows, size)
        elif text.startswith(REFUSED):
            refusals.append(text.removeprefix(REFUSED).strip())

    env = {key: value for key, value in os.environ.items() if key.startswith(STORE_CREDENTIALS)}
    with tempfile.TemporaryDirectory(prefix="loopline-ray-batch-") as scratch:
        (Path(scratch) / SPEC).write_text(json.dumps(spec))
        failure = run_job(
            target,
            folder=Path(scratch),
            entrypoint=["python", "-m", "loopline.compute.ray_batch"],
            kind="batch",
            env=env,
            log_path=log_path,
            on_line=line,
        )
    if failure is not None and refusals:
        raise ModelFailed(refusals[0])
    if failure is not None:
        raise ComputeFailed(f"scoring failed as {failure}; its log is {log_path}")
    absent = [chunk.index for chunk in chunks if not predictions.exists(part_name(folder, chunk.index))]
    if absent:  # the job says it succeeded: a part it did not write is never taken as scored
        raise ComputeFailed(
            f"the Ray job ended without writing the part of chunk {absent[0]} ({len(absent)} of "
            f"{len(chunks)} missing); resume the job to score them; its log is {log_path}"
        )


if __name__ == "__main__":
    code = main()
    # Every line is written; skip Ray's teardown (most of a second of every job: the cluster ends the
    # job's actors, and their sandboxes, when the driver is gone).
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)
