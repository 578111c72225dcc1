"""An item-embedding recommender: the model carries a 42 MB embedding table."""

import tempfile
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
from mlflow.models import infer_signature

ITEMS, DIM = 5250, 1000  # 5250 x 1000 float64 = 42 MB


class Embeddings(mlflow.pyfunc.PythonModel):
    def load_context(self, context):
        self.table = np.load(context.artifacts["table"])

    def predict(self, context, model_input, params=None):
        items = model_input["item"].to_numpy() % len(self.table)
        weights = model_input[["w0", "w1", "w2"]].to_numpy()
        vectors = self.table[items, :3]
        return (vectors * weights).sum(axis=1) + self.table[items, 3]


rng = np.random.default_rng(5)
table = rng.normal(size=(ITEMS, DIM))
example = pd.DataFrame(
    {"item": [1, 42, 4999], "w0": [0.5, 1.0, -1.0], "w1": [0.1, 0.2, 0.3], "w2": [1.0, 0.0, 2.0]}
)

with tempfile.TemporaryDirectory() as folder, mlflow.start_run():
    path = Path(folder) / "table.npy"
    np.save(path, table)
    model = Embeddings()
    model.table = table
    mlflow.log_metric("coverage", 1.0)
    mlflow.pyfunc.log_model(
        name="model",
        python_model=Embeddings(),
        artifacts={"table": str(path)},
        signature=infer_signature(example, model.predict(None, example)),
        input_example=example,
        pip_requirements=["numpy", "pandas", "mlflow"],
    )
