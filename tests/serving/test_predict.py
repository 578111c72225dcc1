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
    # the texts kept beside their answers are still the ones scored
    assert predict_frame(model, rows, keep=["review"])["prediction"].tolist() == [1, 0, 1]
    with pytest.raises(Refused) as refused:
        predict_frame(model, labelled)
    assert refused.value.message == (
        "the model takes one value a row (it was logged with a list of values as its example), and the "
        "input has 2 columns to give it (review, sentiment): score a data asset of that one column, or "
        "carry the others beside the answers with --keep"
    )


def test_a_file_without_a_header_line_is_refused_for_a_model_fitted_on_an_array(tmp_path: Path) -> None:
    """A batch job reads a CSV file's first line as its header: a file written by ``numpy.savetxt`` would
    lose its first row, and every answer would sit a row off its input."""
    import mlflow.sklearn
    from sklearn.linear_model import LinearRegression

    from loopline.storage.datastores import read_table

    X = np.array([[5.1, 3.5, 1.4], [6.7, 3.0, 5.2], [5.9, 3.0, 5.1], [4.6, 3.1, 1.5]], dtype=np.float32)
    fitted = LinearRegression().fit(X, [0.2, 2.3, 1.8, 0.2])
    mlflow.sklearn.save_model(fitted, tmp_path / "model", input_example=X[:2])
    model = load_model(tmp_path / "model", "")
    assert model.schema.tensor == "float32" and not model.schema.names
    np.savetxt(tmp_path / "rows.csv", X, delimiter=",", fmt="%.1f")
    with pytest.raises(Refused) as refused:
        predict_frame(model, read_table(tmp_path / "rows.csv"))
    assert refused.value.message.startswith(
        "the input's header holds numbers (5.1, 3.5, 1.4), not column names: the first line of a CSV file is "
        "its header, so a file without one loses its first row; write a header line first (the model takes "
        "its columns by position: 0,1,2)"
    )
    np.savetxt(tmp_path / "named.csv", X, delimiter=",", fmt="%.1f", header="0,1,2", comments="")
    answers = predict_frame(model, read_table(tmp_path / "named.csv"))
    assert np.allclose(answers["prediction"], fitted.predict(X))
    # an identifier carried beside the answers is not one of the columns it takes by position
    identified = read_table(tmp_path / "named.csv").assign(id=["a", "b", "c", "d"])
    answers = predict_frame(model, identified, keep=["id"])
    assert np.allclose(answers["prediction"], fitted.predict(X))
    # a model that names its columns says the same of such a file beside the column it lacks
    named = tmp_path / "by-name"
    frame = pd.DataFrame(X, columns=["sepal_length", "sepal_width", "petal_length"])
    mlflow.sklearn.save_model(
        LinearRegression().fit(frame, [0.2, 2.3, 1.8, 0.2]), named, input_example=frame[:2]
    )
    with pytest.raises(Refused) as refused:
        predict_frame(load_model(named, ""), read_table(tmp_path / "rows.csv"))
    assert refused.value.message.startswith(
        "the input has no column 'sepal_length' that the model needs: "
        "its header holds numbers (5.1, 3.5, 1.4)"
    )
