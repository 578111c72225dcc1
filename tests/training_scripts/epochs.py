"""A model trained epoch by epoch with SGD, reporting its validation accuracy after each epoch, as people
write training loops; its settings come from the command line (argparse)."""

import argparse
import time

import mlflow
import numpy as np
from mlflow.models import infer_signature
from sklearn.datasets import load_breast_cancer
from sklearn.linear_model import SGDClassifier
from sklearn.metrics import accuracy_score
from sklearn.model_selection import train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

parser = argparse.ArgumentParser()
parser.add_argument("--noise", type=float, default=0.0, help="share of training labels flipped")
parser.add_argument("--epochs", type=int, default=6)
args = parser.parse_args()

X, y = load_breast_cancer(return_X_y=True, as_frame=True)
X.columns = [c.replace(" ", "_") for c in X.columns]
X_train, X_val, y_train, y_val = train_test_split(X, y, random_state=3, stratify=y)
rng = np.random.default_rng(0)
flipped = rng.random(len(y_train)) < args.noise
y_noisy = np.where(flipped, 1 - y_train, y_train)
scaler = StandardScaler().fit(X_train)
sgd = SGDClassifier(random_state=0)

with mlflow.start_run():
    mlflow.log_params({"noise": args.noise, "epochs": args.epochs})
    for epoch in range(args.epochs):
        sgd.partial_fit(scaler.transform(X_train), y_noisy, classes=[0, 1])
        mlflow.log_metric("accuracy", accuracy_score(y_val, sgd.predict(scaler.transform(X_val))), step=epoch)
        time.sleep(0.4)
    model = make_pipeline(scaler, sgd)
    mlflow.sklearn.log_model(
        model,
        name="model",
        signature=infer_signature(X_val, model.predict(X_val)),
        pip_requirements=["scikit-learn", "mlflow"],
    )
