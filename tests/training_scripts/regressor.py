"""Disease progression regressor; the script registers the model itself, as the tutorial showed."""

import mlflow
import numpy as np
from mlflow.models import infer_signature
from sklearn.datasets import load_diabetes
from sklearn.linear_model import Ridge
from sklearn.metrics import mean_squared_error, r2_score
from sklearn.model_selection import train_test_split

X, y = load_diabetes(return_X_y=True, as_frame=True)
X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.2, random_state=3)

with mlflow.start_run(run_name="ridge"):
    alpha = 0.3
    reg = Ridge(alpha=alpha).fit(X_train, y_train)
    pred = reg.predict(X_test)
    mlflow.log_param("alpha", alpha)
    mlflow.log_metric("rmse", float(np.sqrt(mean_squared_error(y_test, pred))))
    mlflow.log_metric("r2", r2_score(y_test, pred))
    mlflow.sklearn.log_model(
        reg,
        name="model",
        signature=infer_signature(X_test, pred),
        input_example=X_test.head(3),
        registered_model_name="diabetes-progression",
    )
