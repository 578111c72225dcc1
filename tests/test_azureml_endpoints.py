"""Azure ML endpoint and deployment files, online and batch, as `create --file` takes them, and the prod
endpoint `init --existing` keeps from them."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

import loopline
from loopline.azureml_endpoints import read_batch_deployment, read_deployment, read_endpoint, release_endpoint
from loopline.domain import Tier
from loopline.errors import UsageError
from tests.conftest import ProjectFactory
from tests.helpers import cli, tree

ENDPOINT = "$schema: https://azuremlschemas.azureedge.net/latest/managedOnlineEndpoint.schema.json\n"
DEPLOYMENT = "$schema: https://azuremlschemas.azureedge.net/latest/managedOnlineDeployment.schema.json\n"


def test_an_endpoint_and_a_deployment_are_created_from_their_azure_ml_files(
    trained_project: ProjectFactory, capsys: pytest.CaptureFixture[str]
) -> None:
    project = trained_project("simple")
    files = tree(
        project / "deploy",
        {
            "endpoint.yml": ENDPOINT + "name: credit-endpoint\nauth_mode: key\ndescription: credit scoring\n",
            "blue.yml": DEPLOYMENT
            + "name: blue\nendpoint_name: credit-endpoint\nmodel: azureml:proj-classifier:1\n"
            + "instance_type: Standard_DS3_v2\ninstance_count: 1\n",
        },
    )
    created = cli(
        capsys, "endpoint", "create", "--file", str(files / "endpoint.yml"), "-C", str(project), "--json"
    )
    assert created.exit_code == 0, created.stderr
    assert created.json()["endpoint"]["name"] == "credit-endpoint" and created.json()["keys"]
    assert "not used here (Azure ML's own settings): description" in created.stderr
    deployed = cli(
        capsys, "deployment", "create", "-f", str(files / "blue.yml"), "-C", str(project), "--json"
    )
    assert deployed.exit_code == 0, deployed.stderr
    assert [(d["name"], d["version"], d["traffic"]) for d in deployed.json()["deployments"]] == [
        ("blue", 1, 100)
    ]
    assert "instance_count, instance_type" in deployed.stderr
    # the command line may repeat the file's names, not contradict them
    other = cli(capsys, "deployment", "create", "credit-endpoint", "green", "-f", str(files / "blue.yml"))
    assert other.exit_code == 2 and "deployment green differs from the file's blue" in other.stderr


def test_prod_keeps_the_endpoint_name_of_the_repository_s_one_online_endpoint_file(tmp_path: Path) -> None:
    online = tmp_path / "mlops" / "azureml" / "deploy" / "online"
    tree(online, {"online-endpoint.yml": ENDPOINT + "name: fare-online\nauth_mode: key\n"})
    where = "mlops/azureml/deploy/online/online-endpoint.yml"
    text, notes = release_endpoint(tmp_path, Tier.SIMPLE)
    assert yaml.safe_load(text) == {"release": {"endpoint": "fare-online"}}
    assert notes == [
        f"outer-loop prod releases to endpoint fare-online, the one {where} names (release.endpoint)"
    ]
    assert release_endpoint(tmp_path, Tier.EXPERIMENTATION) == ("", [])  # no prod to release to
    (online / "online-endpoint.yml").write_text(ENDPOINT + "name: Fare_Online\nauth_mode: key\n")
    assert release_endpoint(tmp_path, Tier.FULL) == (
        "",
        [
            f"{where} names endpoint Fare_Online; endpoint name 'Fare_Online' must be lowercase letters, "
            "digits and '-', starting with a letter or digit (63 at most): prod's endpoint keeps its default"
        ],
    )
    tree(tmp_path, {"other.yml": ENDPOINT + "name: other\n"})  # two names: which is prod's is not known
    assert release_endpoint(tmp_path, Tier.FULL) == ("", [])


BATCH_ENDPOINT = "$schema: https://azuremlschemas.azureedge.net/latest/batchEndpoint.schema.json\n"
BATCH_DEPLOYMENT = "$schema: https://azuremlschemas.azureedge.net/latest/batchDeployment.schema.json\n"


def test_a_batch_endpoint_and_deployment_are_created_from_their_azure_ml_files(
    trained_project: ProjectFactory, capsys: pytest.CaptureFixture[str]
) -> None:
    project = trained_project("simple")
    # as Azure's MLOps templates keep them in mlops/azureml/deploy/batch/
    files = tree(
        project / "mlops" / "azureml" / "deploy" / "batch",
        {
            "batch-endpoint.yml": BATCH_ENDPOINT
            + "name: credit-batch\ndescription: credit scoring in batch\nauth_mode: aad_token\n",
            "batch-deployment.yml": BATCH_DEPLOYMENT
            + "name: batch-dp\nendpoint_name: credit-batch\nmodel: azureml:proj-classifier@latest\n"
            + "compute: azureml:batch-cluster\nresources:\n  instance_count: 1\n"
            + "max_concurrency_per_instance: 2\nmini_batch_size: 10\noutput_action: append_row\n"
            + "output_file_name: predictions.csv\nretry_settings:\n  max_retries: 3\n  timeout: 30\n",
        },
    )
    created = cli(
        capsys, "batch-endpoint", "create", "-f", str(files / "batch-endpoint.yml"), "-C", str(project)
    )
    assert created.exit_code == 0, created.stderr
    assert "not used here (Azure ML's own settings): auth_mode, description" in created.stderr
    deployed = cli(
        capsys,
        "batch-deployment",
        "create",
        "--file",
        str(files / "batch-deployment.yml"),
        "-C",
        str(project),
        "--json",
    )
    assert deployed.exit_code == 0, deployed.stderr
    endpoint = deployed.json()
    assert (endpoint["name"], endpoint["workspace"], endpoint["default"]) == (
        "credit-batch",
        "dev",
        "batch-dp",
    )
    assert [(d["name"], d["version"]) for d in endpoint["deployments"]] == [("batch-dp", 1)]
    assert "proj-classifier@latest is version 1 in dev" in deployed.stderr
    assert (
        "not used here (Azure ML's own settings): compute, max_concurrency_per_instance, mini_batch_size, "
        "resources, retry_settings"
    ) in " ".join(deployed.stderr.split())  # as the terminal's width wraps it
    # append_row's one file of predictions, which the jobs write as Azure ML's do
    assert endpoint["deployments"][0]["output_file"] == "predictions.csv"
    # a file of the other kind is refused, naming the command that takes it; nothing is created
    online = cli(
        capsys, "deployment", "create", "-f", str(files / "batch-deployment.yml"), "-C", str(project)
    )
    assert online.exit_code == 2
    assert online.stderr.splitlines()[-1] == (
        f"error: {files / 'batch-deployment.yml'} is a batch deployment file (its $schema); create it with "
        f"`loopline batch-deployment create --file {files / 'batch-deployment.yml'}`"
    )
    (files / "online.yml").write_text(ENDPOINT + "name: credit-online\nauth_mode: key\n")
    batch = cli(capsys, "batch-endpoint", "create", "-f", str(files / "online.yml"), "-C", str(project))
    assert batch.exit_code == 2 and "is an online endpoint file (its $schema)" in batch.stderr
    assert [e.name for e in loopline.list_batch_endpoints(project=project)] == ["credit-batch"]
    assert loopline.list_endpoints(project=project) == []


def test_a_deployment_file_s_latest_model_is_the_newest_version_of_the_endpoint_s_workspace(
    a_live_b_registered: tuple[Path, str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    # Azure ML's MLflow samples deploy azureml:NAME@latest, which Azure ML resolves when it deploys
    project, _a, b = a_live_b_registered  # dev holds v1 (A) and v2 (B); prod holds A alone
    files = tree(
        project / "deploy",
        {
            "endpoint.yml": ENDPOINT + "name: credit\nauth_mode: key\n",
            "blue.yml": DEPLOYMENT
            + "name: blue\nendpoint_name: credit\nmodel: azureml:proj-classifier@latest\n",
        },
    )
    for workspace, version in (("dev", 2), ("prod", 1)):
        made = cli(
            capsys,
            "endpoint",
            "create",
            "-f",
            str(files / "endpoint.yml"),
            "-w",
            workspace,
            "-C",
            str(project),
        )
        assert made.exit_code == 0, made.stderr
        deployed = cli(
            capsys,
            "deployment",
            "create",
            "-f",
            str(files / "blue.yml"),
            "-w",
            workspace,
            "-C",
            str(project),
            "--no-check",  # which version is the question here; loading it is tested with the files above
            "--json",
        )
        assert deployed.exit_code == 0, deployed.stderr
        assert [(d["name"], d["version"]) for d in deployed.json()["deployments"]] == [("blue", version)]
        assert f"proj-classifier@latest is version {version} in {workspace}" in deployed.stderr
    assert (
        next(
            d for d in loopline.get_endpoint("credit", workspace="dev", project=project).deployments
        ).git_commit
        == b
    )
    # a version on the command line wins over the file's @latest
    green = (files / "blue.yml").read_text().replace("name: blue", "name: green")
    (files / "green.yml").write_text(green)
    pinned = cli(
        capsys,
        "deployment",
        "create",
        "-f",
        str(files / "green.yml"),
        "--version",
        "1",
        "-w",
        "dev",
        "-C",
        str(project),
        "--no-check",
        "--json",
    )
    assert pinned.exit_code == 0, pinned.stderr
    assert {d["name"]: d["version"] for d in pinned.json()["deployments"]} == {"blue": 2, "green": 1}
    assert "@latest is version" not in pinned.stderr
    # a model with no version in the workspace has no latest: said, and nothing deployed
    (files / "other.yml").write_text(
        DEPLOYMENT + "name: red\nendpoint_name: credit\nmodel: azureml:unknown@latest\n"
    )
    missing = cli(
        capsys, "deployment", "create", "-f", str(files / "other.yml"), "-w", "dev", "-C", str(project)
    )
    assert missing.exit_code != 0 and "model 'unknown' has no version in dev yet" in missing.stderr
    assert len(loopline.get_endpoint("credit", workspace="dev", project=project).deployments) == 2
    # without a file, --latest says the same on the command line, for an online or a batch deployment
    flags = ["-w", "dev", "-C", str(project), "--no-check", "--json"]
    newest = cli(capsys, "deployment", "create", "credit", "yellow", "--latest", *flags)
    assert newest.exit_code == 0, newest.stderr
    assert {d["name"]: d["version"] for d in newest.json()["deployments"]}["yellow"] == 2
    assert f"the newest proj-classifier is version 2 in dev ({b[:7]})" in newest.stderr
    both = cli(capsys, "deployment", "create", "credit", "cyan", "--latest", "--version", "1", *flags)
    assert both.exit_code == 2
    assert "exactly one of --version N, --commit SHA or --latest" in both.stderr
    assert cli(capsys, "batch-endpoint", "create", "nightly", "-C", str(project)).exit_code == 0
    batch = cli(capsys, "batch-deployment", "create", "nightly", "blue", "--latest", "-C", str(project))
    assert batch.exit_code == 0, batch.stderr
    assert f"the newest proj-classifier is version 2 in dev ({b[:7]})" in batch.stderr


@pytest.mark.parametrize(
    ("command", "body", "message"),
    [
        (  # Azure ML's managed endpoint sample: a model folder served by a score.py
            "deployment",
            "model:\n  path: ../../model-1/model/\n"
            "code_configuration:\n  code: ../../model-1/onlinescoring/\n  scoring_script: score.py\n",
            "code_configuration: a scoring script (score.py) is Azure ML's",
        ),
        (  # its no-code MLflow deployment sample: an MLflow model folder by path
            "deployment",
            "model:\n  name: mir-sample-sklearn-ncd-model\n  version: 2\n  path: sklearn-diabetes/model\n"
            "  type: mlflow_model\n",
            "model.path sklearn-diabetes/model is a folder of files; loopline deploys the versions",
        ),
        (  # a batch deployment scored by a batch_driver.py
            "batch-deployment",
            "model: azureml:proj-classifier:1\n"
            "code_configuration:\n  code: src\n  scoring_script: batch_driver.py\n",
            "code_configuration: a scoring script (batch_driver.py) is Azure ML's way to score with a model "
            "that is not an MLflow model",
        ),
        (
            "batch-deployment",
            "type: pipeline\ncomponent: ./components/score.yml\n",
            "a pipeline component deployment runs an Azure ML pipeline; loopline's batch deployments score a "
            "registered model",
        ),
    ],
    ids=["score-py", "model-folder", "batch-driver", "pipeline-component"],
)
def test_azure_ml_s_sample_deployments_are_refused_saying_what_to_do(
    command: str, body: str, message: str, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    schema = DEPLOYMENT if command == "deployment" else BATCH_DEPLOYMENT
    (tmp_path / "blue.yml").write_text(schema + "name: blue\nendpoint_name: my-endpoint\n" + body)
    refused = cli(capsys, command, "create", "-f", str(tmp_path / "blue.yml"), "-C", str(tmp_path))
    assert refused.exit_code == 2 and message in refused.stderr, refused.stderr
    assert "Traceback" not in refused.stderr


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (ENDPOINT + "name: e\nauth_mode: aml_token\n", "auth_mode aml_token is Azure ML's own token"),
        (ENDPOINT + "auth_mode: key\n", "'name' is missing"),
        ("name: [\n", "is not valid YAML (line 2)"),
    ],
    ids=["aml-token", "no-name", "not-yaml"],
)
def test_an_endpoint_file_loopline_cannot_follow_is_refused(tmp_path: Path, text: str, message: str) -> None:
    (tmp_path / "endpoint.yml").write_text(text)
    with pytest.raises(UsageError, match=re.escape(message)):
        read_endpoint(tmp_path / "endpoint.yml")


@pytest.mark.parametrize(
    ("model", "expected"),
    [
        ("azureml:churn:3", ("churn", 3)),
        ("azureml:churn@latest", ("churn", None)),  # found.latest: resolved when it is deployed
        ("{name: churn, version: 2}", ("churn", 2)),
        ("{name: churn}", ("churn", None)),
    ],
)
def test_a_deployment_file_names_a_registered_model(
    tmp_path: Path, model: str, expected: tuple[str, int | None]
) -> None:
    (tmp_path / "d.yml").write_text(DEPLOYMENT + f"name: blue\nendpoint_name: e\nmodel: {model}\n")
    found = read_deployment(tmp_path / "d.yml")
    assert (found.endpoint, found.name, found.model, found.version) == ("e", "blue", *expected)
    (tmp_path / "d.yml").write_text(
        DEPLOYMENT + "name: blue\nendpoint_name: e\nmodel: azureml://registries/x\n"
    )
    with pytest.raises(UsageError, match="is not a model loopline registered"):
        read_deployment(tmp_path / "d.yml")


@pytest.mark.parametrize(
    ("settings", "output_file"),
    [
        ("", "predictions.csv"),  # append_row, Azure ML's default, to its default file
        ("output_action: append_row\noutput_file_name: scores.csv\n", "scores.csv"),
        ("output_action: summary_only\n", None),
    ],
)
def test_a_batch_deployment_file_s_output_action_gives_the_jobs_output_file(
    tmp_path: Path, settings: str, output_file: str | None
) -> None:
    path = tmp_path / "batch-deployment.yml"
    path.write_text(BATCH_DEPLOYMENT + "name: dp\nendpoint_name: e\nmodel: azureml:m:1\n" + settings)
    described = read_batch_deployment(path)
    assert described.output_file == output_file and "output_action" not in described.unused
    path.write_text(BATCH_DEPLOYMENT + "name: dp\nendpoint_name: e\noutput_action: append_rows\n")
    with pytest.raises(UsageError, match="output_action append_rows is neither append_row nor summary_only"):
        read_batch_deployment(path)
