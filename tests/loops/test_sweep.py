"""Sweeps: real Optuna, the sample's real training script, a real kill mid-way and the resume after it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

import loopline
from loopline.config import load_config
from loopline.errors import ConfigError, Refused, UsageError
from loopline.loops.sweep import TRIAL_TAG
from tests.conftest import ProjectFactory
from tests.helpers import (
    add_submodule,
    commit_all,
    company_repository,
    edit_yaml,
    git,
    kill_sweep_in_its_second_trial,
    mlflow_client,
    use_script,
)

pytestmark = pytest.mark.slow

SPACE = {
    "trials": 3,
    "objective": {"metric": "accuracy", "direction": "maximize"},
    "parameters": {
        "C": {"low": 0.01, "high": 10, "log": True},
        "max_iter": {"type": "int", "low": 50, "high": 300},
    },
    "seed": 11,
}


def _with_sweep(project: Path, **changes: Any) -> None:
    edit_yaml(project / "loopline.yaml", sweep={**SPACE, **changes})
    commit_all(project, "Sweep C and max_iter")


def _trial_runs(project: Path, study: str) -> list[Any]:
    client = mlflow_client(project, "dev")
    experiments = [e.experiment_id for e in client.search_experiments()]
    return client.search_runs(experiments, f"tags.`loopline.sweep` = '{study}'")


def test_a_sweep_killed_mid_way_goes_on_without_repeating_a_finished_trial_and_registers_the_best(
    new_project: ProjectFactory,
) -> None:
    project = new_project("simple")
    _with_sweep(project)
    params_before = (project / "params.yaml").read_text()

    # Killed (with its training) while the second trial trains.
    kill_sweep_in_its_second_trial(project)
    assert (project / "params.yaml").read_text() != params_before  # the kill left trial 1's values there

    result = loopline.sweep(project)

    assert (project / "params.yaml").read_text() == params_before and not git(
        project, "status", "--porcelain"
    )
    by_number = {t.number: t for t in result.trials}
    finished = [t for t in result.trials if t.state == "complete"]
    assert len(finished) == 3 and result.ran == 2  # trial 0 was kept, not run again
    assert by_number[1].state == "fail" and by_number[2].params == by_number[1].params  # cut off, run again
    best = max(finished, key=lambda t: t.value or 0)
    assert result.best is not None and result.best.number == best.number
    registered = result.inner_loop
    assert registered.created and registered.run_id == best.run_id

    # Each trial is a child of the sweep's parent run at the commit, trained with the trial's values.
    runs = _trial_runs(project, result.study)
    parent = next(r for r in runs if r.data.tags.get("loopline.sweep_parent") == "true")
    assert (
        parent.info.status == "FINISHED" and parent.data.tags["loopline.git_commit"] == registered.git_commit
    )
    assert parent.data.tags["best.trial"] == str(best.number)
    assert parent.data.metrics["best_accuracy"] == pytest.approx(best.value)
    for trial in finished:
        run = next(r for r in runs if r.info.run_id == trial.run_id)
        assert run.data.tags["mlflow.parentRunId"] == parent.info.run_id
        assert float(run.data.params["C"]) == pytest.approx(trial.params["C"])
        assert int(run.data.params["max_iter"]) == trial.params["max_iter"]
    trained_first = [r for r in runs if r.data.tags.get("loopline.sweep_trial") == "0"]
    assert len(trained_first) == 1
    [listed] = loopline.sweeps(project=project)
    assert (listed.study, listed.metric, listed.best_trial) == (result.study, "accuracy", str(best.number))
    values = {row["run_id"]: row["value"] for row in listed.trials}
    assert all(values[t.run_id] == pytest.approx(t.value) for t in finished)
    # compare ranks the trials, not their parent, which holds the best one's figures again
    compared = {r.candidate.run_id for r in loopline.compare(project=project).ranked}
    assert {t.run_id for t in finished} <= compared and parent.info.run_id not in compared

    # Once registered, the commit sweeps no more.
    again = loopline.sweep(project)
    assert not again.inner_loop.created and again.best is None


def test_a_trial_that_falls_behind_epoch_by_epoch_is_pruned_and_the_values_reach_argparse(
    new_project: ProjectFactory,
) -> None:
    project = new_project("simple", commit=False)
    use_script(project, "epochs.py", {"accuracy": {"min": 0.8}})
    edit_yaml(
        project / "loopline.yaml",
        sweep={
            "trials": 3, "seed": 10, "objective": {"metric": "accuracy"},
            "parameters": {"noise": {"choices": [0.0, 0.45]}},
            "command": "python epochs.py --noise {noise}",
            "pruning": {"startup_trials": 1, "warmup_steps": 1},
        },
    )  # fmt: skip
    commit_all(project, "Sweep the label noise")

    result = loopline.sweep(project)

    states = {t.number: (t.params["noise"], t.state) for t in result.trials}
    assert states == {0: (0.0, "complete"), 1: (0.45, "pruned"), 2: (0.0, "complete")}
    client = mlflow_client(project, "dev")
    for trial in result.trials:
        [run] = [
            r
            for r in _trial_runs(project, result.study)
            if r.data.tags.get("loopline.sweep_trial") == str(trial.number)
        ]
        steps = len(client.get_metric_history(run.info.run_id, "accuracy"))
        assert float(run.data.params["noise"]) == trial.params["noise"]  # from the command line
        if trial.state == "pruned":
            assert run.info.status == "FAILED" and steps < 6 and "pruned at step" in (trial.note or "")
        else:
            assert run.info.status == "FINISHED" and steps == 6
    assert result.best is not None and result.best.params == {"noise": 0.0}
    assert result.inner_loop.created and result.inner_loop.run_id == result.best.run_id


def test_parallel_trials_train_in_their_own_copies_of_the_commit(new_project: ProjectFactory) -> None:
    project = new_project("simple")
    # The training reads a file git ignores (local data, as many projects keep it): each copy links it in.
    with (project / ".gitignore").open("a") as ignore:
        ignore.write("local-data/\n")
    (project / "local-data").mkdir()
    (project / "local-data" / "notes.txt").write_text("kept out of git\n")
    script = (project / "train.py").read_text()
    reads = (
        '    assert open("local-data/notes.txt").read() == "kept out of git\\n"\n'
        "    with mlflow.start_run():\n"
    )
    assert script.count("    with mlflow.start_run():\n") == 1
    (project / "train.py").write_text(script.replace("    with mlflow.start_run():\n", reads))
    _with_sweep(project, trials=2)
    params_before = (project / "params.yaml").read_text()

    result = loopline.sweep(project, parallel=2)

    assert [t.state for t in result.trials] == ["complete", "complete"] and result.inner_loop.created
    runs = {r.info.run_id: r for r in _trial_runs(project, result.study)}
    for trial in result.trials:
        assert float(runs[trial.run_id].data.params["C"]) == pytest.approx(trial.params["C"])
    # Each trial had its own parameters file; the project's was never touched, and the copies are gone.
    assert (project / "params.yaml").read_text() == params_before and not git(
        project, "status", "--porcelain"
    )
    assert git(project, "worktree", "list").count("\n") == 0
    assert not list((project / ".loopline" / "sweep-slots").glob("*"))
    assert (project / "local-data" / "notes.txt").read_text() == "kept out of git\n"
    with pytest.raises(UsageError, match="--parallel"):
        loopline.sweep(project, parallel=0)


def test_parallel_trials_of_a_repository_with_a_submodule_have_the_submodule_at_its_commit(
    tmp_path: Path, new_project: ProjectFactory
) -> None:
    # The training imports shared code from a submodule, as a repository of a team's features keeps it.
    library = tmp_path / "features"
    (library / "features").mkdir(parents=True)
    git(library, "init", "--quiet")
    (library / "features" / "__init__.py").write_text("VERSION = 'recorded'\n")
    first = commit_all(library, "Features")
    project = new_project("simple")
    add_submodule(project, str(library), "libs/features")
    script = (project / "train.py").read_text()
    imports = (
        "import sys\nsys.path.insert(0, 'libs/features')\nfrom features import VERSION\n"
        "assert VERSION == 'recorded', VERSION\n"
    )
    future = "from __future__ import annotations\n"
    (project / "train.py").write_text(script.replace(future, future + imports, 1))
    _with_sweep(project, trials=2)
    # a newer commit of the library, checked out in the project but not recorded: trials take the recorded
    (library / "features" / "__init__.py").write_text("VERSION = 'newer'\n")
    commit_all(library, "Newer features")
    git(project / "libs" / "features", "-c", "protocol.file.allow=always", "pull", "--quiet")
    git(project, "-c", "protocol.file.allow=always", "submodule", "update", "--quiet")  # back to the recorded
    assert git(project / "libs" / "features", "rev-parse", "HEAD") == first

    result = loopline.sweep(project, parallel=2)

    assert [t.state for t in result.trials] == ["complete", "complete"], [t.note for t in result.trials]
    assert result.inner_loop.created
    # the copies are gone, the submodule's own copies with them
    assert git(project / "libs" / "features", "worktree", "list").count("\n") == 0
    assert git(project, "worktree", "list").count("\n") == 0 and not git(project, "status", "--porcelain")


def test_a_sweep_whose_trials_log_no_objective_registers_nothing(new_project: ProjectFactory) -> None:
    project = new_project("simple")
    _with_sweep(project, trials=1, objective={"metric": "balanced_accuracy"})
    with pytest.raises(
        Refused, match=r"no trial of sweep .* finished with a value.*logged no 'balanced_accuracy'"
    ):
        loopline.sweep(project)
    assert loopline.status(project).models == ()


def test_a_misspelt_objective_stops_the_sweep_after_its_first_trial(new_project: ProjectFactory) -> None:
    """A name one slip away from a metric the script logs is a typo: no later trial would log it."""
    project = new_project("simple")
    _with_sweep(project, trials=3, objective={"metric": "acuracy", "direction": "maximize"})
    with pytest.raises(ConfigError) as misspelt:
        loopline.sweep(project)
    assert misspelt.value.message == (
        "sweep.objective.metric is 'acuracy', but trial 0's run logged 'accuracy' (of accuracy, f1, "
        "log_loss, roc_auc); name the metric as the script logs it in loopline.yaml and run the sweep again"
    )
    client = mlflow_client(project, "dev")
    runs = client.search_runs([e.experiment_id for e in client.search_experiments()])
    assert [r.data.tags[TRIAL_TAG] for r in runs if TRIAL_TAG in r.data.tags] == ["0"]  # one trial trained
    assert loopline.status(project).models == ()


@pytest.mark.parametrize(
    ("sweep", "expected"),
    [
        ({"parameters": {"C": {"low": 2, "high": 1}}}, "'sweep.parameters.C': low (2) is above high (1)"),
        ({"parameters": {"C": {"low": 0, "high": 1, "log": True}}}, "a log scale needs low above 0"),
        ({"parameters": {"C": {"choices": []}}}, "give either a non-empty list of choices"),
        ({"objective": {"metric": "f1", "direction": "up"}}, "'sweep.objective.direction'"),
    ],
)
def test_a_wrong_search_space_is_a_configuration_error_naming_the_key(
    new_project: ProjectFactory, sweep: dict[str, Any], expected: str
) -> None:
    project = new_project("simple", commit=False, up=False)
    data = yaml.safe_load((project / "loopline.yaml").read_text())
    data["sweep"] = sweep
    (project / "loopline.yaml").write_text(yaml.safe_dump(data))
    with pytest.raises(ConfigError) as raised:
        load_config(project)
    assert expected in raised.value.message


def test_a_sweep_without_a_search_space_says_what_to_add(new_project: ProjectFactory) -> None:
    project = new_project("simple")
    edit_yaml(project / "loopline.yaml", sweep={"trials": 3})
    with pytest.raises(ConfigError, match=r"sweep.parameters in loopline.yaml is empty"):
        loopline.sweep(project)


def test_a_parameters_file_that_is_not_yaml_is_refused_with_its_line_and_left_as_it_was(
    new_project: ProjectFactory,
) -> None:
    project = new_project("simple")
    broken = "C: 1.0\nmax_iter: [100\n"
    (project / "params.yaml").write_text(broken)
    _with_sweep(project)
    with pytest.raises(ConfigError, match=r"params\.yaml line \d+: not valid YAML; fix the syntax there"):
        loopline.sweep(project)
    assert (project / "params.yaml").read_text() == broken


def test_parallel_trials_of_a_project_in_a_folder_of_its_repository_train_in_that_folder(
    tmp_path: Path,
) -> None:
    top = company_repository(tmp_path)
    project = loopline.init(top / "ml" / "churn", "simple").path
    loopline.up(project)
    edit_yaml(project / "loopline.yaml", sweep={**SPACE, "trials": 2})
    commit_all(top, "Churn model and its sweep")
    result = loopline.sweep(project, parallel=2)
    assert [t.state for t in result.trials] == ["complete", "complete"] and result.inner_loop.created
    assert not git(top, "status", "--porcelain")


FOREST = """\
import argparse

import mlflow
from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split

parser = argparse.ArgumentParser()
parser.add_argument("--C", type=float, default=1.0)
parser.add_argument("--max-iter", type=int, default=100)
parser.add_argument("--verbose", action="store_true")
args = parser.parse_args()
C, MAX_ITER = args.C, args.max_iter
X, y = load_iris(return_X_y=True, as_frame=True)
X_train, X_test, y_train, y_test = train_test_split(X, y, random_state=0)
with mlflow.start_run():
    mlflow.log_params({"C": C, "max_iter": MAX_ITER})
    model = LogisticRegression(C=C, max_iter=MAX_ITER).fit(X_train, y_train)
    mlflow.log_metric("accuracy", model.score(X_test, y_test))
    mlflow.sklearn.log_model(model, name="model", input_example=X_test.head(2))
"""


def test_a_script_s_own_argparse_options_take_each_trial_s_values_and_one_that_takes_none_is_stopped(
    new_project: ProjectFactory,
) -> None:
    """The way scripts are written: `--C` and `--max-iter` with defaults, no params file, no placeholders
    in a sweep command. Each trial passes its values as those options; a script that takes them no way
    would train the same model every trial: stopped after the first, naming what to do."""
    project = new_project("simple", commit=False)
    use_script(project, "train_cli.py", {"accuracy": {"min": 0.5}}, source=FOREST)
    (project / "params.yaml").unlink()
    _with_sweep(project, trials=2)

    result = loopline.sweep(project)

    runs = {r.data.tags[TRIAL_TAG]: r for r in _trial_runs(project, result.study) if TRIAL_TAG in r.data.tags}
    assert len(result.trials) == 2
    for trial in result.trials:
        logged = runs[str(trial.number)].data.params
        assert float(logged["C"]) == pytest.approx(trial.params["C"])
        assert int(logged["max_iter"]) == trial.params["max_iter"]
    assert result.inner_loop.created

    # the same script with its values fixed in the code: stopped after one trial, nothing registered
    fixed = FOREST.replace("C, MAX_ITER = args.C, args.max_iter", "C, MAX_ITER = 1.0, 100")
    use_script(project, "train_cli.py", {"accuracy": {"min": 0.5}}, source=fixed)
    with pytest.raises(ConfigError) as untaken:
        loopline.sweep(project)
    said = untaken.value.message
    assert (
        said.startswith("trial 0 asked for C=") and ", but its run logged C=1.0: the training did not" in said
    )
    assert '"python train_cli.py --c {C}"' not in said and 'sweep.command ("python train_cli.py --' in said
    dev = [m.version for m in loopline.status(project).models if m.workspace == "dev"]
    assert dev == [1]  # only the first commit's version


HYDRA = """\
import hydra
import mlflow
from omegaconf import DictConfig
from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression


@hydra.main(version_base=None, config_path="conf", config_name="config")
def main(cfg: DictConfig) -> None:
    X, y = load_iris(return_X_y=True, as_frame=True)
    with mlflow.start_run():
        mlflow.log_params({"C": cfg.model.C, "max_iter": cfg.model.max_iter})
        model = LogisticRegression(C=cfg.model.C, max_iter=cfg.model.max_iter).fit(X, y)
        mlflow.log_metric("accuracy", model.score(X, y))
        mlflow.sklearn.log_model(model, name="model", input_example=X.head(2))


if __name__ == "__main__":
    main()
"""


def test_a_hydra_script_takes_each_trial_s_values_as_overrides_of_its_configuration(
    new_project: ProjectFactory,
) -> None:
    project = new_project("simple", commit=False)
    (project / "conf").mkdir()
    (project / "conf" / "config.yaml").write_text("model:\n  C: 1.0\n  max_iter: 100\nseed: 0\n")
    with (project / ".gitignore").open("a") as ignored:
        ignored.write("outputs/\n")  # Hydra's own output folder
    use_script(project, "train_hydra.py", {"accuracy": {"min": 0.5}}, source=HYDRA)
    _with_sweep(project, trials=2)

    result = loopline.sweep(project)

    runs = {r.data.tags[TRIAL_TAG]: r for r in _trial_runs(project, result.study) if TRIAL_TAG in r.data.tags}
    for trial in result.trials:
        logged = runs[str(trial.number)].data.params
        assert float(logged["C"]) == pytest.approx(trial.params["C"])
        assert int(logged["max_iter"]) == trial.params["max_iter"]
    assert result.inner_loop.created
