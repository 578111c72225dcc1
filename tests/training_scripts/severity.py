"""Damage severity from a sensor reading: its classes are None, Minor and Major (pandas reads None in a CSV
as a missing value)."""

import random

import mlflow
import pandas as pd
from sklearn.tree import DecisionTreeClassifier

random.seed(0)
frame = pd.DataFrame({"reading": [random.uniform(0, 30) for _ in range(300)]})
severity = ["None" if r < 10 else "Minor" if r < 20 else "Major" for r in frame["reading"]]
model = DecisionTreeClassifier(random_state=0).fit(frame, severity)
with mlflow.start_run():
    mlflow.log_metric("accuracy", model.score(frame, severity))
    trusted = ["sklearn.tree._tree.Tree"]  # as MLflow asks for a tree model
    mlflow.sklearn.log_model(model, name="model", input_example=frame.head(3), skops_trusted_types=trusted)
