"""Train the sample classifier and log it to MLflow.

`loopline inner-loop` runs this file with MLflow pointed at the dev workspace and a run already
started for the current commit; run by hand, it logs to whatever MLFLOW_TRACKING_URI says.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import sklearn
import yaml
from mlflow.models import infer_signature
from sklearn.datasets import load_breast_cancer
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score, f1_score, log_loss, roc_auc_score
from sklearn.model_selection import train_test_split
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import StandardScaler

HERE = Path(__file__).resolve().parent


def load_params(path: Path = HERE / "params.yaml") -> dict:
    """The hyperparameters from params.yaml."""
    return yaml.safe_load(path.read_text())


def load_splits(seed: int) -> dict[str, tuple[pd.DataFrame, pd.Series]]:
    """The data set split into train (60%), validation (20%) and held-out (20%) parts."""
    features, labels = load_breast_cancer(return_X_y=True, as_frame=True)
    features.columns = [name.replace(" ", "_") for name in features.columns]
    labels = labels.rename("label")
    x_train, x_rest, y_train, y_rest = train_test_split(
        features, labels, test_size=0.4, random_state=seed, stratify=labels
    )
    x_valid, x_held, y_valid, y_held = train_test_split(
        x_rest, y_rest, test_size=0.5, random_state=seed, stratify=y_rest
    )
    return {"train": (x_train, y_train), "validation": (x_valid, y_valid), "heldout": (x_held, y_held)}


def flip_labels(labels: pd.Series, fraction: float, seed: int) -> pd.Series:
    """Flip a fraction of binary labels at random: a controlled way to make a worse model."""
    flipped = labels.copy()
    count = round(fraction * len(labels))
    if count:
        rows = np.random.default_rng(seed).choice(len(labels), size=count, replace=False)
        flipped.iloc[rows] = 1 - flipped.iloc[rows]
    return flipped


def fit(params: dict, features: pd.DataFrame, labels: pd.Series) -> Pipeline:
    """Fit a scaled logistic regression."""
    model = make_pipeline(
        StandardScaler(), LogisticRegression(C=float(params["C"]), max_iter=int(params["max_iter"]))
    )
    return model.fit(features, labels)


def evaluate(model: Pipeline, features: pd.DataFrame, labels: pd.Series) -> dict[str, float]:
    """Accuracy, F1, ROC AUC and log loss on one data set."""
    scores = model.predict_proba(features)[:, 1]
    predicted = (scores >= 0.5).astype(int)
    return {
        "accuracy": float(accuracy_score(labels, predicted)),
        "f1": float(f1_score(labels, predicted)),
        "roc_auc": float(roc_auc_score(labels, scores)),
        "log_loss": float(log_loss(labels, scores)),
    }


def export_heldout(
    path: Path = HERE / "data" / "inbox" / "heldout.csv", request_path: Path = HERE / "request.json"
) -> Path:
    """Write the held-out split (never used for training) for the outer loop's validation, and two of its
    rows as a scoring request (request.json) to try an endpoint with."""
    params = load_params()
    features, labels = load_splits(int(params["seed"]))["heldout"]
    path.parent.mkdir(parents=True, exist_ok=True)
    features.assign(label=labels).to_csv(path, index=False)
    request = {"dataframe_split": json.loads(features.head(2).to_json(orient="split", index=False))}
    request_path.write_text(json.dumps(request, indent=1) + "\n")
    return path


def main() -> None:
    """Train on the training split, evaluate on the validation split, log everything to MLflow."""
    params = load_params()
    splits = load_splits(int(params["seed"]))
    x_train, y_train = splits["train"]
    x_valid, y_valid = splits["validation"]
    y_noisy = flip_labels(y_train, float(params["label_noise"]), int(params["seed"]))
    with mlflow.start_run():
        mlflow.log_params(params)
        model = fit(params, x_train, y_noisy)
        metrics = evaluate(model, x_valid, y_valid)
        mlflow.log_metrics(metrics)
        with tempfile.TemporaryDirectory() as scratch:
            # The training features, for loopline's monitoring to compare live requests with.
            reference = Path(scratch) / "reference_data.parquet"
            x_train.to_parquet(reference)
            mlflow.log_artifact(str(reference))
        mlflow.sklearn.log_model(
            model,
            name="model",
            signature=infer_signature(x_valid, model.predict(x_valid)),
            input_example=x_valid.head(3),
            # Naming the requirements skips MLflow's slow inference of them.
            pip_requirements=[f"scikit-learn=={sklearn.__version__}", f"mlflow=={mlflow.__version__}"],
        )
        print("validation metrics:", {name: round(value, 4) for name, value in metrics.items()})


if __name__ == "__main__":
    import sys

    if sys.argv[1:] == ["--export-heldout"]:
        print("wrote", export_heldout())
    else:
        main()
