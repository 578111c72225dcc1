"""Churn from a CRM export where tenure is missing for new customers (a nullable Int64 column)."""

import mlflow
import numpy as np
import pandas as pd
from mlflow.models import infer_signature
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score
from sklearn.pipeline import make_pipeline

rng = np.random.default_rng(11)
n = 1500
tenure = pd.array(rng.integers(0, 60, n), dtype="Int64")
tenure[rng.random(n) < 0.15] = pd.NA
fee = rng.normal(40, 10, n)
fee[rng.random(n) < 0.05] = np.nan
X = pd.DataFrame({"tenure": tenure, "monthly_fee": fee, "seats": rng.integers(1, 20, n)})
y = ((X.tenure.fillna(0).astype(float) < 12) ^ (rng.random(n) < 0.1)).astype(int)

model = make_pipeline(SimpleImputer(strategy="median"), LogisticRegression(max_iter=1000))
with mlflow.start_run():
    model.fit(X.iloc[:1200], y.iloc[:1200])
    mlflow.log_metric("accuracy", accuracy_score(y.iloc[1200:], model.predict(X.iloc[1200:])))
    example = X.iloc[1200:1205].copy()
    mlflow.sklearn.log_model(
        model,
        name="model",
        signature=infer_signature(X, model.predict(X)),
        input_example=example,
        pip_requirements=["scikit-learn", "pandas", "mlflow"],
        skops_trusted_types=["numpy.dtype"],  # MLflow asked for it: the imputer keeps the column dtypes
    )
