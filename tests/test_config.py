"""loopline.yaml: validation names the key and its line; LOOPLINE_ variables override it."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from loopline.config import find_project_root, load_config, redact
from loopline.domain import Tier
from loopline.errors import ConfigError, ProjectNotFound

VALID = """\
project: shop
tier: full
model:
  name: shop-classifier
"""


def write(tmp_path: Path, text: str) -> Path:
    (tmp_path / "loopline.yaml").write_text(text)
    return tmp_path


def test_defaults_put_every_store_under_dot_loopline(tmp_path: Path) -> None:
    settings = load_config(write(tmp_path, VALID))
    assert settings.tier is Tier.FULL
    assert settings.workspaces == ("dev", "test", "prod")
    dev = settings.store("dev")
    assert dev.tracking_uri == f"sqlite:///{tmp_path}/.loopline/workspaces/dev/mlflow.db"
    assert dev.registry_uri == dev.tracking_uri
    assert settings.store("shared").model_store == dev.model_store == f"{tmp_path}/.loopline/models"
    assert settings.datastore("inbox") == f"{tmp_path}/.loopline/datastores/inbox"
    assert settings.state_url == f"sqlite:///{tmp_path}/.loopline/state.db"


def test_relative_locations_resolve_against_the_project_root(tmp_path: Path) -> None:
    prod = "  prod:\n    tracking_uri: sqlite:///stores/prod.db\n    artifact_location: art/prod\n"
    text = VALID + "workspaces:\n" + prod
    settings = load_config(write(tmp_path, text))
    assert settings.store("prod").tracking_uri == f"sqlite:///{tmp_path}/stores/prod.db"
    assert settings.store("prod").artifact_location == f"{tmp_path}/art/prod"


def test_environment_overrides_a_nested_key(tmp_path: Path) -> None:
    env = {
        "LOOPLINE_WORKSPACES__PROD__TRACKING_URI": "postgresql://u:secret@db/prod",
        "LOOPLINE_TIER": "simple",
    }
    settings = load_config(write(tmp_path, VALID), environ=env)
    assert settings.tier is Tier.SIMPLE
    assert settings.store("prod").tracking_uri == "postgresql://u:secret@db/prod"
    assert settings.store("prod").registry_uri == "postgresql://u:secret@db/prod"


def test_misspelled_key_names_the_key_its_line_and_the_likely_fix(tmp_path: Path) -> None:
    write(tmp_path, VALID + "workspces:\n  dev: {}\n")
    with pytest.raises(ConfigError) as error:
        load_config(tmp_path)
    assert error.value.message == "loopline.yaml line 5: unknown key 'workspces'; did you mean 'workspaces'?"
    assert error.value.exit_code == 2


def test_misspelled_nested_key_is_named_with_its_path(tmp_path: Path) -> None:
    write(tmp_path, VALID + "workspaces:\n  dev:\n    trackng_uri: sqlite:///x.db\n")
    with pytest.raises(
        ConfigError, match=r"line 7: unknown key 'workspaces.dev.trackng_uri'; did you mean 'tracking_uri'"
    ):
        load_config(tmp_path)


def test_unknown_tier_lists_the_tiers(tmp_path: Path) -> None:
    write(tmp_path, VALID.replace("tier: full", "tier: ful"))
    with pytest.raises(ConfigError) as error:
        load_config(tmp_path)
    assert error.value.message.startswith("loopline.yaml line 2: 'tier' cannot be 'ful'; use one of")
    assert "'experimentation', 'simple' or 'full'" in error.value.message


def test_unknown_workspace_name_is_refused(tmp_path: Path) -> None:
    write(tmp_path, VALID + "workspaces:\n  staging: {}\n")
    with pytest.raises(
        ConfigError,
        match="line 6: unknown workspace 'staging' under 'workspaces'; use one of dev, test, prod, shared",
    ):
        load_config(tmp_path)


def test_unreadable_yaml_names_line_and_column(tmp_path: Path) -> None:
    write(tmp_path, "project: shop\ntier: [full\nmodel:\n  name: x\n")
    with pytest.raises(ConfigError, match=r"^loopline.yaml line \d+, column \d+: not valid YAML"):
        load_config(tmp_path)


def test_a_key_written_twice_is_refused_naming_both_lines(tmp_path: Path) -> None:
    """YAML would keep the last of the two and drop the other silently: a section appended below the one
    the file has (as a snippet of the docs is pasted) would undo an edit without a word."""
    appended = "datastores:\n  inbox: {url: /data/inbox}\n"
    write(tmp_path, VALID + appended + "training:\n  command: python fit.py\n" + appended)
    with pytest.raises(ConfigError) as twice:
        load_config(tmp_path)
    assert twice.value.message == (
        "loopline.yaml line 9, column 1: 'datastores' is a key here already (line 5), and "
        "YAML would keep only the last; merge the two into one"
    )
    write(tmp_path, VALID + "workspaces:\n  prod: {model_store: a}\n  prod: {model_store: b}\n")
    with pytest.raises(ConfigError, match=r"line \d+, column 3: 'prod' is a key here already"):
        load_config(tmp_path)
    write(tmp_path, VALID + "base: &base {model_store: a}\nworkspaces:\n  prod: {<<: *base, <<: *base}\n")
    with pytest.raises(ConfigError, match="unknown key 'base'"):  # merge keys are YAML's own, not repeats
        load_config(tmp_path)


def test_top_level_must_be_a_mapping(tmp_path: Path) -> None:
    write(tmp_path, "- project\n")
    with pytest.raises(ConfigError, match="top level must be a mapping"):
        load_config(tmp_path)


def test_missing_required_key_is_named(tmp_path: Path) -> None:
    write(tmp_path, "project: shop\ntier: simple\n")
    with pytest.raises(ConfigError, match="required key 'model' is missing"):
        load_config(tmp_path)


def test_environment_variable_with_unknown_key_is_named(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as error:
        load_config(write(tmp_path, VALID), environ={"LOOPLINE_WORKSPACES__DEV__TRACKNG_URI": "x"})
    assert error.value.message.startswith(
        "environment variable LOOPLINE_WORKSPACES__DEV__TRACKNG_URI: unknown key"
    )
    # a misspelt section (workspace for workspaces) is the variable's too, not loopline.yaml's
    with pytest.raises(ConfigError) as error:
        load_config(write(tmp_path, VALID), environ={"LOOPLINE_WORKSPACE__DEV__TRACKING_URI": "x"})
    assert error.value.message == (
        "environment variable LOOPLINE_WORKSPACE__DEV__TRACKING_URI: unknown key 'workspace'; "
        "did you mean 'workspaces'?"
    )


def test_reserved_variables_are_not_configuration(tmp_path: Path) -> None:
    settings = load_config(
        write(tmp_path, VALID), environ={"LOOPLINE_USER": "alice", "LOOPLINE_CACHE_DIR": "/x"}
    )
    assert settings.config.project == "shop"


def test_two_workspaces_on_one_tracking_store_are_refused(tmp_path: Path) -> None:
    text = (
        VALID
        + "workspaces:\n  dev:\n    tracking_uri: sqlite:///one.db\n  prod:\n    tracking_uri: sqlite:///one.db\n"
    )
    with pytest.raises(
        ConfigError, match=r"workspaces\.prod\.tracking_uri is the same store as workspaces\.dev"
    ):
        load_config(write(tmp_path, text))


def test_a_workspace_on_an_mlflow_server_keeps_its_model_files_in_an_object_store(tmp_path: Path) -> None:
    """An MLflow server refuses a version whose files are in a local folder (its other clients could not
    read them): said when the configuration is read, not after a training, naming the key to set."""
    server = {"LOOPLINE_WORKSPACES__DEV__TRACKING_URI": "https://mlflow.example.com"}
    with pytest.raises(
        ConfigError, match=r"workspaces\.dev\.model_store: dev's registry is an MLflow server"
    ):
        load_config(write(tmp_path, VALID), environ=server)
    on_blob = {**server, "LOOPLINE_WORKSPACES__DEV__MODEL_STORE": "az://models/shop"}
    assert load_config(write(tmp_path, VALID), environ=on_blob).store("dev").model_store == "az://models/shop"
    # A server for tracking with a registry in a database keeps local files working.
    database = {**server, "LOOPLINE_WORKSPACES__DEV__REGISTRY_URI": "sqlite:///registry.db"}
    assert load_config(write(tmp_path, VALID), environ=database).store("dev").model_store.endswith("models")


def test_a_tracking_server_keeps_runs_artifacts_where_it_is_set_up_to_unless_told(tmp_path: Path) -> None:
    """Not in a folder of the machine that trained, where no other machine finds them."""
    server = {
        "LOOPLINE_WORKSPACES__DEV__TRACKING_URI": "https://mlflow.example.com",
        "LOOPLINE_WORKSPACES__DEV__MODEL_STORE": "az://models/shop",
    }
    settings = load_config(write(tmp_path, VALID), environ=server)
    assert settings.store("dev").artifact_location is None
    assert settings.store("prod").artifact_location == f"{tmp_path}/.loopline/workspaces/prod/artifacts"
    told = {**server, "LOOPLINE_WORKSPACES__DEV__ARTIFACT_LOCATION": "s3://runs/dev"}
    assert load_config(write(tmp_path, VALID), environ=told).store("dev").artifact_location == "s3://runs/dev"


def test_bad_model_name_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"line 4: 'model.name': use letters, digits"):
        load_config(write(tmp_path, VALID.replace("shop-classifier", "'shop classifier!'")))


@pytest.mark.parametrize("value", [".inf", ".nan", "-.inf"])
def test_a_number_that_is_no_finite_number_is_refused_naming_its_line(tmp_path: Path, value: str) -> None:
    # `.inf` reads as "no limit" to some, but a canary step watched without end holds the release forever
    text = VALID + f"release:\n  watch_seconds: {value}\n"
    with pytest.raises(
        ConfigError, match=r"line 6: 'release.watch_seconds': Input should be a finite number"
    ):
        load_config(write(tmp_path, text))
    with pytest.raises(
        ConfigError,
        match=r"LOOPLINE_TRAINING__TIMEOUT_SECONDS: .training.timeout_seconds.: Input should be a finite",
    ):
        load_config(write(tmp_path, VALID), environ={"LOOPLINE_TRAINING__TIMEOUT_SECONDS": "inf"})


def test_project_root_is_found_from_a_subfolder(tmp_path: Path) -> None:
    write(tmp_path, VALID)
    (tmp_path / "a" / "b").mkdir(parents=True)
    assert find_project_root(tmp_path / "a" / "b") == tmp_path


def test_no_project_gives_a_hint(tmp_path: Path) -> None:
    with pytest.raises(ProjectNotFound, match="run `loopline init --existing` in a repository that trains"):
        find_project_root(tmp_path)


def test_from_the_top_of_a_repository_the_project_in_one_of_its_folders_is_named(tmp_path: Path) -> None:
    """The project lives in ml/churn of the repository, and the command ran at the repository's top."""
    (tmp_path / ".venv" / "lib").mkdir(parents=True)
    (tmp_path / ".venv" / "lib" / "loopline.yaml").write_text("tier: simple\n")  # hidden folders are not read
    (tmp_path / "ml" / "churn").mkdir(parents=True)
    write(tmp_path / "ml" / "churn", VALID)
    with pytest.raises(ProjectNotFound) as one:
        find_project_root(tmp_path)
    assert one.value.message == (
        f"no loopline.yaml in {tmp_path} or any folder above it; the project in ml/churn/ has one: "
        "cd ml/churn (or pass -C ml/churn)"
    )
    (tmp_path / "fraud").mkdir()
    write(tmp_path / "fraud", VALID)
    with pytest.raises(ProjectNotFound, match=r"projects below it: fraud/, ml/churn/: cd into one"):
        find_project_root(tmp_path)


def test_redact_hides_passwords() -> None:
    assert redact("postgresql://me:hunter2@db:5432/x") == "postgresql://me:***@db:5432/x"
    assert redact("sqlite:////tmp/x.db") == "sqlite:////tmp/x.db"
    # a password written with characters a URL reserves: hidden whole, not up to the first of them
    assert redact("postgresql://me:p@ss#w0rd@db/x") == "postgresql://me:***@db/x"
    assert (
        redact("postgresql://me:s3cret/x@db/x?sslmode=require") == "postgresql://me:***@db/x?sslmode=require"
    )
    # what only looks like one: a container@account, a user alone, an @ in a query
    for kept in ("wasbs://c@acct.blob.core.windows.net/m", "postgresql://me@db/x", "http://h:80/p?to=a@b"):
        assert redact(kept) == kept


def test_a_database_password_holding_an_unencoded_at_sign_is_refused_without_repeating_it(
    tmp_path: Path,
) -> None:
    # SQLAlchemy takes the address from the first '@': "failed to resolve host 'ss#w0rd@db'", and the
    # message showed the rest of the password
    project = write(tmp_path, VALID)
    for key in ("LOOPLINE_STATE__URL", "LOOPLINE_WORKSPACES__DEV__TRACKING_URI"):
        with pytest.raises(ConfigError) as refused:
            load_config(project, environ={key: "postgresql://me:p@ss#w0rd@db:5432/x"})
        assert "holds '@', which a URL reserves: write it URL-encoded ('@' as %40" in refused.value.message
        assert key in refused.value.message and "ss#w0rd" not in refused.value.message
    settings = load_config(project, environ={"LOOPLINE_STATE__URL": "postgresql://me:p%40ss%23w0rd@db/x"})
    assert settings.config.state.url == "postgresql://me:p%40ss%23w0rd@db/x"


@pytest.mark.parametrize("path", ["loopline", "/loopline/", "/a b", "/x?y=1"])
def test_a_root_path_that_is_not_a_path_is_refused_with_an_example(tmp_path: Path, path: str) -> None:
    text = VALID + f"control_plane:\n  root_path: {path!r}\n"
    with pytest.raises(ConfigError) as error:
        load_config(write(tmp_path, text))
    assert "control_plane.root_path" in error.value.message
    assert "is not a path such as /loopline (a leading /, none at the end)" in error.value.message
    assert load_config(write(tmp_path, VALID + "control_plane:\n  root_path: /tools/loopline\n"))


@pytest.mark.parametrize(
    ("validation", "message"),
    [
        (
            "  task: regression\n",
            "line 5: 'validation': a regression validation measures rmse, mae, r2, and thresholds defaults "
            "to a classifier's (accuracy): give the task's, for example thresholds: {r2: {min: 0.5}}",
        ),
        (
            "  task: regression\n  thresholds:\n    r2: {min: 0.5}\n    accuracy: {min: 0.9}\n",
            "line 5: 'validation': a regression validation measures rmse, mae, r2, not accuracy: bound those "
            "in thresholds, or measure others with validation.command",
        ),
        (
            "  task: regression\n  thresholds:\n    r2: {min: 0.5}\n  challenger_metric: accuracy\n",
            "a regression validation measures rmse, mae, r2, not accuracy (challenger_metric): compare on "
            "one of those, or measure others with validation.command",
        ),
        (
            "  thresholds:\n    auc: {min: 0.8}\n",
            "a classification validation measures accuracy, precision, recall, f1, roc_auc, log_loss, not "
            "auc",
        ),
        (  # of several label columns, each measure of each is named after it: heat is no column
            "  task: regression\n  label: [heating, cooling]\n  thresholds:\n    mae_heat: {max: 2}\n",
            "a regression validation measures rmse, mae, r2, rmse_heating, mae_heating, r2_heating, "
            "rmse_cooling, mae_cooling, r2_cooling, not mae_heat",
        ),
        (
            "  task: regression\n  label: [heating, heating]\n  thresholds: {}\n",
            "line 7: 'validation.label': a list of label columns names each column once, at least one: one "
            "for each value the model answers a row, in their order",
        ),
        ("  task: regression\n  label: []\n  thresholds: {}\n", "a list of label columns names each column"),
    ],
)
def test_validation_metrics_outer_loop_test_does_not_measure_are_refused_when_the_file_is_read(
    tmp_path: Path, validation: str, message: str
) -> None:
    # Found otherwise after the test deployments were made, or (the challenger metric, which only a
    # champion is compared on) at the second release.
    write(tmp_path, VALID + "validation:\n" + validation)
    with pytest.raises(ConfigError, match=re.escape(message)):
        load_config(tmp_path)


@pytest.mark.parametrize(
    ("validation", "compared_on"),
    [
        ("", "accuracy"),
        ("  task: regression\n  thresholds:\n    r2: {min: 0.5}\n    rmse: {max: 9}\n", "r2"),
        ("  task: regression\n  thresholds: {}\n", "rmse"),
        ("  thresholds:\n    f1: {min: 0.8}\n  challenger_metric: recall\n", "recall"),
        ("  command: python validate.py\n  thresholds:\n    mape: {max: 0.2}\n", "mape"),
        ("  task: regression\n  label: [a, b]\n  thresholds:\n    r2_b: {min: 0.5}\n", "r2_b"),
    ],
)
def test_the_challenger_is_compared_on_the_metric_named_else_the_first_threshold_s(
    tmp_path: Path, validation: str, compared_on: str
) -> None:
    text = VALID + ("validation:\n" + validation if validation else "")
    assert load_config(write(tmp_path, text)).config.validation.compared_on == compared_on
