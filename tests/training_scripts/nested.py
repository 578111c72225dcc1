"""A small sweep: one child run per C, the best model logged on the parent run."""

import mlflow
from mlflow.models import infer_signature
from sklearn.datasets import load_breast_cancer
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score
from sklearn.model_selection import train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

X, y = load_breast_cancer(return_X_y=True, as_frame=True)
X.columns = [c.replace(" ", "_") for c in X.columns]
X_train, X_val, y_train, y_val = train_test_split(X, y, random_state=1)

best = None
with mlflow.start_run(run_name="sweep"):
    for C in [0.01, 0.1, 1.0]:
        with mlflow.start_run(run_name=f"C={C}", nested=True):
            model = make_pipeline(StandardScaler(), LogisticRegression(C=C, max_iter=1000))
            model.fit(X_train, y_train)
            acc = accuracy_score(y_val, model.predict(X_val))
            mlflow.log_params({"C": C})
            mlflow.log_metric("accuracy", acc)
            # every candidate is kept, the team compares them in the MLflow UI
            mlflow.sklearn.log_model(model, name="model", pip_requirements=["scikit-learn", "mlflow"])
            if best is None or acc > best[0]:
                best = (acc, C, model)
    acc, C, model = best
    mlflow.log_params({"best_C": C})
    mlflow.log_metric("accuracy", acc)
    mlflow.sklearn.log_model(
        model,
        name="model",
        signature=infer_signature(X_val, model.predict(X_val)),
        input_example=X_val.head(2),
        pip_requirements=["scikit-learn", "mlflow"],
    )
