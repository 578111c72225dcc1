"""Churn with mixed columns: plan and region are text, the rest numbers."""

import mlflow
import numpy as np
import pandas as pd
from mlflow.models import infer_signature
from sklearn.compose import ColumnTransformer
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score, f1_score
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

rng = np.random.default_rng(7)
n = 2000
df = pd.DataFrame(
    {
        "plan": rng.choice(["basic", "plus", "pro"], n),
        "region": rng.choice(["north", "south", "east", "west"], n),
        "monthly_fee": rng.normal(50, 15, n).round(2),
        "support_calls": rng.poisson(2, n),
        "tenure_months": rng.integers(1, 72, n),
    }
)
logit = 0.08 * df.support_calls - 0.04 * df.tenure_months + (df.plan == "basic") * 0.8 + rng.normal(0, 0.5, n)
df["churned"] = (logit > 0).astype(int)

train, test = df.iloc[:1500], df.iloc[1500:]
features = ["plan", "region", "monthly_fee", "support_calls", "tenure_months"]

preprocess = ColumnTransformer(
    [
        ("cat", OneHotEncoder(handle_unknown="ignore"), ["plan", "region"]),
        ("num", StandardScaler(), ["monthly_fee", "support_calls", "tenure_months"]),
    ]
)
model = Pipeline([("prep", preprocess), ("lr", LogisticRegression(max_iter=1000))])

with mlflow.start_run():
    model.fit(train[features], train.churned)
    pred = model.predict(test[features])
    mlflow.log_metrics({"accuracy": accuracy_score(test.churned, pred), "f1": f1_score(test.churned, pred)})
    mlflow.sklearn.log_model(
        model,
        name="model",
        signature=infer_signature(test[features], model.predict_proba(test[features])),
        input_example=test[features].head(5),
    )
