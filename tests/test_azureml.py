"""The training command of an Azure ML command or sweep job file, as `init --existing` takes it."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from loopline.azureml import find_job_command
from loopline.errors import UsageError
from tests.helpers import tree

SCHEMA = "$schema: https://azuremlschemas.azureedge.net/latest/commandJob.schema.json\n"


def test_the_tutorial_s_job_runs_its_script_from_the_root_with_its_inputs(tmp_path: Path) -> None:
    job = SCHEMA + (
        "code: ../src\n"
        "command: >-\n"
        "  python main.py\n"
        "  --data ${{inputs.credit_data}}\n"
        "  --test_train_ratio ${{inputs.test_train_ratio}}\n"
        "  --registered_model_name ${{ inputs.registered_model_name }}\n"
        "  --config settings.json --out ${{outputs.model}} --verbose ${{inputs.verbose}}\n"
        "inputs:\n"
        "  credit_data:\n    type: uri_file\n    path: ../data/credit card.csv\n"
        "  test_train_ratio: 0.25\n"
        "  registered_model_name: credit_defaults_model\n"
        "  verbose: true\n"
        "environment: azureml:AzureML-sklearn-1.0-ubuntu20.04-py38-cpu@latest\n"
        "compute: azureml:cpu-cluster\n"
    )
    root = tree(tmp_path, {"jobs/train.yml": job, "src/main.py": "", "src/settings.json": "{}"})
    found = find_job_command(root)
    assert found is not None and (found.file, found.code) == ("jobs/train.yml", "src")
    assert found.command == (
        "python src/main.py --data 'data/credit card.csv' --test_train_ratio 0.25 "
        "--registered_model_name credit_defaults_model --config src/settings.json --out outputs/model "
        "--verbose true"
    )


def test_a_command_of_several_lines_keeps_its_one_python_run(tmp_path: Path) -> None:
    job = SCHEMA + (
        "code: .\n"
        "command: |\n"
        '  echo "--iris-csv: ${{inputs.iris_csv}}"\n'
        "  ls .\n"
        "  python hello-iris.py --iris-csv ${{inputs.iris_csv}}\n"
        "inputs:\n  iris_csv:\n    type: uri_file\n    path: https://azuremlexamples.blob.core.windows.net/datasets/iris.csv\n"
    )
    found = find_job_command(tree(tmp_path, {"job.yml": job, "hello-iris.py": ""}))
    assert found is not None and found.code == ""
    assert found.command == (
        "python hello-iris.py --iris-csv https://azuremlexamples.blob.core.windows.net/datasets/iris.csv"
    )


def test_inputs_in_azure_ml_s_storage_become_data_assets_the_training_reads(tmp_path: Path) -> None:
    job = SCHEMA + (
        "code: src\n"
        "command: python main.py --train ${{inputs.credit}} --test ${{inputs.test_rows}} --more "
        "${{inputs.extra}} --again ${{inputs.credit}}\n"
        "inputs:\n"
        "  credit:\n    type: uri_file\n    path: azureml:credit-data:3\n"
        "  test_rows:\n    type: mltable\n    path: azureml:heldout@latest\n"
        "  extra:\n    type: uri_folder\n"
        "    path: azureml://datastores/workspaceblobstore/paths/extra/\n"
    )
    found = find_job_command(tree(tmp_path, {"jobs/job.yml": job, "jobs/src/main.py": ""}))
    assert found is not None
    assert found.command == (
        "python jobs/src/main.py --train {inputs.credit} --test {inputs.test_rows} --more {inputs.extra} "
        "--again {inputs.credit}"
    )
    # each read from a data asset of loopline's: Azure ML's asset's name (its versions are Azure's), or
    # the input's name for a path in a datastore
    assert [(i.name, i.asset, i.azure) for i in found.inputs] == [
        ("credit", "credit-data", "azureml:credit-data:3"),
        ("test_rows", "heldout", "azureml:heldout@latest"),
        ("extra", "extra", "azureml://datastores/workspaceblobstore/paths/extra/"),
    ]


def test_a_repository_without_a_command_job_has_none(tmp_path: Path) -> None:
    other = (
        "$schema: https://azuremlschemas.azureedge.net/latest/managedOnlineEndpoint.schema.json\nname: e\n"
    )
    # a command job in a file of data kept as YAML, larger than any job file: not read
    large = SCHEMA + "command: python main.py\nrows:\n" + "  - [1, 2, 3]\n" * 100_000
    root = tree(
        tmp_path, {"endpoint.yml": other, "ci.yaml": "on: push\n", "broken.yml": "a: [\n", "data.yml": large}
    )
    assert find_job_command(root) is None


@pytest.mark.parametrize(
    ("inputs", "command", "message"),
    [
        (
            "  data:\n    type: uri_folder\n",
            "python main.py --data ${{inputs.data}}",
            "input 'data' has no path; give it one, or name the training with --command",
        ),
        (
            "  data: 1\n",
            "python main.py --data ${{inputs.other}}",
            "names inputs.other, which its inputs do not",
        ),
        ("  data: 1\n", "python main.py --seed ${{search_space.seed}}", "uses ${{search_space.seed}}, which"),
        ("  data: 1\n", "bash run.sh && python main.py", "is not one Python run loopline can take"),
        (
            "  data: 1\n",
            "python -m trainer --data ${{inputs.data}}",
            "runs Python in src/ without naming a script",
        ),
    ],
    ids=["no-path", "unknown-input", "other-placeholder", "shell-script", "module"],
)
def test_what_loopline_cannot_run_is_refused_naming_it(
    tmp_path: Path, inputs: str, command: str, message: str
) -> None:
    job = SCHEMA + f"code: src\ncommand: {command}\ninputs:\n{inputs}"
    root = tree(tmp_path, {"job.yml": job, "src/main.py": ""})
    with pytest.raises(UsageError, match=rf"^job\.yml: .*{re.escape(message)}"):
        find_job_command(root)


def test_two_command_jobs_are_refused_naming_both(tmp_path: Path) -> None:
    job = SCHEMA + "command: python main.py\n"
    root = tree(tmp_path, {"jobs/train.yml": job, "jobs/tune.yml": job})
    with pytest.raises(
        UsageError, match=r"several Azure ML command job files .*jobs/train.yml, jobs/tune.yml"
    ):
        find_job_command(root)


SWEEP = """\
$schema: https://azuremlschemas.azureedge.net/latest/sweepJob.schema.json
type: sweep
trial:
  code: src
  command: >-
    python main.py
    --iris-csv ${{inputs.iris_csv}}
    --C ${{search_space.C}}
    --kernel ${{search_space.kernel}}
    --alpha ${{search_space.alpha}}
    --depth ${{search_space.depth}}
    --trees ${{search_space.trees}}
  environment: azureml:AzureML-sklearn-1.0-ubuntu20.04-py38-cpu@latest
inputs:
  iris_csv:
    type: uri_file
    path: ../data/iris.csv
compute: azureml:cpu-cluster
sampling_algorithm: random
search_space:
  C: {type: uniform, min_value: 0.5, max_value: 0.9}
  kernel: {type: choice, values: [rbf, linear, poly]}
  alpha: {type: loguniform, min_value: -6, max_value: 0}
  depth: {type: randint, upper: 8}
  trees: {type: quniform, min_value: 10, max_value: 50, q: 10}
objective:
  goal: Maximize
  primary_metric: training_f1_score
limits:
  max_total_trials: 12
  max_concurrent_trials: 4
early_termination:
  type: median_stopping
  evaluation_interval: 1
  delay_evaluation: 5
"""


def test_a_sweep_job_gives_the_training_command_and_loopline_s_sweep(tmp_path: Path) -> None:
    import math

    from loopline.config.sections import SweepConfig

    root = tree(tmp_path, {"jobs/sweep.yml": SWEEP, "jobs/src/main.py": "", "data/iris.csv": "x\n"})
    found = find_job_command(root)
    assert found is not None and (found.file, found.sweep_file) == ("jobs/sweep.yml", "jobs/sweep.yml")
    # the one training that is not a trial takes the middle of each range and the first choice
    assert found.command == (
        "python jobs/src/main.py --iris-csv data/iris.csv --C 0.7 --kernel rbf --alpha 0.0497871 --depth 3 "
        "--trees 30"
    )
    assert found.sweep is not None
    sweep = SweepConfig.model_validate(found.sweep)  # what loopline.yaml gets, as loopline reads it
    assert sweep.command == (
        "python jobs/src/main.py --iris-csv data/iris.csv --C {C} --kernel {kernel} --alpha {alpha} "
        "--depth {depth} --trees {trees}"
    )
    assert (sweep.trials, sweep.objective.metric, sweep.objective.direction, sweep.pruner) == (
        12,
        "training_f1_score",
        "maximize",
        "median",
    )
    assert sweep.parallel == 4  # max_concurrent_trials
    space = {name: spec.model_dump(exclude_defaults=True) for name, spec in sweep.parameters.items()}
    assert space == {
        "C": {"low": 0.5, "high": 0.9},
        "kernel": {"choices": ["rbf", "linear", "poly"]},
        "alpha": {"low": math.exp(-6), "high": 1.0, "log": True},  # Azure ML's bounds are exponents
        "depth": {"type": "int", "low": 0, "high": 7},  # randint: 0 up to upper, not included
        "trees": {"type": "int", "low": 10, "high": 50, "step": 10},
    }
    # beside a command job, that one is the training; the sweep job still gives the sweep
    job = SCHEMA + "code: src\ncommand: python main.py --C 1.0\n"
    (root / "jobs" / "train.yml").write_text(job)
    both = find_job_command(root)
    assert both is not None and both.file == "jobs/train.yml" and both.sweep is not None
    assert both.command == "python jobs/src/main.py --C 1.0"


@pytest.mark.parametrize(
    ("space", "message"),
    [
        ("  C: {type: normal, mu: 1, sigma: 0.1}\n", "search_space.C (normal) is not one loopline's sweep"),
        ("  C: {type: choice, values: []}\n", "search_space.C (choice) is not one loopline's sweep"),
        ("  D: {type: uniform, min_value: 0, max_value: 1}\n", "uses ${{search_space.C}}, which loopline"),
    ],
    ids=["normal", "no-choices", "unknown-name"],
)
def test_a_search_space_loopline_cannot_draw_from_is_refused_naming_it(
    tmp_path: Path, space: str, message: str
) -> None:
    job = SCHEMA.replace("commandJob", "sweepJob") + (
        "type: sweep\ntrial:\n  command: python main.py --C ${{search_space.C}}\nsearch_space:\n" + space
    )
    with pytest.raises(UsageError, match=re.escape(message)):
        find_job_command(tree(tmp_path, {"sweep.yml": job, "main.py": ""}))
