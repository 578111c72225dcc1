"""A training loop that logs a checkpoint each epoch as a LoggedModel of its own, with the epoch's
accuracies (on the training rows, and held-out) linked to it, as MLflow 3's deep learning guide does;
the later epochs learn from a bad data pull, so the last checkpoint is not the best."""

import mlflow
from sklearn.datasets import load_breast_cancer
from sklearn.linear_model import SGDClassifier
from sklearn.metrics import accuracy_score
from sklearn.model_selection import train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

X, y = load_breast_cancer(return_X_y=True, as_frame=True)
X.columns = [c.replace(" ", "_") for c in X.columns]
X_train, X_val, y_train, y_val = train_test_split(X, y, random_state=3, stratify=y)
scaler = StandardScaler().fit(X_train)
sgd = SGDClassifier(loss="log_loss", random_state=0)

with mlflow.start_run():
    for epoch in range(4):
        labels = y_train if epoch < 2 else 1 - y_train  # later epochs learn from a bad data pull
        sgd.partial_fit(scaler.transform(X_train), labels, classes=[0, 1])
        model = make_pipeline(scaler, sgd)
        # A checkpoint a LoggedModel each epoch, its metrics linked to it, as MLflow 3's guide shows.
        info = mlflow.sklearn.log_model(
            model,
            name=f"sgd-{epoch}",
            step=epoch,
            input_example=X_val.head(2),
            pip_requirements=["scikit-learn"],
        )
        # Its accuracy on the training rows, and on the held-out ones, as the guide logs them.
        accuracy = accuracy_score(y_train, model.predict(X_train))
        mlflow.log_metric("accuracy", accuracy, step=epoch, model_id=info.model_id)
        test_accuracy = accuracy_score(y_val, model.predict(X_val))
        mlflow.log_metric("test_accuracy", test_accuracy, step=epoch, model_id=info.model_id)
