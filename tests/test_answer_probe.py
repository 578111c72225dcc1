"""What a classifier logged without an input example answers to the first rows of the training's table."""

from __future__ import annotations

from pathlib import Path

import mlflow.sklearn
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression

from loopline.answer_probe import answers_rows_with_probabilities

ROWS = pd.DataFrame({"tenure": [1.0, 5.0, 9.0, 30.0] * 15, "monthly": [20.0, 80.0, 35.0, 60.0] * 15})
LABELS = pd.Series([1, 0, 1, 0] * 15, name="churned")


@pytest.fixture(scope="module")
def table(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("data") / "customers.csv"
    ROWS.assign(churned=LABELS).to_csv(path, index=False)
    return path


def saved(folder: Path, **options: str) -> Path:
    """A classifier saved as MLflow saves it, without an input example (as autolog logs boosters)."""
    model = LogisticRegression().fit(ROWS, LABELS)
    mlflow.sklearn.save_model(model, folder, pip_requirements=[], **options)
    return folder


def test_probabilities_are_told_from_labels_by_the_answers_to_the_table_s_rows(
    tmp_path: Path, table: Path
) -> None:
    answering = saved(tmp_path / "proba", pyfunc_predict_fn="predict_proba")
    assert answers_rows_with_probabilities(answering, table, ("churned",)) is True
    assert answers_rows_with_probabilities(saved(tmp_path / "labels"), table, ("churned",)) is False


def test_a_table_the_model_does_not_take_or_cannot_be_read_tells_nothing(tmp_path: Path, table: Path) -> None:
    answering = saved(tmp_path / "proba", pyfunc_predict_fn="predict_proba")
    other = tmp_path / "other.csv"
    pd.DataFrame({"city": ["Oslo", "Rome"], "churned": [1, 0]}).to_csv(other, index=False)
    assert answers_rows_with_probabilities(answering, other, ("churned",)) is False
    assert answers_rows_with_probabilities(answering, tmp_path / "missing.csv", ("churned",)) is False
    garbage = tmp_path / "garbage.parquet"
    garbage.write_bytes(b"\x00not parquet")
    assert answers_rows_with_probabilities(answering, garbage, ("churned",)) is False
