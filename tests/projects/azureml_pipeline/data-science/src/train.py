"""Train a fare model on the prepared training set and save it as an MLflow model."""

import argparse
from pathlib import Path

import mlflow
import mlflow.sklearn
import pandas as pd
from sklearn.linear_model import Ridge
from sklearn.metrics import r2_score

TARGET_COL = "cost"


def parse_args():
    parser = argparse.ArgumentParser("train")
    parser.add_argument("--train_data", type=str, help="Path to train dataset")
    parser.add_argument("--model_output", type=str, help="Path of output model")
    parser.add_argument("--alpha", type=float, default=1.0)
    return parser.parse_args()


def main(args):
    train_data = pd.read_parquet(Path(args.train_data) / "train.parquet")
    y_train = train_data[TARGET_COL]
    X_train = train_data.drop(columns=[TARGET_COL])

    model = Ridge(alpha=args.alpha)
    mlflow.log_param("alpha", args.alpha)
    model.fit(X_train, y_train)
    mlflow.log_metric("train r2", r2_score(y_train, model.predict(X_train)))

    mlflow.sklearn.save_model(sk_model=model, path=args.model_output)


if __name__ == "__main__":
    mlflow.start_run()
    args = parse_args()
    print(f"Model output path: {args.model_output}")
    main(args)
    mlflow.end_run()
