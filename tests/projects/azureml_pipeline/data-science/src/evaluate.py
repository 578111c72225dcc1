"""Score the trained model on the test set; write the predictions and whether to deploy it."""

import argparse
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import mlflow
import mlflow.sklearn
import numpy as np
import pandas as pd
from sklearn.metrics import mean_squared_error, r2_score

TARGET_COL = "cost"


def parse_args():
    parser = argparse.ArgumentParser("evaluate")
    parser.add_argument("--model_input", type=str, help="Path of input model")
    parser.add_argument("--test_data", type=str, help="Path to test dataset")
    parser.add_argument("--evaluation_output", type=str, help="Path of eval results")
    return parser.parse_args()


def main(args):
    test_data = pd.read_parquet(Path(args.test_data) / "test.parquet")
    y_test = test_data[TARGET_COL]
    X_test = test_data.drop(columns=[TARGET_COL])

    model = mlflow.sklearn.load_model(args.model_input)
    yhat_test = model.predict(X_test)

    output = X_test.copy()
    output["real_label"] = y_test
    output["predicted_label"] = yhat_test
    output.to_csv(Path(args.evaluation_output) / "predictions.csv")

    r2 = r2_score(y_test, yhat_test)
    mlflow.log_metric("test r2", r2)
    mlflow.log_metric("test rmse", float(np.sqrt(mean_squared_error(y_test, yhat_test))))
    (Path(args.evaluation_output) / "deploy_flag").write_text("1" if r2 > 0.5 else "0")

    plt.scatter(y_test, yhat_test, color="black")
    plt.plot(y_test, y_test, color="blue", linewidth=3)
    plt.xlabel("Real value")
    plt.ylabel("Predicted value")
    plt.savefig(Path(args.evaluation_output) / "predictions.png")
    mlflow.log_artifact(str(Path(args.evaluation_output) / "predictions.png"))


if __name__ == "__main__":
    mlflow.start_run()
    args = parse_args()
    print(f"Test data path: {args.test_data}")
    main(args)
    mlflow.end_run()
