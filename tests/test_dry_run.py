"""What a training logs, for init --existing: read from a run it made before, instead of running it."""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest
import yaml
from mlflow import MlflowClient
from sklearn.datasets import load_iris

from loopline.dry_run import DryRun, earlier_run
from loopline.errors import NotFound, Refused, UsageError
from tests.helpers import cli, commit_all, git, tree

# A training that reads data kept out of git (prepared on the laptop it ran on) and logs to MLflow's
# default store in the folder it runs in, as `python train.py` does with no tracking URI set.
TRAIN = """\
import mlflow
import pandas as pd
from mlflow.models import infer_signature
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score, f1_score
from sklearn.model_selection import train_test_split

mlflow.set_experiment("iris-experiments")
data = pd.read_csv("data/iris.csv")
X, y = data.drop(columns="species"), data["species"]
X_train, X_test, y_train, y_test = train_test_split(X, y, random_state=0)
with mlflow.start_run() as run:
    model = LogisticRegression(max_iter=500).fit(X_train, y_train)
    predicted = model.predict(X_test)
    mlflow.log_metric("accuracy", accuracy_score(y_test, predicted))
    mlflow.log_metric("f1_macro", f1_score(y_test, predicted, average="macro"))
    mlflow.sklearn.log_model(
        model, name="model", signature=infer_signature(X_test, predicted), input_example=X_test.head(2),
        registered_model_name="iris",
    )
    print("RUN", run.info.run_id)
"""


def trained_on_a_laptop(tmp_path: Path) -> tuple[Path, Path, str]:
    """The repository, and a clone of it where the training ran by hand, one commit ahead (not pushed),
    with the data it needs; the run's id."""
    repo = tree(tmp_path / "iris", {"train.py": TRAIN, ".gitignore": "data/\n"})
    git(repo, "init", "--quiet")
    commit_all(repo, "Iris model")
    laptop = tmp_path / "laptop"
    git(tmp_path, "clone", "--quiet", str(repo), str(laptop))
    (laptop / "train.py").write_text(TRAIN.replace("max_iter=500", "max_iter=800"))
    commit_all(laptop, "More iterations")
    (laptop / "data").mkdir()
    frame = load_iris(as_frame=True).frame.rename(columns={"target": "species"})
    frame.columns = [c.replace(" (cm)", "").replace(" ", "_") for c in frame.columns]
    frame.to_csv(laptop / "data" / "iris.csv", index=False)
    environment = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "LOOPLINE_"))}
    done = subprocess.run(
        [sys.executable, "train.py"], cwd=laptop, env=environment, capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr[-2000:]
    run_id = next(line.split()[1] for line in done.stdout.splitlines() if line.startswith("RUN "))
    return repo, laptop, run_id


def test_init_reads_what_an_earlier_run_logged_and_never_runs_the_training(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    repo, laptop, run_id = trained_on_a_laptop(tmp_path)
    store = f"sqlite:///{laptop / 'mlflow.db'}"
    metrics = MlflowClient(tracking_uri=store).get_run(run_id).data.metrics

    # The repository has no data/iris.csv: a run of the training here would fail.
    done = cli(
        capsys, "init", "--existing", str(repo), "--from-run", run_id, "--tracking-uri", store, "--json"
    )
    assert done.exit_code == 0, done.stderr
    assert f"reading what run {run_id} logged (the training is not run)" in " ".join(done.stderr.split())
    result = done.json()
    assert (result["command"], result["model"], result["artifact_path"]) == (
        "python train.py",
        "iris",
        "model",
    )
    config = yaml.safe_load((repo / "loopline.yaml").read_text())
    assert config["training"]["experiment"] == "iris-experiments"
    assert config["validation"]["task"] == "classification"
    gate_text = (repo / "gate.yaml").read_text()
    assert f"written from the training's run {run_id}" in gate_text
    assert yaml.safe_load(gate_text)["metrics"] == {
        "accuracy": {"min": round(metrics["accuracy"] * 0.9, 4)},
        "f1_macro": {"min": round(metrics["f1_macro"] * 0.9, 4)},
    }
    notes = " ".join(result["notes"])
    assert f"read what run {run_id} logged instead of running the training" in notes
    laptop_commit = git(laptop, "rev-parse", "HEAD")
    assert f"made from commit {laptop_commit[:12]}, which this repository does not have" in notes

    # Where the training ran by hand, MLflow's store is in that folder (or MLFLOW_TRACKING_URI names it).
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    assert earlier_run(laptop, f"runs:/{run_id}/model", None).metrics == metrics
    monkeypatch.setenv("MLFLOW_TRACKING_URI", store)
    assert earlier_run(repo, run_id, None).registered == "iris"
    assert earlier_run(repo, "latest", None).from_run == run_id  # the newest run that logged a model


def test_array_libraries_mlflow_lists_for_a_scikit_learn_model_trained_beside_them_are_not_required(
    tmp_path: Path,
) -> None:
    # Trained where torch is installed, a scikit-learn model saved with skops lists it: loading the file
    # walks scikit-learn's modules, whose torch adapter imports torch, and MLflow records what loading
    # imported. The model does not use it: the requirements init writes leave it out.
    repo, laptop, run_id = trained_on_a_laptop(tmp_path)
    (model_file,) = laptop.glob("mlruns/*/models/*/artifacts/model.skops")
    listed = model_file.parent / "requirements.txt"
    listed.write_text(listed.read_text() + "torch==2.13.0+cpu\ncupy-cuda12x==13.3.0\ndask==2024.8.0\n")
    found = earlier_run(repo, run_id, f"sqlite:///{laptop / 'mlflow.db'}").requirements
    names = [line.split("==")[0] for line in found]
    assert "scikit-learn" in names and not {"torch", "cupy-cuda12x", "dask"} & set(names), found


def test_a_run_that_is_not_there_or_a_store_that_is_not_named_is_told(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    repo = tree(tmp_path / "repo", {"train.py": TRAIN})
    git(repo, "init", "--quiet")
    commit_all(repo, "Iris model")
    with pytest.raises(UsageError, match=r"has no mlflow\.db or mlruns/ and MLFLOW_TRACKING_URI is not set"):
        earlier_run(repo, "0123456789abcdef", None)
    with pytest.raises(NotFound, match="no run 0123456789abcdef in sqlite:///"):
        earlier_run(repo, "0123456789abcdef", f"sqlite:///{tmp_path / 'empty.db'}")
    with pytest.raises(NotFound, match=r"no finished run in sqlite:///.* logged an MLflow model"):
        earlier_run(repo, "latest", f"sqlite:///{tmp_path / 'empty.db'}")
    alone = cli(capsys, "init", "--existing", str(repo), "--tracking-uri", "sqlite:///x.db")
    assert alone.exit_code == 2 and "--tracking-uri names the store of --from-run RUN_ID" in alone.stderr
    sample = cli(capsys, "init", str(tmp_path / "new"), "--from-run", "0123456789abcdef")
    assert sample.exit_code == 2 and "--from-run goes with --existing" in sample.stderr
    missing = cli(
        capsys,
        "init",
        "--existing",
        str(repo),
        "--from-run",
        "0123456789abcdef",
        "--tracking-uri",
        f"sqlite:///{tmp_path / 'empty.db'}",
    )
    assert missing.exit_code == 1 and "Traceback" not in missing.stderr
    assert not (repo / "loopline.yaml").exists()


def test_a_training_or_a_run_that_logged_no_model_is_refused_saying_so(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    metrics_only = "import mlflow\n\nwith mlflow.start_run():\n    mlflow.log_metric('accuracy', 0.9)\n"
    repo = tree(tmp_path / "repo", {"train.py": metrics_only})
    # Not yet a repository: refused before anything runs, and nothing is said to run.
    done = cli(capsys, "init", "--existing", str(repo), "--command", "python train.py")
    assert done.exit_code == 2 and "running the training" not in done.stderr, done.stderr
    git(repo, "init", "--quiet")
    commit_all(repo, "A training that logs no model yet")
    done = cli(capsys, "init", "--existing", str(repo), "--command", "python train.py")
    assert done.exit_code == 1
    said = " ".join(done.stderr.split())
    assert "running the training once to see what it logs (against a scratch store): python train.py" in said
    assert "ran without logging an MLflow model (log one with mlflow.<flavor>.log_model)" in said
    # a model its library saved, logged as a file: named, with what to log instead
    (repo / "train.py").write_text(
        metrics_only + "    import pickle\n    pickle.dump({'weights': [1]}, open('model.pkl', 'wb'))\n"
        "    mlflow.log_artifact('model.pkl')\n"
    )
    commit_all(repo, "Pickle the model")
    done = cli(capsys, "init", "--existing", str(repo), "--command", "python train.py")
    assert done.exit_code == 1
    assert "ran without logging an MLflow model: it logged model.pkl as a plain file" in " ".join(
        done.stderr.split()
    )
    store = f"sqlite:///{tmp_path / 'runs.db'}"
    client = MlflowClient(tracking_uri=store)
    run = client.create_run(client.create_experiment("metrics-only"))
    client.log_metric(run.info.run_id, "accuracy", 0.9)
    client.set_terminated(run.info.run_id)
    with pytest.raises(Refused, match=f"run {run.info.run_id} logged no MLflow model"):
        earlier_run(repo, run.info.run_id, store)
    assert not (repo / "loopline.yaml").exists()


# MLflow 2's way, still common: autolog on, and the model logged and registered by hand beside autolog's.
AUTOLOG_AND_OWN = """\
import mlflow
from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression

mlflow.autolog()
X, y = load_iris(return_X_y=True, as_frame=True)
with mlflow.start_run() as run:
    clf = LogisticRegression(max_iter=500).fit(X, y)
    mlflow.log_metric("accuracy", clf.score(X, y))
    mlflow.sklearn.log_model(clf, artifact_path="iris_model", registered_model_name="iris-classifier")
    print("RUN", run.info.run_id)
"""


def test_of_the_models_a_run_logged_the_one_its_script_registers_is_chosen(tmp_path: Path) -> None:
    repo = tree(tmp_path / "iris", {"train.py": AUTOLOG_AND_OWN})
    git(repo, "init", "--quiet")
    commit_all(repo, "Iris model")
    store = f"sqlite:///{tmp_path / 'runs.db'}"
    environment = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "LOOPLINE_"))}
    done = subprocess.run(
        [sys.executable, "train.py"],
        cwd=repo,
        env={**environment, "MLFLOW_TRACKING_URI": store},
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    run_id = next(line.split()[1] for line in done.stdout.splitlines() if line.startswith("RUN "))
    found = earlier_run(repo, run_id, store)
    assert found.model_names == ["iris_model", "model"]  # autolog's is 'model'
    assert (found.chosen, found.registered) == ("iris_model", "iris-classifier")


def test_the_label_is_the_one_column_of_a_table_read_that_the_model_does_not_take(tmp_path: Path) -> None:
    import pandas as pd

    from loopline.dry_run import label_column

    inputs = ("tenure", "monthly")
    (tmp_path / "data").mkdir()
    tables = {
        "train.csv": ["tenure", "monthly", "churned"],
        "with-index.csv": ["Unnamed: 0", "tenure", "monthly", "churned"],  # to_csv's unnamed index
        "X_train.csv": ["customer_id", "tenure", "monthly"],  # the labels in y_train.csv
        "y_train.csv": ["churned"],
        "both.parquet": ["CustomerID", "tenure", "monthly", "churned"],
        "scored.csv": ["tenure", "monthly", "prediction"],
        "notes.txt": ["tenure", "monthly", "churned"],
    }
    for name, columns in tables.items():
        frame = pd.DataFrame([list(range(len(columns)))], columns=columns)
        if name.endswith(".parquet"):
            frame.to_parquet(tmp_path / "data" / name)
        else:
            frame.to_csv(tmp_path / "data" / name, index=False)

    def label(*names: str) -> tuple[tuple[str, ...], str] | None:
        return label_column(tmp_path, tuple(str(tmp_path / "data" / n) for n in names), inputs)

    assert label("train.csv") == (("churned",), "data/train.csv")
    assert label("with-index.csv", "both.parquet") == (("churned",), "data/with-index.csv")
    assert label("X_train.csv", "y_train.csv") is None  # an identifier is no label
    assert label("train.csv", "scored.csv") is None  # two tables, two answers: none told
    assert label("notes.txt") is None  # not a table
    folder = tmp_path / "data" / "spark-output"  # a folder of parts, as Spark writes one
    folder.mkdir()
    (folder / "_SUCCESS").write_text("")
    pd.DataFrame([[1, 2, 0]], columns=["tenure", "monthly", "churned"]).to_parquet(folder / "part-0.parquet")
    assert label("spark-output") == (("churned",), "data/spark-output")
    assert label_column(tmp_path, (str(tmp_path / "data" / "train.csv"),), ()) is None  # no named inputs
    # a model without names logged with a list of texts: the column holding them is the one it takes
    texts = tmp_path / "data" / "texts.csv"
    texts.write_text("text,sentiment\nsuperb plot,positive\ndull acting,negative\nloved it,positive\n")
    assert label_column(tmp_path, (str(texts),), (), ("dull acting", "loved it")) == (
        ("sentiment",),
        "data/texts.csv",
    )
    assert label_column(tmp_path, (str(texts),), (), ("dull acting", "not in it")) is None
    outside = tmp_path.parent / f"{tmp_path.name}-elsewhere.csv"
    outside.write_text("tenure,monthly,churned\n1,2,0\n")
    assert label_column(tmp_path, (str(outside),), inputs) is None  # not the repository's


def test_a_regressor_answering_several_values_a_row_has_a_label_column_for_each_in_its_order(
    tmp_path: Path,
) -> None:
    from loopline.dry_run import label_column

    table = tmp_path / "energy.csv"
    table.write_text("area,height,heating_load,cooling_load,building_id\n600,7,30.1,28.2,b1\n")
    read, inputs = (str(table),), ("area", "height")
    # a tensor of two values a row: the two columns more, in the table's order
    assert label_column(tmp_path, read, inputs, (), ("", "")) == (
        ("heating_load", "cooling_load"),
        "energy.csv",
    )
    # named outputs: in the order the model answers them
    named = ("cooling_load", "heating_load")
    assert label_column(tmp_path, read, inputs, (), named) == (named, "energy.csv")
    # one value a row, or three: no column, or no count of columns, tells its true values
    assert label_column(tmp_path, read, inputs, (), ("",)) is None
    assert label_column(tmp_path, read, inputs, (), ("", "", "")) is None


def test_a_model_fitted_on_columns_the_script_one_hot_encoded_tells_the_label_and_the_encoded_column(
    tmp_path: Path,
) -> None:
    from loopline.dry_run import _computed, _encoded, label_column

    # pd.get_dummies(df, columns=["contract", "region"]) before the fit: the model takes the dummies
    table = tmp_path / "customers.csv"
    table.write_text("tenure,contract,region,churned\n3,monthly,north east,1\n9,two-year,south,0\n")
    inputs = ("tenure", "contract_monthly", "contract_two-year", "region_north east", "region_south")
    assert label_column(tmp_path, (str(table),), inputs) == (("churned",), "customers.csv")
    assert _encoded(table, inputs) == (
        ("contract", ("contract_monthly", "contract_two-year")),
        ("region", ("region_north east", "region_south")),
    )
    # a column the table neither holds nor encodes: the model was not fitted on this table
    assert label_column(tmp_path, (str(table),), (*inputs, "income")) is None
    assert _encoded(table, ("tenure", "churned")) == ()
    # a feature the script computes from a column (tenure / 12) is named like a dummy, but its name after
    # the column's is no value of it: nothing is said of encoding
    assert _encoded(table, ("tenure_in_years", "contract_monthly")) == (("contract", ("contract_monthly",)),)
    assert _encoded(table, ("tenure_in_years", "region_west")) == ()
    computed = _computed(table, ("tenure_in_years", "contract_monthly"), _encoded(table, inputs))
    assert computed == ("tenure_in_years",)
    # init tells what the callers must send
    from loopline.onboard import _encoded_notes

    run = DryRun(
        ["model"], "model", None, {}, None, True, (), False, (), label=(("churned",), "customers.csv"),
        encoded=_encoded(table, inputs),
    )  # fmt: skip
    assert _encoded_notes(run) == [
        "the model takes contract_monthly, contract_two-year, which the training makes of customers.csv's "
        "column contract before it fits (pd.get_dummies) (and 1 more such column(s)): requests, held-out "
        "rows and batch files must hold those columns, not contract; to take contract as it comes, encode "
        "it in the model (a Pipeline with a OneHotEncoder(handle_unknown='ignore'))"
    ]
    from loopline.onboard import _computed_notes

    assert _computed_notes(replace(run, computed=computed)) == [
        "the model takes tenure_in_years, which customers.csv does not hold (the training computes it before "
        "it fits): requests, held-out rows and batch files must hold it too; to take customers.csv's columns "
        "as they come, compute it in the model (a Pipeline with a FunctionTransformer, or a pyfunc model)"
    ]


def test_columns_a_training_drops_before_it_fits_are_no_label_where_their_values_say_so(
    tmp_path: Path,
) -> None:
    import numpy as np
    import pandas as pd

    from loopline.dry_run import label_column

    # Titanic as Kaggle gives it: the model takes none of the name, the ticket, the cabin, the date
    rng = np.random.default_rng(1)
    count = 300
    table = pd.DataFrame(
        {
            "PassengerId": range(count),
            "Survived": rng.integers(0, 2, count),
            "Name": [f"Passenger {i}, Mr. John" for i in range(count)],
            "Sex": rng.choice(["male", "female"], count),
            "Ticket": [f"A/5 {n}" for n in rng.integers(10_000, 99_999, count)],
            "Cabin": np.where(rng.uniform(size=count) < 0.7, None, [f"C{n}" for n in range(count)]),
            "Boarded": [f"1912-04-{10 + i % 3} 1{i % 10}:00" for i in range(count)],
            "Unused": [None] * count,
        }
    )
    path = tmp_path / "train.csv"
    table.to_csv(path, index=False)
    assert label_column(tmp_path, (str(path),), ("Sex",)) == (("Survived",), "train.csv")
    # a column of few classes beside it could be the label as well: none told
    table.assign(Deck=rng.choice(["A", "B", "C"], count)).to_csv(path, index=False)
    assert label_column(tmp_path, (str(path),), ("Sex",)) is None
