"""A text classifier as tutorials write it: the vectorizer takes a Series of texts (served, MLflow hands it
a table, whose iteration yields the column names: one prediction for any number of rows)."""

import random

import mlflow
import pandas as pd
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split
from sklearn.pipeline import Pipeline

random.seed(0)
good, bad = ["great", "superb", "loved", "wonderful"], ["awful", "boring", "dull", "waste"]
filler = ["the", "film", "plot", "actor", "story", "scene", "music", "was"]
texts = [" ".join(random.sample(filler, 4) + random.sample(good if i % 2 else bad, 2)) for i in range(200)]
ROWS = 1  # of the input example: one row, as many tutorials log
df = pd.DataFrame({"text": texts, "label": [i % 2 for i in range(200)]})
X_train, X_test, y_train, y_test = train_test_split(df["text"], df["label"], test_size=0.2, random_state=42)
with mlflow.start_run():
    pipe = Pipeline([("tfidf", TfidfVectorizer()), ("clf", LogisticRegression())]).fit(X_train, y_train)
    mlflow.log_metric("accuracy", pipe.score(X_test, y_test))
    mlflow.sklearn.log_model(pipe, name="model", input_example=X_train[:ROWS].to_frame())
