"""How a batch job reads a file's columns as the model's signature types them."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from loopline.errors import Refused
from loopline.serving.model import load_model
from loopline.serving.predict import _read_as_typed, predict_frame
from loopline.serving.schema import Column, InputSchema


def test_wider_integers_are_narrowed_to_the_signature_s_or_refused_naming_the_row() -> None:
    schema = InputSchema((Column("staff", "integer"), Column("visits", "long")))
    # As a Parquet file holds them: nullable 64-bit integers, and unsigned ones up to the long's limit.
    frame = pd.DataFrame(
        {
            "staff": pd.Series([3, None, 2**31 - 1], dtype="Int64"),
            "visits": np.array([0, 2**63 - 1, 7], dtype=np.uint64),
        }
    )
    typed = _read_as_typed(schema, frame, first_row=0)
    assert str(typed["staff"].dtype) == "Int32" and typed["staff"].tolist()[::2] == [3, 2**31 - 1]
    assert typed["visits"].dtype == np.int64 and typed["visits"].tolist() == [0, 2**63 - 1, 7]
    wide = frame.assign(staff=pd.Series([3, None, 2**31], dtype="Int64"))
    with pytest.raises(
        Refused, match=r"^column 'staff' row 1,002: expected an integer that fits in 32 bits$"
    ):
        _read_as_typed(schema, wide, first_row=1_000)
    huge = frame.assign(visits=np.array([0, 2**63, 7], dtype=np.uint64))
    with pytest.raises(Refused, match=r"^column 'visits' row 1: expected an integer that fits in 64 bits$"):
        _read_as_typed(schema, huge, first_row=0)


def test_a_text_pipeline_without_a_signature_scores_a_file_s_one_column_text_by_text(tmp_path: Path) -> None:
    # fitted on a Series of texts and logged with a list of texts as its example, as tutorials write it:
    # given a table, its vectorizer would read the column's name as the one text
    import mlflow.sklearn
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline

    texts = pd.Series(["loved the story", "a dull waste", "superb music", "boring plot"], name="review")
    pipe = Pipeline([("words", TfidfVectorizer()), ("clf", LogisticRegression())]).fit(texts, [1, 0, 1, 0])
    mlflow.sklearn.save_model(pipe, tmp_path / "model", input_example=texts.tolist()[:2])
    model = load_model(tmp_path / "model", "")
    assert model.schema.values and model.answer_example().tolist() == [1, 0]
    rows = pd.DataFrame({"review": ["superb story", "dull", "loved the music"]})
    answers = predict_frame(model, rows)
    assert answers["prediction"].tolist() == pipe.predict(rows["review"]).tolist() == [1, 0, 1]
    # with the labels beside them: the column kept is carried, the other one scored
    labelled = rows.assign(sentiment=["positive", "negative", "positive"])
    kept = predict_frame(model, labelled, keep=["sentiment"])
    assert kept["prediction"].tolist() == [1, 0, 1]
    with pytest.raises(Refused) as refused:
        predict_frame(model, labelled)
    assert refused.value.message == (
        "the model takes one value a row (it was logged with a list of values as its example), and the "
        "input has 2 columns to give it (review, sentiment): score a data asset of that one column, or "
        "carry the others beside the answers with --keep"
    )
