"""The inner loop on real git repositories, real training runs and real MLflow stores."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from mlflow import MlflowClient

import loopline
from loopline.config import load_config
from loopline.errors import ConfigError, DirtyWorkingTree, GateFailed, TrainingFailed, UsageError
from loopline.git import commit_identity, repository_paths, unchanged_since
from loopline.instance import Instance
from loopline.loops.inner import unchanged
from loopline.storage.digest import digest_tree
from tests.conftest import ProjectFactory
from tests.helpers import Steps, cli_process, commit_all, company_repository, edit_yaml, git, set_gate
from tests.servers import Mlflow2TrackingServer, MlflowTrackingServer

pytestmark = pytest.mark.slow


def client(project: Path, store: str) -> MlflowClient:
    """A stock MLflow client on one of the project's stores."""
    location = load_config(project).store(store)
    return MlflowClient(tracking_uri=location.tracking_uri, registry_uri=location.registry_uri)


def versions(project: Path, store: str) -> list[tuple[str, int]]:
    """Every registered model version in a store, as (name, version)."""
    found = client(project, store).search_model_versions("")
    return sorted((v.name, int(v.version)) for v in found)


@pytest.mark.parametrize("tier", ["experimentation", "simple", "full"])
def test_inner_loop_registers_the_commit_in_dev_and_the_registry(
    new_project: ProjectFactory, tier: str
) -> None:
    project = new_project(tier)
    head = git(project, "rev-parse", "HEAD")
    result = loopline.inner_loop(project)
    assert result.created and result.trained and result.gate is not None and result.gate.passed
    registry = client(project, "shared").search_model_versions(f"tags.git_commit = '{head}'")
    assert [(v.name, int(v.version)) for v in registry] == [("proj-classifier", 1)]
    tags = registry[0].tags
    assert tags["git_commit"] == head and tags["git_branch"] == "main" and tags["git_dirty"] == "false"
    assert tags["source_workspace"] == "dev" and tags["source_run_id"] == result.run_id
    dev = client(project, "dev").search_model_versions(f"tags.git_commit = '{head}'")
    assert len(dev) == 1 and dev[0].run_id == result.run_id
    for key in (
        "git_commit",
        "git_branch",
        "git_dirty",
        "source_workspace",
        "source_run_id",
        "content_digest",
    ):
        assert dev[0].tags[key] == tags[key]
    folder = Path(registry[0].source.removeprefix("file://"))
    assert digest_tree(folder) == tags["content_digest"]


def test_the_registered_model_loads_and_predicts_with_stock_mlflow(trained_project: ProjectFactory) -> None:
    import mlflow.pyfunc
    import pandas as pd

    project = trained_project("simple")  # its commit went through the inner loop
    location = load_config(project).store("shared")
    mlflow.set_registry_uri(location.registry_uri)
    try:
        model = mlflow.pyfunc.load_model("models:/proj-classifier/1")
    finally:
        mlflow.set_registry_uri("")
    source = client(project, "shared").get_model_version("proj-classifier", "1").source
    example = pd.read_json(
        Path(source.removeprefix("file://")) / "input_example.json", orient="split"
    ).astype(float)
    assert set(model.predict(example)) <= {0, 1}


def test_the_same_commit_registers_nothing_new_and_a_new_commit_does(trained_project: ProjectFactory) -> None:
    project = trained_project("simple")  # its commit went through the inner loop
    first = git(project, "rev-parse", "HEAD")
    again = loopline.inner_loop(project)
    assert not again.created and not again.trained and again.git_commit == first
    assert "already registered" in again.message and "nothing to do" in again.message
    assert (again.dev.version, again.shared.version) == (1, 1)
    assert versions(project, "shared") == [("proj-classifier", 1)]
    edit_yaml(project / "params.yaml", C=0.5)
    second_commit = commit_all(project, "Less regularisation")
    second = loopline.inner_loop(project)
    assert second.created and second.shared.version == 2 and second.git_commit == second_commit
    assert versions(project, "shared") == [("proj-classifier", 1), ("proj-classifier", 2)]
    assert [m.git_commit for m in loopline.status(project).models if m.workspace == "shared"] == [
        first,
        second_commit,
    ]


@pytest.mark.parametrize("deleted", ["shared", "dev"])
def test_a_version_deleted_in_mlflow_is_registered_again_at_its_commit_not_trained_or_shared_twice(
    trained_project: ProjectFactory, deleted: str
) -> None:
    project = trained_project("simple")  # its commit went through the inner loop: dev v1, registry v1
    head = git(project, "rev-parse", "HEAD")
    client(project, deleted).delete_model_version("proj-classifier", "1")  # tidied away in the MLflow UI

    steps = Steps()
    again = loopline.inner_loop(project, reporter=steps)

    assert not again.trained and not again.created and again.git_commit == head
    assert any(
        f"{deleted}'s MLflow registry no longer holds proj-classifier v1" in s
        and "registered its files there again as v2" in s
        for s in steps.seen
    )
    assert versions(project, deleted) == [("proj-classifier", 2)]
    other = "dev" if deleted == "shared" else "shared"
    assert versions(project, other) == [("proj-classifier", 1)]  # nothing shared or registered twice
    # loopline's own record agrees with MLflow's: one version of the commit in each workspace.
    shown = sorted((m.workspace, m.version) for m in loopline.status(project).models if m.git_commit == head)
    assert shown == sorted([(deleted, 2), (other, 1)])
    restored = client(project, deleted).get_model_version("proj-classifier", "2")
    assert restored.tags["git_commit"] == head and restored.tags["restored_from"] == f"{deleted}/1"


def test_a_dirty_tree_is_refused_naming_the_files_and_audited(new_project: ProjectFactory) -> None:
    project = new_project("simple")
    edit_yaml(project / "params.yaml", C=0.3)
    (project / "notes.txt").write_text("scratch")
    result = cli_process("inner-loop", cwd=project)
    assert result.exit_code == 1
    assert result.stderr.strip().splitlines()[-1] == (
        "error: the working tree has uncommitted changes (notes.txt, params.yaml); commit them (files your "
        "training writes: list them in .gitignore), or pass --allow-dirty to record the model as dirty"
    )
    assert "Traceback" not in result.stderr
    assert versions(project, "dev") == versions(project, "shared") == []
    refused = loopline.history(project, kind="refused")
    assert len(refused) == 1 and refused[0].event.actor == "tester@example.com"


def test_allow_dirty_records_the_dirt_and_a_digest_of_the_diff(new_project: ProjectFactory) -> None:
    project = new_project("simple")
    edit_yaml(project / "params.yaml", C=0.3)
    with pytest.raises(DirtyWorkingTree):
        loopline.inner_loop(project)
    result = loopline.inner_loop(project, allow_dirty=True)
    assert result.git_dirty and result.dirty_files == ("params.yaml",)
    tags = client(project, "shared").get_model_version("proj-classifier", "1").tags
    assert tags["git_dirty"] == "true"
    assert tags["git_diff_digest"].startswith("sha256:")
    assert result.shared.diff_digest == tags["git_diff_digest"]
    run = client(project, "dev").get_run(result.run_id)
    assert run.data.params["C"] == "0.3"


def test_a_failing_gate_exits_1_and_registers_nothing(new_project: ProjectFactory) -> None:
    project = new_project("simple")
    set_gate(project, "accuracy", min=0.999)
    commit_all(project, "Demand the impossible")
    result = cli_process("inner-loop", cwd=project)
    assert result.exit_code == 1
    assert (
        "gate failed: accuracy = " in result.stderr
        and "(needs >= 0.999); nothing was registered" in result.stderr
    )
    assert "FAIL" in result.stderr
    assert versions(project, "dev") == versions(project, "shared") == []
    assert client(project, "dev").search_registered_models() == []
    gate = loopline.history(project, kind="gate-evaluated")
    assert [e.event.outcome for e in gate] == ["failed"]
    with pytest.raises(GateFailed):  # the same commit is judged the same way, without training again
        loopline.inner_loop(project)


def test_a_training_run_killed_half_way_leaves_nothing_and_a_rerun_succeeds(
    new_project: ProjectFactory,
) -> None:
    project = new_project("simple")
    train = project / "train.py"
    train.write_text(
        train.read_text().replace(
            "        mlflow.log_metrics(metrics)\n",
            "        mlflow.log_metrics(metrics)\n"
            "        if __import__('os').environ.get('DIE_HALF_WAY'):\n"
            "            __import__('os').kill(__import__('os').getpid(), 9)\n",
        )
    )
    commit_all(project, "Training that can be killed")
    killed = cli_process("inner-loop", cwd=project, env={"DIE_HALF_WAY": "1"})
    assert killed.exit_code == 1
    assert "training entry point `python train.py` was killed by signal 9" in killed.stderr
    assert versions(project, "dev") == versions(project, "shared") == []
    runs = client(project, "dev").search_runs(
        [client(project, "dev").get_experiment_by_name("proj").experiment_id]
    )
    assert [r.info.status for r in runs] == ["FAILED"]
    again = loopline.inner_loop(project)
    assert again.created and again.trained
    assert versions(project, "shared") == [("proj-classifier", 1)]


SLOW_TRAIN = """\
import time
import mlflow

mlflow.set_experiment("slow-experiments")
with mlflow.start_run():
    mlflow.log_metric("accuracy", 0.5)
    time.sleep(120)
"""


def test_ctrl_c_during_training_stops_it_registers_nothing_and_fails_its_runs(
    new_project: ProjectFactory,
) -> None:
    project = new_project("simple", commit=False)
    (project / "slow.py").write_text(SLOW_TRAIN)
    config = (project / "loopline.yaml").read_text().replace("python train.py", "python slow.py")
    (project / "loopline.yaml").write_text(config)
    commit_all(project, "A slow model")
    script = Path(sys.executable).with_name("loopline")
    # Faulthandler: a loopline that does not stop is made to print where each of its threads is.
    child = subprocess.Popen(
        [str(script), "inner-loop"],
        cwd=project,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONFAULTHANDLER": "1"},
    )
    dev = client(project, "dev")
    deadline = time.monotonic() + 120
    running: list[object] = []
    while not running and time.monotonic() < deadline:
        time.sleep(0.2)
        experiment = dev.get_experiment_by_name("slow-experiments")
        running = dev.search_runs([experiment.experiment_id]) if experiment else []
    assert running, "the training never started its run"
    child.send_signal(signal.SIGINT)
    try:
        _, stderr = child.communicate(timeout=60)
    except subprocess.TimeoutExpired:
        child.send_signal(signal.SIGABRT)
        pytest.fail("loopline went on for 60 s after Ctrl-C:\n" + child.communicate()[1][-6000:])
    assert child.returncode == 130, stderr
    assert stderr.strip().splitlines()[-1] == "error: interrupted"
    assert versions(project, "dev") == versions(project, "shared") == []
    runs = dev.search_runs([dev.get_experiment_by_name("slow-experiments").experiment_id])
    assert [r.info.status for r in runs] == ["FAILED"]


@pytest.mark.parametrize("failpoint", ["before-dev-register", "after-dev-register"])
def test_a_crash_between_steps_is_finished_by_the_rerun(new_project: ProjectFactory, failpoint: str) -> None:
    project = new_project("simple")
    crashed = cli_process("inner-loop", cwd=project, env={"LOOPLINE_FAILPOINT": failpoint})
    assert crashed.exit_code == 137
    expected_dev = [] if failpoint == "before-dev-register" else [("proj-classifier", 1)]
    assert versions(project, "dev") == expected_dev
    assert versions(project, "shared") == []
    result = loopline.inner_loop(project)
    assert result.created and not result.trained  # the finished training run is reused
    assert versions(project, "dev") == versions(project, "shared") == [("proj-classifier", 1)]
    kinds = [r.event.kind for r in loopline.history(project) if r.event.kind in {"registered", "shared"}]
    assert kinds == ["registered", "shared"]


def test_two_inner_loops_at_once_make_one_version(new_project: ProjectFactory) -> None:
    project = new_project("simple")
    script = Path(sys.executable).with_name("loopline")
    children = [
        subprocess.Popen(
            [str(script), "inner-loop", "--json"],
            cwd=project,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    outputs = [child.communicate(timeout=300) for child in children]
    assert [child.returncode for child in children] == [0, 0], outputs
    import json

    created = sorted(json.loads(out)["created"] for out, _ in outputs)
    assert created == [False, True]
    assert versions(project, "dev") == versions(project, "shared") == [("proj-classifier", 1)]


def test_history_tells_who_did_what_to_which_commit(
    new_project: ProjectFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    project = new_project("simple")
    monkeypatch.setenv("LOOPLINE_USER", "alice")
    result = loopline.inner_loop(project)
    events = loopline.history(project, commit=result.git_commit[:7])
    assert [(e.event.kind, e.event.workspace, e.event.outcome) for e in events] == [
        ("gate-evaluated", "dev", "passed"),
        ("registered", "dev", "ok"),
        ("shared", "shared", "ok"),
    ]
    assert {e.event.actor for e in events} == {"alice"}
    assert (
        events[2].event.source == "dev/proj-classifier/1"
        and events[2].event.target == "shared/proj-classifier/1"
    )
    # A filter that can match nothing is a mistake, not an empty history.
    with pytest.raises(
        UsageError, match=r"no event kind 'share'; did you mean 'shared'\? the event kinds are"
    ):
        loopline.history(project, kind="share")
    with pytest.raises(UsageError, match="no workspace 'prd'; did you mean 'prod'"):
        loopline.history(project, workspace="prd")
    assert loopline.history(project, kind="shared", workspace="test") == []  # a workspace of another tier


def test_a_run_that_logs_no_model_is_refused(new_project: ProjectFactory) -> None:
    project = new_project("simple")
    edit_yaml(project / "loopline.yaml", model={"name": "proj-classifier", "artifact_path": "elsewhere"})
    commit_all(project, "Wrong artifact path")
    with pytest.raises(
        ConfigError, match=r"model\.artifact_path is 'elsewhere', but the training logged models"
    ):
        loopline.inner_loop(project)
    assert versions(project, "dev") == []
    # a script that only defines its training starts no run: said as such, not as runs sent elsewhere
    train = (project / "train.py").read_text()
    (project / "train.py").write_text(train.replace('if __name__ == "__main__":', "def unused():"))
    commit_all(project, "No main block")
    with pytest.raises(
        TrainingFailed, match=r"finished without starting a run: train\.py only defines .*main\(\)"
    ):
        loopline.inner_loop(project)
    assert versions(project, "dev") == []
    # a model saved by its library and logged as a file: named, with what to log instead
    (project / "train.py").write_text(JOBLIB_FILE)
    commit_all(project, "The model as a joblib file")
    with pytest.raises(TrainingFailed) as failed:
        loopline.inner_loop(project)
    assert "finished without logging a model: it logged models/classifier.joblib as a plain file" in (
        failed.value.message
    )
    assert 'mlflow.sklearn.log_model(model, name="model") for scikit-learn' in failed.value.message
    assert versions(project, "dev") == []


JOBLIB_FILE = """\
import joblib
import mlflow
from sklearn.datasets import load_breast_cancer
from sklearn.linear_model import LogisticRegression

X, y = load_breast_cancer(return_X_y=True, as_frame=True)
with mlflow.start_run():
    model = LogisticRegression(max_iter=5000).fit(X, y)
    mlflow.log_metric("accuracy", model.score(X, y))
    joblib.dump(model, "classifier.joblib")
    mlflow.log_artifact("classifier.joblib", artifact_path="models")
"""


def test_dev_on_a_teams_mlflow_tracking_server_with_model_files_on_azure_blob(
    new_project: ProjectFactory, azurite: Any, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """The MLflow server a team runs already as dev's tracking store and registry, the model files in a
    blob container: the inner loop registers there, and a stock MLflow client of that server loads the
    version (the server refuses local sources, MLflow reads no az://)."""
    import mlflow
    import pandas as pd

    monkeypatch.setenv("AZURE_STORAGE_CONNECTION_STRING", azurite.connection_string)
    project = new_project("simple", up=False)
    server = MlflowTrackingServer(project)
    try:
        monkeypatch.setenv("LOOPLINE_WORKSPACES__DEV__TRACKING_URI", server.url)
        monkeypatch.setenv(
            "LOOPLINE_WORKSPACES__DEV__MODEL_STORE", f"{azurite.container('models')}/{tmp_path.name}"
        )
        loopline.up(project)
        made = loopline.inner_loop(project)
        assert made.created and made.dev.source_uri.startswith("wasbs://models@")
        # The runs' artifacts went to the server's artifact store, not to a folder of this machine.
        run = MlflowClient(server.url).get_run(made.run_id)
        assert run.info.artifact_uri.startswith("mlflow-artifacts:/"), run.info.artifact_uri
        assert list(server.artifacts.rglob("reference_data.parquet"))
        assert not (project / ".loopline" / "workspaces" / "dev" / "artifacts").exists()
        # So do loopline's own files in such a store, and they read back from there.
        store = Instance.open(project).store("dev")
        folder = store.write_artifacts("checks/one", {"note.txt": "written through the server\n"})
        assert folder.startswith("mlflow-artifacts:/")
        assert (
            store.local_copy(folder, tmp_path / "back") / "note.txt"
        ).read_text() == "written through the server\n"
        rows = pd.read_csv(project / "data" / "inbox" / "heldout.csv").drop(columns=["label"]).head(3)
        mlflow.set_tracking_uri(server.url)
        try:
            loaded = mlflow.pyfunc.load_model(f"models:/proj-classifier/{made.dev.version}")
        finally:
            mlflow.set_tracking_uri(None)  # type: ignore[arg-type]
        assert len(loaded.predict(rows)) == 3
    finally:
        server.stop()


def test_a_teams_mlflow_2_tracking_server_is_refused_before_anything_trains(
    new_project: ProjectFactory, azurite: Any, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """MLflow 3 logs every model through an API an MLflow 2 server lacks: the training would fail in
    log_model after running whole, with the server's 404 page. Refused at once, naming both versions."""
    project = new_project("simple", up=False)
    server = Mlflow2TrackingServer(project)
    env = {
        "AZURE_STORAGE_CONNECTION_STRING": azurite.connection_string,
        "LOOPLINE_WORKSPACES__DEV__TRACKING_URI": server.url,
        "LOOPLINE_WORKSPACES__DEV__MODEL_STORE": f"{azurite.container('models')}/{tmp_path.name}",
    }
    try:
        for command in ("up", "inner-loop"):
            done = cli_process(command, cwd=project, env=env)
            assert done.exit_code == 2, (command, done.stderr)
            [line] = [line for line in done.stderr.splitlines() if line.startswith("error:")]
            assert line == (
                f"error: dev's MLflow tracking server ({server.url}) runs MLflow 2.22.5, which cannot store "
                "models that MLflow 3.17.2 logs (MLflow 3's logged-models API): upgrade the server to MLflow "
                "3 (`pip install -U mlflow`, then `mlflow db upgrade` on its database)"
            ).replace("3.17.2", __import__("mlflow").__version__), command
            assert "Traceback" not in done.stderr
        # nothing trained, and the server holds no run
        assert not list((project / ".loopline").glob("logs/train-*.log"))
        assert not MlflowClient(server.url).search_runs(["0"])
    finally:
        server.stop()


def test_training_paths_may_leave_files_out_whose_changes_make_no_new_model(tmp_path: Path) -> None:
    top = company_repository(tmp_path)
    project = loopline.init(top / "ml" / "churn", "simple").path
    config = load_config(project).config.training
    edit_yaml(
        project / "loopline.yaml", training={"command": config.command, "paths": [".", "!*.md", "!tests"]}
    )
    loopline.up(project)
    first = commit_all(top, "Churn model")
    assert loopline.inner_loop(project).created

    (project / "README.md").write_text("# Churn\n\nHow we train it.\n")
    (project / "tests" / "test_more.py").write_text("def test_nothing() -> None:\n    pass\n")
    (project / "docs").mkdir()
    (project / "docs" / "notes.md").write_text("deeper Markdown is left out too\n")
    commit_all(top, "Docs and tests only")
    same = loopline.inner_loop(project)
    assert not same.created and not same.trained and same.git_commit == first
    assert "changed nothing in ml/churn, !ml/churn/*.md, !ml/churn/tests (training.paths)" in same.message
    (project / "README.md").write_text("# Churn, work in progress\n")  # not the model's: not refused
    assert loopline.inner_loop(project).git_commit == first
    git(top, "checkout", "--", ".")

    named = repository_paths(project, [".", "!*.md", "!tests"])
    assert named == ["ml/churn", ":(exclude)ml/churn/*.md", ":(exclude)ml/churn/tests"]
    (project / "params.yaml").write_text((project / "params.yaml").read_text() + "# a change that counts\n")
    changed = commit_all(top, "A change to the model")
    assert unchanged_since(project, changed, {first}, named) is None  # it trains

    for path, message in (("!", "names nothing"), ("!../../../x", "is outside the repository")):
        edit_yaml(project / "loopline.yaml", training={"command": config.command, "paths": [".", path]})
        commit_all(top, "A wrong path")
        with pytest.raises(ConfigError, match=rf"training\.paths: '{re.escape(path)}' {message}"):
            loopline.inner_loop(project)


def test_a_commit_that_changed_nothing_in_training_paths_takes_the_version_before_it(tmp_path: Path) -> None:
    """A project in a folder of a larger repository (init writes training.paths: ["."] there): a merge
    that changed only other folders trains nothing; one that changed the project trains."""
    top = company_repository(tmp_path)
    project = loopline.init(top / "ml" / "churn", "simple").path
    assert load_config(project).config.training.paths == ["."]
    loopline.up(project)
    first = commit_all(top, "Churn model")
    made = loopline.inner_loop(project)
    assert made.created and made.git_commit == first

    (top / "services" / "app.py").write_text("print('api v2')\n")
    commit_all(top, "A change to the services only")
    same = loopline.inner_loop(project)
    assert not same.created and not same.trained and same.git_commit == first
    assert (same.dev.version, same.shared.version) == (made.dev.version, made.shared.version)
    assert "changed nothing in ml/churn (training.paths)" in same.message
    assert [m.version for m in loopline.status(project).models if m.workspace == "dev"] == [1]
    # Work in progress elsewhere in the repository is not the model's: only the project's is refused.
    (top / "services" / "app.py").write_text("print('api v3, not committed')\n")
    assert loopline.inner_loop(project).git_commit == first
    (project / "params.yaml").write_text((project / "params.yaml").read_text() + "# not committed\n")
    with pytest.raises(DirtyWorkingTree, match=r"ml/churn/params\.yaml"):
        loopline.inner_loop(project)
    git(top, "checkout", "--", ".")
    # A shallow clone (actions/checkout fetches one commit unless told otherwise) has no ancestor to
    # compare with: the model trains, and the run says how to fetch the history.
    (top / "services" / "app.py").write_text("print('api v4')\n")
    elsewhere = commit_all(top, "Another change to the services")
    (top / ".git" / "shallow").write_text(f"{elsewhere}\n")
    steps, models, identity = Steps(), list(loopline.status(project).models), commit_identity(project)
    assert unchanged(project, "churn-classifier", identity, ["ml/churn"], models, steps) is None
    assert any("this clone is shallow" in step and "fetch-depth: 0" in step for step in steps.seen)
    (top / ".git" / "shallow").unlink()

    (project / "params.yaml").write_text((project / "params.yaml").read_text().replace("C: 1.0", "C: 0.5"))
    commit_all(top, "A change to the model")
    assert loopline.inner_loop(project).created

    for path, message in (("../../..", "is outside the repository"), ("featurs", "does not exist in")):
        edit_yaml(project / "loopline.yaml", training={"command": "python train.py", "paths": [".", path]})
        commit_all(top, "A wrong path")
        with pytest.raises(ConfigError, match=rf"training\.paths: '{re.escape(path)}' {message}"):
            loopline.inner_loop(project)


def test_a_store_this_machine_lacks_the_package_for_is_refused_before_training(
    new_project: ProjectFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Google Cloud Storage's packages are not installed here (neither is needed elsewhere)."""
    import importlib.util

    assert (
        importlib.util.find_spec("gcsfs") is None and importlib.util.find_spec("google.cloud.storage") is None
    )
    project = new_project("simple")
    with monkeypatch.context() as env:
        env.setenv("LOOPLINE_WORKSPACES__SHARED__MODEL_STORE", "gs://models/churn")
        with pytest.raises(UsageError, match=r"model store at gs://models/churn needs the gcsfs package"):
            loopline.inner_loop(project)
    with monkeypatch.context() as env:
        env.setenv("LOOPLINE_WORKSPACES__DEV__ARTIFACT_LOCATION", "gs://artifacts/dev")
        with pytest.raises(
            UsageError,
            match=r"dev's artifact_location gs://artifacts/dev needs the google-cloud-storage package "
            r"\(MLflow's gs:// artifact store imports google\.cloud\.storage\): "
            "pip install google-cloud-storage",
        ):
            loopline.inner_loop(project)
    assert not (project / ".loopline" / "logs").exists() or not list(
        (project / ".loopline" / "logs").iterdir()
    )
    assert loopline.status(project).models == ()
