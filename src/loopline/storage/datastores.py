"""Datastores: ``inbox`` (input data) and ``predictions`` (what batch scoring writes), over fsspec.

A datastore is a local folder by default and any fsspec URL when configured: ``az://container/path``
(adlfs; credentials from ``AZURE_STORAGE_CONNECTION_STRING`` or the other ``AZURE_STORAGE_*``
variables), ``s3://bucket/path`` (s3fs), and so on. Paths inside one are written ``inbox://folder/file``.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import uuid
import warnings
from collections.abc import Callable, Collection, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from loopline.errors import InvalidData, NotFound, StoreUnavailable, UsageError, shorten
from loopline.storage.dialect import dialect, text_sample
from loopline.storage.digest import manifest_digest
from loopline.storage.fs import filesystem

__all__ = [
    "Datastore",
    "clean_path",
    "csv_columns",
    "csv_options",
    "date_columns",
    "file_csv_options",
    "first_rows",
    "header_hint",
    "header_of_numbers",
    "hive_partitions",
    "is_parquet",
    "read_csv_strictly",
    "read_table",
    "signature_columns",
    "split_reference",
    "text_columns",
    "with_partitions",
]

SCHEMES = ("inbox", "predictions")
_MOST_MLMODEL_BYTES = 4 * 1024 * 1024
_COMPRESSIONS = {".gz": "gzip", ".bz2": "bz2", ".zip": "zip", ".xz": "xz", ".zst": "zstd"}
# What pandas.read_csv takes for a missing value by default (its na_values).
_MISSING_MARKERS = (
    *("", "#N/A", "#N/A N/A", "#NA", "-1.#IND", "-1.#QNAN", "-NaN", "-nan", "1.#IND", "1.#QNAN", "<NA>"),
    *("N/A", "NA", "NULL", "NaN", "None", "n/a", "nan", "null"),
)


_HIVE_SEGMENT = re.compile(r"([^=/]+)=([^/]*)")
_HIVE_NULL = "__HIVE_DEFAULT_PARTITION__"  # how Hive and Spark name a partition of null values
_WHOLE_NUMBER = re.compile(r"-?[1-9]\d{0,17}|0")  # as a number's own text is written: no leading zero


def hive_partitions(paths: Sequence[str]) -> dict[str, dict[str, Any]]:
    """The partition columns of each file of a folder written partitioned, as Spark, Hive and pandas'
    ``to_parquet(partition_cols=...)`` write one (``region=north/year=2024/part-0.parquet``), by its
    path below the folder: each ``key=value`` folder above it, its value unescaped as Hive escapes it;
    a key whose every value is a whole number as a number is written (``2024``) holds integers, one
    with a value such as ``01`` (a text column's, as Spark writes it) text; Hive's
    ``__HIVE_DEFAULT_PARTITION__`` is null. Files of a folder not so written have none."""
    from urllib.parse import unquote

    found: dict[str, dict[str, str | None]] = {}
    texts: set[str] = set()  # keys with a value that is no whole number
    for path in paths:
        values: dict[str, str | None] = {}
        for part in path.split("/")[:-1]:
            if (segment := _HIVE_SEGMENT.fullmatch(part)) is not None:
                key, value = unquote(segment[1]), unquote(segment[2])
                values[key] = None if segment[2] == _HIVE_NULL else value
                if values[key] is not None and not _WHOLE_NUMBER.fullmatch(value):
                    texts.add(key)
        found[path] = values
    return {
        path: {k: v if k in texts or v is None else int(v) for k, v in values.items()}
        for path, values in found.items()
    }


def with_partitions(frame: Any, values: dict[str, Any], texts: Collection[str] = ()) -> Any:
    """``frame`` with the partition columns ``values`` of its file added after its own (a column the
    file holds itself is kept as it is); those of ``texts`` (the model takes them as text) as text."""
    for key, value in values.items():
        if key not in frame.columns:
            frame[key] = str(value) if key in texts and value is not None else value
    return frame


def is_parquet(name: str) -> bool:
    """Whether a file is Parquet, by its name (``.parquet``, ``.pq``); any other file is read as CSV."""
    return name.lower().endswith((".parquet", ".pq"))


def csv_options(
    name: str,
    columns: Sequence[str] = (),
    texts: Collection[str] = (),
    sample: tuple[str, bool] = ("", False),
) -> dict[str, Any]:
    """``pandas.read_csv``'s options for a CSV file, by its name, as pandas infers them from a path: its
    compression (``.csv.gz``, ``.bz2``, ``.zip``, ``.xz``, ``.zst``), and a tab between fields in ``.tsv``;
    by its first bytes (a ``text_sample``), another separator and a decimal comma (see ``dialect``).
    Of its ``columns`` (its header), those in ``texts`` are text: only an empty cell is missing there, so
    a text that reads as one of pandas' markers of a missing value (``NA``, Namibia's country code; ``None``;
    ``N/A``) stays that text. A first row with more fields than the header is never read as an index
    column (pandas' default, which shifts every value a column): ``read_csv_strictly`` refuses it."""
    lower = name.lower()
    compression = _compression(name)
    if compression is not None:
        lower = lower.rsplit(".", 1)[0]
    options: dict[str, Any] = {
        "compression": compression,
        "sep": "\t" if lower.endswith(".tsv") else ",",
        "index_col": False,
    }
    options.update(dialect(sample[0], options["sep"], sample[1]))
    if set(columns) & set(texts):
        na_values = {column: [""] if column in texts else list(_MISSING_MARKERS) for column in columns}
        options.update(keep_default_na=False, na_values=na_values)
    return options


def _compression(name: str) -> str | None:
    """The compression a file's name says (``.csv.gz``: gzip; see ``_COMPRESSIONS``), None for none."""
    lower = name.lower()
    return next((kind for suffix, kind in _COMPRESSIONS.items() if lower.endswith(suffix)), None)


def file_csv_options(handle: Any, name: str, texts: Collection[str] = ()) -> dict[str, Any]:
    """``csv_options`` for the CSV file open as ``handle`` (seekable), by its name and first bytes, its
    columns read from its header where ``texts`` are named; ``handle`` is left at the file's start."""
    import pandas as pd

    sample = text_sample(handle, _compression(name))
    handle.seek(0)
    options = csv_options(name, sample=sample)
    if texts:
        columns = [str(c) for c in pd.read_csv(handle, nrows=0, **options).columns]
        handle.seek(0)
        options = csv_options(name, columns, texts, sample)
    return options


def csv_columns(source: Any, name: str) -> list[str]:
    """A CSV file's column names (a path, or a seekable file open for reading), read from its header as
    ``file_csv_options`` reads the file."""
    import pandas as pd

    with _opened(source) as handle:
        return [str(c) for c in pd.read_csv(handle, nrows=0, **file_csv_options(handle, name)).columns]


@contextlib.contextmanager
def _opened(source: Any) -> Iterator[Any]:
    """``source`` open for reading: a path opened (and closed after), an open file as it is."""
    if isinstance(source, (str, Path)):
        with Path(source).open("rb") as handle:
            yield handle
    else:
        yield source


def read_table(path: Path, texts: Collection[str] = (), named: str | None = None) -> Any:
    """A file of this machine (Parquet by its name, else CSV) as a DataFrame, its columns ``texts`` read
    as text (see ``csv_options``); InvalidData naming it (as ``named``, else its file name) when it cannot
    be read as a table."""
    import pandas as pd

    parquet = is_parquet(path.name)
    with _read_as_table(named or path.name, parquet, lambda: _header(path, path.name)):
        if parquet:
            return pd.read_parquet(path)
        with path.open("rb") as handle:
            return read_csv_strictly(handle, **file_csv_options(handle, path.name, texts))


def first_rows(path: Path, count: int, texts: Collection[str] | None = None) -> Any:
    """The first ``count`` rows of a table file of this machine (Parquet by its name, else CSV), its
    columns ``texts`` read as text (see ``csv_options``; None: every column of a CSV); None where it is
    not a table pandas reads. Only those rows are read."""
    import pandas as pd

    try:
        if is_parquet(path.name):
            import pyarrow.parquet as pq

            table = pq.ParquetFile(path)
            batch = next(table.iter_batches(batch_size=count), None)
            return (batch if batch is not None else table.schema_arrow.empty_table()).to_pandas()
        with path.open("rb") as handle:
            options = file_csv_options(handle, path.name, texts or ())
            return pd.read_csv(handle, nrows=count, **options, **({"dtype": str} if texts is None else {}))
    except Exception:  # a file that only looks like a table: it tells nothing
        return None


def header_hint(columns: Sequence[str]) -> str | None:
    """What a CSV file's header (its ``columns``) says of a file that is not CSV (JSON) or has no header
    line; None when it says nothing. (Names separated by ';', a tab or '|' are read so: see ``dialect``.)"""
    first = str(columns[0]) if columns else ""
    if first.lstrip().startswith(("{", "[")):
        return (
            f"its first column reads '{shorten(first, 24)}', which looks like JSON; batch jobs read CSV "
            "(.csv, .tsv, compressed too) and Parquet (.parquet, .pq): convert it to one of these"
        )
    if (numbers := header_of_numbers(columns)) is not None:
        return f"its {numbers}"
    return None


def header_of_numbers(columns: Sequence[Any]) -> str | None:
    """Why a header whose names are all numbers (other than 0, 1, 2 by position, as pandas names an array's
    columns) is a row of values read as one, as a CSV file without a header line is read; None for any
    other header."""
    names = [str(column) for column in columns]
    if not names or names == [str(i) for i in range(len(names))]:
        return None
    for name in names:
        try:
            float(name)
        except ValueError:
            return None
    shown = ", ".join(shorten(name, 12) for name in names[:4]) + (", ..." if len(names) > 4 else "")
    return (
        f"header holds numbers ({shown}), not column names: the first line of a CSV file is its header, "
        "so a file without one loses its first row; write a header line first"
    )


def _header(source: Any, name: str) -> list[str]:
    """A CSV file's column names (``_column_names``); none where even its header cannot be read."""
    import pandas as pd

    try:
        return csv_columns(source, name)
    except (ValueError, OSError, pd.errors.ParserError, pd.errors.EmptyDataError):
        return []


def read_csv_strictly(source: Any, **options: Any) -> Any:
    """``pandas.read_csv`` (or, with ``chunksize``, its frames one by one), a row with more fields than the
    header refused (a ``ParserWarning`` raised) rather than its last fields cut off: a field holding the
    separator unquoted."""
    import pandas as pd

    if "chunksize" not in options:
        return _strictly(lambda: pd.read_csv(source, **options))
    return _strict_frames(_strictly(lambda: pd.read_csv(source, **options)))


def _strict_frames(reader: Any) -> Iterator[Any]:
    while (frame := _strictly(lambda: next(reader, None))) is not None:
        yield frame


def _strictly(read: Callable[[], Any]) -> Any:
    import pandas as pd

    with warnings.catch_warnings():
        warnings.simplefilter("error", pd.errors.ParserWarning)
        return read()


@contextlib.contextmanager
def _read_as_table(
    reference: str, parquet: bool, header: Callable[[], list[str]] | None = None
) -> Iterator[None]:
    """Turn pandas' and pyarrow's errors of reading a file that is no table into InvalidData naming it
    (a file that is missing or forbidden is raised as it is); ``header`` reads a CSV file's column names,
    to tell what a row wider than them means."""
    import pandas as pd

    try:
        yield
    except (
        ValueError,
        UnicodeDecodeError,
        ImportError,  # a compression whose library is missing (zstandard for .zst)
        OSError,
        pd.errors.ParserError,
        pd.errors.ParserWarning,  # raised by read_csv_strictly
        pd.errors.EmptyDataError,
    ) as exc:
        if isinstance(exc, (FileNotFoundError, PermissionError)):
            raise
        if isinstance(exc, UnicodeDecodeError) and isinstance(exc.object, bytes):
            if reference.lower().endswith(_SPREADSHEETS) or exc.object.startswith(_WORKBOOKS):
                raise InvalidData(_workbook(reference, exc.object)) from None
            raise InvalidData(_not_utf8(reference, exc.object[exc.start : exc.start + 1])) from None
        if isinstance(exc, pd.errors.ParserWarning):
            wider = header_hint(header() if header is not None else []) or (
                "a row has more fields than its header names; quote each field that holds the separator "
                '("loved it, really")'
            )
            raise InvalidData(f"{reference} is not a valid CSV table: {wider}") from None
        kind = "Parquet" if parquet else "CSV"
        problem = shorten((str(exc).strip().splitlines() or [type(exc).__name__])[0], 160)
        raise InvalidData(f"{reference} is not a valid {kind} table: {problem}") from None


_SPREADSHEETS = (".xlsx", ".xlsm", ".xlsb", ".xls", ".ods")
# How a workbook starts: a ZIP archive (.xlsx, .ods), or an OLE2 compound file (Excel 97's .xls)
_WORKBOOKS = (b"PK\x03\x04", b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1")


def _workbook(reference: str, head: bytes) -> str:
    """What to do with a spreadsheet, or another ZIP archive, given as a table (``head``: its bytes)."""
    save = 'save its sheet as CSV (Excel: Save As "CSV UTF-8") or Parquet and give that file'
    if reference.lower().endswith(_SPREADSHEETS) or not head.startswith(b"PK"):
        return f"{reference} is a spreadsheet (a workbook, not a table of text), not read as rows: {save}"
    return (
        f"{reference} is a ZIP archive, not a table of text: for a workbook (an Excel file is one), {save}; "
        "a zipped CSV is read as one when its name ends in .csv.zip"
    )


def _not_utf8(reference: str, byte: bytes) -> str:
    """What to do with a CSV file written in another encoding than UTF-8 (Excel's plain "CSV" is
    Windows-1252 on most machines)."""
    shown = byte.decode("cp1252", "replace")
    return (
        f"{reference} is not UTF-8 text: it holds byte 0x{byte.hex()} ({shown!r} in Windows-1252, as Excel's "
        'plain CSV writes it); save it as UTF-8 (Excel: "CSV UTF-8"; or `iconv -f WINDOWS-1252 -t UTF-8 '
        "FILE > NEW.csv`) and give that file"
    )


def text_columns(
    folder: Path, labels: str | Collection[str] = (), kept: Collection[str] = ()
) -> frozenset[str]:
    """The columns the model in ``folder`` takes as text (``string`` in its MLflow signature), which a CSV
    input gives it as written (see ``csv_options``); ``labels`` (the columns of true labels) where the model
    answers text (a classifier of classes named ``None`` or ``NA``, say); and those of ``kept`` (a batch
    job's columns carried into its output) that the model does not take, so an ID keeps its leading
    zeros. None where its signature names none."""
    inputs, outputs = _signature(folder)
    named = {str(c["name"]): _is_text(c) for c in inputs if isinstance(c, dict) and "name" in c}
    texts = {name for name, text in named.items() if text}
    if outputs and all(_is_text(c) for c in outputs):
        texts.update([labels] if isinstance(labels, str) else labels)
    if named:  # a model fitted on an array (no names) takes every column
        texts.update(name for name in kept if name not in named)
    return frozenset(texts)


def signature_columns(folder: Path) -> list[str]:
    """The columns the MLflow signature of the model in ``folder`` names, in its order; none where it names
    none (no signature, a tensor)."""
    inputs, _ = _signature(folder)
    return [str(c["name"]) for c in inputs if isinstance(c, dict) and "name" in c]


def date_columns(folder: Path) -> frozenset[str]:
    """The columns the model in ``folder`` takes as dates and times (``datetime`` in its MLflow
    signature); none where it has no signature."""
    inputs, _ = _signature(folder)
    return frozenset(
        str(c["name"]) for c in inputs if isinstance(c, dict) and "name" in c and c.get("type") == "datetime"
    )


def _signature(folder: Path) -> tuple[list[Any], list[Any]]:
    """The input and output columns of the MLflow signature of the model in ``folder`` (empty where it
    has none, or its MLmodel cannot be read)."""
    import yaml

    try:
        with (folder / "MLmodel").open("rb") as opened:
            signature = yaml.safe_load(opened.read(_MOST_MLMODEL_BYTES))["signature"]
        inputs = json.loads(signature["inputs"])
        outputs = json.loads(signature.get("outputs") or "[]")
    except (OSError, ValueError, TypeError, KeyError, yaml.YAMLError):
        return [], []
    return (inputs if isinstance(inputs, list) else []), (outputs if isinstance(outputs, list) else [])


def _is_text(spec: Any) -> bool:
    """Whether a column of an MLflow signature holds text."""
    return isinstance(spec, dict) and spec.get("type") == "string"


def split_reference(reference: str) -> tuple[str, str]:
    """``inbox://a/b.csv`` as ``("inbox", "a/b.csv")``; refused when it is not a path inside a datastore."""
    scheme, sep, rest = reference.partition("://")
    if not sep or scheme not in SCHEMES:
        raise UsageError(
            f"'{shorten(reference)}' is not a datastore path; write inbox://folder/file or predictions://... "
            "(`loopline data upload NAME PATH` copies a file or folder of this machine into inbox://)"
        )
    if rest.startswith("/"):
        raise UsageError(
            f"'{shorten(reference)}' is an absolute path; a datastore path is relative to the datastore: "
            f"{scheme}://folder/file"
        )
    return scheme, clean_path(rest, scheme)


def clean_path(path: str, store: str) -> str:
    """``path`` inside datastore ``store``, normalised (no ``.``, no empty parts); refused when it could
    leave the datastore (``..``, a backslash, a NUL)."""
    if "\x00" in path or "\\" in path:
        raise UsageError(f"'{shorten(path)}' is not a valid path in datastore {store}")
    parts = [part for part in path.split("/") if part not in ("", ".")]
    if ".." in parts:
        raise UsageError(
            f"'{store}://{shorten(path)}' leaves the datastore ('..'); name a path inside {store}://"
        )
    return "/".join(parts)


@dataclass(frozen=True)
class Datastore:
    """One datastore: its name and its root as a local path or fsspec URL."""

    name: str
    url: str

    @property
    def fs(self) -> Any:
        """The fsspec filesystem (imported, and its plugin loaded, on first use)."""
        return filesystem(self.url, f"datastore {self.name}")

    @property
    def local(self) -> bool:
        """True for a folder on this machine (where a symlink could point out of it)."""
        return "://" not in self.url or self.url.startswith("file://")

    def location(self, relative: str = "") -> str:
        """The full URL (or path) of ``relative`` inside the datastore; refused when it would leave it (a
        ``..``, or a symlink in a local datastore that points outside)."""
        root = self.url.rstrip("/")
        relative = clean_path(relative, self.name)
        target = f"{root}/{relative}" if relative else root
        if self.local and relative:
            base = os.path.realpath(root.removeprefix("file://"))
            real = os.path.realpath(target.removeprefix("file://"))
            if real != base and not real.startswith(base + os.sep):
                raise UsageError(f"{self.name}://{relative} leads out of the datastore (a symbolic link)")
        return target

    def files(self, relative: str) -> list[str]:
        """The files at ``relative``: the file itself, or every file below a folder, sorted."""
        target = self.location(relative)
        try:
            fs = self.fs
            if fs.isfile(target):
                return [relative.strip("/")]
            if not fs.isdir(target):
                raise NotFound(f"{self.name}://{clean_path(relative, self.name)} does not exist")
            root = fs._strip_protocol(self.location())
            found = sorted(p for p in fs.find(target) if not p.rsplit("/", 1)[-1].startswith("."))
        except (OSError, ConnectionError) as exc:
            raise StoreUnavailable(
                what=f"datastore {self.name}", where=f"{self.name}://{relative}", reason=type(exc).__name__
            ) from None
        return [p[len(root) :].strip("/") for p in found]

    def open(self, relative: str, mode: str = "rb") -> Any:
        """Open one file."""
        return self.fs.open(self.location(relative), mode)

    def frames(self, relative: str, rows: int | None = None, texts: Collection[str] = ()) -> Iterator[Any]:
        """The file's rows as DataFrames (CSV, or Parquet by its ``.parquet``/``.pq`` name), all at once or
        ``rows`` at a time, the columns ``texts`` read as text (see ``csv_options``); InvalidData naming
        the file when it cannot be read as a table."""
        import pandas as pd
        import pyarrow.parquet as pq

        reference = f"{self.name}://{clean_path(relative, self.name)}"
        parquet = is_parquet(relative)
        with (
            _read_as_table(reference, parquet, lambda: self._header(relative)),
            self.open(relative) as handle,
        ):
            options = {} if parquet else file_csv_options(handle, relative, texts)
            if parquet and rows:
                for batch in pq.ParquetFile(handle).iter_batches(batch_size=rows):
                    yield batch.to_pandas()
            elif parquet:
                yield pd.read_parquet(handle)
            elif rows:
                yield from read_csv_strictly(handle, chunksize=rows, **options)
            else:
                yield read_csv_strictly(handle, **options)

    def _header(self, relative: str) -> list[str]:
        with self.open(relative) as handle:
            return _header(handle, relative)

    def frame(self, relative: str, texts: Collection[str] = ()) -> Any:
        """The whole file as one DataFrame (see :meth:`frames`)."""
        return next(iter(self.frames(relative, texts=texts)))

    def file_digest(self, relative: str) -> str:
        """sha256 of one file's bytes."""
        digest = hashlib.sha256()
        with self.open(relative) as handle:
            while chunk := handle.read(1 << 22):
                digest.update(chunk)
        return digest.hexdigest()

    def digest(self, relative: str) -> tuple[str, list[dict[str, Any]]]:
        """The content digest of a file or folder (as for models) and its manifest."""
        files = self.files(relative)
        if not files:
            raise NotFound(f"{self.name}://{relative} holds no files")
        prefix = relative.strip("/")
        manifest = []
        for name in files:
            inside = name[len(prefix) :].strip("/") if name != prefix else name.rsplit("/", 1)[-1]
            manifest.append({"path": inside, "file": name, "sha256": self.file_digest(name)})
        return manifest_digest(manifest), manifest

    def write_atomic(self, relative: str, data: bytes) -> None:
        """Write a whole file so that readers see the old content or the new, never a part."""
        fs = self.fs
        target = self.location(relative)
        fs.makedirs(target.rsplit("/", 1)[0], exist_ok=True)
        if "://" in self.url and not self.url.startswith("file://"):
            fs.pipe(target, data)  # an object store's PUT is atomic
            return
        staged = f"{target}.{uuid.uuid4().hex}.tmp"
        with fs.open(staged, "wb") as handle:
            handle.write(data)
        fs.mv(staged, target)

    def put_file(self, relative: str, source: str) -> None:
        """Copy the local file ``source`` to ``relative``, whole or not at all, without holding it in
        memory."""
        fs = self.fs
        target = self.location(relative)
        fs.makedirs(target.rsplit("/", 1)[0], exist_ok=True)
        if "://" in self.url and not self.url.startswith("file://"):
            fs.put_file(source, target)  # an object store shows the blob once its upload is committed
            return
        staged = f"{target}.{uuid.uuid4().hex}.tmp"
        fs.put_file(source, staged)
        fs.mv(staged, target)

    def copy_from(self, source: Datastore, relative: str) -> None:
        """Copy the file ``relative`` of ``source`` to the same path here, whole or not at all, a chunk at
        a time (neither store need be on this machine)."""
        fs = self.fs
        target = self.location(relative)
        fs.makedirs(target.rsplit("/", 1)[0], exist_ok=True)
        remote = "://" in self.url and not self.url.startswith("file://")
        staged = target if remote else f"{target}.{uuid.uuid4().hex}.tmp"  # an object store's PUT is atomic
        try:
            with source.open(relative) as reading, fs.open(staged, "wb") as writing:
                while chunk := reading.read(1 << 22):
                    writing.write(chunk)
        except BaseException:  # fsspec's files close (an object store commits) on the way out: undo that
            with contextlib.suppress(OSError):
                fs.rm(staged)
            raise
        if not remote:
            fs.mv(staged, target)

    def exists(self, relative: str) -> bool:
        """True when ``relative`` exists."""
        return bool(self.fs.exists(self.location(relative)))

    def remove(self, relative: str) -> None:
        """Remove a file or folder if present."""
        if self.exists(relative):
            self.fs.rm(self.location(relative), recursive=True)
