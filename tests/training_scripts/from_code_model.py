"""The model of from_code.py: what mlflow.pyfunc.log_model(python_model="from_code_model.py") logs."""

import joblib
import mlflow
from mlflow.pyfunc import PythonModel


class PositiveClass(PythonModel):
    def load_context(self, context):
        self.forest = joblib.load(context.artifacts["estimator"])

    def predict(self, context, model_input, params=None):
        return self.forest.predict_proba(model_input)[:, 1]  # a column: not a contiguous array


mlflow.models.set_model(PositiveClass())
