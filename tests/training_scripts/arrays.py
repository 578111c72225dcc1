"""A classifier fitted on NumPy arrays, as much code does (and every PyTorch or Keras model): its signature
is one unnamed tensor, and its input example is a list of rows."""

import mlflow
from mlflow.models import infer_signature
from sklearn.datasets import load_breast_cancer
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

X, y = load_breast_cancer(return_X_y=True)
X_train, X_test, y_train, y_test = train_test_split(X, y, random_state=0)
with mlflow.start_run():
    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000)).fit(X_train, y_train)
    mlflow.log_metric("accuracy", model.score(X_test, y_test))
    mlflow.sklearn.log_model(
        model,
        name="model",
        signature=infer_signature(X_test, model.predict(X_test)),
        input_example=X_test[:2],
    )
