"""Churn classifier: a logistic regression, tracked in the team's own experiment."""

import mlflow
import mlflow.sklearn
from mlflow.models import infer_signature
from sklearn.datasets import load_breast_cancer
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score, log_loss, roc_auc_score
from sklearn.model_selection import train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

C = 1.0

mlflow.set_experiment("churn-experiments")

X, y = load_breast_cancer(return_X_y=True, as_frame=True)
X.columns = [c.replace(" ", "_") for c in X.columns]
X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.25, random_state=42)

with mlflow.start_run(run_name="logreg-baseline"):
    mlflow.log_param("C", C)
    clf = make_pipeline(StandardScaler(), LogisticRegression(C=C, max_iter=1000))
    clf.fit(X_train, y_train)
    proba = clf.predict_proba(X_test)[:, 1]
    mlflow.log_metric("accuracy", accuracy_score(y_test, proba > 0.5))
    mlflow.log_metric("roc_auc", roc_auc_score(y_test, proba))
    mlflow.log_metric("log_loss", log_loss(y_test, proba))
    signature = infer_signature(X_test, clf.predict(X_test))
    mlflow.sklearn.log_model(clf, name="model", signature=signature, input_example=X_test.iloc[:3])
    print("done")
