"""A custom pyfunc: the classifier plus business rules, answering a table of label, score and band."""

import mlflow
import numpy as np
import pandas as pd
from mlflow.models import infer_signature
from sklearn.datasets import load_breast_cancer
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler


class RiskModel(mlflow.pyfunc.PythonModel):
    def __init__(self, clf, threshold):
        self.clf = clf
        self.threshold = threshold

    def predict(self, context, model_input, params=None):
        score = self.clf.predict_proba(model_input)[:, 1]
        return pd.DataFrame(
            {
                "label": (score >= self.threshold).astype(int),
                "score": score,
                "band": np.where(score >= 0.8, "high", np.where(score >= 0.4, "medium", "low")),
            }
        )


X, y = load_breast_cancer(return_X_y=True, as_frame=True)
X.columns = [c.replace(" ", "_") for c in X.columns]
clf = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000)).fit(X[:400], y[:400])
model = RiskModel(clf, threshold=0.6)

with mlflow.start_run():
    answer = model.predict(None, X[400:])
    mlflow.log_metric("accuracy", accuracy_score(y[400:], answer["label"]))
    mlflow.pyfunc.log_model(
        name="model",
        python_model=model,
        signature=infer_signature(X[400:], answer),
        input_example=X[400:403],
        pip_requirements=["scikit-learn", "pandas", "mlflow"],
    )
