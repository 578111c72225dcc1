"""Read the raw taxi trips, drop the unusable ones and split them into training and test sets."""

import argparse
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd

TARGET_COL = "cost"
FEATURE_COLS = ["distance", "passengers", "pickup_hour", "vendor"]


def parse_args():
    parser = argparse.ArgumentParser("prep")
    parser.add_argument("--raw_data", type=str, help="Path to raw data")
    parser.add_argument("--train_data", type=str, help="Path to train dataset")
    parser.add_argument("--test_data", type=str, help="Path to test dataset")
    parser.add_argument("--min_distance", type=float, default=0.0)
    return parser.parse_args()


def main(args):
    data = pd.read_csv(Path(args.raw_data))
    data = data[data["distance"] >= args.min_distance][FEATURE_COLS + [TARGET_COL]]

    rng = np.random.default_rng(42)
    in_train = rng.random(len(data)) < 0.8
    train, test = data[in_train], data[~in_train]

    mlflow.log_metric("train size", train.shape[0])
    mlflow.log_metric("test size", test.shape[0])

    train.to_parquet(Path(args.train_data) / "train.parquet")
    test.to_parquet(Path(args.test_data) / "test.parquet")


if __name__ == "__main__":
    mlflow.start_run()
    args = parse_args()
    print(f"Raw data path: {args.raw_data}")
    main(args)
    mlflow.end_run()
