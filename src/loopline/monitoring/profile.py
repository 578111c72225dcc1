"""Reference profiles of training data, and the drift statistics that compare live data with them.

A profile keeps, per numeric feature, decile bin edges with the reference's share in each bin (for the
population stability index), the mean, standard deviation and missing rate, and up to 1,000 reference
values (for the two-sample Kolmogorov-Smirnov test); per feature of text, the share of each of its 50
most common values and how many distinct ones it has (a category's index is over its values), and of free
text the deciles of its length in words and the share of each of its 200 most common words; and up to
1,000 whole reference rows (to score with the model, for prediction drift).
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Collection, Iterable
from typing import Any

import numpy as np

__all__ = ["build_profile", "ks", "measured_by_category", "psi", "psi_categorical", "text_psi", "words_of"]

SAMPLE = 1000
EPSILON = 1e-4
CATEGORIES = 50
"""A column of text with at most this many distinct values in the training rows is a category, whose drift
is measured by them; one with more (free text, identifiers) keeps its 50 most common values and is
measured by how many words its texts hold."""
UNSEEN = "(unseen)"
"""The one category a live value of none of the training rows' categories counts in."""
WORDS = 200
"""Free text keeps the shares of this many of its most common words (each found twice at least), every
other word counted in one more, so new words (a product, a language, a topic the training never saw)
drift as a text's length may not."""
TEXTS = 10_000
"""The words of free text are counted in this many of its texts at most (drawn at random, the same each
time): more change the shares little and cost memory and time."""
PROFILE_FORM = 2
"""Changes when a profile gains a measure: a data asset's profile kept of an older form is made again (a
model's own, kept by its files' digest when it is registered, stays as it was made)."""
_WORD = re.compile(r"\w+")


def build_profile(frame: Any, seed: int = 0, dates: Collection[str] = ()) -> dict[str, Any]:
    """The profile of a DataFrame of training features; its columns of dates and times (by their type,
    or named in ``dates``: the model's signature takes them so, written as text in a CSV file) are kept
    in its rows, not measured: every new day is one the training rows never held."""
    rows = frame.sample(n=min(SAMPLE, len(frame)), random_state=seed) if len(frame) > SAMPLE else frame
    features: dict[str, Any] = {}
    for column in frame.columns:
        values = frame[column]
        numeric = values.dtype.kind in "biuf"
        entry: dict[str, Any] = {"numeric": numeric, "missing_rate": float(values.isna().mean())}
        present = values.dropna()
        if values.dtype.kind == "M" or str(column) in dates:
            entry["datetime"] = True
        elif numeric and len(present):
            edges = _deciles(present.to_numpy(dtype=float))
            entry.update(
                edges=edges.tolist(),
                shares=_shares_in(edges, present.to_numpy(dtype=float)).tolist(),
                mean=float(present.mean()),
                std=float(present.std(ddof=0)),
                sample=rows[column].dropna().astype(float).tolist(),
            )
        else:
            shares = present.astype(str).value_counts(normalize=True)
            common = shares.head(CATEGORIES)
            entry.update(categories={str(k): float(v) for k, v in common.items()}, distinct=len(shares))
            if len(shares) > CATEGORIES:  # free text: its length in words, binned as a number is
                words = words_of(present).astype(float)
                # Between whole numbers, so a length at a decile falls in its bin (texts of one length too).
                edges = np.unique(np.floor(_deciles(words))) + 0.5
                entry.update(words_edges=edges.tolist(), words_shares=_shares_in(edges, words).tolist())
                entry.update(_vocabulary(present))
        features[str(column)] = entry
    return {
        "rows": len(frame),
        "columns": [str(c) for c in frame.columns],
        "features": features,
        "sample_rows": [[_stored(value) for value in row] for row in rows.astype(object).to_numpy().tolist()],
    }


def _stored(value: Any) -> Any:
    """A cell of a sample row as JSON stores it: a null as null, a date and time in ISO 8601 (which the
    model reads back as its signature's type), numpy's scalars and arrays as numbers and lists, anything
    else not JSON as its text."""
    import pandas as pd

    if isinstance(value, np.ndarray):
        return _stored(value.tolist())
    if isinstance(value, list | tuple):
        return [_stored(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _stored(v) for k, v in value.items()}
    if value is None or pd.isna(value):
        return None
    if isinstance(value, pd.Timestamp):
        return value.isoformat()
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, str | bool | int | float):
        return value
    return str(value)


def _deciles(values: np.ndarray) -> np.ndarray:
    """The distinct deciles of ``values``: the edges of at most ten bins."""
    return np.unique(np.quantile(values, np.linspace(0.1, 0.9, 9)))


def _shares_in(edges: Any, values: np.ndarray) -> np.ndarray:
    """The share of ``values`` in each bin ``edges`` make (below the first, between each two, above the
    last)."""
    counts = np.histogram(values, bins=[-np.inf, *edges, np.inf])[0]
    shares: np.ndarray = counts / counts.sum()
    return shares


def psi(
    edges: list[float], shares: list[float], values: np.ndarray, reference_rows: int | None = None
) -> float:
    """Population stability index of ``values`` against the reference's bins and shares.

    With ``reference_rows``, the index is corrected for sample size: two samples of one population
    differ by about (bins - 1) x (1/n + 1/m) by chance alone, which is subtracted (floored at 0), so a
    small window does not look like drift.
    """
    present = values[~np.isnan(values)]
    if not len(present):
        return 0.0
    actual = np.maximum(_shares_in(edges, present), EPSILON)
    expected = np.maximum(np.asarray(shares), EPSILON)
    value = float(np.sum((actual - expected) * np.log(actual / expected)))
    if reference_rows:
        value = max(0.0, value - (len(shares) - 1) * (1 / len(present) + 1 / reference_rows))
    return value


def psi_categorical(
    expected: dict[str, float], values: list[Any], reference_rows: int | None = None
) -> float:
    """Population stability index over the reference's categories (labels, strings), every other value
    counted in one more (``UNSEEN``, whose reference share is what the categories leave); nulls are left
    out. ``reference_rows`` corrects for sample size as in ``psi``."""
    present = [str(value) for value in values if value is not None and value == value]  # not NaN
    if not present:
        return 0.0
    counts = Counter(value if value in expected else UNSEEN for value in present)
    buckets = [*expected, UNSEEN]
    actual = np.maximum(np.asarray([counts.get(b, 0) for b in buckets], dtype=float) / len(present), EPSILON)
    rest = 1.0 - sum(expected.values())
    shares = np.maximum(np.asarray([expected.get(b, rest) for b in buckets], dtype=float), EPSILON)
    value = float(np.sum((actual - shares) * np.log(actual / shares)))
    if reference_rows:
        value = max(0.0, value - len(expected) * (1 / len(present) + 1 / reference_rows))
    return value


def words_of(values: Any) -> np.ndarray:
    """How many words (runs of characters between spaces) each of a Series of texts holds; NaN for a null."""
    counted = [len(str(v).split()) if v is not None and v == v else np.nan for v in values]
    return np.asarray(counted, dtype=float)


def _tokens(values: Iterable[Any]) -> list[str]:
    """The words of texts, lower case (nulls hold none)."""
    return [word for v in values if v is not None and v == v for word in _WORD.findall(str(v).lower())]


def _vocabulary(present: Any) -> dict[str, Any]:
    """The shares of the most common words of texts of words (two a text, on average) that repeat (half of
    them repeats at least), and how many words they hold; nothing for identifiers and codes (one word
    each, ORD-2026-0001, or words found once each), which every live row holds new."""
    texts = present.sample(n=TEXTS, random_state=0) if len(present) > TEXTS else present
    counts = Counter(_tokens(texts))
    total = sum(counts.values())
    if not total or words_of(texts).mean() < 2 or len(counts) > total / 2:
        return {}
    common = {word: n / total for word, n in counts.most_common(WORDS) if n >= 2}
    return {"words": common, "words_total": total}


def text_psi(entry: dict[str, Any], values: Any, reference_rows: int) -> float:
    """The drift of a column of free text: the larger of its length's in words (against the reference's
    deciles, over its rows) and its words' (against the shares of the reference's common words, over the
    words each holds)."""
    length = psi(entry["words_edges"], entry["words_shares"], words_of(values), reference_rows)
    if not entry.get("words"):
        return length
    return max(length, psi_categorical(entry["words"], _tokens(values), entry["words_total"]))


def measured_by_category(entry: dict[str, Any]) -> bool:
    """Whether a profiled column of text is a category (few distinct values), whose drift is measured."""
    categories = entry.get("categories") or {}
    return bool(categories) and int(entry.get("distinct", len(categories))) <= CATEGORIES


def ks(reference: list[float], values: np.ndarray) -> tuple[float, float]:
    """The two-sample Kolmogorov-Smirnov statistic and p-value."""
    from scipy import stats

    present = values[~np.isnan(values)]
    if not len(present) or not reference:
        return 0.0, 1.0
    result = stats.ks_2samp(np.asarray(reference), present)
    return float(result.statistic), float(result.pvalue)
