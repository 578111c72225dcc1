"""How a CSV file separates its fields and writes its decimals, read off its first bytes as a person would.

A file written by Excel in much of Europe, or a dataset published so (UCI's wine quality), separates its
fields with ``;`` and may write ``5,1`` for 5.1; a training script reads it with
``pd.read_csv(path, sep=";")``. Read with commas, such a file is one column whose name is the whole
header. So where the header holds no field separator of the file's kind (``,``, a tab for ``.tsv``) but
splits into several columns at ``;``, a tab or ``|``, that is the file's separator; and where, with such
a separator, the numbers of the first lines are written with a decimal comma (and none with a decimal
point), so are its decimals. A file with the usual separator is read exactly as before.
"""

from __future__ import annotations

import csv
import re
from typing import Any

__all__ = ["SAMPLE_BYTES", "dialect", "from_decimal_comma", "text_sample"]

SAMPLE_BYTES = 1 << 16
_OTHER_SEPARATORS = (";", "\t", "|")
_DECIMAL_COMMA = re.compile(r"[+-]?\d+,\d+")
_DECIMAL_POINT = re.compile(r"[+-]?\d*\.\d+([eE][+-]?\d+)?")


def text_sample(handle: Any, compression: str | None) -> tuple[str, bool]:
    """The first ``SAMPLE_BYTES`` of the file open as ``handle`` (uncompressed), as text, and whether that
    is the whole file; empty where it cannot be read so or is no UTF-8 text (the reading proper then says
    why)."""
    try:
        opened = _uncompressed(handle, compression)
        raw = opened.read(SAMPLE_BYTES + 1)
    except Exception:  # a damaged or mislabelled archive: its reading names the problem
        return "", False
    whole = len(raw) <= SAMPLE_BYTES
    raw = raw[:SAMPLE_BYTES]
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        if exc.start < len(raw) - 3:  # not text (a workbook, say): its reading says what it is
            return "", False
        text = raw[: exc.start].decode("utf-8-sig")  # a character cut at the sample's end
    return ("", False) if "\x00" in text else (text, whole)


def _uncompressed(handle: Any, compression: str | None) -> Any:
    import bz2
    import gzip
    import lzma
    import zipfile

    if compression == "gzip":
        return gzip.GzipFile(fileobj=handle)
    if compression == "bz2":
        return bz2.BZ2File(handle)
    if compression == "xz":
        return lzma.LZMAFile(handle)
    if compression == "zip":
        archive = zipfile.ZipFile(handle)
        return archive.open(archive.namelist()[0])
    if compression == "zstd":
        import zstandard  # type: ignore[import-not-found, unused-ignore]

        return zstandard.ZstdDecompressor().stream_reader(handle)
    return handle


def dialect(sample: str, separator: str, whole: bool = False) -> dict[str, str]:
    """``pandas.read_csv``'s ``sep`` (and ``decimal``) for a CSV file that starts with ``sample`` (all of
    it where ``whole``), where they differ from ``separator``, the one its name implies; none where the
    header splits at ``separator`` or at no other."""
    header = sample.partition("\n")[0].rstrip("\r")
    if not header or _fields(header, separator) > 1:
        return {}
    found = max(_OTHER_SEPARATORS, key=lambda other: _fields(header, other))
    if found == separator or _fields(header, found) < 2:
        return {}
    lines = sample.splitlines()
    rows = lines[1:] if whole else lines[1:-1]  # the sample's last line may be cut short
    return {"sep": found, **({"decimal": ","} if _decimal_comma(rows, found) else {})}


def _fields(line: str, separator: str) -> int:
    return len(next(csv.reader([line], delimiter=separator), []))


def _decimal_comma(lines: list[str], separator: str) -> bool:
    """Whether the fields of ``lines`` write numbers with a decimal comma, and none with a point."""
    comma = point = False
    for row in csv.reader(lines, delimiter=separator):
        for field in row:
            field = field.strip()
            comma = comma or _DECIMAL_COMMA.fullmatch(field) is not None
            if _DECIMAL_POINT.fullmatch(field):
                point = True
    return comma and not point


def from_decimal_comma(field: str) -> str:
    """A field of a file that writes a decimal comma, its number written with a point (``5,1`` as
    ``5.1``); any other field as it is."""
    return field.replace(",", ".") if _DECIMAL_COMMA.fullmatch(field.strip()) else field
