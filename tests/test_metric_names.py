"""Which way a metric is better, read from its name."""

from __future__ import annotations

import pytest

from loopline.metric_names import better_by_name, measures_clusters, measures_row_count, mlflow_keys


@pytest.mark.parametrize(
    ("name", "better"),
    [
        ("accuracy", "higher"),
        ("val_loss", "lower"),
        ("test-mape", "lower"),
        ("smape", "lower"),
        ("wape", "lower"),
        ("logloss", "lower"),
        # scikit-learn's clustering measures, logged under their functions' names or shorter
        ("silhouette", "higher"),
        ("silhouette_score", "higher"),
        ("calinski_harabasz_score", "higher"),
        ("davies_bouldin_score", "lower"),  # a Davies-Bouldin index before it is a "score"
        ("davies_bouldin", "lower"),
        ("inertia", "lower"),
        ("adjusted_rand_score", "higher"),
        ("test_bic", "lower"),
        # scikit-learn's scorers negate a loss so that more is better
        ("neg_mean_squared_error", "higher"),
        ("neg_log_loss", "higher"),
        ("neg_log_likelihood", "lower"),
        ("public_share", None),  # no word of a measure in it ("bic" only inside a word)
        ("my_kpi", None),
    ],
)
def test_which_way_a_metric_is_better_is_read_from_its_name(name: str, better: str | None) -> None:
    assert better_by_name(name) == better


def test_a_clustering_is_measured_by_its_own_rows_and_inertia_grows_with_them() -> None:
    assert [measures_clusters(n) for n in ("silhouette", "davies_bouldin_score", "inertia", "f1")] == [
        True,
        True,
        True,
        False,
    ]
    assert [measures_row_count(n) for n in ("inertia", "silhouette")] == [True, False]


def test_a_name_mlflow_refuses_as_a_key_becomes_one_it_takes_and_stays_apart_from_the_others() -> None:
    names = [
        "psi_Price (€)",
        "psi_Price ($)",
        "psi_Living Area (m²)",
        "hit_rate@10",
        "val/loss: a-b.c",
        "k" * 300,
    ]
    assert mlflow_keys(names) == {
        "psi_Price (€)": "psi_Price ___",
        "psi_Price ($)": "psi_Price ___ 2",  # the same once its refused characters are replaced
        "psi_Living Area (m²)": "psi_Living Area _m²_",
        "hit_rate@10": "hit_rate_10",
        "val/loss: a-b.c": "val/loss: a-b.c",  # all of MLflow's own characters stay
        "k" * 300: "k" * 250,
    }
