"""Iris species by name: labels as a NumPy array of strings, as `target_names[y]` gives them."""

import mlflow
from mlflow.models import infer_signature
from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split

data = load_iris(as_frame=True)
X = data.data.rename(columns=lambda c: c.replace(" (cm)", "").replace(" ", "_"))
species = data.target_names[data.target]  # array(['setosa', ...], dtype='<U10')
X_train, X_test, y_train, y_test = train_test_split(X, species, random_state=1)

with mlflow.start_run():
    clf = LogisticRegression(max_iter=500).fit(X_train, y_train)
    mlflow.log_metric("accuracy", clf.score(X_test, y_test))
    mlflow.sklearn.log_model(
        clf,
        name="model",
        signature=infer_signature(X_test, clf.predict(X_test)),
        input_example=X_test.head(2),
    )
