"""A model's predictions for a table of rows, as a table: what a batch job writes for each chunk."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from loopline.errors import Refused, shorten
from loopline.serving.encoders import unseen_category

__all__ = ["predict_frame"]


def predict_frame(model: Any, frame: Any, first_row: int = 0, keep: Sequence[str] = ()) -> Any:
    """The loaded ``model``'s answers to ``frame`` (its signature's columns, in its order) as a DataFrame:
    the model's own columns when it answers a table (or named outputs), else one column ``prediction``
    (a list in each row when the model answers several values a row).

    The rows are held to the signature as a scoring request is: a column it requires may hold no null,
    and a model scored from a matrix gets finite numbers only (a refusal names the column and the row,
    numbered from ``first_row``); an optional column's nulls reach the model, which was trained on them.
    A model without column names (one fitted on an array takes every column it gets, by position) does not
    get the columns kept (``keep``: columns carried beside the answers, an identifier say); one that takes
    one value a row (``InputSchema.values``) gets the one column that is not kept, or its only one.
    """
    if keep and not model.schema.names and not model.schema.values:  # it takes every column it gets
        frame = frame.drop(columns=[column for column in keep if column in frame.columns])
    frame = _held_to_signature(model.schema, frame, first_row)
    if model.batchable:
        missing = [i for i, column in enumerate(model.schema.columns or ()) if column.missing]
        answers = model.predict(_matrix(frame, first_row, missing))
    elif model.schema.values:  # a text pipeline fitted on a Series of texts
        answers = model.predict(_values(frame, keep))
    else:
        try:
            answers = model.predict(frame)
        except Exception:
            if (unseen := unseen_category(model.categories, frame, first_row)) is not None:
                raise Refused(unseen) from None
            raise
    return _as_table(answers)


def _values(frame: Any, keep: Sequence[str]) -> Any:
    """The one column of ``frame`` that is not kept (or its only one), as a 1-D array; refused where the
    input holds more."""
    columns = [str(c) for c in frame.columns]
    scored = [c for c in columns if c not in keep] or columns
    if len(scored) != 1:
        raise Refused(
            f"the model takes one value a row (it was logged with a list of values as its example), and the "
            f"input has {len(scored)} columns to give it ({', '.join(scored[:6])}): score a data asset of "
            "that one column, or carry the others beside the answers with --keep"
        )
    return frame[scored[0]].to_numpy()


def _held_to_signature(schema: Any, frame: Any, first_row: int) -> Any:
    """``frame``'s columns the model takes, refused where a required one has a null; a model fitted on an
    array gets its columns as the array's type."""
    import numpy as np

    if schema.names:
        missing = [c for c in schema.names if c not in frame.columns]
        if missing:
            raise Refused(_no_column(missing[0], [str(column) for column in frame.columns]))
        frame = frame[schema.names]
        frame = _read_as_typed(schema, frame, first_row)
        for column in schema.columns:
            nulls = None if column.nullable else frame[column.name].isna().to_numpy()
            if nulls is not None and nulls.any():
                row = first_row + int(np.argmax(nulls))
                raise Refused(
                    f"column '{column.name}' row {row:,} is null, and the model requires a value there"
                )
        return frame
    from loopline.serving.schema import cast_to_tensor, unnamed_header

    if (refused := unnamed_header(list(frame.columns), schema.tensor)) is not None:
        raise Refused(refused)
    return frame if schema.tensor is None else cast_to_tensor(frame.copy(), schema.tensor)


def _read_as_typed(schema: Any, frame: Any, first_row: int) -> Any:
    """``frame`` with the columns that a file gives otherwise than the signature types them read as the
    endpoint reads them: text as numbers or dates and times, whole numbers read as fractions (a column with
    an empty cell) as integers, text and 0 or 1 as booleans, numbers (a Parquet file's) as text; refused
    naming the first value that is none."""
    from loopline.serving.schema import INTEGER, NUMERIC

    typed = {}
    for column in schema.columns:
        values = frame[column.name]
        if column.type == "string" and values.dtype.kind in "biuf":
            typed[column.name] = _texts(values)
        elif column.type == "boolean" and values.dtype.kind != "b":
            typed[column.name] = _booleans(column.name, values, first_row)
        elif column.type in INTEGER and (values.dtype.kind in "fO" or _wider(column.type, values.dtype)):
            typed[column.name] = _integers(column.type, column.name, values, first_row)
        elif values.dtype.kind != "O":
            continue
        elif column.type == "datetime":
            typed[column.name] = _dates(column.name, values, first_row)
        elif column.type in NUMERIC:
            typed[column.name] = _numbers(column.name, values, first_row)
    return frame.assign(**typed) if typed else frame


def _numbers(name: str, values: Any, first_row: int) -> Any:
    """The column ``name`` of numbers written as text (or numbers and text), as numbers."""
    import numpy as np
    import pandas as pd

    numbers = pd.to_numeric(values, errors="coerce")
    text = (numbers.isna() & values.notna()).to_numpy()
    if text.any():
        raise Refused(
            f"column '{name}' row {first_row + int(np.argmax(text)):,}: expected a number, got text"
        )
    return numbers


def _texts(values: Any) -> Any:
    """A column of numbers or booleans (a Parquet file's, where the model takes text: codes, IDs) as the
    endpoint gives a number sent for text: ``104``, ``2.5``, ``true``; whole numbers that pandas holds as
    fractions (an integer column with a null) without ``.0``; nulls stay null."""
    import numpy as np
    import pandas as pd

    def text(value: Any) -> Any:
        if value is None or value is pd.NA or (isinstance(value, float) and np.isnan(value)):
            return None
        if isinstance(value, bool | np.bool_):
            return "true" if value else "false"
        if isinstance(value, float | np.floating) and float(value).is_integer():
            return str(int(value))
        return str(value)

    return pd.Series([text(v) for v in values.tolist()], index=values.index, dtype=object)


def _wider(kind: str, dtype: Any) -> bool:
    """Whether integers of ``dtype`` may not fit MLflow's ``kind`` of integer (a file's 64-bit integers for
    the signature's 32-bit ``integer``)."""
    from loopline.serving.schema import INTEGER_BITS

    return dtype.kind in "iu" and dtype.itemsize * 8 > INTEGER_BITS[kind] - (dtype.kind == "u")


def _integers(kind: str, name: str, values: Any, first_row: int) -> Any:
    """The column ``name`` of integers (MLflow's ``long`` or ``integer``) that a file gives as fractions,
    text or wider integers, as integers (nullable where a cell is empty); refused at a fraction or a number
    out of range."""
    import numpy as np

    from loopline.serving.schema import INTEGER_BITS

    whole = "int64" if kind == "long" else "int32"
    numbers = values if values.dtype.kind in "fiu" else _numbers(name, values, first_row)
    if numbers.dtype.kind in "iu":  # compared as integers: no fraction, no rounding at the limit
        present = numbers.notna().to_numpy()  # a Parquet file's nullable integers hold nulls
        outside = (numbers < np.iinfo(whole).min) | (numbers > np.iinfo(whole).max)
        outside = outside.fillna(False).to_numpy(dtype=bool)
    else:
        floats = numbers.to_numpy(dtype=np.float64, na_value=np.nan)
        present = ~np.isnan(floats)
        bad = present & ((floats % 1 != 0) | ~np.isfinite(floats))
        if bad.any():
            row = first_row + int(np.argmax(bad))
            raise Refused(f"column '{name}' row {row:,}: expected an integer, got a fraction")
        limit = float(1 << (INTEGER_BITS[kind] - 1))
        outside = present & ((floats < -limit) | (floats >= limit))
    if outside.any():
        row = first_row + int(np.argmax(outside))
        raise Refused(
            f"column '{name}' row {row:,}: expected an integer that fits in {INTEGER_BITS[kind]} bits"
        )
    return numbers.astype(whole.capitalize() if not present.all() else whole)


# What a file may hold in a boolean column, as the endpoint takes it (any case of true and false).
_BOOLEANS = {"true": True, "false": False, "1": True, "0": False, "1.0": True, "0.0": False}


def _booleans(name: str, values: Any, first_row: int) -> Any:
    """The column ``name`` of booleans that a file gives as text (``true``, ``FALSE``) or 0 and 1, as
    booleans (nullable where a cell is empty); refused naming the first other value (``yes``, ``t``)."""
    import numpy as np

    present = values.notna().to_numpy()
    read = values.astype(str).str.strip().str.lower().map(_BOOLEANS)
    other = present & read.isna().to_numpy()
    if other.any():
        at = int(np.argmax(other))
        raise Refused(
            f"column '{name}' row {first_row + at:,}: expected true or false (or 1 or 0), got "
            f"'{shorten(str(values.iloc[at]), 40)}'"
        )
    return read.astype("boolean") if not present.all() else read.astype(bool)


def _dates(name: str, values: Any, first_row: int) -> Any:
    """The column ``name`` of dates and times written as text, as a column of them: ISO 8601 at once,
    else each value as the endpoint reads it; refused naming the first value that is none, or where
    they mix time zone offsets."""
    import pandas as pd

    try:
        return pd.to_datetime(values, format="ISO8601")
    except (ValueError, TypeError):
        pass
    parsed = []
    for at, value in enumerate(values):
        try:
            parsed.append(None if pd.isna(value) else pd.Timestamp(value))
        except (ValueError, TypeError):
            raise Refused(
                f"column '{name}' row {first_row + at:,}: expected a date and time (ISO 8601: "
                f"2026-04-01T10:00:00), got '{shorten(str(value), 40)}'"
            ) from None
    try:
        return pd.to_datetime(parsed)
    except (ValueError, TypeError):
        offsets = sorted({str(v.tzinfo) if v is not None and v.tzinfo else "none" for v in parsed})
        raise Refused(
            f"column '{name}': its dates and times mix time zone offsets ({', '.join(offsets[:5])}); write "
            "them all with one offset, or all without"
        ) from None


def _no_column(name: str, found: list[str]) -> str:
    """Why the input lacks the model's column ``name``: its columns, or what its header says of the file
    (JSON, or no header line)."""
    said = f"the input has no column '{name}' that the model needs"
    from loopline.storage.datastores import header_hint

    hint = header_hint(found)
    if hint is not None:
        return f"{said}: {hint}"
    from loopline.serving.schema import loose_name

    alike = next((c for c in found if loose_name(c) == loose_name(name)), None)
    if alike is not None:
        return f"{said}: its column '{shorten(alike, 60)}' is named otherwise; rename it '{name}' in the file"
    shown = ", ".join(found[:12]) + (", ..." if len(found) > 12 else "")
    return (
        f"{said} (its columns: {shown or 'none'}); score files holding every column the model was fitted "
        "on (one the training computes included), or compute such a column in the model"
    )


def _matrix(frame: Any, first_row: int, missing: list[int]) -> Any:
    """``frame`` as a float64 matrix of finite numbers (or NaN in the ``missing`` columns, which take it as
    a missing value), or a refusal naming the first cell that is not."""
    import numpy as np

    try:
        matrix = frame.to_numpy(dtype=np.float64, na_value=np.nan)
    except (TypeError, ValueError):
        for name in frame.columns:  # the first cell that is text is named
            _numbers(name, frame[name], first_row)
        raise Refused("the rows are not all numbers") from None
    from loopline.serving.schema import first_not_finite

    if (cell := first_not_finite(matrix, missing)) is not None:
        row, position = cell
        raise Refused(f"column '{frame.columns[position]}' row {first_row + row:,} is not a finite number")
    return matrix


def _as_table(answers: Any) -> Any:
    import numpy as np
    import pandas as pd

    if isinstance(answers, dict):  # a Python model's named outputs, a column each
        answers = pd.DataFrame(answers)
    if isinstance(answers, pd.DataFrame):
        return answers.reset_index(drop=True)
    values = np.asarray(answers)
    # Several values a row (predict_proba, a multi-output model): a list a row, as the endpoint answers.
    return pd.DataFrame({"prediction": values.tolist() if values.ndim > 1 else values})
