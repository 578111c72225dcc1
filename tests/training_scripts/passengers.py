"""Passengers as MLflow's autolog logs a pipeline: a signature from the training rows and no input
example. The rows are read as from a CSV file (a missing port is NaN), and the ports' encoder is strict."""

import io

import mlflow
import numpy as np
import pandas as pd
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder

mlflow.sklearn.autolog()
rng = np.random.default_rng(0)
table = pd.DataFrame(
    {
        "sex": rng.choice(["male", "female"], 200),
        "age": rng.integers(1, 80, 200).astype(float),
        "port": rng.choice(np.array(["S", "C", "Q", None], dtype=object), 200),
    }
)
table.loc[::7, "age"] = np.nan
table["survived"] = (table["sex"] == "female").astype(int)
rows = pd.read_csv(io.StringIO(table.to_csv(index=False)))
X, y = rows.drop(columns="survived"), rows["survived"]
texts = Pipeline([("fill", SimpleImputer(strategy="most_frequent")), ("hot", OneHotEncoder())])
features = ColumnTransformer(
    [("age", SimpleImputer(strategy="median"), ["age"]), ("t", texts, ["sex", "port"])]
)
pipe = Pipeline([("features", features), ("clf", LogisticRegression())])
with mlflow.start_run():
    pipe.fit(X, y)
    mlflow.log_metric("accuracy", pipe.score(X, y))
