"""Customers by country, one-hot encoded: Namibia's code, NA, is a marker of a missing value to pandas."""

import random

import mlflow
import pandas as pd
from sklearn.compose import ColumnTransformer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder

random.seed(0)
countries = random.choices(["NA", "ZA", "BW", "DE"], k=400)  # NA: Namibia
frame = pd.DataFrame({"country": countries, "visits": [random.randint(0, 9) for _ in countries]})
bought = [int(c in ("NA", "ZA")) for c in countries]
encoded = [("country", OneHotEncoder(handle_unknown="ignore"), ["country"])]
features = ColumnTransformer(encoded, remainder="passthrough")
model = Pipeline([("features", features), ("clf", LogisticRegression())]).fit(frame, bought)
with mlflow.start_run():
    mlflow.log_metric("accuracy", model.score(frame, bought))
    mlflow.sklearn.log_model(model, name="model", input_example=frame.head(3))
