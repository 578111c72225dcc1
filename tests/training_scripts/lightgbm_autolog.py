"""Credit default with LightGBM's scikit-learn API and MLflow's LightGBM autologging."""

import lightgbm as lgb
import mlflow
from sklearn.datasets import load_breast_cancer
from sklearn.model_selection import train_test_split

mlflow.lightgbm.autolog()

X, y = load_breast_cancer(return_X_y=True, as_frame=True)
X.columns = [c.replace(" ", "_") for c in X.columns]
X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.25, random_state=42)

clf = lgb.LGBMClassifier(n_estimators=60, learning_rate=0.1, num_leaves=15, verbose=-1)
clf.fit(X_train, y_train, eval_set=[(X_test, y_test)], eval_metric="auc")
print("test accuracy", clf.score(X_test, y_test))
