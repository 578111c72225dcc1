"""Three candidates, one run each (not nested): the team picks the best one by a ranking file."""

import mlflow
from mlflow.models import infer_signature
from sklearn.datasets import load_breast_cancer
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score, log_loss
from sklearn.model_selection import train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

X, y = load_breast_cancer(return_X_y=True, as_frame=True)
X.columns = [c.replace(" ", "_") for c in X.columns]
X_train, X_val, y_train, y_val = train_test_split(X, y, random_state=3)

for C in [0.001, 1.0, 0.05]:
    with mlflow.start_run(run_name=f"C={C}"):
        model = make_pipeline(StandardScaler(), LogisticRegression(C=C, max_iter=2000))
        model.fit(X_train, y_train)
        mlflow.log_params({"C": C})
        mlflow.log_metrics(
            {
                "accuracy": accuracy_score(y_val, model.predict(X_val)),
                "log_loss": log_loss(y_val, model.predict_proba(X_val)),
                "inverse_c": 1 / C,  # how strongly regularised
            }
        )
        mlflow.sklearn.log_model(
            model,
            name="model",
            signature=infer_signature(X_val, model.predict(X_val)),
            input_example=X_val.head(2),
            pip_requirements=["scikit-learn", "mlflow"],
        )
