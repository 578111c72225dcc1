"""A monthly sales forecast, answering as statsmodels' and Prophet's models do: one row naming a horizon
(start and end steps) in, a value for each step out."""

import mlflow
import numpy as np
import pandas as pd

DAMPING = 1.0  # how much of the fitted trend the forecast keeps

rng = np.random.default_rng(0)
steps = np.arange(120)
sales = 200 + 0.8 * steps + 15 * np.sin(2 * np.pi * steps / 12) + rng.normal(0, 4, 120)
train, test = sales[:108], sales[108:]


class TrendForecaster(mlflow.pyfunc.PythonModel):
    def __init__(self, level, slope, season):
        self.level, self.slope, self.season = level, slope, season

    def predict(self, context, model_input, params=None):
        if len(model_input) != 1:
            raise ValueError("a forecast takes one row: its start and end steps")
        start, end = int(model_input["start"].iloc[0]), int(model_input["end"].iloc[0])
        ahead = np.arange(start, end + 1)
        return self.level + self.slope * ahead + np.asarray(self.season)[ahead % 12]


slope, level = np.polyfit(steps[:108], train, 1)
residuals = train - (level + slope * steps[:108])
season = [float(residuals[month::12].mean()) for month in range(12)]
model = TrendForecaster(float(level), float(slope) * DAMPING, season)

with mlflow.start_run():
    forecast = model.predict(None, pd.DataFrame({"start": [108], "end": [119]}))
    mlflow.log_param("damping", DAMPING)
    mlflow.log_metric("mae", float(np.abs(forecast - test).mean()))
    mlflow.pyfunc.log_model(
        name="model",
        python_model=model,
        input_example=pd.DataFrame({"start": [108], "end": [119]}),
    )
