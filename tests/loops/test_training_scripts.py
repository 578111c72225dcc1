"""The inner loop on training scripts written the way data scientists write them: several models, sibling
runs, their own tracking URI, experiments made before loopline, other interpreters, MLflow 2 habits, and
failures. (Their own experiment, autolog, nested runs and their own registration are checked on the way
through the whole path, in tests/test_user_projects.py.)"""

from __future__ import annotations

import shlex
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from mlflow import MlflowClient
from mlflow.entities.model_registry import ModelVersion

import loopline
from loopline.errors import ConfigError, GateFailed, ModelFailed, Refused, TrainingFailed
from tests.conftest import ProjectFactory
from tests.helpers import TRAINING_SCRIPTS, commit_all, mlflow_client, use_script

pytestmark = pytest.mark.slow


def dev_client(project: Path) -> MlflowClient:
    """A stock MLflow client on the project's dev workspace."""
    return mlflow_client(project, "dev")


def all_runs(project: Path) -> list[object]:
    """Every run of every experiment of dev."""
    client = dev_client(project)
    return list(client.search_runs([e.experiment_id for e in client.search_experiments()]))


TWO_MODELS = """\
import mlflow
from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression
from sklearn.preprocessing import StandardScaler

X, y = load_iris(return_X_y=True, as_frame=True)
with mlflow.start_run():
    scaler = StandardScaler().fit(X)
    clf = LogisticRegression(max_iter=500).fit(scaler.transform(X), y)
    mlflow.log_metric("accuracy", clf.score(scaler.transform(X), y))
    mlflow.sklearn.log_model(scaler, name="scaler", pip_requirements=["scikit-learn"])
    mlflow.sklearn.log_model(clf, name="clf", pip_requirements=["scikit-learn"])
"""


def test_several_models_ask_for_model_artifact_path_and_the_fix_reuses_the_run(
    new_project: ProjectFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    project = new_project("simple", commit=False)
    use_script(project, "two.py", {"accuracy": {"min": 0.5}}, source=TWO_MODELS)
    with pytest.raises(ConfigError) as refused:
        loopline.inner_loop(project)
    assert "model.artifact_path" in refused.value.message and "'clf', 'scaler'" in refused.value.message
    assert [r.info.status for r in all_runs(project)] == ["FINISHED"]
    monkeypatch.setenv("LOOPLINE_MODEL__ARTIFACT_PATH", "clf")
    fixed = loopline.inner_loop(project)
    assert fixed.created and not fixed.trained  # the finished training of this commit is reused
    import mlflow.sklearn

    registered = mlflow.sklearn.load_model(fixed.dev.source_uri)
    assert type(registered).__name__ == "LogisticRegression"


SIBLINGS = """\
import mlflow
from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression

X, y = load_iris(return_X_y=True, as_frame=True)
with mlflow.start_run(run_name="parent"):
    for c in (0.1, 1.0):
        with mlflow.start_run(run_name=f"C={c}", nested=True):
            clf = LogisticRegression(C=c, max_iter=500).fit(X, y)
            mlflow.log_metric("accuracy", clf.score(X, y))
            mlflow.sklearn.log_model(clf, name="model", pip_requirements=["scikit-learn"])
"""


def test_sibling_runs_logging_the_same_model_ask_for_model_select(new_project: ProjectFactory) -> None:
    project = new_project("simple", commit=False)
    use_script(project, "siblings.py", {"accuracy": {"min": 0.5}}, source=SIBLINGS)
    with pytest.raises(ConfigError) as refused:
        loopline.inner_loop(project)
    assert "model.select: last" in refused.value.message and "2 runs" in refused.value.message
    config = yaml.safe_load((project / "loopline.yaml").read_text())
    config["model"]["select"] = "last"
    (project / "loopline.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    commit_all(project, "Take the newest")
    result = loopline.inner_loop(project)
    chosen = dev_client(project).get_run(result.run_id)
    assert chosen.data.tags["mlflow.runName"] == "C=1.0"


# MLflow's tracking quickstart, as people copy it: its own tracking server, its own experiment, a
# registered model with a signature and an input example.
QUICKSTART = """\
import mlflow
from mlflow.models import infer_signature
from sklearn import datasets
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score
from sklearn.model_selection import train_test_split

mlflow.set_tracking_uri(uri="{uri}")

X, y = datasets.load_iris(return_X_y=True)
X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.2, random_state=42)
params = {{"solver": "lbfgs", "max_iter": 1000, "random_state": 8888}}
lr = LogisticRegression(**params).fit(X_train, y_train)

mlflow.set_experiment("MLflow Quickstart")
with mlflow.start_run():
    mlflow.log_params(params)
    mlflow.log_metric("accuracy", accuracy_score(y_test, lr.predict(X_test)))
    mlflow.sklearn.log_model(
        sk_model=lr,
        name="iris_model",
        signature=infer_signature(X_train, lr.predict(X_train)),
        input_example=X_train,
        registered_model_name="tracking-quickstart",
    )
"""


def scripts_versions(project: Path) -> list[ModelVersion]:
    """The versions the quickstart registered itself in dev, oldest first."""
    found = dev_client(project).search_model_versions("name = 'tracking-quickstart'")
    return sorted(found, key=lambda v: int(v.version))


def test_a_script_that_sets_its_own_tracking_uri_still_logs_to_dev_and_says_so(
    new_project: ProjectFactory,
) -> None:
    from tests.servers import free_port

    nothing = f"http://127.0.0.1:{free_port()}"  # no tracking server there
    project = new_project("simple", commit=False)
    source = QUICKSTART.format(uri=nothing)
    use_script(
        project, "quickstart.py", {"accuracy": {"min": 0.5}}, source=source, artifact_path="iris_model"
    )
    result = loopline.inner_loop(project)
    assert result.created and result.gate.passed
    run = dev_client(project).get_run(result.run_id)
    assert dev_client(project).get_experiment(run.info.experiment_id).name == "MLflow Quickstart"
    said = Path(result.log_path or "").read_text()
    assert (
        f"loopline: mlflow.set_tracking_uri('{nothing}') ignored: this training logs to the dev workspace"
        in said
    )

    # Run as a module, the same; run by a shell script that names an interpreter of its own (not the
    # `python` loopline puts first on its PATH), the call is the script's to make: it fails at once,
    # saying what to remove, instead of retrying for minutes.
    (project / "fit").mkdir()
    (project / "fit" / "__main__.py").write_text(source)
    config = yaml.safe_load((project / "loopline.yaml").read_text())
    config["training"]["command"] = "python -m fit"
    (project / "loopline.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    commit_all(project, "Train as a module")
    moved = loopline.inner_loop(project)
    assert moved.trained and moved.gate.passed
    assert f"loopline: mlflow.set_tracking_uri('{nothing}') ignored" in Path(moved.log_path or "").read_text()
    # The script registers 'tracking-quickstart' itself at each run: those versions say what came of them.
    own = scripts_versions(project)
    assert [(v.run_id, v.tags["loopline_gate"]) for v in own] == [
        (result.run_id, "passed"),
        (moved.run_id, "passed"),
    ]
    assert own[-1].tags["loopline_version"] == f"{moved.dev.name}/{moved.dev.version}"
    (project / "gate-user.yaml").write_text(yaml.safe_dump({"metrics": {"accuracy": {"min": 1.01}}}))
    commit_all(project, "A gate no model passes")
    with pytest.raises(GateFailed) as failed:
        loopline.inner_loop(project)
    newest = scripts_versions(project)[-1]
    assert newest.run_id == failed.value.details["run_id"] and newest.run_id != moved.run_id
    assert newest.tags["loopline_gate"] == "failed" and "loopline_version" not in newest.tags
    assert (
        newest.tags["git_commit"]
        == subprocess.check_output(["git", "rev-parse", "HEAD"], cwd=project, text=True).strip()
    )
    (project / "train.sh").write_text(f"exec {shlex.quote(sys.executable)} -m fit\n")
    config["training"]["command"] = "bash train.sh"
    (project / "loopline.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    commit_all(project, "Train from a shell script")
    with pytest.raises(TrainingFailed) as refused:
        loopline.inner_loop(project)
    assert f"MLflow was sent to {nothing}, where nothing answered" in refused.value.message
    assert "loopline points MLflow at the workspace through MLFLOW_TRACKING_URI" in refused.value.message


def test_an_experiment_made_outside_loopline_is_refused_with_the_fix(
    new_project: ProjectFactory, tmp_path: Path
) -> None:
    project = new_project("simple", commit=False)
    stray = tmp_path / "mlruns"
    dev_client(project).create_experiment("churn-experiments", artifact_location=stray.as_uri())
    use_script(project, "own_experiment.py", {"accuracy": {"min": 0.8}})
    with pytest.raises(Refused) as refused:
        loopline.inner_loop(project)
    message = refused.value.message
    assert "outside the dev workspace's artifact store" in message
    assert "'churn-experiments'" in message and "rename_experiment" in message
    assert loopline.status(project).models == ()


def test_runs_of_an_interpreter_without_loopline_are_found_by_when_they_started(
    new_project: ProjectFactory,
) -> None:
    project = new_project("simple", commit=False)
    use_script(project, "own_experiment.py", {"accuracy": {"min": 0.8}})
    config = (project / "loopline.yaml").read_text()
    command = f"env -u LOOPLINE_RUN_TAGS {sys.executable} own_experiment.py"
    (project / "loopline.yaml").write_text(config.replace("python own_experiment.py", command))
    commit_all(project, "Another interpreter")
    result = loopline.inner_loop(project)
    tags = dev_client(project).get_run(result.run_id).data.tags
    assert tags["loopline.git_commit"] == result.git_commit and tags["loopline.session"]


ARTIFACTS_MODEL = """\
import tempfile
import mlflow
from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression

X, y = load_iris(return_X_y=True, as_frame=True)
clf = LogisticRegression(max_iter=500).fit(X, y)
with mlflow.start_run(), tempfile.TemporaryDirectory() as folder:
    mlflow.log_metric("accuracy", clf.score(X, y))
    mlflow.sklearn.save_model(clf, f"{folder}/exported", input_example=X.head(2))
    mlflow.log_artifacts(f"{folder}/exported", "exported")
"""


def test_a_model_saved_and_logged_as_plain_artifacts_is_found(new_project: ProjectFactory) -> None:
    project = new_project("simple", commit=False)
    use_script(
        project, "exported.py", {"accuracy": {"min": 0.5}}, source=ARTIFACTS_MODEL, artifact_path="exported"
    )
    result = loopline.inner_loop(project)
    assert result.created
    assert (Path(result.dev.source_uri.removeprefix("file://")) / "MLmodel").is_file()


CRASHING = """\
import mlflow
mlflow.set_experiment("crashing")
mlflow.start_run()
mlflow.log_metric("accuracy", 0.9)
raise RuntimeError("out of memory, say")
"""


def test_a_crashing_script_leaves_its_runs_failed_not_finished(new_project: ProjectFactory) -> None:
    project = new_project("simple", commit=False)
    use_script(project, "crashing.py", {"accuracy": {"min": 0.5}}, source=CRASHING)
    with pytest.raises(TrainingFailed):
        loopline.inner_loop(project)
    runs = all_runs(project)
    assert [r.info.status for r in runs] == ["FAILED"]
    assert runs[0].data.tags["loopline.training"] == "failed"


# A Typer command, as cookiecutter-data-science lays one out: its paths come from a settings module, and
# Typer draws a failure's traceback in a box (rich's), wrapping the error at 80 columns.
TYPER_COMMAND = """\
from pathlib import Path

import pandas as pd
import typer

PROCESSED = Path(__file__).resolve().parent / "data" / "processed"
app = typer.Typer()


@app.command()
def main(features_path: Path = PROCESSED / "features_of_every_customer_of_the_last_quarter.csv"):
    frame = pd.read_csv(features_path)


if __name__ == "__main__":
    app()
"""


def test_data_a_fresh_checkout_lacks_is_named_with_the_ways_to_provide_it(
    new_project: ProjectFactory,
) -> None:
    project = new_project("simple", commit=False)
    (project / ".gitignore").write_text((project / ".gitignore").read_text() + "/data/\n")
    use_script(project, "typed.py", {"accuracy": {"min": 0.5}}, source=TYPER_COMMAND)
    with pytest.raises(TrainingFailed) as refused:
        loopline.inner_loop(project)
    missing = project.resolve() / "data/processed/features_of_every_customer_of_the_last_quarter.csv"
    assert f"exited with code 1: FileNotFoundError: [Errno 2] No such file or directory: '{missing}'; " in (
        refused.value.message
    )
    assert (
        "; data/processed/features_of_every_customer_of_the_last_quarter.csv is not in the repository (git "
        "ignores it), and a fresh checkout, where the workflows train, lacks it too: make it before the "
        "training" in refused.value.message
    )


FOREST = """\
import mlflow
from sklearn.datasets import load_iris
from sklearn.ensemble import RandomForestClassifier

X, y = load_iris(return_X_y=True, as_frame=True)
forest = RandomForestClassifier(n_estimators=5, random_state=0).fit(X, y)
with mlflow.start_run():
    mlflow.log_metric("accuracy", forest.score(X, y))
    mlflow.sklearn.log_model(forest, name="model", input_example=X.head(2))
"""


def test_a_tree_model_mlflow_will_not_save_is_told_the_argument_to_pass(new_project: ProjectFactory) -> None:
    # MLflow 3.17 and later refuses, at log_model, the types skops does not trust: every tree model.
    project = new_project("simple", commit=False)
    use_script(project, "forest.py", {"accuracy": {"min": 0.5}}, source=FOREST)
    with pytest.raises(TrainingFailed) as refused:
        loopline.inner_loop(project)
    assert "exited with code 1: MLflow would not save a scikit-learn model holding types skops does not " in (
        refused.value.message
    )
    assert "pass skops_trusted_types=['sklearn.tree._tree.Tree'] to mlflow.sklearn.log_model; its output" in (
        refused.value.message
    )


OWN_STEP = """\
import mlflow
import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline


class LogScale(BaseEstimator, TransformerMixin):
    def fit(self, X, y=None):
        return self

    def transform(self, X):
        return np.log1p(X)


X, y = load_iris(return_X_y=True, as_frame=True)
pipe = Pipeline([("logs", LogScale()), ("clf", LogisticRegression(max_iter=500))]).fit(X, y)
with mlflow.start_run():
    mlflow.log_metric("accuracy", pipe.score(X, y))
    mlflow.sklearn.log_model(pipe, name="model", input_example=X.head(2)TRUSTED)
"""


def test_a_model_with_a_class_of_the_script_or_an_unshipped_module_is_told_the_fix_and_never_registered(
    new_project: ProjectFactory,
) -> None:
    project = new_project("simple", commit=False)
    use_script(project, "own_step.py", {"accuracy": {"min": 0.5}}, source=OWN_STEP.replace("TRUSTED", ""))
    with pytest.raises(TrainingFailed) as refused:  # MLflow refuses to save it: trusting it would not help
        loopline.inner_loop(project)
    advice = (
        "the model holds LogScale, which the training script defines itself and no serving process can "
        "load; move LogScale into a module of the repository (features.py, say), import it from there, and "
        "pass code_paths=['features.py'] to log_model (with skops_trusted_types=['features.LogScale'] for "
        "scikit-learn)"
    )
    assert advice in refused.value.message
    # Trusted anyway, it saves and passes the gate, but loads nowhere else: refused before registering.
    trusted = OWN_STEP.replace("TRUSTED", ", skops_trusted_types=['__main__.LogScale']")
    use_script(project, "own_step.py", {"accuracy": {"min": 0.5}}, source=trusted)
    with pytest.raises(ModelFailed) as unloadable:
        loopline.inner_loop(project)
    assert "passed the gate but does not load and answer its input example outside its training" in (
        unloadable.value.message
    )
    assert advice in unloadable.value.message and "nothing was registered" in unloadable.value.message
    assert loopline.status(project).models == ()
    # As told: the class in a module of the repository, named in code_paths.
    module = OWN_STEP[OWN_STEP.index("class LogScale") : OWN_STEP.index("X, y =")]
    (project / "features.py").write_text(
        "import numpy as np\nfrom sklearn.base import BaseEstimator, TransformerMixin\n\n\n" + module
    )
    moved = trusted.replace(module, "from features import LogScale\n\n\n")
    # Imported from there, the training finds it; a serving process has only the model's files.
    use_script(
        project,
        "own_step.py",
        {"accuracy": {"min": 0.5}},
        source=moved.replace("['__main__.LogScale']", "['features.LogScale']"),
    )
    with pytest.raises(ModelFailed) as missing:
        loopline.inner_loop(project)
    told = (
        "No module named 'features'; features is a module of this repository (features.py), which the "
        "model's files do not hold: pass code_paths=['features.py'] to log_model"
    )
    assert told in missing.value.message
    fixed = moved.replace("['__main__.LogScale']", "['features.LogScale'], code_paths=['features.py']")
    use_script(project, "own_step.py", {"accuracy": {"min": 0.5}}, source=fixed)
    assert loopline.inner_loop(project).created


LAMBDA_STEP = """\
import mlflow
import numpy as np
from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import FunctionTransformer

X, y = load_iris(return_X_y=True, as_frame=True)
pipe = make_pipeline(FunctionTransformer(lambda values: np.log1p(values)), LogisticRegression(max_iter=500))
pipe.fit(X, y)
with mlflow.start_run():
    mlflow.log_metric("accuracy", pipe.score(X, y))
    mlflow.sklearn.log_model(pipe, name="model", input_example=X.head(2)FORMAT)
"""


def test_a_model_holding_a_lambda_is_told_that_skops_cannot_save_it_and_registers_as_told(
    new_project: ProjectFactory,
) -> None:
    project = new_project("simple", commit=False)
    use_script(
        project, "lambda_step.py", {"accuracy": {"min": 0.5}}, source=LAMBDA_STEP.replace("FORMAT", "")
    )
    with pytest.raises(TrainingFailed) as refused:  # trusting '__main__.<lambda>' would not load anywhere
        loopline.inner_loop(project)
    assert (
        "the model holds a lambda (a FunctionTransformer's, say), which skops, MLflow's format for "
        "scikit-learn models, cannot save: define it as a function in a module of the repository "
        "(def double(values): ... in features.py), import it from there, and pass code_paths=['features.py'] "
        "and skops_trusted_types=['features.double'] to mlflow.sklearn.log_model; or pass "
        "serialization_format='cloudpickle' to it, which saves the lambda itself"
    ) in refused.value.message
    assert "<lambda>" not in refused.value.message  # not told to trust or move a class named '<lambda>'
    fixed = LAMBDA_STEP.replace("FORMAT", ", serialization_format='cloudpickle'")
    use_script(project, "lambda_step.py", {"accuracy": {"min": 0.5}}, source=fixed)
    assert loopline.inner_loop(project).created  # loaded and answered outside its training too


REVIEWS = (TRAINING_SCRIPTS / "reviews.py").read_text()


def test_a_text_pipeline_that_answers_a_table_with_one_prediction_is_told_to_select_its_column(
    new_project: ProjectFactory,
) -> None:
    # The way a text classifier is written: the vectorizer takes a Series of texts. Served, MLflow hands
    # it a table, whose iteration yields the column names: one prediction for any number of rows.
    project = new_project("simple", commit=False)
    use_script(project, "reviews.py", {"accuracy": {"min": 0.5}}, source=REVIEWS)
    with pytest.raises(ModelFailed) as refused:
        loopline.inner_loop(project)
    assert (
        "the model answered 1 prediction for its example's row twice: it takes the whole table as one item "
        "(as a pipeline that starts with a text vectorizer does: given a table, it reads the column names "
        'as the texts); select the column in the model (ColumnTransformer([("text", TfidfVectorizer(), '
        '"text")]) as the pipeline\'s first step, fitted on the table df[["text"]]) and log it again'
    ) in refused.value.message
    assert loopline.status(project).models == ()
    fixed = (
        REVIEWS.replace("ROWS = 1", "ROWS = 5")
        .replace(
            "from sklearn.pipeline", "from sklearn.compose import ColumnTransformer\nfrom sklearn.pipeline"
        )
        .replace('df["text"], df["label"]', 'df[["text"]], df["label"]')
        .replace(
            '("tfidf", TfidfVectorizer())',
            '("tfidf", ColumnTransformer([("text", TfidfVectorizer(), "text")]))',
        )
        .replace("X_train[:ROWS].to_frame()", "X_train[:ROWS]")
    )
    use_script(project, "reviews.py", {"accuracy": {"min": 0.5}}, source=fixed)
    registered = loopline.inner_loop(project)
    import mlflow.pyfunc
    import pandas as pd

    reviews = pd.DataFrame({"text": ["loved the story", "a dull waste", "superb music"]})
    answers = mlflow.pyfunc.load_model(registered.dev.source_uri).predict(reviews)
    assert list(answers) == [1, 0, 1]


def test_an_autologged_text_pipeline_without_an_example_is_told_to_select_its_column(
    new_project: ProjectFactory,
) -> None:
    # Autolog logs no input example, and a signature of the Series' one named column: served, the
    # pipeline answered one prediction for any number of rows, unnoticed until monitoring scored a table.
    autologged = REVIEWS.replace(
        "with mlflow.start_run():", "mlflow.sklearn.autolog()\nwith mlflow.start_run():"
    )
    logged = 'mlflow.sklearn.log_model(pipe, name="model", input_example=X_train[:ROWS].to_frame())'
    assert logged in autologged, "tests/training_scripts/reviews.py changed: update this test"
    project = new_project("simple", commit=False)
    use_script(project, "reviews.py", {"accuracy": {"min": 0.5}}, source=autologged.replace(logged, "pass"))
    with pytest.raises(ModelFailed) as refused:
        loopline.inner_loop(project)
    assert (
        "the model answered 1 prediction for a row of its signature's types twice (it was logged without an "
        "input example): it takes the whole table as one item (as a pipeline that starts with a text "
        "vectorizer does: given a table, it reads the column names as the texts); select the column in the "
        'model (ColumnTransformer([("text", TfidfVectorizer(), "text")]) as the pipeline\'s first step, '
        'fitted on the table df[["text"]]) and log it again; nothing was registered'
    ) in refused.value.message, refused.value.message
    assert loopline.status(project).models == ()


def test_runs_left_running_by_a_loopline_that_died_are_marked_failed_by_the_next_one(
    new_project: ProjectFactory,
) -> None:
    project = new_project("simple")
    dead = subprocess.Popen(["true"])
    dead.wait()
    client = dev_client(project)
    experiment = client.get_experiment_by_name("proj").experiment_id
    orphan = client.create_run(
        experiment, tags={"loopline.host": socket.gethostname(), "loopline.pid": str(dead.pid)}
    )
    # On another host loopline cannot see the process: a run older than the training timeout is over.
    elsewhere = {"loopline.host": "ci-runner-7", "loopline.pid": "4242"}
    hours_ago = int((time.time() - 2 * 3600) * 1000)
    stale = client.create_run(experiment, start_time=hours_ago, tags=elsewhere)
    recent = client.create_run(experiment, tags=elsewhere)
    loopline.inner_loop(project)
    assert client.get_run(orphan.info.run_id).info.status == "FAILED"
    assert client.get_run(stale.info.run_id).info.status == "FAILED"
    assert client.get_run(recent.info.run_id).info.status == "RUNNING"  # it may still be training


def test_a_model_fitted_on_arrays_is_validated_in_test_and_released_with_its_own_example(
    new_project: ProjectFactory,
) -> None:
    # Its input example is a list of rows (no columns), its signature a tensor: the smoke tests send the
    # request MLflow wrote beside it (serving_input_example.json: {"inputs": [...]}).
    project = new_project("full", commit=False)
    use_script(project, "arrays.py", {"accuracy": {"min": 0.8}})
    registered = loopline.inner_loop(project)
    tested = loopline.outer_loop_test(project)
    assert tested.passed, tested.report_markdown
    assert tested.report["smoke"]["detail"] == "200, 2 predictions for 2 rows"
    released = loopline.outer_loop_prod(project)
    assert released.git_commit == registered.git_commit
