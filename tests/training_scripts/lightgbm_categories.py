"""A LightGBM regressor fitted on a DataFrame whose text columns are pandas categories, as LightGBM's
documentation has it, logged by autolog."""

import lightgbm as lgb
import mlflow
import numpy as np
import pandas as pd
from sklearn.metrics import r2_score
from sklearn.model_selection import train_test_split

rng = np.random.default_rng(0)
n = 1500
df = pd.DataFrame(
    {
        "plan": rng.choice(["basic", "plus", "pro"], n),
        "region": rng.choice(["north", "south", "east", "west"], n),
        "tenure": rng.integers(1, 60, n),
    }
)
df["spend"] = df["plan"].map({"basic": 20, "plus": 45, "pro": 90}) + df["tenure"] * 0.5 + rng.normal(0, 3, n)
for column in ["plan", "region"]:
    df[column] = df[column].astype("category")
X, y = df.drop(columns="spend"), df["spend"]
X_train, X_test, y_train, y_test = train_test_split(X, y, random_state=0)

mlflow.lightgbm.autolog()
with mlflow.start_run():
    model = lgb.LGBMRegressor(n_estimators=60, verbose=-1).fit(X_train, y_train)
    mlflow.log_metric("r2", r2_score(y_test, model.predict(X_test)))
