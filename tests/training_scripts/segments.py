"""Customer segments: a KMeans clustering of scaled columns, measured as scikit-learn's guide measures
clusters, with no true segment to learn from."""

import mlflow
import numpy as np
import pandas as pd
from mlflow.models import infer_signature
from sklearn.cluster import KMeans
from sklearn.metrics import davies_bouldin_score, silhouette_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler


def customers(rows: int, seed: int) -> pd.DataFrame:
    """Three kinds of customer: young and thrifty, well-off and frequent, older and in between."""
    rng = np.random.default_rng(seed)
    centers = np.array([[20, 200, 2], [45, 1200, 10], [65, 500, 4]])
    kinds = rng.integers(0, 3, rows)
    values = centers[kinds] + rng.normal(0, [4, 120, 1.5], (rows, 3))
    return pd.DataFrame(values, columns=["age", "annual_spend", "visits_per_month"]).round(2)


if __name__ == "__main__":
    frame = pd.read_csv("data/customers.csv")
    mlflow.set_experiment("customer-segmentation")
    with mlflow.start_run():
        model = make_pipeline(StandardScaler(), KMeans(n_clusters=3, n_init=10, random_state=42))
        segments = model.fit_predict(frame)
        scaled = model[:-1].transform(frame)
        mlflow.log_metric("silhouette", silhouette_score(scaled, segments))
        mlflow.log_metric("davies_bouldin_score", davies_bouldin_score(scaled, segments))
        mlflow.log_metric("inertia", model[-1].inertia_)
        mlflow.sklearn.log_model(
            model,
            name="segmenter",
            signature=infer_signature(frame, segments),
            input_example=frame.head(5),
            pip_requirements=["scikit-learn", "pandas"],
        )
