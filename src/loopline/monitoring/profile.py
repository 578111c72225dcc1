"""Reference profiles of training data, and the drift statistics that compare live data with them.

A profile keeps, per feature, decile bin edges with the reference's share in each bin (for the
population stability index), the mean, standard deviation and missing rate, and up to 1,000 reference
values (for the two-sample Kolmogorov-Smirnov test); and up to 1,000 whole reference rows (to score
with the model, for prediction drift).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

__all__ = ["build_profile", "ks", "psi", "psi_categorical"]

SAMPLE = 1000
EPSILON = 1e-4


def build_profile(frame: Any, seed: int = 0) -> dict[str, Any]:
    """The profile of a DataFrame of training features."""
    rows = frame.sample(n=min(SAMPLE, len(frame)), random_state=seed) if len(frame) > SAMPLE else frame
    features: dict[str, Any] = {}
    for column in frame.columns:
        values = frame[column]
        numeric = values.dtype.kind in "biuf"
        entry: dict[str, Any] = {"numeric": numeric, "missing_rate": float(values.isna().mean())}
        present = values.dropna()
        if numeric and len(present):
            edges = np.unique(np.quantile(present.to_numpy(dtype=float), np.linspace(0.1, 0.9, 9)))
            counts = np.histogram(present, bins=[-np.inf, *edges, np.inf])[0]
            entry.update(
                edges=edges.tolist(),
                shares=(counts / counts.sum()).tolist(),
                mean=float(present.mean()),
                std=float(present.std(ddof=0)),
                sample=rows[column].dropna().astype(float).tolist(),
            )
        else:
            shares = present.astype(str).value_counts(normalize=True)
            entry.update(categories={str(k): float(v) for k, v in shares.items()})
        features[str(column)] = entry
    return {
        "rows": len(frame),
        "columns": [str(c) for c in frame.columns],
        "features": features,
        "sample_rows": rows.astype(object).where(rows.notna(), None).to_numpy().tolist(),
    }


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
    counts = np.histogram(present, bins=[-np.inf, *edges, np.inf])[0]
    actual = np.maximum(counts / counts.sum(), EPSILON)
    expected = np.maximum(np.asarray(shares), EPSILON)
    value = float(np.sum((actual - expected) * np.log(actual / expected)))
    if reference_rows:
        value = max(0.0, value - (len(shares) - 1) * (1 / len(present) + 1 / reference_rows))
    return value


def psi_categorical(expected: dict[str, float], values: list[Any]) -> float:
    """Population stability index over categories (labels, strings)."""
    if not values:
        return 0.0
    seen: dict[str, float] = {}
    for value in values:
        seen[str(value)] = seen.get(str(value), 0) + 1 / len(values)
    total = 0.0
    for category in set(expected) | set(seen):
        a, e = max(seen.get(category, 0.0), EPSILON), max(expected.get(category, 0.0), EPSILON)
        total += (a - e) * math.log(a / e)
    return total


def ks(reference: list[float], values: np.ndarray) -> tuple[float, float]:
    """The two-sample Kolmogorov-Smirnov statistic and p-value."""
    from scipy import stats

    present = values[~np.isnan(values)]
    if not len(present) or not reference:
        return 0.0, 1.0
    result = stats.ks_2samp(np.asarray(reference), present)
    return float(result.statistic), float(result.pvalue)
