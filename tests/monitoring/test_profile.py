"""Reference profiles: what is measured of each kind of column, and what is kept of the rows."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd

from loopline.monitoring.profile import build_profile, measured_by_category, psi, text_psi, words_of


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


def _reviews(words: list[str], rows: int, seed: int) -> pd.Series:
    """``rows`` reviews of six words each, drawn from ``words``."""
    rng = np.random.default_rng(seed)
    return pd.Series([" ".join(rng.choice(words, size=6)) for _ in range(rows)])


SHOP = ["great", "product", "delivery", "was", "slow", "love", "it", "the", "box", "bad", "Price", "good"]


def test_free_text_drifts_by_its_words_where_its_length_stays() -> None:
    ids = [f"ORD-2026-{i:05d}" for i in range(600)]
    reference = pd.DataFrame({"review": _reviews(SHOP, 600, 0), "id": ids})
    profile = json.loads(json.dumps(build_profile(reference)))
    review, ident = profile["features"]["review"], profile["features"]["id"]
    assert not measured_by_category(review) and review["words"]["price"] > 0.05  # lower case
    same = text_psi(review, _reviews(SHOP, 300, 1), profile["rows"])
    # Customers now write of another thing in as many words: its length alone had not moved.
    other = _reviews(["refund", "broken", "never", "again", "screen", "cracked"], 300, 2)
    moved = text_psi(review, other, profile["rows"])
    assert same < 0.05 and moved > 1.0, (same, moved)
    assert psi(review["words_edges"], review["words_shares"], words_of(other), profile["rows"]) < 0.05
    # Half of its words new (a second product line), the rest as before: drift, less.
    half = pd.Series([f"{a} {b}" for a, b in zip(_reviews(SHOP, 300, 3), other, strict=True)])
    assert 0.1 < text_psi(review, half.str.split().str[::2].str.join(" "), profile["rows"]) < moved
    # An identifier is one word, new in every live row and in another year: no drift of its kind.
    new_year = pd.Series([f"ORD-2027-{i:05d}" for i in range(300)])
    assert "words" not in ident and text_psi(ident, new_year, profile["rows"]) < 0.05
