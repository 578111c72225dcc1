"""A job's chunks, read in runs as the Ray executor reads them, equal the local executor's chunks."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from loopline.compute.chunks import plan, read_run, runs
from loopline.storage.datastores import Datastore


@pytest.fixture
def inbox(tmp_path: Path) -> Datastore:
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"a": rng.normal(size=1000), "b": rng.integers(0, 9, 1000), "c": ["x", "y"] * 500})
    pq.write_table(
        pa.Table.from_pandas(frame, preserve_index=False), tmp_path / "one.parquet", row_group_size=300
    )
    frame.head(430).to_csv(tmp_path / "two.csv", index=False)
    return Datastore("inbox", str(tmp_path))


@pytest.mark.parametrize("pieces", [1, 3, 7, 100])
def test_runs_of_chunks_read_as_the_local_executor_reads_them(inbox: Datastore, pieces: int) -> None:
    files = ["one.parquet", "two.csv"]
    chunks = plan(inbox, files, 250)
    local = [frame for name in files for frame in inbox.frames(name, 250)]
    assert [c.rows for c in chunks] == [len(f) for f in local] == [250, 250, 250, 250, 250, 180]
    assert [c.start for c in chunks] == [0, 250, 500, 750, 1000, 1250]
    found = runs(chunks, pieces)
    assert [c for run in found for c in run] == chunks
    assert all(len({c.file for c in run}) == 1 for run in found)  # a run never spans two files
    read = [(chunk, frame) for run in found for chunk, frame in read_run(inbox, run)]
    assert [chunk for chunk, _ in read] == chunks
    for (_, frame), expected in zip(read, local, strict=True):
        pd.testing.assert_frame_equal(frame.reset_index(drop=True), expected.reset_index(drop=True))


def test_a_resumed_job_reads_only_the_missing_chunks(inbox: Datastore) -> None:
    chunks = plan(inbox, ["one.parquet"], 250)
    missing = [chunks[1], chunks[3]]
    found = runs(missing, 1)
    assert found == [[chunks[1]], [chunks[3]]]  # not consecutive: two runs, each read from its own row
    frames = [frame for run in found for _, frame in read_run(inbox, run)]
    whole = pq.read_table(Path(inbox.url) / "one.parquet").to_pandas()
    pd.testing.assert_frame_equal(
        frames[1].reset_index(drop=True), whole.iloc[750:1000].reset_index(drop=True)
    )
