"""Wine cultivar, served as a probability per class: the model's predict is its predict_proba."""

import mlflow
from mlflow.models import infer_signature
from sklearn.datasets import load_wine
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score, log_loss
from sklearn.model_selection import train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

X, y = load_wine(return_X_y=True, as_frame=True)
X_train, X_test, y_train, y_test = train_test_split(X, y, stratify=y, random_state=7)

with mlflow.start_run():
    clf = make_pipeline(StandardScaler(), LogisticRegression(C=0.8, max_iter=1000))
    clf.fit(X_train, y_train)
    proba = clf.predict_proba(X_test)
    mlflow.log_metric("accuracy", accuracy_score(y_test, proba.argmax(axis=1)))
    mlflow.log_metric("log_loss", log_loss(y_test, proba))
    # the app downstream wants the probabilities, not the label
    mlflow.sklearn.log_model(
        clf,
        name="model",
        signature=infer_signature(X_test, proba),
        input_example=X_test.iloc[:2],
        pyfunc_predict_fn="predict_proba",
        pip_requirements=["scikit-learn", "mlflow"],
    )
