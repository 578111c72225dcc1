"""Log the trained model to the run and register it, if the evaluation says to deploy it."""

import argparse
from pathlib import Path

import mlflow
import mlflow.sklearn
import pandas as pd


def parse_args():
    parser = argparse.ArgumentParser()
    parser.add_argument("--model_name", type=str, help="Name under which model will be registered")
    parser.add_argument("--model_path", type=str, help="Model directory")
    parser.add_argument("--evaluation_output", type=str, help="Path of eval results")
    args, _ = parser.parse_known_args()
    return args


def main(args):
    deploy_flag = int((Path(args.evaluation_output) / "deploy_flag").read_text())
    mlflow.log_metric("deploy flag", deploy_flag)
    if deploy_flag != 1:
        print("Model will not be registered!")
        return

    model = mlflow.sklearn.load_model(args.model_path)
    example = pd.read_csv(Path(args.evaluation_output) / "predictions.csv", index_col=0)
    example = example.drop(columns=["real_label", "predicted_label"]).head(3)
    mlflow.sklearn.log_model(model, name=args.model_name, input_example=example)

    run_id = mlflow.active_run().info.run_id
    registered = mlflow.register_model(f"runs:/{run_id}/{args.model_name}", args.model_name)
    print(f"Registered {args.model_name} version {registered.version}")


if __name__ == "__main__":
    mlflow.start_run()
    args = parse_args()
    print(f"Model name: {args.model_name}")
    main(args)
    mlflow.end_run()
