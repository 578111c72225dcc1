"""MLflow's models from code: the estimator saved with joblib as an artifact, the model a file of its own
(from_code_model.py) that answers the probability of the positive class."""

import os
import tempfile

import joblib
import mlflow
from mlflow.models import infer_signature
from sklearn.datasets import load_breast_cancer
from sklearn.ensemble import RandomForestClassifier
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import train_test_split

X, y = load_breast_cancer(return_X_y=True, as_frame=True)
X.columns = [c.replace(" ", "_") for c in X.columns]
X_train, X_test, y_train, y_test = train_test_split(X, y, random_state=0)

with mlflow.start_run():
    forest = RandomForestClassifier(n_estimators=20, random_state=0).fit(X_train, y_train)
    proba = forest.predict_proba(X_test)[:, 1]
    mlflow.log_metric("roc_auc", roc_auc_score(y_test, proba))
    estimator = os.path.join(tempfile.mkdtemp(), "forest.joblib")
    joblib.dump(forest, estimator)
    mlflow.pyfunc.log_model(
        name="model",
        python_model="from_code_model.py",
        artifacts={"estimator": estimator},
        signature=infer_signature(X_test, proba),
        input_example=X_test.head(3),
    )
