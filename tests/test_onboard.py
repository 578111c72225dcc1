"""`loopline init --existing` on repositories that already train with MLflow: what it finds, what it
writes, what it never touches, and that the inner loop works right after."""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
from importlib.metadata import version
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import yaml
from mlflow import MlflowClient

import loopline
from loopline.config import load_config
from loopline.errors import ModelFailed, Refused, TrainingFailed, UsageError
from loopline.inputs import INPUTS_TAG
from loopline.onboard import Onboarded, asset_name, find_entry_point
from loopline.ranking import load_ranking
from tests.helpers import (
    TRAINING_SCRIPTS,
    actionlint,
    add_submodule,
    cli,
    cli_process,
    commit_all,
    dvc,
    git,
    installed,
    mlflow_client,
    tree,
)

pytestmark = pytest.mark.slow


def repository(path: Path, files: dict[str, str]) -> Path:
    """A git repository holding ``files``, committed."""
    path.mkdir(parents=True)
    git(path, "init", "--quiet")
    tree(path, files)
    commit_all(path, "Our project")
    return path


def install_steps(workflow: Path) -> set[tuple[str, str]]:
    """The Python version and the install command of every job of ``workflow``."""
    jobs = yaml.safe_load(workflow.read_text())["jobs"].values()
    found = set()
    for job in jobs:
        steps = job["steps"]
        python = next(s["with"]["python-version"] for s in steps if "setup-python" in str(s.get("uses")))
        install = next(s["run"] for s in steps if s.get("name") == "Install the project")
        found.add((python, install))
    return found


PYTHON = f"{sys.version_info.major}.{sys.version_info.minor}"


def failed_training(project: Path, command: str | None = None) -> str:
    """The message of the training failure that stops ``init --existing``."""
    with pytest.raises(TrainingFailed) as failed:
        loopline.init_existing(project, command=command)
    return failed.value.message


def test_an_existing_repository_gets_loopline_without_losing_a_file(tmp_path: Path) -> None:
    own_ci = "name: our ci\non: push\njobs: {}\n"
    own_gate = "# our own gate, for something else\nthreshold: 3\n"
    project = repository(
        tmp_path / "churn",
        {
            "train.py": (TRAINING_SCRIPTS / "own_experiment.py").read_text(),
            "features.py": "def add(frame):\n    return frame\n",
            ".github/workflows/python-ci.yml": own_ci,
            "gate.yaml": own_gate,
            "ranking.yaml": own_gate,
            ".gitignore": "*.pyc",
        },
    )
    result = loopline.init_existing(project)
    assert result.command == "python train.py" and result.artifact_path == "model"
    assert result.experiment == "churn-experiments" and result.model == "churn-model"
    assert "python-ci.yml" not in " ".join(result.written)
    assert set(result.kept) == {".github/workflows/python-ci.yml", "gate.yaml", "ranking.yaml"}
    assert (project / ".github/workflows/python-ci.yml").read_text() == own_ci
    assert (project / "gate.yaml").read_text() == own_gate
    assert (project / ".gitignore").read_text() == "*.pyc\n.loopline/\nmlruns/\nmlflow.db\n"
    gate = yaml.safe_load((project / "loopline-gate.yaml").read_text())["metrics"]
    assert set(gate) == {"accuracy", "roc_auc", "log_loss"}
    assert gate["accuracy"]["min"] < result.metrics["accuracy"] and gate["log_loss"]["max"] > 0
    config = yaml.safe_load((project / "loopline.yaml").read_text())
    assert config["gate"] == {"file": "loopline-gate.yaml"}
    # `loopline compare` ranks by the metric outer-loop test validates, in the gate's direction
    assert config["model"]["ranking"] == "loopline-ranking.yaml"
    ranking = load_ranking(project / "loopline-ranking.yaml")
    assert ranking.primary == ("accuracy", "maximize") and (project / "ranking.yaml").read_text() == own_gate
    # outer-loop test's settings from what the model answers (labels) and the dry run's accuracy
    assert config["validation"] == {
        "data": "heldout",
        "label": "label",
        "task": "classification",
        "thresholds": {"accuracy": gate["accuracy"]},
        "challenger_metric": "accuracy",
    }
    assert not (project / "mlruns").exists() and not list((project / ".loopline").glob("scratch/*"))
    # Nothing tells what the repository installs: the workflows' jobs would fail at their first step. A
    # requirements file is written from the model's requirements (as MLflow inferred them) and the tools
    # the steps run, on the Python the dry run used.
    required = [line for line in (project / "requirements.txt").read_text().splitlines() if line[:1] != "#"]
    assert {"loopline", "pytest", "ruff"} <= {line.split("==")[0] for line in required}
    assert any(line.startswith("scikit-learn==") for line in required)
    assert not any(line.startswith(("sqlalchemy", "loopline==")) for line in required)
    assert any("no requirements.txt" in note for note in result.notes)
    assert not any("held-out rows" in note for note in result.notes)  # the simple tier tests nothing
    assert any("set monitoring.reference_data: train" in note for note in result.notes)
    for name in ("inner-loop.yml", "outer-loop-prod.yml"):
        assert install_steps(project / ".github" / "workflows" / name) == {
            (PYTHON, "pip install -r requirements.txt")
        }

    loopline.up(project)
    commit_all(project, "Set up loopline")
    registered = loopline.inner_loop(project)
    assert registered.created and registered.dev.name == "churn-model"
    with pytest.raises(
        Refused,
        match=r"set up for loopline; to bring its workflow files to this loopline.s, run `loopline workflow "
        r"update`",
    ):
        loopline.init_existing(project)


def test_the_entry_point_is_the_training_script_wherever_it_lives(tmp_path: Path) -> None:
    training = "import mlflow\nmlflow.sklearn.autolog()\n"
    project = repository(
        tmp_path / "layout",
        {
            "src/churn/__init__.py": "",
            "src/churn/train_model.py": training + "if __name__ == '__main__':\n    pass\n",
            "src/churn/features.py": "import mlflow\n",
            "tests/test_train.py": training,
            "notebooks/explore.py": "import mlflow\nmlflow.log_model = None\n",
        },
    )
    assert find_entry_point(project) == "python src/churn/train_model.py"
    (project / "scripts").mkdir()
    (project / "scripts" / "train_other.py").write_text(training)
    (project / "src" / "churn" / "train_model.py").unlink()
    assert find_entry_point(project) == "python scripts/train_other.py"
    (project / "scripts" / "train_again.py").write_text(training)
    with pytest.raises(UsageError, match="--command"):
        find_entry_point(project)


SAVED_THEN_LOGGED = """\
import shutil

import mlflow
import pandas as pd
from sklearn.linear_model import LogisticRegression

df = pd.read_csv("data/customers.csv")
X, y = df[["tenure", "monthly"]], df["churned"]
with mlflow.start_run():
    model = LogisticRegression().fit(X, y)
    mlflow.log_metric("accuracy", model.score(X, y))
    shutil.rmtree("outputs/model", ignore_errors=True)
    mlflow.sklearn.save_model(model, "outputs/model", input_example=X.head(2))
    mlflow.log_artifacts("outputs/model", artifact_path="model")
"""


def test_a_script_that_saves_its_model_and_logs_the_folder_is_the_training(tmp_path: Path) -> None:
    # as Azure ML's first MLflow tutorials wrote it; an export script that only saves a model is not one
    files = {
        "train.py": SAVED_THEN_LOGGED,
        "export.py": "import mlflow\nmlflow.sklearn.save_model(None, 'exported')\n",
        "data/customers.csv": customers(200, seed=1).to_csv(index=False),
        ".gitignore": "outputs/\n",
    }
    project = repository(tmp_path / "saved", files)
    assert find_entry_point(project) == "python train.py"
    result = loopline.init_existing(project)  # was: no script logs an MLflow model, name it with --command
    assert result.command == "python train.py" and result.artifact_path == "model"


def test_a_script_that_names_its_files_from_its_own_folder_is_run_from_there(tmp_path: Path) -> None:
    # Written to be run as `cd training && python train.py`, as its author always does.
    script = SAVED_THEN_LOGGED.replace('"data/customers.csv"', '"../data/customers.csv"')
    files = {
        "training/train.py": script,
        "data/customers.csv": customers(200, seed=1).to_csv(index=False),
        ".gitignore": "outputs/\n",
    }
    project = repository(tmp_path / "own-folder", files)
    assert find_entry_point(project) == "cd training && python train.py"
    # named by hand from the top folder, the training is told how to run it
    assert (
        "; training/train.py names ../data/customers.csv from its own folder, and the training runs in the "
        "repository's top folder: run it from its folder (training.command: `cd training && python "
        "train.py`)" in failed_training(project, "python training/train.py")
    )
    result = loopline.init_existing(project)
    assert result.command == "cd training && python train.py" and result.artifact_path == "model"
    assert any("training/train.py reads ../data/customers.csv from its own folder" in n for n in result.notes)
    # a script of a folder that names its files from the top folder runs from there, as before
    top = repository(tmp_path / "top", {**files, "training/train.py": SAVED_THEN_LOGGED})
    assert find_entry_point(top) == "python training/train.py"


def test_a_repository_without_training_or_git_is_told_what_to_do(tmp_path: Path) -> None:
    bare = tmp_path / "bare"
    bare.mkdir()
    with pytest.raises(UsageError, match="not a git repository"):
        loopline.init_existing(bare)
    nothing = repository(tmp_path / "nothing", {"app.py": "print('hello')\n"})
    with pytest.raises(UsageError, match="--command"):
        loopline.init_existing(nothing)
    assert not (nothing / "loopline.yaml").exists()


def test_a_script_that_registers_and_logs_several_models_is_read_from_its_dry_run(tmp_path: Path) -> None:
    script = (TRAINING_SCRIPTS / "regressor.py").read_text() + (
        "\nwith mlflow.start_run():\n    mlflow.sklearn.log_model(reg, name='baseline')\n"
    )
    declared = '[project]\nname = "progression"\ndependencies = ["scikit-learn>=1.5", "pandas"]\n'
    project = repository(tmp_path / "progression", {"fit.py": script, "pyproject.toml": declared})
    git(project, "branch", "-m", "master")
    result = loopline.init_existing(project, command="python fit.py")
    test = yaml.load((project / ".github/workflows/outer-loop-test.yml").read_text(), Loader=yaml.BaseLoader)
    assert test["on"]["workflow_run"]["branches"] == ["master"]
    # A pyproject.toml that builds nothing (no [build-system]): its dependencies as declared, then the rest.
    required = (project / "requirements.txt").read_text().splitlines()
    assert required[3:5] == ["scikit-learn>=1.5", "pandas"] and "ruff" in required
    assert not any(line.startswith(("scikit-learn==", "pandas==")) for line in required)
    assert result.model == "diabetes-progression"  # the name the script registers
    assert result.artifact_path == "model"
    assert any("'baseline', 'model'" in note for note in result.notes)
    assert not any("will refuse" in note for note in result.notes)
    assert set(yaml.safe_load((project / "gate.yaml").read_text())["metrics"]) == {"r2", "rmse"}
    validation = yaml.safe_load((project / "loopline.yaml").read_text())["validation"]
    assert (validation["task"], list(validation["thresholds"]), validation["challenger_metric"]) == (
        "regression",
        ["r2", "rmse"],
        "r2",
    )


def test_a_model_the_inner_loop_would_refuse_is_named_with_the_fix_when_the_repository_is_set_up(
    tmp_path: Path,
) -> None:
    # A text pipeline fitted on a Series answers one prediction for any table: the inner loop's check
    # refuses it. Setting up is told so at once, with the fix, not at the first inner loop.
    reviews = (TRAINING_SCRIPTS / "reviews.py").read_text()
    project = repository(tmp_path / "reviews", {"train.py": reviews})
    notes = loopline.init_existing(project).notes
    refused = [n for n in notes if n.startswith("the inner loop will refuse the model the training logs")]
    assert len(refused) == 1 and 'ColumnTransformer([("text", TfidfVectorizer(), "text")])' in refused[0]
    loopline.up(project)
    commit_all(project, "Set up loopline")
    with pytest.raises(ModelFailed, match="ColumnTransformer"):
        loopline.inner_loop(project)


def test_a_loss_logged_at_every_epoch_is_gated_at_its_last_epoch_as_mlflow_s_run_page_shows_it(
    tmp_path: Path,
) -> None:
    # MLflow links a run's metrics of log_model's step (0 by default) to the model: read from the model,
    # this training's loss would be its first epoch's, and the gate written from it would admit anything.
    project = repository(tmp_path / "iris", {"train.py": (TRAINING_SCRIPTS / "epoch_loss.py").read_text()})
    loopline.init_existing(project)
    loopline.up(project)
    commit_all(project, "Set up loopline")
    registered = loopline.inner_loop(project)
    client = mlflow_client(project, "dev")
    last = client.get_run(registered.run_id).data.metrics["loss"]
    first = client.get_metric_history(registered.run_id, "loss")[0].value
    assert last < first / 5
    assert registered.gate is not None
    assert {check.metric: check.value for check in registered.gate.checks}["loss"] == last
    bound = yaml.safe_load((project / "gate.yaml").read_text())["metrics"]["loss"]["max"]
    assert last < bound < first / 5  # written from the last epoch, a little above it


SEARCHES_BY_HAND = """\
import mlflow
from sklearn.datasets import load_breast_cancer
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split

X, y = load_breast_cancer(return_X_y=True, as_frame=True)
X_train, X_test, y_train, y_test = train_test_split(X, y, random_state=0)
mlflow.set_experiment("cancer")
for C in [0.001, 1.0, 0.00001]:  # the newest run is not the best
    with mlflow.start_run(run_name=f"C={C}"):
        model = LogisticRegression(C=C, max_iter=5000).fit(X_train, y_train)
        mlflow.log_param("C", C)
        mlflow.log_metric("accuracy", model.score(X_test, y_test))
        mlflow.sklearn.log_model(model, name="model")
"""


def test_a_search_by_hand_that_logs_a_model_from_each_run_registers_the_best(tmp_path: Path) -> None:
    project = repository(tmp_path / "cancer", {"train.py": SEARCHES_BY_HAND})
    result = loopline.init_existing(project)
    config = yaml.safe_load((project / "loopline.yaml").read_text())
    assert config["model"]["select"] == "best"
    assert load_ranking(project / "ranking.yaml").primary == ("accuracy", "maximize")
    assert any("3 runs of the training log 'model'" in note for note in result.notes)
    # the gate's threshold from the best run, the one registered, not from the newest
    assert result.metrics["accuracy"] > 0.945
    gate = yaml.safe_load((project / "gate.yaml").read_text())["metrics"]
    assert gate["accuracy"]["min"] == round(result.metrics["accuracy"] * 0.9, 4)

    loopline.up(project)
    commit_all(project, "Set up loopline")
    registered = loopline.inner_loop(project)
    dev = mlflow_client(project, "dev")
    source = dev.get_run(dev.get_model_version(registered.dev.name, registered.dev.version).run_id)
    assert source.data.params["C"] == "1.0" and source.data.metrics["accuracy"] == result.metrics["accuracy"]


def test_checkpoints_logged_each_epoch_are_set_up_to_register_the_best(tmp_path: Path) -> None:
    project = repository(tmp_path / "sgd", {"train.py": (TRAINING_SCRIPTS / "checkpoints.py").read_text()})
    result = loopline.init_existing(project)
    config = yaml.safe_load((project / "loopline.yaml").read_text())
    assert config["model"]["artifact_path"] == "sgd-*" and config["model"]["select"] == "best"
    # Ranked and validated by the held-out accuracy, not the one on the training rows.
    assert load_ranking(project / "ranking.yaml").primary == ("test_accuracy", "maximize")
    assert config["validation"]["challenger_metric"] == "accuracy"
    assert (
        config["validation"]["thresholds"]["accuracy"]
        == yaml.safe_load((project / "gate.yaml").read_text())["metrics"]["test_accuracy"]
    )
    assert any(
        "the training logs 4 checkpoints of a run ('sgd-*', model.artifact_path); loopline registers the one "
        "the ranking file puts first" in note
        for note in result.notes
    ), result.notes
    assert not any("models named" in note for note in result.notes)
    # The gate from the best checkpoint's accuracy, not the last epoch's (it learned inverted labels).
    gate = yaml.safe_load((project / "gate.yaml").read_text())["metrics"]
    best = result.metrics["test_accuracy"]
    assert best > 0.9 and gate["test_accuracy"]["min"] == round(best * 0.9, 4)

    loopline.up(project)
    commit_all(project, "Set up loopline")
    registered = loopline.inner_loop(project)
    assert registered.gate is not None
    assert [c.value for c in registered.gate.checks if c.metric == "test_accuracy"] == [best]


# A DVC pipeline as DVC's get-started project lays it out: the raw data kept with DVC, a stage that
# prepares it, and a training stage whose script takes the prepared folder as its argument.
DVC_PREPARE = """\
import os
import sys

import pandas as pd
from sklearn.model_selection import train_test_split

raw, out = sys.argv[1], sys.argv[2]
os.makedirs(out, exist_ok=True)
train, test = train_test_split(pd.read_csv(raw), random_state=0)
train.to_csv(os.path.join(out, "train.csv"), index=False)
test.to_csv(os.path.join(out, "test.csv"), index=False)
"""
DVC_TRAIN = """\
import os
import pickle
import sys
import time

import mlflow
import pandas as pd
from sklearn.linear_model import LogisticRegression

train = pd.read_csv(os.path.join(sys.argv[1], "train.csv"))
test = pd.read_csv(os.path.join(sys.argv[1], "test.csv"))
with mlflow.start_run():
    model = LogisticRegression(max_iter=5000).fit(train.drop(columns="y"), train["y"])
    mlflow.log_metric("accuracy", model.score(test.drop(columns="y"), test["y"]))
    mlflow.sklearn.log_model(model, name="model")
with open("model.pkl", "wb") as out:  # a stage output whose bytes differ at every run
    pickle.dump((model, time.time()), out)
"""
DVC_PIPELINE = """\
stages:
  prepare:
    cmd: python src/prepare.py data/raw.csv data/prepared
    deps: [data/raw.csv, src/prepare.py]
    outs: [data/prepared]
  train:
    cmd: python src/train.py data/prepared
    deps: [data/prepared, src/train.py]
    outs: [model.pkl]
"""


def test_a_dvc_pipeline_trains_through_its_stage_and_its_lock_file_makes_no_new_model(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from sklearn.datasets import load_breast_cancer

    # `dvc` on the PATH, as in the environment a DVC project is worked in
    monkeypatch.setenv("PATH", os.pathsep.join([str(Path(sys.executable).parent), os.environ["PATH"]]))

    project = tmp_path / "cancer"
    project.mkdir()
    git(project, "init", "--quiet")
    tree(project, {"src/prepare.py": DVC_PREPARE, "src/train.py": DVC_TRAIN, "dvc.yaml": DVC_PIPELINE})
    frame = load_breast_cancer(as_frame=True).frame.rename(columns={"target": "y"})
    (project / "data").mkdir()
    frame.to_csv(project / "data" / "raw.csv", index=False)
    dvc(project, "init", "--quiet")
    dvc(project, "remote", "add", "--default", "storage", "s3://ml-data/cancer")
    dvc(project, "add", "--quiet", "data/raw.csv")
    dvc(project, "repro", "--quiet")
    commit_all(project, "Our pipeline")

    result = loopline.init_existing(project)
    # not `python src/train.py`, which stops without its argument; forced, or DVC skips the stage
    assert result.command == "dvc repro --force train"
    assert any("runs DVC's stage train (dvc.yaml)" in note for note in result.notes)
    # the raw data is DVC's to pull (the DVC note), not data to upload; the lock file is left out
    assert not any("which git ignores" in note for note in result.notes), result.notes
    assert not any("the training changed" in note for note in result.notes), result.notes
    assert any(note.startswith("the repository keeps data with DVC") for note in result.notes)
    config = yaml.safe_load((project / "loopline.yaml").read_text())
    assert config["training"]["paths"] == [".", "!dvc.lock"]
    required = (project / "requirements.txt").read_text().splitlines()
    assert "dvc" in {line.split("==")[0] for line in required}

    git(project, "checkout", "--", "dvc.lock")
    loopline.up(project)
    commit_all(project, "Set up loopline")
    first = loopline.inner_loop(project)
    assert first.created and first.dev.version == 1
    assert git(project, "status", "--porcelain").strip() == "M dvc.lock"  # as after `dvc repro`
    again = loopline.inner_loop(project)  # the rewritten lock file is not a change of the model's
    assert not again.created and again.dev.version == 1
    commit_all(project, "Record the pipeline's outputs")
    recorded = loopline.inner_loop(project)
    assert not recorded.trained and recorded.dev.version == 1


SAVES_BESIDE_ITSELF = """\
import os
import mlflow
from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression

X, y = load_iris(return_X_y=True, as_frame=True)
clf = LogisticRegression(max_iter=500).fit(X, y)
with mlflow.start_run():
    mlflow.log_metric("accuracy", clf.score(X, y))
    mlflow.sklearn.log_model(clf, name="model", input_example=X.head(2))
    # as Azure ML's tutorial does, where each job runs in a fresh folder
    mlflow.sklearn.save_model(clf, os.path.join("outputs", "trained_model"))
with open("runs.txt", "a") as runs:
    runs.write("trained\\n")
"""


def test_what_the_training_writes_into_the_repository_is_named_and_its_second_run_told_the_fix(
    tmp_path: Path,
) -> None:
    project = repository(tmp_path / "iris", {"train.py": SAVES_BESIDE_ITSELF, "runs.txt": ""})
    result = loopline.init_existing(project)
    wrote = next(note for note in result.notes if note.startswith("the training wrote"))
    assert wrote.startswith("the training wrote outputs/ into the repository: added to .gitignore")
    changed = next(note for note in result.notes if note.startswith("the training changed"))
    assert changed.startswith("the training changed runs.txt, which git tracks")
    assert "/outputs/" in (project / ".gitignore").read_text().splitlines()
    git(project, "checkout", "runs.txt")
    loopline.up(project)
    commit_all(project, "loopline")
    with pytest.raises(TrainingFailed) as refused:
        loopline.inner_loop(project)  # the working tree is clean; the script's second save_model is not
    assert "exited with code 1: mlflow save_model found 'outputs/trained_model' made by an earlier run" in (
        refused.value.message
    )


HYDRA_TRAIN = """\
import hydra
import mlflow
from omegaconf import DictConfig
from sklearn.datasets import load_breast_cancer
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split


@hydra.main(version_base=None, config_path="conf", config_name="config")
def main(cfg: DictConfig) -> float:
    X, y = load_breast_cancer(return_X_y=True, as_frame=True)
    X.columns = [c.replace(" ", "_") for c in X.columns]
    X_train, X_test, y_train, y_test = train_test_split(X, y, random_state=cfg.seed)
    with mlflow.start_run():
        mlflow.log_params({"C": cfg.model.C, "max_iter": cfg.model.max_iter})
        model = LogisticRegression(C=cfg.model.C, max_iter=cfg.model.max_iter).fit(X_train, y_train)
        accuracy = model.score(X_test, y_test)
        mlflow.log_metric("accuracy", accuracy)
        mlflow.sklearn.log_model(model, name="model", input_example=X_test.head(2))
    return accuracy


if __name__ == "__main__":
    main()
"""


def test_a_training_configured_with_hydra_runs_in_its_output_folder_and_takes_overrides(
    tmp_path: Path,
) -> None:
    """Hydra (as of version_base=None) runs the function in outputs/DATE/TIME, a folder it makes in the
    repository, and takes its configuration's values as KEY=VALUE arguments."""
    config = "model:\n  C: 1.0\n  max_iter: 500\nseed: 42\n"
    project = repository(tmp_path / "hydra", {"train.py": HYDRA_TRAIN, "conf/config.yaml": config})
    result = loopline.init_existing(project)
    assert result.command == "python train.py"
    assert any(note.startswith("the training wrote outputs/ into the repository") for note in result.notes)
    loopline.up(project)
    config = yaml.safe_load((project / "loopline.yaml").read_text())
    config["training"]["command"] = "python train.py model.C=0.25"  # an override, as a sweep's would be
    (project / "loopline.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    commit_all(project, "loopline")
    made = loopline.inner_loop(project)
    assert made.created and made.dev is not None
    run = mlflow_client(project, "dev").get_run(made.dev.run_id)
    assert run.data.params["C"] == "0.25" and run.data.params["max_iter"] == "500"
    assert (project / "outputs").is_dir() and git(project, "status", "--porcelain") == ""


CREDIT_MAIN = """\
import argparse

import mlflow
import mlflow.sklearn
import pandas as pd
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score
from sklearn.model_selection import train_test_split


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--data", type=str, help="path to input data")
    parser.add_argument("--test_train_ratio", type=float, required=False, default=0.25)
    parser.add_argument("--registered_model_name", type=str, help="model name")
    args = parser.parse_args()

    mlflow.start_run()
    credit_df = pd.read_csv(args.data, header=1, index_col=0)
    mlflow.log_metric("num_samples", credit_df.shape[0])
    train_df, test_df = train_test_split(credit_df, test_size=args.test_train_ratio, random_state=0)
    y_train = train_df.pop("default payment next month")
    y_test = test_df.pop("default payment next month")
    clf = LogisticRegression(max_iter=1000).fit(train_df.values, y_train)
    mlflow.log_metric("accuracy", accuracy_score(y_test, clf.predict(test_df.values)))
    mlflow.sklearn.log_model(
        sk_model=clf, name=args.registered_model_name, registered_model_name=args.registered_model_name
    )
    mlflow.end_run()


if __name__ == "__main__":
    main()
"""

CREDIT_JOB = """\
$schema: https://azuremlschemas.azureedge.net/latest/commandJob.schema.json
code: ../src
command: >-
  python main.py
  --data ${{inputs.credit_data}}
  --test_train_ratio ${{inputs.test_train_ratio}}
  --registered_model_name ${{inputs.registered_model_name}}
inputs:
  credit_data:
    type: uri_file
    path: ../data/default_of_credit_card_clients.csv
  test_train_ratio: 0.2
  registered_model_name: credit_defaults_model
environment: azureml:AzureML-sklearn-1.0-ubuntu20.04-py38-cpu@latest
compute: azureml:cpu-cluster
display_name: credit_default_prediction
experiment_name: credit-default
"""


def credit_csv(rows: int = 300) -> str:
    """A CSV in the shape of the UCI credit card default data Azure ML's tutorial reads: a row of
    X1..Xn names above the header, an ID column first."""
    import numpy as np

    rng = np.random.default_rng(3)
    limit, age, late = rng.uniform(1e4, 5e5, rows), rng.integers(21, 70, rows), rng.integers(-1, 5, rows)
    default = (late + rng.normal(0, 1, rows) > 2).astype(int)
    lines = [",X1,X2,X3,Y", "ID,LIMIT_BAL,AGE,PAY_0,default payment next month"]
    lines += [f"{i + 1},{limit[i]:.0f},{age[i]},{late[i]},{default[i]}" for i in range(rows)]
    return "\n".join(lines) + "\n"


def test_an_azure_ml_job_file_gives_the_training_command_and_its_data_asset_the_inputs(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # The job reads its data from an Azure ML data asset, as Azure ML's tutorials register it first, and
    # runs in an environment of its own: an image and a conda file.
    job = CREDIT_JOB.replace(
        "path: ../data/default_of_credit_card_clients.csv", "path: azureml:credit-data:1"
    ).replace(
        "environment: azureml:AzureML-sklearn-1.0-ubuntu20.04-py38-cpu@latest",
        "environment:\n  image: mcr.microsoft.com/azureml/openmpi4.1.0-ubuntu20.04\n"
        "  conda_file: ../env/conda.yaml",
    )
    conda = (
        "name: credit\nchannels: [conda-forge]\ndependencies:\n  - python=3.10\n  - pip\n"
        "  - scikit-learn=1.5\n  - pandas\n  - pip:\n    - mlflow\n    - azureml-mlflow\n    - xlrd\n"
    )
    project = repository(
        tmp_path / "credit", {"src/main.py": CREDIT_MAIN, "jobs/train.yml": job, "env/conda.yaml": conda}
    )
    with pytest.raises(UsageError) as unfetched:  # nothing is run or written without the data
        loopline.init_existing(project)
    assert unfetched.value.message == (
        "the training reads input credit_data (azureml:credit-data:1 in jobs/train.yml), which init cannot "
        "fetch: give a local copy of its data for the one run init makes: --input credit_data=PATH"
    )
    wrong = cli(capsys, "init", "--existing", str(project), "--input", "credit=x.csv")
    assert wrong.exit_code == 2, wrong.stderr
    assert wrong.stderr.splitlines()[-1] == (
        "error: --input credit names an input the training does not read (it reads credit_data: "
        "{inputs.NAME} in its command)"
    )
    assert not (project / "loopline.yaml").exists()
    copy = tmp_path / "downloads" / "credit card.csv"  # a copy of the asset's file, out of the repository
    copy.parent.mkdir()
    copy.write_text(credit_csv())
    # docs/bring-your-own-project.md's commands, in the repository
    monkeypatch.chdir(project)
    done = cli(capsys, "init", "--existing", "--input", f"credit_data={copy}", "--json")
    assert done.exit_code == 0, done.stderr
    result = done.json()
    assert result["command"] == (
        "python src/main.py --data {inputs.credit_data} --test_train_ratio 0.2 "
        "--registered_model_name credit_defaults_model"
    )
    assert result["inputs"] == {"credit_data": "credit-data"}
    assert (result["model"], result["artifact_path"]) == ("credit_defaults_model", "credit_defaults_model")
    assert result["notes"][0].startswith(
        "the training command is the one of jobs/train.yml, an Azure ML command job, with its inputs filled "
        "in; it runs from the repository's root, not from src/ where Azure ML runs it"
    )
    upload = f"loopline data upload credit-data '{copy}'"
    assert (
        "the training reads data asset credit-data as {inputs.credit_data} (Azure ML's azureml:credit-data:1)"
        f": after `loopline up`, upload the copy init read (`{upload}`); each training reads its newest "
        "version, verified"
    ) in result["notes"]
    assert (
        "env/conda.yaml (a conda environment) is not read: the workflows install requirements.txt with pip "
        "on GitHub's Python; of the packages it lists, azureml-mlflow, xlrd are not in requirements.txt "
        "(add those the jobs need)"
    ) in result["notes"]
    training = yaml.safe_load((project / "loopline.yaml").read_text())["training"]
    assert training == {"command": result["command"], "inputs": {"credit_data": "credit-data"}}
    assert "accuracy" in yaml.safe_load((project / "gate.yaml").read_text())["metrics"]
    assert cli(capsys, "up").exit_code == 0
    uploaded = cli(capsys, *shlex.split(upload)[1:])  # the note's command
    assert uploaded.exit_code == 0, uploaded.stderr
    commit_all(project, "loopline")
    first = loopline.inner_loop(project)
    assert first.created and first.trained and first.dev.name == "credit_defaults_model"
    model = loopline.status(project).models[0]
    run = MlflowClient(load_config(project).store("dev").tracking_uri).get_run(model.run_id)
    assert json.loads(run.data.tags[INPUTS_TAG])["credit_data"].startswith("credit-data:1 sha256:")


GRID_SEARCH = """\
import mlflow
from sklearn.datasets import load_wine
from sklearn.ensemble import RandomForestClassifier
from sklearn.model_selection import GridSearchCV, train_test_split

mlflow.sklearn.autolog()

X, y = load_wine(return_X_y=True, as_frame=True)
X_train, X_test, y_train, y_test = train_test_split(X, y, random_state=0)
search = GridSearchCV(RandomForestClassifier(random_state=0), {"max_depth": [2, None]}, cv=3)
with mlflow.start_run():
    search.fit(X_train, y_train)
    mlflow.log_metric("test_accuracy", search.score(X_test, y_test))
"""


def test_the_gate_leaves_out_what_autolog_measures_on_the_training_rows(tmp_path: Path) -> None:
    # autolog logs training_accuracy_score, training_log_loss, ... beside the held-out figures: a
    # shallower forest that generalises better would fail a gate on its own training rows
    project = repository(tmp_path / "wine", {"train.py": GRID_SEARCH})
    result = loopline.init_existing(project)
    assert {"training_accuracy_score", "training_log_loss", "test_accuracy"} <= set(result.metrics)
    text = (project / "gate.yaml").read_text()
    gate = yaml.safe_load(text)["metrics"]
    assert "test_accuracy" in gate and "best_cv_score" in gate
    assert not [name for name in gate if name.startswith("training_")], gate
    measured = text.split("# Measured on the training rows, not gated", 1)[1]
    assert "#   training_log_loss: {min: ..., max: ...}" in measured
    # a training that measures nothing else (autolog of a plain fit) keeps its training figures
    from loopline.gate_setup import gate_thresholds

    only = {name: value for name, value in result.metrics.items() if name.startswith("training_")}
    gate, _skipped, fitted = gate_thresholds(only)
    assert "training_accuracy_score" in gate and "training_log_loss" in gate and fitted == []


PER_EPOCH_NAMES = """\
import mlflow
from mlflow.models import infer_signature
from sklearn.datasets import load_breast_cancer
from sklearn.linear_model import SGDClassifier
from sklearn.metrics import log_loss
from sklearn.model_selection import train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

X, y = load_breast_cancer(return_X_y=True, as_frame=True)
X.columns = [c.replace(" ", "_") for c in X.columns]
X_train, X_val, y_train, y_val = train_test_split(X, y, random_state=0)
scaler = StandardScaler().fit(X_train)
clf = SGDClassifier(loss="log_loss", random_state=0)
with mlflow.start_run():
    for epoch in range(5):
        clf.partial_fit(scaler.transform(X_train), y_train, classes=[0, 1])
        val = clf.score(scaler.transform(X_val), y_val)
        mlflow.log_metrics({
            "train/loss": log_loss(y_train, clf.predict_proba(scaler.transform(X_train))),
            "train/accuracy": clf.score(scaler.transform(X_train), y_train),
            "val/accuracy": val,
            "val-accuracy-pct": 100 * val,  # sorts before val/accuracy
        }, step=epoch)
    model = make_pipeline(scaler, clf)
    mlflow.sklearn.log_model(model, name="model", signature=infer_signature(X_val, model.predict(X_val)))
"""


def test_metrics_named_as_tensorboard_names_them_are_read_for_what_they_measure(tmp_path: Path) -> None:
    # train/... is measured on the training rows; an accuracy in percent is not validation's fraction
    project = repository(tmp_path / "cancer", {"train.py": PER_EPOCH_NAMES})
    result = loopline.init_existing(project)
    gate = yaml.safe_load((project / "gate.yaml").read_text())["metrics"]
    assert set(gate) == {"val/accuracy", "val-accuracy-pct"}, gate
    validation = yaml.safe_load((project / "loopline.yaml").read_text())["validation"]
    accuracy = result.metrics["val/accuracy"]
    assert validation["thresholds"] == {"accuracy": {"min": round(accuracy * 0.9, 4)}}
    assert validation["challenger_metric"] == "accuracy"


ARIMA = """\
import mlflow
import mlflow.statsmodels
import numpy as np
import pandas as pd
from sklearn.metrics import mean_absolute_error
from statsmodels.tsa.arima.model import ARIMA

rng = np.random.default_rng(0)
months = pd.date_range("2015-01-01", periods=120, freq="MS")
sales = pd.Series(200 + 0.8 * np.arange(120) + rng.normal(0, 4, 120), index=months)
train, test = sales[:-12], sales[-12:]
with mlflow.start_run():
    fitted = ARIMA(train, order=(1, 1, 1)).fit()
    mlflow.log_metric("mae", mean_absolute_error(test, fitted.forecast(12)))
    mlflow.log_metric("aic", fitted.aic)
    example = pd.DataFrame({"start": [len(train)], "end": [len(train) + 11]})
    mlflow.statsmodels.log_model(fitted, name="model", input_example=example)
"""


def test_a_forecast_is_given_a_validation_command_to_write_instead_of_held_out_rows(tmp_path: Path) -> None:
    # statsmodels' ARIMA answers a value for each month of the horizon a request names, not one a row
    project = repository(tmp_path / "sales", {"train.py": ARIMA})
    result = loopline.init_existing(project, tier="full")
    validation = yaml.safe_load((project / "loopline.yaml").read_text())["validation"]
    mae = result.metrics["mae"]
    assert validation == {
        "command": "python validate.py",
        "data": "heldout",
        "thresholds": {"mae": {"max": round(mae * 1.25, 4)}},
        "challenger_metric": "mae",
    }
    assert any(
        "outer-loop test measures this forecast (statsmodels) with validation.command" in note
        for note in result.notes
    )
    assert not any("true values in the column validation.label names" in note for note in result.notes)


LOGIT_FORMULA = """\
import mlflow
import pandas as pd
import statsmodels.formula.api as smf
from sklearn.metrics import accuracy_score, roc_auc_score
from sklearn.model_selection import train_test_split

df = pd.read_csv("data/customers.csv")
train, test = train_test_split(df, test_size=0.2, random_state=0, stratify=df["churned"])
mlflow.set_experiment("churn-logit")
with mlflow.start_run():
    model = smf.logit("churned ~ tenure + monthly + C(contract)", data=train).fit(disp=0)
    proba = model.predict(test)
    mlflow.log_metric("accuracy", accuracy_score(test["churned"], proba > 0.5))
    mlflow.log_metric("roc_auc", roc_auc_score(test["churned"], proba))
    mlflow.statsmodels.log_model(model, name="model", input_example=test.drop(columns="churned").head(5))
"""


def customers(count: int, seed: int) -> pd.DataFrame:
    """Customers who churn the more, the shorter their tenure, the dearer their plan and the shorter their
    contract."""
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(
        {
            "tenure": rng.integers(1, 72, count),
            "monthly": rng.uniform(20, 120, count).round(2),
            "contract": rng.choice(["monthly", "yearly", "two-year"], count),
        }
    )
    odds = -1.0 - 0.05 * frame["tenure"] + 0.02 * frame["monthly"]
    odds += frame["contract"].map({"monthly": 1.2, "yearly": -0.5, "two-year": -1.5})
    return frame.assign(churned=(rng.uniform(size=count) < 1 / (1 + np.exp(-odds))).astype(int))


def validated_in_test(project: Path, message: str, held_out: pd.DataFrame) -> Any:
    """Commit what init wrote (with ``message``), train and register, and validate in test on the rows
    ``held_out`` (the data asset heldout): the validation, passed."""
    commit_all(project, message)
    loopline.up(project)
    loopline.inner_loop(project)
    held_out.to_csv(project.parent / "heldout.csv", index=False)
    loopline.upload_data("heldout", project.parent / "heldout.csv", project=project)
    tested = loopline.outer_loop_test(project)
    assert tested.passed, tested.report_markdown
    return tested


def churn_project(tmp_path: Path, script: str) -> tuple[Path, Onboarded, dict[str, Any]]:
    """A repository training ``script`` on data/customers.csv, set up by init (full tier): it, what
    init said, and the validation section it wrote."""
    files = {"train.py": script, "data/customers.csv": customers(700, seed=3).to_csv(index=False)}
    project = repository(tmp_path / "churn", files)
    result = loopline.init_existing(project, tier="full")
    validation = yaml.safe_load((project / "loopline.yaml").read_text())["validation"]
    assert validation["label"] == "churned" and validation["task"] == "classification"
    return project, result, validation


def test_a_statsmodels_logit_fitted_by_a_formula_is_validated_on_held_out_rows_by_its_probabilities(
    tmp_path: Path,
) -> None:
    # statsmodels is no forecast here: a Logit fitted by a formula answers a probability of churn a row,
    # measured by the ROC AUC too, as the training measured it
    project, result, validation = churn_project(tmp_path, LOGIT_FORMULA)
    assert "command" not in validation
    assert validation["thresholds"] == {
        "accuracy": {"min": round(result.metrics["accuracy"] * 0.9, 4)},
        "roc_auc": {"min": round(result.metrics["roc_auc"] * 0.9, 4)},
    }
    assert not any("forecast" in note for note in result.notes), result.notes
    tested = validated_in_test(project, "loopline", customers(200, seed=4))
    measured = tested.report["metrics"]  # each probability is the label its side of 0.5 says
    assert tested.report["data"]["rows"] == 200 and 0.7 < measured["accuracy"] < 0.95
    assert [check["metric"] for check in tested.report["checks"]] == ["accuracy", "roc_auc"]
    assert 0.7 < measured["roc_auc"] < 1 and 0 < measured["log_loss"] < 0.7


BINARY_BOOSTER = """\
import lightgbm as lgb
import mlflow
import pandas as pd
from sklearn.metrics import log_loss, roc_auc_score
from sklearn.model_selection import train_test_split

df = pd.read_csv("data/customers.csv")
df["contract"] = df["contract"].astype("category")
X, y = df.drop(columns="churned"), df["churned"]
X_train, X_valid, y_train, y_valid = train_test_split(X, y, test_size=0.2, random_state=7)
params = {"objective": "binary", "metric": "auc", "learning_rate": 0.1, "num_leaves": 7, "verbose": -1}
with mlflow.start_run():
    booster = lgb.train(params, lgb.Dataset(X_train, y_train), num_boost_round=60)
    p = booster.predict(X_valid)
    mlflow.log_metric("val_auc", roc_auc_score(y_valid, p))
    mlflow.log_metric("val_logloss", log_loss(y_valid, p))
    mlflow.lightgbm.log_model(booster, name="model", input_example=X_valid.head(5))
"""


def test_a_binary_booster_fitted_on_categories_is_bounded_on_its_roc_auc_and_log_loss_and_its_label_found(
    tmp_path: Path,
) -> None:
    # MLflow infers no signature from a column of pandas categories: the input example tells the columns
    # (and the label column), and the booster answers the probability of churn, which validation measures
    # by ROC AUC and log loss
    _, result, validation = churn_project(tmp_path, BINARY_BOOSTER)
    assert validation["thresholds"] == {
        "roc_auc": {"min": round(result.metrics["val_auc"] * 0.9, 4)},
        "log_loss": {"max": round(result.metrics["val_logloss"] * 1.25, 4)},
    }
    assert validation["challenger_metric"] == "roc_auc"


# Customers with their contract a pandas category column, split for a booster's validation set.
_CATEGORIES_SPLIT = """\
import mlflow
import pandas as pd
from sklearn.model_selection import train_test_split

df = pd.read_csv("data/customers.csv")
df["contract"] = df["contract"].astype("category")
X, y = df.drop(columns="churned"), df["churned"]
X_train, X_valid, y_train, y_valid = train_test_split(X, y, test_size=0.25, random_state=7)
"""
AUTOLOGGED_BOOSTER = f"""\
import lightgbm as lgb
{_CATEGORIES_SPLIT}
mlflow.lightgbm.autolog()
params = {{"objective": "binary", "metric": ["auc", "binary_logloss"], "num_leaves": 7, "verbose": -1}}
with mlflow.start_run():
    train_set = lgb.Dataset(X_train, label=y_train)
    valid_set = lgb.Dataset(X_valid, label=y_valid, reference=train_set)
    lgb.train(params, train_set, num_boost_round=60, valid_sets=[valid_set], valid_names=["valid"])
"""
AUTOLOGGED_XGBOOST = f"""\
import xgboost as xgb
{_CATEGORIES_SPLIT}
mlflow.xgboost.autolog()
with mlflow.start_run():
    dtrain = xgb.DMatrix(X_train, label=y_train, enable_categorical=True)
    dvalid = xgb.DMatrix(X_valid, label=y_valid, enable_categorical=True)
    params = {{"objective": "binary:logistic", "eval_metric": ["auc", "logloss"], "max_depth": 3}}
    xgb.train(params, dtrain, num_boost_round=40, evals=[(dvalid, "validation")])
"""


@pytest.mark.parametrize(
    ("script", "auc", "loss"),
    [
        (AUTOLOGGED_BOOSTER, "valid-auc", "valid-binary_logloss"),
        (AUTOLOGGED_XGBOOST, "validation-auc", "validation-logloss"),  # no signature either: its file's names
    ],
    ids=["lightgbm", "xgboost"],
)
def test_a_booster_autologged_without_an_input_example_is_told_by_its_answers_to_the_training_s_rows(
    tmp_path: Path, script: str, auc: str, loss: str
) -> None:
    # autolog logs no input example: the booster's answers to the first rows of the table the training read
    # are probabilities, and its metrics (valid-auc, valid-binary_logloss) bound those validation measures
    _, result, validation = churn_project(tmp_path, script)
    assert validation["label"] == "churned"
    assert validation["thresholds"] == {
        "roc_auc": {"min": round(result.metrics[auc] * 0.9, 4)},
        "log_loss": {"max": round(result.metrics[loss] * 1.25, 4)},
    }
    assert validation["challenger_metric"] == "roc_auc"


def _docs_validate_py(kind: str) -> str:
    """The validate.py docs/outer-loops.md gives for a ``kind`` of model (the python block after the
    paragraph that names it)."""
    page = (Path(__file__).parents[1] / "docs" / "outer-loops.md").read_text()
    after = page[page.index(f"A `validate.py` for a model that {kind}") :]
    return after.split("```python\n", 1)[1].split("\n```", 1)[0] + "\n"


def test_a_clustering_is_gated_on_its_measures_and_validated_by_the_validate_py_of_the_docs(
    tmp_path: Path,
) -> None:
    from tests.training_scripts.segments import customers

    # KMeans on scaled columns, measured by silhouette and Davies-Bouldin (less is better) and inertia
    project = repository(
        tmp_path / "segments",
        {
            "train.py": (TRAINING_SCRIPTS / "segments.py").read_text(),
            "data/customers.csv": customers(600, seed=0).to_csv(index=False),
        },
    )
    result = loopline.init_existing(project, tier="full")
    gate = yaml.safe_load((project / "gate.yaml").read_text())["metrics"]
    assert set(gate) == {"silhouette", "davies_bouldin_score", "inertia"}
    assert "max" in gate["davies_bouldin_score"] and "min" in gate["silhouette"]
    validation = yaml.safe_load((project / "loopline.yaml").read_text())["validation"]
    assert validation["command"] == "python validate.py" and validation["challenger_metric"] == "silhouette"
    assert set(validation["thresholds"]) == {"silhouette", "davies_bouldin_score"}  # inertia: a sum
    assert any("measures this clustering with validation.command" in note for note in result.notes)

    # The docs' validate.py, logging the Davies-Bouldin index under the training's name
    validate = _docs_validate_py("scales its columns").replace('"davies_bouldin":', '"davies_bouldin_score":')
    (project / "validate.py").write_text(validate)
    tested = validated_in_test(project, "loopline, and a validation of the clusters", customers(200, seed=1))
    measured = tested.report["metrics"]
    assert measured["silhouette"] > validation["thresholds"]["silhouette"]["min"]
    assert measured["davies_bouldin_score"] < validation["thresholds"]["davies_bouldin_score"]["max"]
    assert tested.report["data"]["rows"] == 200


READS_IGNORED_DATA = """\
import sys
import mlflow
import pandas as pd
from sklearn.linear_model import LinearRegression

from settings import WAREHOUSE

frame = pd.read_csv("data/train.csv")
held_out = pd.read_csv(WAREHOUSE / "heldout.csv")  # a path the code builds, as a settings module does
frame.to_csv("cache/features.csv")  # a file it makes, then reads, is not one the checkout lacks
features = pd.read_csv("cache/features.csv")
with mlflow.start_run():
    model = LinearRegression().fit(frame[["x"]], frame["y"])
    mlflow.log_metric("r2", model.score(held_out[["x"]], held_out["y"]))
    mlflow.sklearn.log_model(model, name="model")
    frame.to_csv("scored.csv")  # what it writes is not what it reads
"""


def test_data_the_training_reads_that_git_ignores_is_named_for_the_workflows(tmp_path: Path) -> None:
    # The dry run finds data/train.csv here; the workflows' fresh checkout will not
    settings = "from pathlib import Path\n\nWAREHOUSE = Path(__file__).resolve().parent / 'warehouse'\n"
    ignored = "data/\nscored.csv\nextra/\nwarehouse/\ncache/\n"
    project = repository(
        tmp_path / "ignored",
        {
            "fit.py": READS_IGNORED_DATA,
            "settings.py": settings,
            ".gitignore": ignored,
            "extra/a.csv": "x\n1\n",
        },
    )
    for folder in ("data", "warehouse", "cache"):
        (project / folder).mkdir()
    rows = "x,y\n1,2\n2,4\n3,6.5\n"
    (project / "data" / "train.csv").write_text(rows)
    (project / "warehouse" / "heldout.csv").write_text(rows)
    result = loopline.init_existing(project, command="python fit.py --extra extra/")
    said = [note for note in result.notes if "which git ignores" in note]
    assert said == [
        "the training reads data/train.csv, extra/, warehouse/heldout.csv, which git ignores: the workflows' "
        "fresh checkout has none of it; upload it (`loopline data upload NAME PATH`) and name it in "
        "training.inputs (see docs/inner-loop.md, training data from data assets), or make it in the "
        "training command before the training (`make data && ...`)"
    ]


def test_a_training_without_metrics_to_gate_on_writes_nothing(tmp_path: Path) -> None:
    script = (
        "import mlflow\nfrom sklearn.linear_model import LinearRegression\n"
        "with mlflow.start_run():\n"
        "    mlflow.sklearn.log_model(LinearRegression().fit([[0], [1]], [0, 1]), name='model')\n"
    )
    project = repository(tmp_path / "silent", {"train.py": script})
    with pytest.raises(Refused, match=r"log one with mlflow\.log_metric"):
        loopline.init_existing(project)
    assert sorted(p.name for p in project.iterdir()) == [".git", ".loopline", "train.py"]


def test_the_cli_sets_up_the_current_folder_and_reports_in_json(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    missing = cli(capsys, "init")
    assert missing.exit_code == 2 and "loopline init DIR (or --existing)" in missing.stderr
    package = (
        '[build-system]\nrequires = ["setuptools"]\nbuild-backend = "setuptools.build_meta"\n'
        '[project]\nname = "cli"\nversion = "1"\ndependencies = ["mlflow", "scikit_learn", "Loopline>=0.1"]\n'
    )
    origin = repository(
        tmp_path / "origin",
        {"train.py": (TRAINING_SCRIPTS / "autolog.py").read_text(), "pyproject.toml": package},
    )
    # A clone of a repository whose merges land on 'trunk', set up on a branch of its own.
    git(origin, "branch", "-m", "trunk")
    git(tmp_path, "clone", "--quiet", str(origin), "cli")
    project = tmp_path / "cli"
    git(project, "switch", "--quiet", "-c", "add-loopline")
    done = cli_process("init", "--existing", "--json", "--tier", "full", cwd=project)
    assert done.exit_code == 0, done.stderr
    test = yaml.load((project / ".github/workflows/outer-loop-test.yml").read_text(), Loader=yaml.BaseLoader)
    assert test["on"]["workflow_run"]["branches"] == ["trunk"]
    assert actionlint(project) == ""
    # A package: pip installs it with its dependencies, and the tools it does not name.
    assert not (project / "requirements.txt").exists()
    assert install_steps(project / ".github" / "workflows" / "python-ci.yml") == {
        (PYTHON, "pip install . pytest ruff")
    }
    report = done.json()
    assert report["tier"] == "full" and report["command"] == "python train.py"
    assert "loopline.yaml" in report["files"] and "training_accuracy_score" in report["metrics"]
    # outer-loop test needs held-out rows the training does not give (the simple tier has no test)
    assert any("upload them once (`loopline data upload heldout PATH`" in note for note in report["notes"])


def test_a_project_in_a_folder_of_the_repository_gets_its_workflows_at_the_top(tmp_path: Path) -> None:
    top = repository(
        tmp_path / "company",
        {
            "services/app.py": "print('api')\n",
            "ml/churn/train.py": (TRAINING_SCRIPTS / "own_experiment.py").read_text(),
            "ml/churn/requirements.txt": "-r base.txt\nscikit-learn>=1.5  # the model\n",
            "ml/churn/base.txt": "mlflow\nPyTest\n",
        },
    )
    result = loopline.init_existing(top / "ml" / "churn")
    # Its own requirements (with what they include), and the tools they do not name, in its folder.
    assert (top / "ml" / "churn" / "requirements.txt").read_text().startswith("-r base.txt")
    installs = install_steps(top / ".github" / "workflows" / "churn-python-ci.yml")
    assert installs == {(PYTHON, "pip install -r requirements.txt loopline ruff")}
    workflows = sorted(p.name for p in (top / ".github" / "workflows").iterdir())
    assert "churn-inner-loop.yml" in workflows and len(workflows) == 6
    assert "../../.github/workflows/churn-inner-loop.yml" in result.written
    assert not (top / "ml" / "churn" / ".github").exists()
    inner = yaml.safe_load((top / ".github" / "workflows" / "churn-inner-loop.yml").read_text())
    assert inner["defaults"] == {"run": {"working-directory": "ml/churn"}}
    config = yaml.safe_load((top / "ml" / "churn" / "loopline.yaml").read_text())
    assert config["registry"] == {"attestation": {"workflow": ".github/workflows/churn-inner-loop.yml"}}
    assert config["training"]["paths"] == ["."]


def notebook(*cells: str, kernel: str = ".venv") -> str:
    """A Jupyter notebook of code ``cells`` (a markdown title first), saved with ``kernel`` as VS Code
    saves a notebook run on a project's virtual environment."""
    import nbformat
    from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

    kernelspec = {"name": kernel, "display_name": kernel, "language": "python"}
    made = new_notebook(
        cells=[new_markdown_cell("# Training"), *map(new_code_cell, cells)],
        metadata={"kernelspec": kernelspec},
    )
    return str(nbformat.writes(made))


# Written the way a notebook is: a cell at a time, the data read beside the notebook's folder, IPython's
# magics and displays, autolog and a metric of its own.
TRAINING_NOTEBOOK = notebook(
    "import mlflow\nimport pandas as pd\nimport yaml\nfrom sklearn.linear_model import Ridge\n"
    "from sklearn.model_selection import train_test_split\nparams = yaml.safe_load('alpha: 0.5')\n"
    "mlflow.set_tracking_uri('http://127.0.0.1:5000')  # as MLflow's tutorials start\n"
    "import os\nos.environ['MLFLOW_REGISTRY_URI'] = 'sqlite:///registry.db'  # and as others do",
    "frame = pd.read_csv('../data/diabetes.csv')\nframe.describe()",
    "X, y = frame.drop(columns='target'), frame['target']\n"
    "X_train, X_test, y_train, y_test = train_test_split(X, y, random_state=0)\n"
    "%time mlflow.sklearn.autolog()",
    "with mlflow.start_run():\n"
    "    ridge = Ridge(alpha=params['alpha']).fit(X_train, y_train)\n"
    "    mlflow.log_metric('r2', ridge.score(X_test, y_test))\n"
    "    print('held-out r2', round(ridge.score(X_test, y_test), 3))",
)


def test_a_notebook_is_the_training_where_no_script_is(tmp_path: Path) -> None:
    from sklearn.datasets import load_diabetes

    project = repository(
        tmp_path / "progression",
        {
            "notebooks/train.ipynb": TRAINING_NOTEBOOK,
            "notebooks/explore.ipynb": notebook("import pandas as pd"),
            "data/diabetes.csv": load_diabetes(as_frame=True).frame.to_csv(index=False),
        },
    )
    result = loopline.init_existing(project)
    assert result.command == (
        "python -m papermill notebooks/train.ipynb /dev/null --cwd notebooks --log-output --no-progress-bar "
        "--kernel python3 --language python"
    )
    assert "r2" in result.metrics and result.artifact_path == "model"
    assert any(note.startswith("the training is a notebook") for note in result.notes)
    # Its tutorial-style tracking server is kept off, as for a script, and the note says so.
    said = "the training calls mlflow.set_tracking_uri('http://127.0.0.1:5000') itself; loopline ignores it"
    assert any(note.startswith(said) for note in result.notes), result.notes
    said = "the training sets os.environ['MLFLOW_REGISTRY_URI'] = 'sqlite:///registry.db' itself; loopline"
    assert any(note.startswith(said) for note in result.notes), result.notes
    assert not (project / "notebooks" / "registry.db").exists()
    # The workflows install what runs the notebook with the model's requirements.
    required = (project / "requirements.txt").read_text().splitlines()
    assert {"papermill", "ipykernel", "loopline"} <= set(required)
    assert f"PyYAML=={version('PyYAML')}" in required  # the notebook's import, which the model needs not
    assert (project / "notebooks" / "train.ipynb").read_text() == TRAINING_NOTEBOOK  # not written in place
    loopline.up(project)
    commit_all(project, "Set up loopline")
    registered = loopline.inner_loop(project)
    assert registered.created and registered.dev.name == "progression-model"
    assert registered.log_path and "held-out r2 0." in Path(registered.log_path).read_text()
    assert git(project, "status", "--porcelain") == ""  # the run left nothing in the repository


def test_a_notebook_that_fails_names_its_cell_and_error(tmp_path: Path) -> None:
    failing = notebook("import mlflow\nmlflow.sklearn.autolog()", "raise FileNotFoundError('data/train.csv')")
    project = repository(tmp_path / "failing", {"train.ipynb": failing})
    message = failed_training(project)
    assert "--cwd" not in message  # a notebook at the top runs where it is
    assert (
        "exited with code 1: the notebook's cell In [2] raised FileNotFoundError: data/train.csv; its "
        in (message)
    )
    # Without papermill in loopline's Python (here: Python started without its site-packages).
    without = failed_training(project, "python -S -m papermill train.ipynb /dev/null")
    assert "takes papermill and ipykernel in loopline's Python: pip install papermill ipykernel" in without


def test_a_script_is_preferred_to_a_notebook_that_trains_too(tmp_path: Path) -> None:
    training = "import mlflow\nmlflow.sklearn.autolog()\n"
    project = repository(
        tmp_path / "both",
        {"train.ipynb": notebook(training), "src/train.py": training, "broken.ipynb": '{"cells": 3}'},
    )
    assert find_entry_point(project) == "python src/train.py"
    (project / "src" / "train.py").unlink()
    assert find_entry_point(project).startswith("python -m papermill train.ipynb /dev/null --log-output")
    (project / "fit.ipynb").write_text(notebook(training))
    assert find_entry_point(project).startswith("python -m papermill train.ipynb")  # named train wins
    (project / "train_again.ipynb").write_text(notebook(training))
    with pytest.raises(
        UsageError, match=r"train\.ipynb, train_again\.ipynb|train_again\.ipynb, train\.ipynb"
    ):
        find_entry_point(project)


def test_a_failing_script_is_told_by_its_refused_arguments_or_its_last_exception(tmp_path: Path) -> None:
    script = (
        "import argparse\nimport mlflow\n\n"
        "parser = argparse.ArgumentParser()\nparser.add_argument('--data', required=True)\n"
        "args = parser.parse_args()\nmlflow.sklearn.autolog()\n"
        "try:\n    open(args.data)\nexcept OSError as exc:\n"
        "    raise RuntimeError(f'cannot read the training data {args.data}') from exc\n"
    )
    project = repository(tmp_path / "args", {"train.py": script})
    assert (
        "exited with code 2: train.py: error: the following arguments are required: --data; give the script "
        "its arguments in the training command (--command of init --existing" in failed_training(project)
    )
    # The exception that ended the script, not the one it was raised from.
    assert (
        "exited with code 1: RuntimeError: cannot read the training data missing.csv; its output is in"
        in (failed_training(project, "python train.py --data missing.csv"))
    )


CLICK_GROUP = """\
import click
import mlflow
from sklearn.datasets import load_diabetes
from sklearn.linear_model import Ridge


@click.group()
def cli():
    \"\"\"The project's tasks.\"\"\"


@cli.command()
@click.option("--alpha", default=1.0, type=float)
def train(alpha):
    features, target = load_diabetes(return_X_y=True, as_frame=True)
    with mlflow.start_run():
        mlflow.sklearn.log_model(Ridge(alpha=alpha).fit(features, target), name="model")


@cli.command()
def evaluate():
    print("evaluating")


if __name__ == "__main__":
    cli()
"""

TYPER_APP = """\
import mlflow
import typer

app = typer.Typer()


@app.command()
def prepare_data():
    print("preparing")


@app.command()
def train_model(epochs: int = 3):
    mlflow.autolog()


if __name__ == "__main__":
    app()
"""

ARGPARSE_SUB_PARSERS = """\
import argparse

import mlflow

parser = argparse.ArgumentParser()
commands = parser.add_subparsers(dest="command", required=True)
commands.add_parser("fit").add_argument("--epochs", type=int, default=3)
commands.add_parser("serve")
args = parser.parse_args()
mlflow.autolog()
"""


@pytest.mark.parametrize(
    ("script", "chosen", "listed"),
    [
        (CLICK_GROUP, "train", "evaluate, train"),  # as its help lists them
        (TYPER_APP, "train-model", "prepare-data, train-model"),
        (ARGPARSE_SUB_PARSERS, "fit", "fit, serve"),
    ],
    ids=["click", "typer", "argparse"],
)
def test_a_script_of_sub_commands_trains_through_the_one_named_for_training(
    tmp_path: Path, script: str, chosen: str, listed: str
) -> None:
    project = repository(tmp_path / "tasks", {"cli.py": script})
    assert find_entry_point(project) == f"python cli.py {chosen}"
    # Run without one (training.command written by hand), the script's usage is read for which to add.
    assert (
        f"exited with code 2: the script is a group of sub-commands ({listed}) and the training command "
        f"names none; add the one that trains, as in --command 'python cli.py {chosen}' (training.command"
    ) in failed_training(project, "python cli.py")


def test_a_group_of_sub_commands_none_named_for_training_is_run_as_it_is(tmp_path: Path) -> None:
    script = CLICK_GROUP.replace("def train(", "def build(")
    project = repository(tmp_path / "tasks", {"cli.py": script})
    assert find_entry_point(project) == "python cli.py"
    assert (
        "exited with code 2: the script is a group of sub-commands (build, evaluate) and the training "
        "command names none; add the one that trains, as in --command 'python cli.py COMMAND'"
    ) in failed_training(project)


def test_a_group_of_sub_commands_that_does_nothing_without_one_is_told_which_to_add(tmp_path: Path) -> None:
    optional = ARGPARSE_SUB_PARSERS.replace(", required=True", "").replace(
        "mlflow.autolog()", 'if args.command == "fit":\n    mlflow.autolog()'
    )
    project = repository(tmp_path / "tasks", {"cli.py": optional})
    assert (
        "finished without starting a run: the script is a group of sub-commands (fit, serve) and the "
        "training command names none; add the one that trains, as in --command 'python cli.py fit'"
    ) in failed_training(project, "python cli.py")


def test_a_training_importing_what_loopline_s_python_lacks_is_told_where_to_install(tmp_path: Path) -> None:
    # loopline installed with pipx or `uv tool` runs the training in an environment without the project's
    script = "import mlflow\nimport torch_geometric_not_here.nn\n\nmlflow.autolog()\n"
    project = repository(tmp_path / "graphs", {"train.py": script})
    assert (
        "ModuleNotFoundError: No module named 'torch_geometric_not_here'; the training runs on the Python "
        f"loopline runs in ({sys.executable}), which has no torch_geometric_not_here: install loopline into "
        "the project's environment"
    ) in failed_training(project)
    # a module this Python has, missing in part, is the script's own error to read
    (project / "train.py").write_text("import mlflow\nimport mlflow.not_a_flavor\n\nmlflow.autolog()\n")
    commit_all(project, "Another import")
    said = failed_training(project)
    assert "No module named 'mlflow.not_a_flavor'" in said and "runs on the Python" not in said


def test_a_training_importing_from_a_submodule_left_out_of_a_clone_is_told_to_check_it_out(
    tmp_path: Path,
) -> None:
    library = repository(tmp_path / "features", {"features/__init__.py": "VERSION = 1\n"})
    script = "import sys\nsys.path.insert(0, 'libs')\nimport features\nimport mlflow\nmlflow.autolog()\n"
    project = repository(tmp_path / "graphs", {"train.py": script})
    add_submodule(project, str(library), "libs")
    commit_all(project, "Features as a submodule")
    clone = tmp_path / "clone"
    git(tmp_path, "clone", "--quiet", str(project), str(clone))  # without --recurse-submodules
    said = failed_training(clone)
    assert (
        "ModuleNotFoundError: No module named 'features'; the repository's submodule libs is not "
        "checked out (a clone without --recurse-submodules leaves it empty): git submodule update --init "
        "--recursive;"
    ) in said, said
    assert "runs on the Python" not in said


PACKAGED_TRAINING = """\
import mlflow
from sklearn.datasets import load_breast_cancer
from sklearn.linear_model import LogisticRegression

from {features} import with_ratio


def main():
    X, y = load_breast_cancer(return_X_y=True, as_frame=True)
    X = with_ratio(X)
    with mlflow.start_run():
        model = LogisticRegression(max_iter=3000).fit(X, y)
        mlflow.log_metric("accuracy", model.score(X, y))
        mlflow.sklearn.log_model(model, name="model", input_example=X.head(2))


if __name__ == "__main__":
    main()
"""
FEATURES = "def with_ratio(frame):\n    return frame.assign(ratio=frame['worst area'] / frame['mean area'])\n"


def test_a_training_module_of_a_package_runs_as_one_and_a_package_python_cannot_find_is_named(
    tmp_path: Path,
) -> None:
    # A package at the top of the repository, its training importing a sibling module relatively: it
    # runs only as `python -m` (tests/test_run_script.py: MLflow kept on the workspace as a script's is).
    flat = repository(
        tmp_path / "flat",
        {
            "churn/__init__.py": "",
            "churn/features.py": FEATURES,
            "churn/train.py": PACKAGED_TRAINING.format(features=".features"),
        },
    )
    assert find_entry_point(flat) == "python -m churn.train"
    said = failed_training(flat, "python churn/train.py")  # run as a script, its relative import fails
    assert "the script imports relatively, as a module of its package does; run it as one (python -m" in said
    result = loopline.init_existing(flat)
    assert result.command == "python -m churn.train" and "accuracy" in result.metrics
    # The same under src/, importing its package by name: it runs once the package is installed. Where
    # Python cannot find it, the message says it is the repository's own and how to install it.
    layout = {
        "src/churnkit/__init__.py": "",
        "src/churnkit/features.py": FEATURES,
        "src/churnkit/train.py": PACKAGED_TRAINING.format(features="churnkit.features"),
        "pyproject.toml": (
            '[project]\nname = "churnkit"\nversion = "0.1.0"\n\n'
            '[build-system]\nrequires = ["setuptools>=68"]\nbuild-backend = "setuptools.build_meta"\n'
        ),
    }
    packaged = repository(tmp_path / "packaged", layout)
    assert find_entry_point(packaged) == "python -m churnkit.train"
    said = failed_training(packaged)
    assert "`python -m churnkit.train` exited with code 1: churnkit is this repository's own package" in said
    assert "(src/churnkit)" in said and "install the repository into it (pip install -e .)" in said
    # a package of setuptools' older kind (a setup.py, no [build-system]) is installed the same way
    (packaged / "pyproject.toml").unlink()
    (packaged / "setup.py").write_text(
        "from setuptools import find_packages, setup\n\n"
        "setup(name='churnkit', packages=find_packages('src'), package_dir={'': 'src'})\n"
    )
    commit_all(packaged, "Packaged with setup.py")
    assert "install the repository into it (pip install -e .)" in failed_training(packaged)
    # a script that names the module of a package that is nowhere
    assert "python -m found no module nowhere.train (ModuleNotFoundError: No module named 'nowhere')" in (
        failed_training(packaged, "python -m nowhere.train")
    )
    # a script of a package that imports nothing of it is still named as the script it is
    (packaged / "src" / "churnkit" / "train.py").write_text(
        PACKAGED_TRAINING.format(features="math").replace("import with_ratio", "import sqrt")
    )
    assert find_entry_point(packaged) == "python src/churnkit/train.py"


def test_a_project_that_uv_locks_is_installed_by_the_workflows_at_its_locked_versions(tmp_path: Path) -> None:
    locked = Path(__file__).parent / "projects" / "uv"  # `uv lock` of scikit-learn, pandas and pytest
    project = repository(
        tmp_path / "locked",
        {
            "train.py": (TRAINING_SCRIPTS / "own_experiment.py").read_text(),
            "pyproject.toml": (locked / "pyproject.toml").read_text(),
            "uv.lock": (locked / "uv.lock").read_text(),
            ".python-version": "3.13\n",  # as `uv python pin` writes it
            ".dvc/config": "[core]\n    remote = storage\n",
        },
    )
    result = loopline.init_existing(project)
    assert not (project / "requirements.txt").exists()
    assert any(note.startswith("uv.lock: ") for note in result.notes)
    assert any("as .python-version says" in note for note in result.notes)
    assert any(note.startswith("the repository keeps data with DVC") for note in result.notes)
    assert {python for python, _ in install_steps(project / ".github" / "workflows" / "inner-loop.yml")} == {
        "3.13"
    }
    install = {step for _, step in install_steps(project / ".github" / "workflows" / "inner-loop.yml")}
    assert install == {
        'pip install uv && uv export --frozen --no-hashes --output-file "$RUNNER_TEMP/requirements.txt" && '
        'pip install -r "$RUNNER_TEMP/requirements.txt" loopline ruff'  # pytest is in the dev group
    }
    # What the step's export writes, run here as the job runs it (uv reads the lock, offline).
    export = next(iter(install)).split(" && ")[1]
    env = {
        **os.environ,
        "RUNNER_TEMP": str(tmp_path),
        "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}",
    }
    subprocess.run(["bash", "-c", export], cwd=project, env=env, check=True, capture_output=True)
    pinned = (tmp_path / "requirements.txt").read_text()
    lock = (project / "uv.lock").read_text()
    version = lock.split('name = "scikit-learn"\nversion = "', 1)[1].split('"', 1)[0]
    assert f"\nscikit-learn=={version}\n" in pinned and "\npytest==" in pinned
    assert actionlint(project) == ""


def test_a_script_that_names_its_experiment_by_id_is_told_to_name_it(tmp_path: Path) -> None:
    script = (
        "import mlflow\nfrom sklearn.linear_model import LinearRegression\n"
        "with mlflow.start_run(experiment_id='283746592837465'):  # copied from another tracking server\n"
        "    mlflow.sklearn.log_model(LinearRegression().fit([[0], [1]], [0, 1]), name='model')\n"
    )
    project = repository(tmp_path / "by-id", {"train.py": script})
    assert (
        "exited with code 1: the script names MLflow experiment 283746592837465 by its ID, which only the "
        "store it was made in knows; name it instead (mlflow.set_experiment('churn'))"
        in failed_training(project)
    )


@pytest.mark.long
def test_a_notebook_is_swept_through_its_parameters_cell(tmp_path: Path) -> None:
    import nbformat
    from nbformat.v4 import new_code_cell
    from sklearn.datasets import load_diabetes

    training = notebook(
        "import mlflow\nimport pandas as pd\nfrom sklearn.linear_model import Ridge",
        "frame = pd.read_csv('diabetes.csv')\nX, y = frame.drop(columns='target'), frame['target']",
        "with mlflow.start_run():\n    ridge = Ridge(alpha=alpha).fit(X[:300], y[:300])\n"
        "    mlflow.log_metric('r2', ridge.score(X[300:], y[300:]))\n"
        "    mlflow.sklearn.log_model(ridge, name='model', input_example=X.head(2))",
    )
    # papermill's parameters: a cell tagged `parameters` holds the defaults a trial's -p values replace.
    document = nbformat.reads(training, as_version=4)
    defaults = new_code_cell("alpha = 0.5")
    defaults.metadata["tags"] = ["parameters"]
    document.cells.insert(1, defaults)
    project = repository(
        tmp_path / "swept",
        {
            "train.ipynb": nbformat.writes(document),
            "diabetes.csv": load_diabetes(as_frame=True).frame.to_csv(index=False),
        },
    )
    result = loopline.init_existing(project)
    config = yaml.safe_load((project / "loopline.yaml").read_text())
    config["sweep"] = {
        "trials": 2,
        "seed": 7,
        "pruner": "none",
        "objective": {"metric": "r2", "direction": "maximize"},
        "parameters": {"alpha": {"low": 0.001, "high": 100, "log": True}},
        "command": result.command + " -p alpha {alpha}",
    }
    (project / "loopline.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    loopline.up(project)
    commit_all(project, "Sweep alpha")
    swept = loopline.sweep(project=project)
    values = {trial.params["alpha"]: trial.value for trial in swept.trials if trial.state == "complete"}
    assert len(values) == 2 and len(set(values.values())) == 2  # each trial trained on its own alpha
    assert swept.best is not None and swept.inner_loop.created


def test_an_mlflow_project_gives_the_training_command_with_its_parameters_defaults(tmp_path: Path) -> None:
    mlproject = (
        "name: churn\npython_env: python_env.yaml\nentry_points:\n  main:\n    parameters:\n"
        "      C: {type: float, default: 0.5}\n    command: python fit.py --C {C}\n"
    )
    script = (
        (TRAINING_SCRIPTS / "own_experiment.py")
        .read_text()
        .replace("C = 1.0\n", "import sys\nC = float(sys.argv[sys.argv.index('--C') + 1])\n")
    )
    project = repository(tmp_path / "churn", {"MLproject": mlproject, "fit.py": script})
    result = loopline.init_existing(project)
    assert result.command == "python fit.py --C 0.5" and "accuracy" in result.metrics
    assert any(n.startswith("the training command is MLproject's main entry point") for n in result.notes)


@pytest.mark.parametrize(
    ("labels", "metrics", "task"),
    [
        ("int", {"accuracy": 0.9}, "classification"),
        ("float", {"accuracy": 0.9, "training_log_loss": 0.2}, "classification"),  # labels 0.0 and 1.0
        ("float", {"r2": 0.8, "rmse": 3.0}, "regression"),
        ("float", {"accuracy": 0.9, "rmse": 3.0}, "regression"),  # both told: the signature decides
        ("float", {"loss": 0.1}, "regression"),
    ],
)
def test_the_task_is_read_from_the_answer_the_signature_declares_and_the_metrics_logged(
    tmp_path: Path, labels: str, metrics: dict[str, float], task: str
) -> None:
    import mlflow.sklearn
    from mlflow.models import infer_signature
    from sklearn.datasets import load_breast_cancer
    from sklearn.linear_model import LogisticRegression

    from loopline.dry_run import model_task

    x, y = load_breast_cancer(return_X_y=True, as_frame=True)
    y = y.astype(labels)
    model = LogisticRegression(max_iter=5000).fit(x[:100], y[:100])
    folder = tmp_path / "model"
    signature = infer_signature(x, model.predict(x))
    mlflow.sklearn.save_model(model, folder, signature=signature, pip_requirements=["scikit-learn"])
    assert model_task(folder, metrics) == task


@pytest.mark.parametrize(
    ("metrics", "task"),
    [
        ({"test_accuracy": 0.9, "test_f1": 0.8, "training_score": 0.9}, "classification"),
        ({"val_rmse": 3.0, "r2": 0.7}, "regression"),
        ({"accuracy": 0.9, "rmse": 3.0}, None),  # both told, and no signature to decide
        ({"loss": 0.1}, None),
    ],
)
def test_a_model_without_a_signature_is_told_its_task_by_its_metrics_alone(
    tmp_path: Path, metrics: dict[str, float], task: str | None
) -> None:
    import mlflow.sklearn
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline

    from loopline.dry_run import model_task

    texts = ["loved it", "a dull plot", "superb", "boring"]
    model = make_pipeline(TfidfVectorizer(), LogisticRegression()).fit(texts, [1, 0, 1, 0])
    folder = tmp_path / "model"
    mlflow.sklearn.save_model(model, folder, input_example=texts[:2], pip_requirements=["scikit-learn"])
    assert model_task(folder, metrics) == task


def test_a_full_tier_whose_task_init_cannot_tell_names_the_held_out_asset_its_note_asks_for(
    tmp_path: Path,
) -> None:
    # The note says to upload the held-out rows as the data asset heldout: validation.data must name it.
    script = """\
import mlflow
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline

texts = ["loved it", "a dull plot", "superb", "boring"] * 5
with mlflow.start_run():
    model = make_pipeline(TfidfVectorizer(), LogisticRegression()).fit(texts, [1, 0, 1, 0] * 5)
    mlflow.log_metric("loss", 0.1)
    mlflow.sklearn.log_model(model, name="model", input_example=texts[:2])
"""
    project = repository(tmp_path / "reviews", {"train.py": script})
    result = loopline.init_existing(project, tier="full")
    validation = yaml.safe_load((project / "loopline.yaml").read_text())["validation"]
    assert validation == {"data": "heldout", "label": "label", "task": "classification", "thresholds": {}}
    [note] = [note for note in result.notes if "held-out rows" in note]
    assert "`loopline data upload heldout PATH`" in note and "check validation.task" in note


IRIS_MAIN = """\
import argparse
import mlflow
from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression

parser = argparse.ArgumentParser()
parser.add_argument("--C", type=float, required=True)
parser.add_argument("--solver", required=True)
args = parser.parse_args()
X, y = load_iris(return_X_y=True, as_frame=True)
with mlflow.start_run():
    model = LogisticRegression(C=args.C, solver=args.solver, max_iter=500).fit(X[::2], y[::2])
    mlflow.log_metric("accuracy", model.score(X[1::2], y[1::2]))
    mlflow.sklearn.log_model(model, name="model", input_example=X.head(2))
"""

IRIS_SWEEP = """\
$schema: https://azuremlschemas.azureedge.net/latest/sweepJob.schema.json
type: sweep
trial:
  code: ../src
  command: python main.py --C ${{search_space.C}} --solver ${{search_space.solver}}
  environment: azureml:AzureML-sklearn-1.0-ubuntu20.04-py38-cpu@latest
compute: azureml:cpu-cluster
sampling_algorithm: random
search_space:
  C: {type: loguniform, min_value: -4, max_value: 2}
  solver: {type: choice, values: [lbfgs, newton-cg]}
objective: {goal: maximize, primary_metric: accuracy}
limits: {max_total_trials: 2, max_concurrent_trials: 2}
"""


def test_an_azure_ml_sweep_job_becomes_the_training_and_loopline_s_sweep(tmp_path: Path) -> None:
    project = repository(tmp_path / "iris", {"src/main.py": IRIS_MAIN, "jobs/sweep.yml": IRIS_SWEEP})
    result = loopline.init_existing(project)
    assert result.command == "python src/main.py --C 0.367879 --solver lbfgs"  # exp(-1), the first solver
    assert result.notes[1].startswith(
        "jobs/sweep.yml's search space, objective, trial limit and concurrent trials are loopline.yaml's "
        "sweep"
    )
    sweep = load_config(project).config.sweep  # as loopline reads what init wrote
    assert sweep.command == "python src/main.py --C {C} --solver {solver}" and sweep.trials == 2
    assert sweep.parallel == 2  # max_concurrent_trials: the sweep below trains both trials at once
    assert (sweep.pruner, sweep.parameters["solver"].choices) == ("none", ["lbfgs", "newton-cg"])
    loopline.up(project)
    commit_all(project, "loopline")
    swept = loopline.sweep(project=project)
    done = [trial for trial in swept.trials if trial.state == "complete"]
    assert len(done) == 2 and all(0.0183 <= trial.params["C"] <= 7.39 for trial in done)
    assert swept.best is not None and swept.inner_loop.created
    # both at once, as sweep.parallel says: each one's run began before the other's ended
    client = mlflow_client(project, "dev")
    first, second = (client.get_run(str(trial.run_id)).info for trial in done)
    assert first.start_time < second.end_time and second.start_time < first.end_time


@pytest.mark.parametrize(
    ("given", "asset"), [("train", "train"), ("_x", "x"), ("__", "data"), ("x_1", "x_1")]
)
def test_an_input_of_the_command_is_read_from_an_asset_that_can_be_uploaded(given: str, asset: str) -> None:
    from loopline.data import _check_name

    assert asset_name(given) == asset
    _check_name(asset)  # `loopline data upload ASSET PATH`, as the note says, takes it


MAKE_TRAINED = """\
import sys
import mlflow
import pandas as pd
from sklearn.linear_model import LogisticRegression

mlflow.set_tracking_uri("http://127.0.0.1:9")  # the team's tracking server, where the script runs by hand
frame = pd.read_csv("data/train.csv")
with mlflow.start_run():
    model = LogisticRegression(max_iter=500).fit(frame[["x"]], frame["y"])
    mlflow.log_metric("accuracy", model.score(frame[["x"]], frame["y"]))
    mlflow.sklearn.log_model(model, name="model", input_example=frame[["x"]].head(2))
print("trained by", sys.executable)
"""

PREPARE = """\
import pandas as pd

pd.DataFrame({"x": [float(i) for i in range(40)], "y": [i % 2 for i in range(40)]}).to_csv(
    "data/train.csv", index=False
)
"""


def test_a_makefile_that_prepares_the_data_and_trains_is_the_training_and_its_python_loopline_s(
    tmp_path: Path,
) -> None:
    # `make train` runs a data step first: the script alone finds no data. The `python` the recipes call is
    # loopline's, keeping the script's own tracking URI off the workspace as for `python train.py`.
    makefile = (
        "PYTHON ?= python\n.PHONY: data train\n\ndata:\n\tmkdir -p data\n\t$(PYTHON) src/prepare.py\n\n"
        "train: data\n\t$(PYTHON) src/train.py\n"
    )
    project = repository(
        tmp_path / "made",
        {
            "Makefile": makefile,
            "src/prepare.py": PREPARE,
            "src/train.py": MAKE_TRAINED,
            ".gitignore": "data/\n",
        },
    )
    result = loopline.init_existing(project)
    assert result.command == "make train" and "accuracy" in result.metrics
    assert any("calls mlflow.set_tracking_uri('http://127.0.0.1:9') itself" in n for n in result.notes)


@pytest.mark.parametrize(
    ("files", "command"),
    [
        (
            {"Makefile": "train: features\n\tpython -m churn.fit --epochs 3\nfeatures:\n\tpython b.py\n"},
            "make train",
        ),
        (
            {"Makefile": "all train: data\n\n\t# fit\n\t$(PY) \\\n\t  -m churn.fit\n"},
            "make train",
        ),  # blank, #, \\
        ({"Makefile": "train:\n\tpython other/fit.py\n"}, "python -m churn.fit"),  # trains something else
        ({"Makefile": "train:\n\tpython -m churn.fit_old\n"}, "python -m churn.fit"),
        ({"Makefile": "TRAIN := python -m churn.fit\nlint:\n\tpython -m churn.fit\n"}, "python -m churn.fit"),
        (
            {"scripts/train_gpu.sh": 'set -e\npython -m churn.fit --epochs 30 "$@"\n'},
            "bash scripts/train_gpu.sh",
        ),
        ({"train.sh": "# python -m churn.fit\npython -m churn.other\n"}, "python -m churn.fit"),
    ],
)
def test_the_makefile_or_shell_script_that_runs_the_training_is_the_command(
    tmp_path: Path, files: dict[str, str], command: str
) -> None:
    (tmp_path / "churn").mkdir()
    (tmp_path / "churn" / "__init__.py").write_text("")
    (tmp_path / "churn" / "fit.py").write_text(
        "import mlflow\nfrom . import __name__ as n\nmlflow.autolog()\n"
    )
    assert find_entry_point(tree(tmp_path, files)) == command


PACKAGE_TRAINING = """\
import argparse

import mlflow
from sklearn.datasets import load_breast_cancer
from sklearn.linear_model import LogisticRegression


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--c", type=float, default=1.0)
    args = parser.parse_args()
    X, y = load_breast_cancer(return_X_y=True, as_frame=True)
    mlflow.set_tracking_uri("http://127.0.0.1:9")  # the team's tracking server
    with mlflow.start_run():
        model = LogisticRegression(C=args.c, max_iter=5000).fit(X, y)
        mlflow.log_metric("accuracy", model.score(X, y))
        mlflow.sklearn.log_model(model, name="model", input_example=X.head(2))
"""


def test_a_training_module_that_only_defines_main_runs_as_the_command_its_package_installs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # `python -m churn.train` would define main() and log nothing; pyproject.toml's `churn-train` calls it.
    pyproject = (
        '[build-system]\nrequires = ["setuptools>=61"]\nbuild-backend = "setuptools.build_meta"\n'
        '[project]\nname = "churn"\nversion = "0.1"\n[project.scripts]\nchurn-train = "churn.train:main"\n'
    )
    project = repository(
        tmp_path / "packaged",
        {"pyproject.toml": pyproject, "src/churn/__init__.py": "", "src/churn/train.py": PACKAGE_TRAINING},
    )
    with pytest.raises(TrainingFailed) as missing:  # not installed where loopline runs
        loopline.init_existing(project)
    assert (
        "churn-train is a command of this repository's package (churn.train:main, pyproject.toml's scripts), "
        "which the Python loopline runs does not have: install the repository into it (pip install -e .)"
    ) in missing.value.message
    site = tmp_path / "site"  # `pip install -e .`: the package found, its command in its metadata
    site.mkdir()
    installed(site, project / "src" / "churn", {"churn-train": "churn.train:main"})
    monkeypatch.syspath_prepend(str(site))
    monkeypatch.setenv("PYTHONPATH", str(site))
    result = loopline.init_existing(project)
    assert result.command == "churn-train" and "accuracy" in result.metrics
    assert any("calls mlflow.set_tracking_uri('http://127.0.0.1:9') itself" in n for n in result.notes)


CONFIGURED_TRAINING = """\
import argparse

import mlflow
import yaml
from sklearn.datasets import load_breast_cancer
from sklearn.linear_model import LogisticRegression


def parse_args():
    parser = argparse.ArgumentParser(description="Train the churn model")
    parser.add_argument("-c", "--config", required=True, help="path to the YAML config")
    return parser.parse_args()


if __name__ == "__main__":
    with open(parse_args().config) as f:
        cfg = yaml.safe_load(f)
    X, y = load_breast_cancer(return_X_y=True, as_frame=True)
    mlflow.set_experiment(cfg["experiment"])
    with mlflow.start_run():
        model = LogisticRegression(**cfg["model"]).fit(X, y)
        mlflow.log_metric("accuracy", model.score(X, y))
        mlflow.sklearn.log_model(model, name="model", input_example=X.head(2))
"""


def test_a_training_that_requires_its_config_file_is_given_the_repository_s_training_config(
    tmp_path: Path,
) -> None:
    project = repository(
        tmp_path / "configured",
        {
            "src/train.py": CONFIGURED_TRAINING,
            "configs/train.yaml": "experiment: churn-configured\nmodel:\n  C: 0.5\n  max_iter: 5000\n",
            "configs/serve.yaml": "port: 8080\n",
            ".pre-commit-config.yaml": "repos: []\n",
        },
    )
    result = loopline.init_existing(project)
    assert result.command == "python src/train.py --config configs/train.yaml"
    assert (
        "the training cannot start without --config: init passes configs/train.yaml; pass another in "
        "training.command"
    ) in result.notes
    assert load_config(project).config.training.command == result.command
    assert result.experiment == "churn-configured"  # the dry run read that file


CHURN_FROM_A_TABLE = """\
import mlflow
import pandas as pd
from sklearn.linear_model import LogisticRegression

frame = pd.read_TABLE("data/customers.TABLE")
frame = frame.drop(columns=DROPPED)
y = frame.pop("churned")
with mlflow.start_run():
    model = LogisticRegression().fit(frame, y)
    mlflow.log_metric("accuracy", model.score(frame, y))
    mlflow.sklearn.log_model(model, name="model", input_example=frame.head(3))
"""


@pytest.mark.parametrize(("table", "dropped"), [("csv", []), ("parquet", []), ("csv", ["monthly"])])
def test_the_label_column_is_the_one_column_of_the_training_table_the_model_does_not_take(
    tmp_path: Path, table: str, dropped: list[str]
) -> None:
    import pandas as pd

    rows = pd.DataFrame(
        [(1000 + i, i % 24, 20 + i % 7 * 10, int(i % 24 < 6)) for i in range(60)],
        columns=["customer_id", "tenure", "monthly", "churned"],
    )
    script = CHURN_FROM_A_TABLE.replace("TABLE", table).replace("DROPPED", repr(dropped))
    project = repository(tmp_path / "churn", {"train.py": script, ".gitignore": "data/\n"})
    (project / "data").mkdir()
    getattr(rows, f"to_{table}")(project / "data" / f"customers.{table}", index=False)
    result = loopline.init_existing(project, tier="full")
    validation = yaml.safe_load((project / "loopline.yaml").read_text())["validation"]
    notes = [note for note in result.notes if "held-out rows" in note]
    if not dropped:  # the model takes customer_id, tenure and monthly: churned is what it predicts
        assert validation["label"] == "churned"
        assert f"(churned, as in data/customers.{table})" in notes[0], notes
        # monitoring's reference rows: the table the training read
        assert any(
            f"`loopline data upload train data/customers.{table}`, the table" in n for n in result.notes
        )
    else:  # monthly and churned, neither taken: which one holds the true values is not told
        assert validation["label"] == "label"
        assert "(label: init could not tell it from the tables the training read)" in notes[0], notes
    # The table git ignores is named for the workflows, whichever reader opened it (pyarrow, natively).
    assert any(f"the training reads data/customers.{table}, which git ignores" in n for n in result.notes)


REVIEWS_FROM_A_TABLE = """\
import mlflow
import pandas as pd
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline

df = pd.read_csv("data/reviews.csv")
with mlflow.start_run():
    pipe = Pipeline([("tfidf", TfidfVectorizer()), ("clf", LogisticRegression())])
    pipe.fit(df["text"], df["sentiment"])
    mlflow.log_metric("test_accuracy", pipe.score(df["text"], df["sentiment"]))
    mlflow.sklearn.log_model(pipe, name="model", input_example=df["text"][:3].tolist())
"""


def test_the_label_of_a_text_classifier_logged_without_a_signature_is_told_by_its_example_s_column(
    tmp_path: Path,
) -> None:
    """MLflow infers no signature from a list of texts: the column holding the example's texts is what the
    model takes, and the one column more (an identifier aside) holds the true values."""
    import pandas as pd

    words = ["superb plot", "dull acting", "loved it", "a waste", "great music", "boring scenes"]
    rows = pd.DataFrame(
        {
            "review_id": range(60),
            "text": [f"{words[i % 6]} {i}" for i in range(60)],
            "sentiment": ["positive" if i % 6 in (0, 2, 4) else "negative" for i in range(60)],
        }
    )
    project = repository(tmp_path / "reviews", {"train.py": REVIEWS_FROM_A_TABLE})
    (project / "data").mkdir()
    rows.to_csv(project / "data" / "reviews.csv", index=False)
    commit_all(project, "The reviews")
    result = loopline.init_existing(project, tier="full")
    validation = yaml.safe_load((project / "loopline.yaml").read_text())["validation"]
    assert validation["label"] == "sentiment" and validation["task"] == "classification"
    notes = [note for note in result.notes if "held-out rows" in note]
    assert "(sentiment, as in data/reviews.csv)" in notes[0], notes


CHURN_WITH_POLARS = """\
import mlflow
import polars as pl
from sklearn.linear_model import LogisticRegression

frame = pl.scan_parquet("data/customers/*.parquet").collect().to_pandas()
y = frame.pop("churned")
with mlflow.start_run():
    model = LogisticRegression().fit(frame, y)
    mlflow.log_metric("accuracy", model.score(frame, y))
    mlflow.sklearn.log_model(model, name="model", input_example=frame.head(3))
"""


def test_a_training_that_reads_its_table_with_polars_tells_init_the_label_and_the_ignored_data(
    tmp_path: Path,
) -> None:
    import polars as pl

    project = repository(tmp_path / "churn", {"train.py": CHURN_WITH_POLARS, ".gitignore": "data/\n"})
    (project / "data" / "customers").mkdir(parents=True)
    for part in range(2):
        rows = [
            (1000 + i, i % 24, 20 + i % 7 * 10, int(i % 24 < 6)) for i in range(part * 30, part * 30 + 30)
        ]
        pl.DataFrame(
            rows, schema=["customer_id", "tenure", "monthly", "churned"], orient="row"
        ).write_parquet(project / "data" / "customers" / f"part-{part}.parquet")
    result = loopline.init_existing(project, tier="full")
    assert yaml.safe_load((project / "loopline.yaml").read_text())["validation"]["label"] == "churned"
    assert any("which git ignores" in n and "data/customers" in n for n in result.notes), result.notes
