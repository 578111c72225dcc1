"""A network trained epoch by epoch as a PyTorch loop is written: the training loss logged at every step,
the held-out accuracy at the end, then the model, logged with no step (MLflow links the run's metrics of
step 0 to it)."""

import mlflow
from mlflow.models import infer_signature
from sklearn.datasets import load_iris
from sklearn.model_selection import train_test_split
from sklearn.neural_network import MLPClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

mlflow.set_experiment("iris-epochs")
X, y = load_iris(return_X_y=True, as_frame=True)
X.columns = ["sepal_length", "sepal_width", "petal_length", "petal_width"]
X_train, X_test, y_train, y_test = train_test_split(X, y, random_state=0, stratify=y)
scaler = StandardScaler().fit(X_train)
net = MLPClassifier(hidden_layer_sizes=(16,), learning_rate_init=0.05, random_state=0)

with mlflow.start_run():
    for epoch in range(40):
        net.partial_fit(scaler.transform(X_train), y_train, classes=[0, 1, 2])
        mlflow.log_metric("loss", net.loss_, step=epoch)
    model = make_pipeline(scaler, net)
    mlflow.log_metric("accuracy", model.score(X_test, y_test))
    mlflow.sklearn.log_model(
        model,
        name="model",
        signature=infer_signature(X_test, model.predict(X_test)),
        input_example=X_test.head(2),
        skops_trusted_types=["sklearn.neural_network._stochastic_optimizers.AdamOptimizer"],
    )
