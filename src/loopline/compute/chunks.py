"""A batch job's input as numbered chunks, and each chunk's part of the output.

The local executor reads the files one after another, ``chunk_rows`` rows at a time; a chunk here is the
same slice (file, first row in the file, rows), numbered in the same order, so that any executor writes
the same ``part-NNNNN.parquet`` files with the same global row numbers, and a resumed job skips exactly
the parts that exist.
"""

from __future__ import annotations

import io
from collections.abc import Collection, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from loopline.errors import InvalidData, UsageError
from loopline.storage.datastores import Datastore, file_csv_options, is_parquet, read_csv_strictly

__all__ = ["Chunk", "part_bytes", "part_name", "plan", "read_run", "runs"]


@dataclass(frozen=True)
class Chunk:
    """Rows ``skip`` to ``skip + rows`` of ``file``; ``start`` is the job-wide number of its first row,
    ``group`` the Parquet row group its first row is in (0 in a CSV)."""

    index: int
    file: str
    skip: int
    rows: int
    start: int
    group: int = 0


def part_name(folder: str, index: int) -> str:
    """Where chunk ``index`` of the job writing into ``folder`` keeps its predictions."""
    return f"{folder}/part-{index:05d}.parquet"


def part_bytes(frame: Any, start: int, rows: Any = None, keep: Sequence[str] = ()) -> bytes:
    """The predictions ``frame`` as Parquet, with a ``row`` column numbering its rows from ``start`` and,
    after it, the columns ``keep`` of the input ``rows`` they answer (an ID to join them back by, say)."""
    import numpy as np

    clash = sorted(set(keep) & {str(column) for column in frame.columns})
    if clash:
        raise UsageError(
            f"the model answers a column '{clash[0]}', which --keep also names; keep other columns, "
            "or rename that one in the data"
        )
    for position, name in enumerate(keep):
        if name not in rows.columns:
            raise InvalidData(f"a file of the input has no column '{name}' to keep; every file needs it")
        frame.insert(position, name, rows[name].array)  # its type kept (nullable integers, text)
    frame.insert(0, "row", np.arange(start, start + len(frame), dtype=np.int64))
    buffer = io.BytesIO()
    frame.to_parquet(buffer, index=False)
    return buffer.getvalue()


def _row_groups(store: Datastore, name: str) -> list[int]:
    """The rows of each row group of a Parquet file; one group of all the rows of a CSV."""
    if is_parquet(name):
        import pyarrow.parquet as pq

        with store.open(name) as handle:
            meta = pq.ParquetFile(handle).metadata
            return [meta.row_group(group).num_rows for group in range(meta.num_row_groups)]
    # A CSV's rows are known only by parsing it (a quoted field may hold a line break); parsing it as the
    # local executor does also refuses a file it would refuse, before any part is written.
    return [sum(len(frame) for frame in store.frames(name, 1 << 18))]


def plan(store: Datastore, files: list[str], chunk_rows: int) -> list[Chunk]:
    """The chunks of ``files`` (in that order), ``chunk_rows`` rows each but the last of a file."""
    chunks: list[Chunk] = []
    start = 0
    for name in files:
        groups = _row_groups(store, name)
        ends = [sum(groups[: i + 1]) for i in range(len(groups))]
        for skip in range(0, ends[-1] if ends else 0, chunk_rows):
            rows = min(chunk_rows, ends[-1] - skip)
            group = next(i for i, end in enumerate(ends) if end > skip)
            chunks.append(Chunk(len(chunks), name, skip, rows, start, group))
            start += rows
    return chunks


def runs(chunks: list[Chunk], pieces: int) -> list[list[Chunk]]:
    """``chunks`` as runs of consecutive chunks that start in one row group of one file (at most about
    ``pieces`` runs' worth each), read in one pass: a chunk read alone would decode its row group, or its
    CSV file, from the start."""
    size = max(1, -(-len(chunks) // max(1, pieces)))
    found: list[list[Chunk]] = []
    for chunk in chunks:
        last = found[-1][-1] if found else None
        joins = last is not None and (last.file, last.group, last.index + 1) == (
            chunk.file,
            chunk.group,
            chunk.index,
        )
        if joins and len(found[-1]) < size:
            found[-1].append(chunk)
        else:
            found.append([chunk])
    return found


def read_run(store: Datastore, run: list[Chunk], texts: Collection[str] = ()) -> Iterator[tuple[Chunk, Any]]:
    """Each chunk of ``run`` (consecutive chunks of one file) with its rows as a DataFrame, parsed as the
    local executor parses them (the columns ``texts`` as text), reading the file once from the run's
    first row."""
    first = run[0]
    with store.open(first.file) as handle:
        if not is_parquet(first.file):
            options = file_csv_options(handle, first.file, texts)
            frames = read_csv_strictly(
                handle, skiprows=range(1, first.skip + 1), chunksize=first.rows, **options
            )
            yield from zip(run, frames, strict=False)
            return
        yield from _parquet_run(handle, run)


def _parquet_run(handle: Any, run: list[Chunk]) -> Iterator[tuple[Chunk, Any]]:
    import pyarrow as pa
    import pyarrow.parquet as pq

    reader = pq.ParquetFile(handle)
    groups, position, seen = [], None, 0
    for group in range(reader.metadata.num_row_groups):
        size = reader.metadata.row_group(group).num_rows
        if seen + size > run[0].skip and seen < run[-1].skip + run[-1].rows:
            groups.append(group)
            position = seen if position is None else position
        seen += size
    batches = reader.iter_batches(batch_size=1 << 16, row_groups=groups)
    held: list[Any] = []  # record batches, the first of them starting at file row ``position``
    for chunk in run:
        assert position is not None
        while sum(batch.num_rows for batch in held) < chunk.skip + chunk.rows - position:
            held.append(next(batches))
        table = pa.Table.from_batches(held, schema=reader.schema_arrow)
        yield chunk, table.slice(chunk.skip - position, chunk.rows).to_pandas()
        end = chunk.skip + chunk.rows
        held, position = table.slice(end - position).to_batches(), end
