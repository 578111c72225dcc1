"""Reference profiles: what is measured of each kind of column, and what is kept of the rows."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd

from loopline.monitoring.profile import build_profile


def test_dates_and_times_are_kept_in_the_rows_as_iso_text_and_not_measured() -> None:
    at = pd.to_datetime(["2026-03-01 10:00", None, "2026-03-02 18:30"])
    frame = pd.DataFrame({"at": at, "day": ["2026-03-01", "2026-03-01", "2026-03-02"], "staff": [1, 2, 3]})
    profile = json.loads(json.dumps(build_profile(frame, dates={"day"})))  # stored as JSON
    # Typed as dates (from Parquet), or named so (the signature's, a CSV file's text): never measured.
    assert profile["features"]["at"] == {"numeric": False, "missing_rate": 1 / 3, "datetime": True}
    assert profile["features"]["day"] == {"numeric": False, "missing_rate": 0.0, "datetime": True}
    assert profile["features"]["staff"]["numeric"] is True
    assert [row[0] for row in profile["sample_rows"]] == ["2026-03-01T10:00:00", None, "2026-03-02T18:30:00"]
    assert pd.to_datetime(profile["sample_rows"][2][0]) == at[2]  # read back as the same time


def test_rows_keep_lists_numbers_and_nulls_as_json_holds_them() -> None:
    frame = pd.DataFrame(
        {"pixels": [[1, 2], np.array([3, 4])], "flag": [True, None], "n": np.array([1, 2], dtype=np.int32)}
    )
    rows = json.loads(json.dumps(build_profile(frame)["sample_rows"]))
    assert rows == [[[1, 2], True, 1], [[3, 4], None, 2]]
