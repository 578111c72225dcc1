"""Loading a deployed model from its content-addressed folder, with a fast path for scikit-learn."""

from __future__ import annotations

import json
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from loopline.errors import Refused
from loopline.serving.compiled import compile_predict
from loopline.serving.schema import InputSchema, Table, to_model_input

__all__ = ["LoadedModel", "check_model", "load_model"]


@dataclass
class LoadedModel:
    """A model ready to predict, with the schema its requests are checked against."""

    digest: str
    folder: Path
    schema: InputSchema
    flavor: str
    predict: Callable[[Any], Any]
    batchable: bool
    example: Table | None
    compiled: bool = False  # predicting with numpy alone (see serving/compiled.py)

    def example_input(self) -> Any:
        """The model's input example (or a row of zeros) as the model takes it, or None."""
        table = self.example
        if table is None and self.schema.fast:
            table = Table(self.schema.names, [[0.0] * len(self.schema.names)])
        if table is None:
            return None
        data, _ = to_model_input(self.schema, table, matrix=self.batchable)
        return data

    def answer_example(self) -> Any:
        """Predict the model's input example (or a row of zeros): proof that it loaded and answers."""
        data = self.example_input()
        return None if data is None else self.predict(data)


def _example(folder: Path, metadata: Any) -> Table | None:
    info = getattr(metadata, "saved_input_example_info", None) or {}
    path = folder / str(info.get("artifact_path", "input_example.json"))
    if not path.is_file():
        return None
    try:
        document = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    if isinstance(document, dict) and "data" in document:
        return Table(document.get("columns"), document["data"])
    if isinstance(document, dict) and "dataframe_split" in document:
        split = document["dataframe_split"]
        return Table(split.get("columns"), split.get("data", []))
    return None


def load_model(folder: Path, digest: str) -> LoadedModel:
    """Load the MLflow model in ``folder`` (already verified against ``digest``)."""
    from loopline.mlflow_store import quiet_mlflow

    quiet_mlflow()
    from mlflow.models import Model

    metadata = Model.load(str(folder / "MLmodel"))
    schema = InputSchema.from_signature(metadata.signature)
    flavors = metadata.flavors
    pyfunc_conf = flavors.get("python_function", {})
    if "sklearn" in flavors and schema.fast:
        import mlflow.sklearn

        estimator = mlflow.sklearn.load_model(str(folder))
        predict_fn = str(pyfunc_conf.get("predict_fn", "predict"))
        # Matrices carry no feature names; the model was fitted on the same columns in the same order.
        warnings.filterwarnings("ignore", message="X does not have valid feature names")
        model = LoadedModel(
            digest,
            folder,
            schema,
            "sklearn",
            getattr(estimator, predict_fn),
            True,
            _example(folder, metadata),
        )
        example = model.example_input()
        if predict_fn == "predict" and isinstance(example, np.ndarray):
            compiled = compile_predict(estimator, example)
            if compiled is not None:
                model.predict, model.compiled = compiled, True
        return model
    import mlflow.pyfunc

    pyfunc = mlflow.pyfunc.load_model(str(folder))
    return LoadedModel(
        digest, folder, schema, "python_function", pyfunc.predict, False, _example(folder, metadata)
    )


def check_model(folder: Path, digest: str = "") -> None:
    """Load a model and answer its input example, or refuse with what went wrong."""
    try:
        model = load_model(folder, digest)
        answer = model.answer_example()
    except Exception as exc:  # any failure to load or answer means: do not deploy
        first = (str(exc).strip().splitlines() or [""])[0][:300]
        raise Refused(
            f"the model in {folder} does not load and answer its input example: {type(exc).__name__}: {first}"
        ) from None
    if answer is not None and isinstance(answer, np.ndarray) and answer.shape[:1] == (0,):
        raise Refused(f"the model in {folder} answered its input example with no predictions")
