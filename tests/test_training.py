"""Running the training entry point: a Ctrl-C while or just after the child starts stops the run, the child
with it, and leaves nothing that holds loopline's exit; a command written as a line of the shell."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from loopline.instance import Instance
from loopline.training import run_training
from tests.conftest import ProjectFactory
from tests.helpers import ctrl_c_at_next_fork, tree


def train(project: Path, tmp_path: Path, command: str, timeout: float) -> None:
    """Run ``command`` as the project's training on dev."""
    run_training(
        root=project,
        command=command,
        store=Instance.open(project).store("dev"),
        experiment="proj",
        tags={"loopline.session": "0" * 32},
        log_path=tmp_path / "train.log",
        timeout=timeout,
    )


def sleeper(project: Path, tmp_path: Path) -> Path:
    """Train with a child that sleeps a minute; return the marker in its command line."""
    marker = tmp_path / "child-of-this-test"
    train(project, tmp_path, f'python -c "import time; time.sleep(60)" {marker}', 120)
    return marker


def assert_no_child_left(tmp_path: Path) -> None:
    marker = tmp_path / "child-of-this-test"
    left = subprocess.run(["pgrep", "-f", str(marker)], capture_output=True, text=True, check=False)
    assert not left.stdout.strip(), "the child outlived the interrupted run"


def test_ctrl_c_while_the_child_is_being_started_stops_the_run(
    new_project: ProjectFactory, tmp_path: Path
) -> None:
    project = new_project("simple")
    started = time.monotonic()
    with pytest.raises(KeyboardInterrupt), ctrl_c_at_next_fork():
        sleeper(project, tmp_path)
    assert time.monotonic() - started < 30  # not after the child's minute of sleep
    assert_no_child_left(tmp_path)


def test_ctrl_c_just_after_the_child_started_stops_it_and_leaves_no_timer_behind(
    new_project: ProjectFactory, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    project = new_project("simple")
    real_start = threading.Timer.start

    def start_then_ctrl_c(timer: threading.Timer) -> None:
        real_start(timer)
        os.kill(os.getpid(), signal.SIGINT)  # the Ctrl-C lands as the run's timeout timer starts

    monkeypatch.setattr(threading.Timer, "start", start_then_ctrl_c)
    with pytest.raises(KeyboardInterrupt):
        sleeper(project, tmp_path)
    assert_no_child_left(tmp_path)
    # A pending timer would run out the whole timeout (and hold the command's exit, were it not a daemon).
    deadline = time.monotonic() + 5
    while any(isinstance(t, threading.Timer) and t.is_alive() for t in threading.enumerate()):
        assert time.monotonic() < deadline, "the run's timer is still pending"
        time.sleep(0.05)


def test_a_training_past_its_timeout_is_stopped_with_its_children_and_said_so(
    new_project: ProjectFactory, tmp_path: Path
) -> None:
    from loopline.errors import TrainingFailed

    project = new_project("simple")
    marker = tmp_path / "child-of-this-test"
    script = f"import subprocess, sys, time; subprocess.Popen(['sleep', '60', '{marker}']); time.sleep(60)"
    with pytest.raises(TrainingFailed) as failed:
        train(project, tmp_path, f'python -c "{script}"', 2)
    assert "ran longer than training.timeout_seconds (2 s)" in failed.value.message
    deadline = time.monotonic() + 10  # its own child too, once reaped
    while subprocess.run(["pgrep", "-f", str(marker)], capture_output=True, check=False).returncode == 0:
        assert time.monotonic() < deadline, "the training's child outlived its timeout"
        time.sleep(0.1)


ONLY_DEFINES = '''"""Churn: trained by main(), which pyproject.toml's command would call."""
import argparse

import mlflow

DEFAULT_C = 1.0
parser = argparse.ArgumentParser()


def load():
    return None


def main():
    with mlflow.start_run():
        mlflow.log_metric("accuracy", 1.0)
'''


@pytest.mark.parametrize(
    ("files", "command", "said"),
    [
        ({"train.py": ONLY_DEFINES}, "python train.py", "train.py only defines load(), main() and nothing"),
        ({"src/churn/fit.py": ONLY_DEFINES}, "python -m churn.fit", "src/churn/fit.py only defines load()"),
        ({"train.py": ONLY_DEFINES.replace("def load", "def _load")}, "python train.py", "_load(), main()"),
        (
            {"train.py": "def fit():\n    pass\n"},
            "python train.py",
            'calls it when it runs: end it with `if __name__ == "__main__": fit()`',
        ),
        ({"train.py": ONLY_DEFINES + '\nif __name__ == "__main__":\n    main()\n'}, "python train.py", ""),
        ({"train.py": ONLY_DEFINES + "\nmain()\n"}, "python train.py", ""),  # called at the top level
        ({"train.py": "import mlflow\nmlflow.autolog()\n"}, "python train.py", ""),  # no function at all
        ({"train.py": ONLY_DEFINES}, "make train", ""),  # not a Python file loopline can read
        ({"train.py": "def broken(:\n"}, "python train.py", ""),
    ],
)
def test_a_training_file_that_only_defines_functions_is_named_with_the_call_to_add(
    tmp_path: Path, files: dict[str, str], command: str, said: str
) -> None:
    from loopline.training import only_defines

    found = only_defines(tree(tmp_path, files), command)
    assert (said in found) if said else found == "", found
    if said:
        assert found.startswith("finished without starting a run: ") and "training.command" in found


@pytest.mark.parametrize(
    ("command", "said"),
    [
        ("train.py --epochs 3", "set training.command to 'python train.py --epochs 3' in loopline.yaml"),
        ("./train.py", "set training.command to 'python ./train.py' in loopline.yaml"),  # no shebang
        ("train.sh", "run it with bash: set training.command to 'bash train.sh'"),
        ("data.csv", "data.csv is a file of the repository that cannot run by itself"),
    ],
)
def test_a_file_of_the_repository_named_as_the_command_is_told_how_to_run_it(
    new_project: ProjectFactory, tmp_path: Path, command: str, said: str
) -> None:
    from loopline.errors import TrainingFailed

    project = new_project("simple")
    (project / "train.sh").write_text("python train.py\n")
    (project / "data.csv").write_text("a\n1\n")
    with pytest.raises(TrainingFailed) as failed:
        train(project, tmp_path, command, 60)
    assert "could not start" in failed.value.message and said in failed.value.message, failed.value.message


def plans() -> tuple[Any, Any]:
    """Customers by plan, a pandas category column, and whether each churned."""
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(0)
    frame = pd.DataFrame(
        {
            "plan": pd.Categorical(rng.choice(["basic", "pro", "team"], 200)),
            "tenure": rng.integers(1, 60, 200),
        }
    )
    return frame, ((frame["plan"] == "basic") & (frame["tenure"] < 12)).astype(int)


def test_a_booster_fitted_on_category_columns_answers_its_example_given_as_text(tmp_path: Path) -> None:
    # LightGBM keeps pandas category columns; a request's JSON, and the example MLflow saves (from which it
    # infers no signature: it cannot convert categories), give text, which the model gets as its categories
    import lightgbm as lgb
    import mlflow.lightgbm
    import numpy as np

    from loopline.sandbox import check_model
    from loopline.serving.model import load_model
    from loopline.training import categories_advice

    frame, target = plans()
    model = lgb.LGBMClassifier(n_estimators=5, verbose=-1).fit(frame, target)
    mlflow.lightgbm.save_model(model, tmp_path / "model", input_example=frame.head(3))
    check_model(tmp_path / "model", nulls=False)  # in the sandbox, as the inner loop checks a model
    loaded = load_model(tmp_path / "model", "")
    np.testing.assert_array_equal(loaded.predict(frame.astype({"plan": object})), model.predict(frame))
    # A booster that still fails so (an XGBoost model before 3.1 keeps no categories) is told what to do.
    assert categories_advice(
        "ValueError: train and valid dataset categorical_feature do not match."
    ).startswith(
        "the model was fitted on pandas category columns, which a request (and the input example MLflow "
        "saved) gives as text: encode them in the model, a scikit-learn Pipeline of an OrdinalEncoder"
    )
    assert categories_advice("ValueError: could not convert string to float: 'pro'") == ""


def test_a_training_whose_log_model_fails_on_category_columns_is_told_the_same(tmp_path: Path) -> None:
    # XGBoost's enable_categorical: MLflow answers the input example when it logs the model, and fails
    import traceback

    import xgboost as xgb

    from loopline.training import known_cause

    frame, target = plans()
    model = xgb.XGBClassifier(n_estimators=5, enable_categorical=True, tree_method="hist").fit(frame, target)
    try:
        model.predict(frame.astype({"plan": str}))  # the example as MLflow reads it back: text
    except ValueError:
        said = traceback.format_exc()
    (tmp_path / "train.log").write_text(said)
    assert known_cause(tmp_path / "train.log").startswith(": ValueError: DataFrame.dtypes for data must be")
    assert "; the model was fitted on pandas category columns" in known_cause(tmp_path / "train.log")


FOREST_OF_OWN_STEP = """\
import mlflow
import numpy as np
from sklearn.datasets import load_iris
from sklearn.ensemble import RandomForestClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import FunctionTransformer

IMPORT


def logs(X):
    return np.log1p(X)


X, y = load_iris(return_X_y=True)
model = make_pipeline(FunctionTransformer(logs), RandomForestClassifier(n_estimators=3)).fit(X, y)
mlflow.sklearn.save_model(model, "model"TRUSTED)
"""


def _refused(folder: Path) -> None:
    """Run the folder's train.py, which must fail, its output in train.log."""
    with (folder / "train.log").open("wb") as log:
        ran = subprocess.run([sys.executable, "train.py"], cwd=folder, stdout=log, stderr=log, check=False)
    assert ran.returncode != 0


def _saves_as_told_and_loads_elsewhere(folder: Path) -> None:
    """The folder's train.py, changed as the advice says, saves the model; without features.py beside it
    (the model's own copy of the module serves it), another process loads it and answers."""
    shutil.rmtree(folder / "model", ignore_errors=True)  # what the refused save left
    saved = subprocess.run([sys.executable, "train.py"], cwd=folder, capture_output=True, text=True)
    assert saved.returncode == 0, saved.stderr[-2000:]
    (folder / "features.py").unlink()
    loads = "import mlflow; print(mlflow.pyfunc.load_model('model').predict([[5.1, 3.5, 1.4, 0.2]]))"
    answered = subprocess.run([sys.executable, "-c", loads], cwd=folder, capture_output=True, text=True)
    assert answered.stdout.strip() == "[0]", answered.stderr[-2000:]


def test_a_step_of_the_script_in_a_forest_is_told_every_type_to_trust_in_one_change(tmp_path: Path) -> None:
    # skops refuses the script's function and the forest's trees together: the advice names both, so
    # the script changed as it says saves the model, and another process loads it
    from loopline.training import known_cause

    script = tmp_path / "train.py"
    script.write_text(FOREST_OF_OWN_STEP.replace("IMPORT", "").replace("TRUSTED", ""))
    _refused(tmp_path)
    advice = known_cause(tmp_path / "train.log")
    trusted = "skops_trusted_types=['features.logs', 'sklearn.tree._tree.Tree']"
    assert advice == (
        ": the model holds logs, which the training script defines itself and no serving process can load; "
        "move logs into a module of the repository (features.py, say), import it from there, and pass "
        f"code_paths=['features.py'] to log_model (with {trusted} for scikit-learn)"
    )
    own = FOREST_OF_OWN_STEP[FOREST_OF_OWN_STEP.index("def logs") : FOREST_OF_OWN_STEP.index("X, y =")]
    (tmp_path / "features.py").write_text("import numpy as np\n\n\n" + own)
    script.write_text(
        FOREST_OF_OWN_STEP.replace(own, "")
        .replace("IMPORT", "from features import logs")
        .replace("TRUSTED", f", code_paths=['features.py'], {trusted}")
    )
    _saves_as_told_and_loads_elsewhere(tmp_path)


def test_a_lambda_in_a_forest_is_told_to_be_a_named_function_and_saves_and_loads_as_told(
    tmp_path: Path,
) -> None:
    # skops saves a function by its name, which a lambda lacks: trusting '__main__.<lambda>' would not help
    from loopline.training import known_cause

    lambda_step = "FunctionTransformer(lambda values: np.log1p(values))"
    script = tmp_path / "train.py"
    script.write_text(
        FOREST_OF_OWN_STEP.replace("IMPORT", "")
        .replace("FunctionTransformer(logs)", lambda_step)
        .replace("TRUSTED", "")
    )
    _refused(tmp_path)
    trusted = "skops_trusted_types=['features.double', 'sklearn.tree._tree.Tree']"
    assert known_cause(tmp_path / "train.log") == (
        ": the model holds a lambda (a FunctionTransformer's, say), which skops, MLflow's format for "
        "scikit-learn models, cannot save: define it as a function in a module of the repository "
        "(def double(values): ... in features.py), import it from there, and pass code_paths=['features.py'] "
        f"and {trusted} to mlflow.sklearn.log_model; or pass serialization_format='cloudpickle' to it, "
        "which saves the lambda itself"
    )
    (tmp_path / "features.py").write_text(
        "import numpy as np\n\n\ndef double(values):\n    return np.log1p(values)\n"
    )
    script.write_text(
        FOREST_OF_OWN_STEP.replace("IMPORT", "from features import double")
        .replace("FunctionTransformer(logs)", "FunctionTransformer(double)")
        .replace("TRUSTED", f", code_paths=['features.py'], {trusted}")
    )
    _saves_as_told_and_loads_elsewhere(tmp_path)


def test_a_training_command_written_as_a_line_of_the_shell_runs_as_the_shell_reads_it(
    new_project: ProjectFactory,
) -> None:
    import loopline
    from tests.helpers import commit_all, edit_yaml

    project = new_project("simple")
    # a step before the training, a variable set for one command, and loopline's Python for both: was
    # mkdir run with the arguments "out && NOTE=..." (folders named && and python in the repository)
    note = "import os, sys; open('out/note', 'w').write(os.environ['NOTE'] + '|' + sys.executable)"
    line = f"mkdir -p out && NOTE='made here' python -c \"{note}\" && python train.py"
    edit_yaml(project / "loopline.yaml", training={"command": line})
    commit_all(project, "Train after a step of the shell")
    result = loopline.inner_loop(project)
    assert result.registry.version == 1
    assert (project / "out" / "note").read_text() == f"made here|{sys.executable}"
    assert not (project / "&&").exists() and not (project / "python").exists()


def test_a_variable_the_script_reads_and_nothing_sets_is_told_how_to_set_it(
    new_project: ProjectFactory, tmp_path: Path
) -> None:
    from loopline.errors import TrainingFailed

    project = new_project("simple")
    (project / "fit.py").write_text("import os\n\npath = os.environ['TRAINING_DATA']\n")
    with pytest.raises(TrainingFailed) as failed:
        train(project, tmp_path, "python fit.py", 60)
    assert "KeyError: 'TRAINING_DATA'; the training reads the environment variable TRAINING_DATA" in (
        failed.value.message
    )
    assert "'TRAINING_DATA=VALUE python fit.py' as training.command" in failed.value.message
    (project / "data.csv").write_text("a\n1\n")
    train(project, tmp_path, "TRAINING_DATA=data.csv python fit.py", 60)  # as told: it runs
