"""A Python model answering named outputs, a list each (a label and its score), as MLflow's guide to custom
models writes one."""

import mlflow
import numpy as np
import pandas as pd
from sklearn.linear_model import LogisticRegression


class Labelled(mlflow.pyfunc.PythonModel):
    def __init__(self, model):
        self.model = model

    def predict(self, context, model_input, params=None):
        score = self.model.predict_proba(model_input[["size"]])[:, 1]
        return {"label": (score >= 0.5).astype(int).tolist(), "score": score.tolist()}


rows = pd.DataFrame({"size": np.arange(100.0)})
labels = (rows["size"] >= 50).astype(int)
model = LogisticRegression(max_iter=1000).fit(rows, labels)
with mlflow.start_run():
    mlflow.log_metric("accuracy", model.score(rows, labels))
    mlflow.pyfunc.log_model(
        name="model",
        python_model=Labelled(model),
        input_example=rows.head(3),
        pip_requirements=["scikit-learn"],
    )
