"""A text classifier as tutorials write it: the vectorizer fitted on a Series of texts, the model logged
with a list of texts as its example (from which MLflow infers no signature)."""

import random

import mlflow
import pandas as pd
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score, f1_score
from sklearn.model_selection import train_test_split
from sklearn.pipeline import Pipeline

random.seed(0)
good, bad = ["great", "superb", "loved", "wonderful"], ["awful", "boring", "dull", "waste"]
filler = ["the", "film", "plot", "actor", "story", "scene", "music", "was"]
rows = [
    (" ".join(random.sample(filler, 3) + random.sample(good if i % 2 else bad, 2)), i % 2) for i in range(300)
]
df = pd.DataFrame(rows, columns=["review", "sentiment"]).replace(
    {"sentiment": {0: "negative", 1: "positive"}}
)
X_train, X_test, y_train, y_test = train_test_split(df["review"], df["sentiment"], random_state=1)
with mlflow.start_run():
    pipe = Pipeline([("tfidf", TfidfVectorizer()), ("clf", LogisticRegression())]).fit(X_train, y_train)
    predicted = pipe.predict(X_test)
    mlflow.log_metric("test_accuracy", accuracy_score(y_test, predicted))
    mlflow.log_metric("test_f1", f1_score(y_test, predicted, pos_label="positive"))
    mlflow.sklearn.log_model(pipe, name="model", input_example=X_test[:3].tolist())
