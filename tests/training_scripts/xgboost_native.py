"""XGBoost's own training API with a DMatrix, logged by hand, as in XGBoost's MLflow examples."""

import mlflow
import xgboost as xgb
from mlflow.models import infer_signature
from sklearn.datasets import load_breast_cancer
from sklearn.metrics import accuracy_score
from sklearn.model_selection import train_test_split

X, y = load_breast_cancer(return_X_y=True, as_frame=True)
X.columns = [c.replace(" ", "_") for c in X.columns]
X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.25, random_state=42)
dtrain, dtest = xgb.DMatrix(X_train, label=y_train), xgb.DMatrix(X_test, label=y_test)
params = {"objective": "binary:logistic", "eval_metric": "logloss", "max_depth": 3, "eta": 0.3}

with mlflow.start_run():
    mlflow.log_params(params)
    booster = xgb.train(params, dtrain, num_boost_round=40, evals=[(dtest, "test")], verbose_eval=False)
    proba = booster.predict(dtest)
    mlflow.log_metric("accuracy", accuracy_score(y_test, proba > 0.5))
    signature = infer_signature(X_test, proba)
    mlflow.xgboost.log_model(booster, name="model", signature=signature, input_example=X_test.head(3))
