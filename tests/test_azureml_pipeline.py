"""Azure ML pipeline jobs: a repository laid out as Azure's MLOps templates are (prepare, train, evaluate,
register, each a step of mlops/azureml/train/pipeline.yml) set up by `init --existing` and trained by the
inner loop; the order, folders and inputs of the steps; what is refused, and how."""

from __future__ import annotations

import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml
from mlflow import MlflowClient

from loopline.azureml_pipeline import find_training_job, named_pipeline, plan
from loopline.config import load_config
from loopline.errors import UsageError
from loopline.inputs import INPUTS_TAG
from loopline.training import known_cause
from tests.helpers import cli, commit_all, git

PROJECT = Path(__file__).parent / "projects" / "azureml_pipeline"
PIPELINE = "mlops/azureml/train/pipeline.yml"


def taxi_trips(path: Path, rows: int = 400) -> None:
    """Taxi trips with a fare that grows with the distance, as a CSV."""
    rng = np.random.default_rng(7)
    distance, passengers = rng.uniform(0.05, 20, rows), rng.integers(1, 5, rows)
    hour, vendor = rng.integers(0, 24, rows), rng.integers(1, 3, rows)
    cost = 3 + 2.5 * distance + 0.5 * passengers + 0.1 * hour + rng.normal(0, 1.5, rows)
    lines = ["distance,passengers,pickup_hour,vendor,cost"]
    lines += [f"{distance[i]:.2f},{passengers[i]},{hour[i]},{vendor[i]},{cost[i]:.2f}" for i in range(rows)]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n")


def mlops_repository(path: Path) -> Path:
    """The pipeline repository, with its data in data/ as the data asset file names it, committed."""
    shutil.copytree(PROJECT, path)
    taxi_trips(path / "data" / "taxi-trips.csv")
    git(path, "init", "--quiet")
    commit_all(path, "Our Azure ML pipeline")
    return path


@pytest.mark.slow
@pytest.mark.long
def test_a_pipeline_job_trains_step_by_step_into_one_run_that_the_inner_loop_registers(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    project = mlops_repository(tmp_path / "taxi")
    monkeypatch.chdir(project)
    # docs/bring-your-own-project.md's commands, in the repository: the data asset file
    # (mlops/azureml/train/data.yml) names the data init's run reads, so no --input is needed
    done = cli(capsys, "init", "--existing", "--json")
    assert done.exit_code == 0, done.stderr
    result = done.json()
    assert (
        result["command"]
        == f"python -m loopline.azureml_pipeline {PIPELINE} --set inputs.trips={{inputs.trips}}"
    )
    assert result["inputs"] == {"trips": "taxi-trips"}
    assert (result["model"], result["artifact_path"]) == ("taxi-fare-model", "taxi-fare-model")
    assert result["notes"][0].startswith(
        f"the training runs {PIPELINE}, an Azure ML pipeline job, step by step (prep_data, train_model, "
        "evaluate_model, register_model)"
    )
    upload = "loopline data upload taxi-trips data/taxi-trips.csv"
    assert any(f"upload the copy init read (`{upload}`)" in note for note in result["notes"])
    # the evaluation step's metrics are read with the training step's (one run holds both); the gate holds
    # the held-out ones, and lists the training step's figure on its own rows as not gated
    assert {"test r2", "test rmse", "train r2"} <= set(result["metrics"])
    gate = (project / "gate.yaml").read_text()
    assert {"test r2", "test rmse"} <= set(yaml.safe_load(gate)["metrics"])
    assert "#   train r2: {min: ..., max: ...}" in gate.split("# Measured on the training rows, not gated")[1]
    assert not (project / "outputs").exists()  # the steps' outputs were folders of their own
    # what the steps import, for the workflows to install: evaluate.py's plot too
    assert "matplotlib==" in (project / "requirements.txt").read_text()
    # prod's endpoint keeps the name the repository's online endpoint file gives it
    online = "mlops/azureml/deploy/online/online-endpoint.yml"
    assert yaml.safe_load((project / "loopline.yaml").read_text())["release"] == {
        "endpoint": "taxi-fare-online"
    }
    assert (
        f"outer-loop prod releases to endpoint taxi-fare-online, the one {online} names (release.endpoint)"
        in (result["notes"])
    )
    # the steps' environment (azureml:taxi-train-env@latest) is the repository's environment file's
    assert any(
        note.startswith("data-science/environment/train-conda.yml (a conda environment) is not read")
        and "azureml-mlflow" in note
        for note in result["notes"]
    ), result["notes"]
    assert cli(capsys, "up").exit_code == 0
    uploaded = cli(capsys, *shlex.split(upload)[1:])
    assert uploaded.exit_code == 0, uploaded.stderr
    commit = commit_all(project, "Train with loopline")
    trained = cli(capsys, "inner-loop", "--json")
    assert trained.exit_code == 0, trained.stderr
    first = trained.json()
    assert first["created"] and first["dev"]["name"] == "taxi-fare-model" and first["git_commit"] == commit
    client = MlflowClient(load_config(project).store("dev").tracking_uri)
    run = client.get_run(first["run_id"])
    assert {"train size", "train r2", "test r2", "deploy flag"} <= set(run.data.metrics)
    assert "predictions.png" in {item.path for item in client.list_artifacts(run.info.run_id)}
    assert run.data.params == {"alpha": "1.0"}  # the optional --alpha was left out: no step was given it
    assert run.data.tags[INPUTS_TAG].count("taxi-trips:1 sha256:") == 1
    log = Path(first["log_path"]).read_text().splitlines()
    started = [line.split()[2].rstrip(":") for line in log if line.startswith("loopline: step ")]
    # evaluate_model comes first in the file; it runs once the steps whose outputs it reads are done
    assert started == ["prep_data", "train_model", "evaluate_model", "register_model"]
    assert git(project, "status", "--porcelain") == ""  # nothing written into the repository


TWO_STEPS = """\
type: pipeline
experiment_name: rows-check
inputs:
  rows: {type: uri_file, path: azureml://datastores/workspaceblobstore/paths/rows.csv}
jobs:
  first:
    type: command
    code: .
    command: python fail.py ${{inputs.rows}}
    environment_variables:
      ROWS_LABEL: first rows
      MLFLOW_TRACKING_URI: azureml://eastus.api.azureml.ms/mlflow/v1.0/workspaces/ws
    inputs:
      rows: ${{parent.inputs.rows}}
    outputs:
      done: ${{parent.outputs.done}}
  second:
    type: command
    code: .
    command: python after.py ${{inputs.done}}
    inputs:
      done: ${{parent.jobs.first.outputs.done}}
outputs:
  done:
"""


def runner(folder: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """``python -m loopline.azureml_pipeline ARGS`` in ``folder``, logging to an MLflow store there."""
    env = {
        "PATH": "/usr/bin:/bin",
        "HOME": str(folder),
        "MLFLOW_TRACKING_URI": f"sqlite:///{folder / 'mlflow.db'}",
    }
    return subprocess.run(
        [sys.executable, "-m", "loopline.azureml_pipeline", *args],
        cwd=folder,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


def runs(folder: Path) -> list[object]:
    client = MlflowClient(f"sqlite:///{folder / 'mlflow.db'}")
    return list(client.search_runs([e.experiment_id for e in client.search_experiments()]))


def test_steps_run_in_the_order_their_data_needs_with_the_inputs_set_gives(tmp_path: Path) -> None:
    pipeline = PROJECT / PIPELINE
    steps = plan(pipeline, PROJECT, {"inputs.trips": "trips.csv"}, tmp_path).steps
    assert [step.name for step in steps] == ["prep_data", "train_model", "evaluate_model", "register_model"]
    prep, train = steps[0], steps[1]
    assert prep.folder == PROJECT / "data-science" / "src"
    assert prep.line == (  # a path --set gives is from the current folder; each output a folder of its own
        f"python prep.py --raw_data {Path('trips.csv').resolve()} "
        f"--train_data {tmp_path}/prep_data/train_data --test_data {tmp_path}/prep_data/test_data "
        "--min_distance 0.1"
    )
    assert train.line.endswith("/train_model/model_output")  # the optional --alpha has no value: left out
    # a step's input that only --set gives (a sweep's parameter, say) fills its optional argument
    given = {"inputs.trips": "trips.csv", "jobs.train_model.inputs.alpha": "0.5", "inputs.min_distance": "2"}
    steps = plan(pipeline, PROJECT, given, tmp_path).steps
    assert steps[1].line.endswith("/train_model/model_output --alpha 0.5")
    assert steps[0].line.endswith("--min_distance 2")


def test_the_first_failing_step_ends_the_pipeline_with_its_exit_code_and_a_failed_run(tmp_path: Path) -> None:
    (tmp_path / "pipeline.yml").write_text(TWO_STEPS)
    (tmp_path / "fail.py").write_text(
        "import os, sys\nprint(os.environ['ROWS_LABEL'], 'from', sys.argv[1], flush=True)\n"
        "print('tracking', os.environ['MLFLOW_TRACKING_URI'], flush=True)\n"
        "if len(open(sys.argv[1]).readlines()) < 3:\n    raise ValueError('too few rows')\nsys.exit(3)\n"
    )
    (tmp_path / "after.py").write_text("open('after-ran', 'w').close()\n")
    unset = runner(tmp_path, "pipeline.yml")
    assert unset.returncode == 2
    assert unset.stderr.strip() == (
        "error: pipeline.yml: input inputs.rows is azureml://datastores/workspaceblobstore/paths/rows.csv, "
        "in Azure ML's storage; give a local copy: --set inputs.rows=PATH"
    )
    log = tmp_path / "train.log"  # as the training's log holds the runner's output: its refusal
    log.write_text(unset.stdout + unset.stderr)
    assert known_cause(log) == ": " + unset.stderr.strip().removeprefix("error: ")
    (tmp_path / "rows.csv").write_text("a\n1\n")
    raised = runner(tmp_path, "pipeline.yml", "--set", "inputs.rows=rows.csv")
    assert raised.returncode == 1
    log.write_text(raised.stdout + raised.stderr)  # why the step failed
    assert known_cause(log) == ": step first failed: ValueError: too few rows"
    (tmp_path / "rows.csv").write_text("a\n1\n2\n3\n")
    failed = runner(tmp_path, "pipeline.yml", "--set", "inputs.rows=rows.csv")
    assert failed.returncode == 3, failed.stderr
    # the step's environment variables, and the path as the step (in its own folder) reads it
    assert f"first rows from {tmp_path / 'rows.csv'}" in failed.stdout
    # but not one that would send its runs elsewhere than the pipeline's
    assert "loopline: step first's MLFLOW_TRACKING_URI is not set: the steps log to the pipeline's run" in (
        failed.stdout
    )
    assert f"tracking sqlite:///{tmp_path / 'mlflow.db'}" in failed.stdout
    assert failed.stderr.splitlines()[-1] == (
        "loopline: step first failed (exit code 3); the steps after it did not run"
    )
    assert not (tmp_path / "after-ran").exists()
    assert [run.info.status for run in runs(tmp_path)] == ["FAILED", "FAILED"]  # type: ignore[attr-defined]
    client = MlflowClient(f"sqlite:///{tmp_path / 'mlflow.db'}")
    experiment = client.get_experiment(runs(tmp_path)[0].info.experiment_id)  # type: ignore[attr-defined]
    assert experiment.name == "rows-check"


SAVE_ONLY = """\
import sys

import mlflow
from mlflow.tracking.fluent import set_experiment
from sklearn.linear_model import LinearRegression

mlflow.set_experiment("my-experiment")
set_experiment("my-other-experiment")
model = LinearRegression().fit([[0.0], [1.0], [2.0]], [1.0, 3.0, 5.0])
mlflow.log_metric("r2", model.score([[0.0], [1.0], [2.0]], [1.0, 3.0, 5.0]))
mlflow.sklearn.save_model(model, sys.argv[1])
"""

COMPONENT = """\
$schema: https://azuremlschemas.azureedge.net/latest/commandComponent.schema.json
name: train
type: command
code: ../../src
inputs:
  epochs: {type: integer, default: 5}
  rate: {type: number, optional: true}
  rows: {type: uri_folder, optional: true}
outputs:
  model_output: {type: mlflow_model}
command: >-
  python train.py ${{outputs.model_output}} --epochs ${{inputs.epochs}} $[[--rate ${{inputs.rate}}]]
  $[[--rows ${{inputs.rows}}]]
"""

WITH_COMPONENT = """\
$schema: https://azuremlschemas.azureedge.net/latest/pipelineJob.schema.json
type: pipeline
jobs:
  train_job:
    type: command
    component: ./components/train.yml
    outputs:
      model_output: ${{parent.outputs.trained_model}}
outputs:
  trained_model: {type: mlflow_model}
"""


def test_a_pipeline_output_holding_a_model_is_logged_to_the_run_when_no_step_logs_one(tmp_path: Path) -> None:
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "train.py").write_text(SAVE_ONLY)
    (tmp_path / "jobs" / "components").mkdir(parents=True)
    (tmp_path / "jobs" / "components" / "train.yml").write_text(
        COMPONENT.replace(" --epochs ${{inputs.epochs}} $[[--rate ${{inputs.rate}}]]", "").replace(
            "\n  $[[--rows ${{inputs.rows}}]]", ""
        )
    )
    (tmp_path / "jobs" / "pipeline.yml").write_text(WITH_COMPONENT)
    done = runner(tmp_path, "jobs/pipeline.yml", "--outputs", "kept")
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "kept" / "train_job" / "model_output" / "MLmodel").is_file()  # --outputs keeps them
    assert "loopline: logging pipeline output trained_model (an MLflow model) to the run" in done.stdout
    assert (
        "loopline: mlflow.set_experiment('my-experiment') ignored: the pipeline's steps log to one run, in "
        "experiment 'Default'"
    ) in done.stderr
    assert "loopline: mlflow.set_experiment('my-other-experiment') ignored" in done.stderr
    (run,) = runs(tmp_path)  # the step's metric, in the pipeline's run
    assert run.data.metrics == {"r2": 1.0}  # type: ignore[attr-defined]
    client = MlflowClient(f"sqlite:///{tmp_path / 'mlflow.db'}")
    assert "trained_model/MLmodel" in {
        f.path for f in client.list_artifacts(run.info.run_id, "trained_model")
    }  # type: ignore[attr-defined]


def test_a_component_file_gives_its_step_the_command_code_and_defaults_and_is_no_job_itself(
    tmp_path: Path,
) -> None:
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "train.py").write_text(SAVE_ONLY)
    (tmp_path / "jobs" / "components").mkdir(parents=True)
    (tmp_path / "jobs" / "components" / "train.yml").write_text(COMPONENT)
    (tmp_path / "jobs" / "pipeline.yml").write_text(WITH_COMPONENT)
    found = find_training_job(tmp_path)  # the component (type: command) is a step, not a second job
    assert found is not None
    assert (found.command, found.file, found.steps) == (
        "python -m loopline.azureml_pipeline jobs/pipeline.yml",
        "jobs/pipeline.yml",
        ("train_job",),
    )
    outputs = tmp_path / "out"
    (step,) = plan(tmp_path / "jobs" / "pipeline.yml", tmp_path, {}, outputs).steps
    assert step.folder == tmp_path / "src"  # the component's code folder, from the component's file
    assert step.line == f"python train.py {outputs / 'train_job' / 'model_output'} --epochs 5"
    given = {"jobs.train_job.inputs.rate": "0.1", "jobs.train_job.inputs.epochs": "2"}
    (step,) = plan(tmp_path / "jobs" / "pipeline.yml", tmp_path, given, outputs).steps
    assert step.line.endswith("--epochs 2 --rate 0.1")
    # a folder the component declares, given from here, reaches the step (in src/) as a whole path
    given = {"jobs.train_job.inputs.rows": "data/rows"}
    (step,) = plan(tmp_path / "jobs" / "pipeline.yml", tmp_path, given, outputs).steps
    assert step.line.endswith(f"--epochs 5 --rows {tmp_path / 'data' / 'rows'}")
    with pytest.raises(UsageError) as unknown:
        plan(tmp_path / "jobs" / "pipeline.yml", tmp_path, {"inputs.epochs": "2"}, outputs)
    assert unknown.value.message == (
        "--set inputs.epochs: jobs/pipeline.yml has no such input; give inputs.NAME (the pipeline's inputs: "
        "none) or jobs.STEP.inputs.NAME"
    )


CIRCLE = """\
  a:
    command: python a.py ${{inputs.x}}
    inputs: {x: "${{parent.jobs.b.outputs.y}}"}
    outputs: {z: null}
  b:
    command: python b.py ${{inputs.x}}
    inputs: {x: "${{parent.jobs.a.outputs.z}}"}
    outputs: {y: null}
"""


@pytest.mark.parametrize(
    ("jobs", "message"),
    [
        pytest.param(
            CIRCLE, "p.yml: jobs a, b read each other's outputs in a circle; no order runs them", id="circle"
        ),
        pytest.param(
            "  a:\n    command: python a.py ${{inputs.x}}\n"
            '    inputs: {x: "${{parent.jobs.gone.outputs.y}}"}\n',
            "p.yml: jobs.a reads an output of jobs.gone, which the pipeline lacks",
            id="unknown step",
        ),
        pytest.param(
            "  a: {type: command, component: 'azureml:train_component:3'}\n",
            "p.yml: jobs.a runs component azureml:train_component:3, registered in Azure ML; loopline runs "
            "components whose files are in the repository (component: ./FILE.yml)",
            id="registered component",
        ),
        pytest.param(
            "  a: {type: parallel, task: {type: run_function}}\n",
            "p.yml: jobs.a is a parallel step; loopline runs command steps (a command, or a component file "
            "with one)",
            id="parallel step",
        ),
        pytest.param(
            "  a:\n    command: python a.py --n ${{inputs.n}}\n",
            "p.yml: jobs.a: its command uses inputs.n, which has no value; give it in the step's inputs or "
            "--set jobs.a.inputs.n=VALUE",
            id="unbound input",
        ),
        pytest.param(
            "  a:\n    command: python a.py --rows ${{inputs.rows}}\n"
            "    inputs: {rows: {type: uri_file, path: ../elsewhere/rows.csv}}\n",
            "p.yml: jobs.a.inputs.rows is ../elsewhere/rows.csv, outside the repository, which the "
            "workflows' checkout lacks; keep the data in the repository, or give it with --set "
            "jobs.a.inputs.rows=PATH",
            id="data outside",
        ),
        pytest.param(
            "  a: {component: ../shared/train.yml}\n",
            "p.yml: jobs.a's component ../shared/train.yml is outside the repository",
            id="component outside",
        ),
        pytest.param(
            "  a: {command: python a.py, inputs: [rows]}\n",
            "p.yml: jobs.a.inputs is not a mapping of NAME: VALUE",
            id="inputs not a mapping",
        ),
        pytest.param(
            "  a: {command: bash run.sh}\n",
            "p.yml: jobs.a: its command is not one Python run loopline can take (bash run.sh); name the "
            "training with --command 'python PATH ARGS'",
            id="not python",
        ),
    ],
)
def test_a_pipeline_loopline_cannot_run_is_refused_naming_the_step(
    tmp_path: Path, jobs: str, message: str
) -> None:
    (tmp_path / "p.yml").write_text("type: pipeline\njobs:\n" + jobs)
    with pytest.raises(UsageError) as refused:
        find_training_job(tmp_path)
    assert refused.value.message == message


def test_two_pipelines_or_a_pipeline_beside_a_command_job_ask_which_is_the_training(tmp_path: Path) -> None:
    step = "type: pipeline\njobs:\n  a: {command: python a.py}\n"
    (tmp_path / "train.yml").write_text(step)
    (tmp_path / "ingest.yml").write_text(step)
    with pytest.raises(UsageError) as several:
        find_training_job(tmp_path)
    assert several.value.message == (
        "several Azure ML job files could be the training (ingest.yml, train.yml); name the training with "
        "--command 'python -m loopline.azureml_pipeline FILE' for a pipeline, or 'python PATH ARGS'"
    )
    # as told: the pipeline --command names is read as init would have read it alone
    (tmp_path / "train.yml").write_text(
        "type: pipeline\ninputs:\n  rows: {type: uri_file, path: azureml:rows@latest}\n  n: 3\n"
        "jobs:\n  a:\n    command: python a.py ${{inputs.rows}} ${{inputs.n}}\n"
        "    inputs: {rows: '${{parent.inputs.rows}}', n: '${{parent.inputs.n}}'}\n"
    )
    named = named_pipeline(tmp_path, "python -m loopline.azureml_pipeline train.yml --set inputs.n=5")
    assert named is not None and (named.file, named.steps) == ("train.yml", ("a",))
    assert named.command == (  # the input only Azure ML reads comes from a data asset
        "python -m loopline.azureml_pipeline train.yml --set inputs.n=5 --set inputs.rows={inputs.rows}"
    )
    assert [(item.name, item.asset) for item in named.inputs] == [("rows", "rows")]
    assert named_pipeline(tmp_path, "python train.py") is None
    with pytest.raises(UsageError) as other:
        named_pipeline(tmp_path, "python -m loopline.azureml_pipeline a.py")
    assert other.value.message == (
        "--command python -m loopline.azureml_pipeline a.py: a.py is not an Azure ML pipeline job file there"
    )
