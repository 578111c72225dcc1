"""Store visits by the hour of a timestamp, closed on holidays: a pyfunc whose signature takes a datetime
column, an integer column (32 bits) and a boolean one."""

import random

import mlflow
import pandas as pd


class ByHour(mlflow.pyfunc.PythonModel):
    def predict(self, context, model_input, params=None):
        hours = model_input["at"].dt.hour
        open_ = (hours >= 9) & (hours < 18) & (model_input["holiday"] == False)  # noqa: E712
        return open_.astype(int) * model_input["staff"]


random.seed(0)
stamps = pd.to_datetime("2026-03-01") + pd.to_timedelta(
    [random.randint(0, 24 * 30) for _ in range(200)], unit="h"
)
frame = pd.DataFrame(
    {
        "at": stamps,
        # int32: the signature's "integer", which MLflow's own check refuses an int64 column for
        "staff": pd.Series([random.randint(1, 5) for _ in stamps], dtype="int32"),
        "holiday": [random.random() < 0.1 for _ in stamps],
    }
)
with mlflow.start_run():
    mlflow.log_metric("accuracy", 1.0)
    mlflow.pyfunc.log_model(name="model", python_model=ByHour(), input_example=frame.head(3))
