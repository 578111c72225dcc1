"""The requests loopline's own calls send an endpoint: held-out rows, smoke tests."""

from __future__ import annotations

import numpy as np
import orjson
import pandas as pd

from loopline.endpoints.client import input_data, rows_request


def test_a_table_of_a_parquet_file_is_sent_as_json_holds_it() -> None:
    """A Parquet file's timestamps and missing values, as validation and smoke tests send them."""
    rows = pd.DataFrame(
        {
            "signup_at": pd.to_datetime(["2026-02-03 14:00", None]),
            "visits": pd.array([3, None], dtype="Int64"),
            "score": [0.5, np.nan],
            "plan": ["pro", None],
        }
    )
    sent = input_data(rows)
    assert sent == {
        "columns": ["signup_at", "visits", "score", "plan"],
        "data": [["2026-02-03T14:00:00", 3, 0.5, "pro"], [None, None, None, None]],
    }
    assert orjson.loads(orjson.dumps(sent, option=orjson.OPT_SERIALIZE_NUMPY)) == sent
    smoke = rows_request(pd.concat([rows] * 4, ignore_index=True), "the first rows of heldout")
    assert (smoke.route, smoke.rows, len(smoke.payload["input_data"]["data"])) == ("score", 5, 5)
