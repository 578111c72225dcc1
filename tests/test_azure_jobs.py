"""The training command of an Azure ML command job file, as `init --existing` takes it."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from loopline.azure_jobs import find_job_command
from loopline.errors import UsageError

SCHEMA = "$schema: https://azuremlschemas.azureedge.net/latest/commandJob.schema.json\n"


def tree(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    return root


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


def test_a_repository_without_a_command_job_has_none(tmp_path: Path) -> None:
    other = (
        "$schema: https://azuremlschemas.azureedge.net/latest/managedOnlineEndpoint.schema.json\nname: e\n"
    )
    root = tree(tmp_path, {"endpoint.yml": other, "ci.yaml": "on: push\n", "broken.yml": "a: [\n"})
    assert find_job_command(root) is None


@pytest.mark.parametrize(
    ("inputs", "command", "message"),
    [
        (
            "  data:\n    type: uri_folder\n    path: azureml:credit-data:1\n",
            "python main.py --data ${{inputs.data}}",
            "input 'data' is azureml:credit-data:1, which only Azure ML reads; name the training",
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
    ids=["azure-data-asset", "unknown-input", "other-placeholder", "shell-script", "module"],
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
