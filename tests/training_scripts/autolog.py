"""Wine classifier with MLflow autologging: no explicit run, autolog does the logging."""

import mlflow
from sklearn.datasets import load_wine
from sklearn.ensemble import RandomForestClassifier  # noqa: F401  (tried before; kept for later)
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

mlflow.sklearn.autolog(log_input_examples=True)

data = load_wine(as_frame=True)
X_train, X_test, y_train, y_test = train_test_split(data.data, data.target, random_state=0)

pipe = Pipeline([("scale", StandardScaler()), ("clf", LogisticRegression(C=0.5, max_iter=500))])
pipe.fit(X_train, y_train)
print("test accuracy", pipe.score(X_test, y_test))
