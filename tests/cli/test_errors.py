"""The CLI's error boundary: one line, no traceback, distinct exit codes, clean --json."""

from __future__ import annotations

import json
import socket
from pathlib import Path

import pytest

from tests.conftest import ProjectFactory
from tests.helpers import cli, cli_process


def test_bad_configuration_is_one_line_and_exit_2(
    new_project: ProjectFactory, capsys: pytest.CaptureFixture[str]
) -> None:
    project = new_project("simple", up=False, commit=False)
    text = (project / "loopline.yaml").read_text().replace("tier: simple", "tier: medium")
    (project / "loopline.yaml").write_text(text)
    result = cli(capsys, "status", "-C", str(project))
    assert result.exit_code == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith("error: loopline.yaml line 4: 'tier' cannot be 'medium'")
    assert result.stdout == ""


def test_unreadable_yaml_names_the_line(
    new_project: ProjectFactory, capsys: pytest.CaptureFixture[str]
) -> None:
    project = new_project("simple", up=False, commit=False)
    (project / "loopline.yaml").write_text("project: p\ntier: simple\nmodel:\n  name: [x\n")
    result = cli(capsys, "status", "-C", str(project))
    assert result.exit_code == 2
    assert "loopline.yaml line 5, column 1: not valid YAML" in result.stderr


def test_misspelled_key_exit_2_names_it(
    new_project: ProjectFactory, capsys: pytest.CaptureFixture[str]
) -> None:
    project = new_project("simple", up=False, commit=False)
    with (project / "loopline.yaml").open("a") as handle:
        handle.write("trainng:\n  command: python train.py\n")
    result = cli(capsys, "up", "-C", str(project))
    assert result.exit_code == 2
    assert "unknown key 'trainng'; did you mean 'training'?" in result.stderr
    assert not (project / ".loopline").exists()


def test_json_errors_are_one_document_on_stdout(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    result = cli(capsys, "status", "--json", "-C", str(tmp_path))
    assert result.exit_code == 2
    document = result.json()
    assert document["error"]["error_code"] == "PROJECT_NOT_FOUND"
    assert "loopline init" in document["error"]["message"]


def test_usage_errors_exit_2_and_point_to_help(capsys: pytest.CaptureFixture[str]) -> None:
    result = cli(capsys, "init", "x", "--tier", "huge")
    assert result.exit_code == 2
    assert result.stderr.strip().endswith("(see `loopline init --help`)")
    assert "Traceback" not in result.stderr
    # an option without its value is found before the command runs: the help named is still the command's
    for words, where in (
        (["rollback", "--commit"], "rollback"),
        (["outer-loop", "prod", "--canary"], "outer-loop prod"),
    ):
        missing = cli(capsys, *words)
        assert (missing.exit_code, missing.stderr.strip()) == (
            2,
            f"error: Option '{words[-1]}' requires an argument. (see `loopline {where} --help`)",
        )


def test_a_command_written_out_or_cut_short_is_shown_the_one_meant(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """`outer-loop production` (the alias is production) and `endpoint inv`: too unlike for a close match."""
    for words, meant in ((["outer-loop", "production"], "prod"), (["endpoint", "inv"], "invoke")):
        result = cli(capsys, *words)
        assert result.exit_code == 2
        assert f"No such command '{words[-1]}'. Did you mean '{meant}'?" in result.stderr
    assert "Did you mean" not in cli(capsys, "endpoint", "zzz").stderr


def test_commands_typed_apart_or_together_are_shown_as_they_are_written(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """`batch endpoint create` (as `batch job list` is written) was offered no command at all, and
    `batch-job list` the names nearest to `batch-job`: batch and batch-endpoint."""
    for words, meant in (
        (["batch", "endpoint", "create", "scorer", "--workspace", "dev"], "batch-endpoint create"),
        (["batch-job", "list"], "batch job list"),
        (["deployment-create", "churn", "blue"], "deployment create"),
    ):
        result = cli(capsys, *words)
        assert result.exit_code == 2
        typed = words[1] if words[0] == "batch" else words[0]
        assert f"No such command '{typed}'. Did you mean `loopline {meant}`? (see" in result.stderr
    # a name close to a command, not the words of one: the nearest names, as before
    assert "Did you mean 'endpoint', 'batch-endpoint'?" in cli(capsys, "endpoints", "list").stderr


@pytest.mark.parametrize("words", [[], ["outer-loop"], ["endpoint"]])
def test_a_group_without_its_command_shows_its_help_and_no_empty_error(
    words: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    result = cli(capsys, *words)
    assert result.exit_code == 2
    assert ("Start" if not words else "Commands") in result.stdout  # the top level's panels, or a group's
    assert result.stderr == ""


def test_a_commit_version_or_path_given_as_an_argument_is_shown_how_to_name_it(
    capsys: pytest.CaptureFixture[str],
) -> None:
    result = cli(capsys, "rollback", "3f2a9c1")
    assert result.exit_code == 2
    assert result.stderr.strip() == (
        "error: Got unexpected extra argument(s) (3f2a9c1); a commit is named with --commit: "
        "`loopline rollback --commit 3f2a9c1` (see `loopline rollback --help`)"
    )
    # a version number, and a path where an option names it: the whole line as it should have been typed
    version = cli(capsys, "deployment", "create", "churn", "blue", "1", "--traffic", "10")
    assert version.stderr.strip() == (
        "error: Got unexpected extra argument(s) (1); a version is named with --version: "
        "`loopline deployment create churn blue --version 1 --traffic 10` "
        "(see `loopline deployment create --help`)"
    )
    path = cli(capsys, "data", "register", "held", "inbox://held out.csv")
    assert path.stderr.strip() == (
        "error: Missing option '--path'; give inbox://held out.csv with it: "
        "`loopline data register held --path 'inbox://held out.csv'` (see `loopline data register --help`)"
    )
    assert cli(capsys, "data", "register", "held").stderr.strip() == (
        "error: Missing option '--path'. (see `loopline data register --help`)"
    )
    several = cli(capsys, "outer-loop", "prod", "HEAD", "v2")
    assert "--commit:" not in several.stderr  # two words are not one commit
    elsewhere = cli(capsys, "status", "prod")  # status takes no commit
    assert (
        elsewhere.stderr.strip()
        == "error: Got unexpected extra argument(s) (prod) (see `loopline status --help`)"
    )


def test_dash_c_before_the_command_runs_it_in_that_folder_as_git_does(
    new_project: ProjectFactory, tmp_path: Path
) -> None:
    project = new_project("simple", up=False)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    status = cli_process("-C", str(tmp_path), "-C", project.name, "status", "--json", cwd=elsewhere)
    assert status.exit_code == 0 and json.loads(status.stdout)["root"] == str(project)
    made = cli_process("--traceback", "-C", str(tmp_path), "init", "other", "--tier", "simple", cwd=elsewhere)
    assert made.exit_code == 0, made.stderr
    assert (tmp_path / "other" / "loopline.yaml").is_file() and not (elsewhere / "other").exists()
    for args, said in (
        (
            ["-C", str(tmp_path / "nope"), "status"],
            f"error: -C {tmp_path / 'nope'}: no such file or directory",
        ),
        (["-C"], "error: -C needs a folder: loopline -C PATH COMMAND"),
    ):
        refused = cli_process(*args, cwd=elsewhere)
        assert refused.exit_code == 2 and refused.stderr.strip().startswith(said), refused.stderr


def test_commands_before_up_say_to_run_up(
    new_project: ProjectFactory, capsys: pytest.CaptureFixture[str]
) -> None:
    project = new_project("simple", up=False)
    result = cli(capsys, "history", "-C", str(project))
    assert result.exit_code == 1
    assert "run `loopline up` in" in result.stderr


def test_canary_steps_and_watch_times_are_read_as_people_write_them(
    new_project: ProjectFactory, capsys: pytest.CaptureFixture[str]
) -> None:
    project = new_project("simple", up=False)
    # read, then refused for what follows (the stores do not exist yet), not for how they were written
    taken = cli(
        capsys, "outer-loop", "prod", "--canary", "10%, 50%, 100%", "--watch", "5m", "-C", str(project)
    )
    assert taken.exit_code == 1 and "run `loopline up` in" in taken.stderr, taken.stderr
    spaced = cli(capsys, "outer-loop", "prod", "--canary", "10 50 100", "--watch", "90", "-C", str(project))
    assert spaced.exit_code == 1 and "run `loopline up` in" in spaced.stderr, spaced.stderr
    for watch in ("-3", "nan", "inf"):
        refused = cli(capsys, "outer-loop", "prod", "--watch", watch, "-C", str(project))
        assert refused.exit_code == 2 and f"--watch '{watch}' is not a time to wait" in refused.stderr
    assert "is not a duration such as 30m" in cli(capsys, "outer-loop", "prod", "--watch", "5x").stderr
    import loopline
    from loopline.errors import UsageError

    with pytest.raises(UsageError, match="watch is nan seconds; give 0 or more"):  # the SDK's callers too
        loopline.outer_loop_prod(project, watch=float("nan"))


def test_unexpected_faults_are_one_line_pointing_to_traceback(
    new_project: ProjectFactory, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # The one substitution in the suite: a fault no real input can cause, injected at the SDK facade to
    # prove the CLI boundary turns it into one line.
    import loopline.api

    def boom(*_args: object, **_kwargs: object) -> None:
        raise RuntimeError("disk on fire\nsecond line")

    monkeypatch.setattr(loopline.api, "status", boom)
    result = cli(capsys, "status")
    assert result.exit_code == 4
    assert (
        result.stderr.strip()
        == "error: unexpected RuntimeError: disk on fire (run again with --traceback for details)"
    )
    result = cli(capsys, "status", "--traceback")
    assert "Traceback (most recent call last)" in result.stderr


def test_status_json_has_the_products_shape(
    new_project: ProjectFactory, capsys: pytest.CaptureFixture[str]
) -> None:
    project = new_project("full")
    result = cli(capsys, "status", "--json", "-C", str(project))
    assert result.exit_code == 0
    document = json.loads(result.stdout)
    assert document["tier"] == "full"
    assert document["workspaces"] == ["dev", "test", "prod"]
    assert document["models"] == [] and document["endpoints"] == []
    assert set(document["stores"]) == {"dev", "test", "prod", "shared"}
    assert document["stores"]["prod"]["tracking_uri"].endswith("/.loopline/workspaces/prod/mlflow.db")


def test_up_twice_says_nothing_changed(
    new_project: ProjectFactory, capsys: pytest.CaptureFixture[str]
) -> None:
    project = new_project("simple")
    result = cli(capsys, "up", "-C", str(project))
    assert result.exit_code == 0
    assert "everything exists; nothing changed" in result.stdout


@pytest.mark.parametrize("command", ["serve", "ui", "server"])
@pytest.mark.parametrize("port", ["0", "65536", "-1"])
def test_a_port_out_of_range_is_a_usage_error(
    capsys: pytest.CaptureFixture[str], command: str, port: str
) -> None:
    result = cli(capsys, command, f"--port={port}")
    assert result.exit_code == 2
    assert "Invalid value for '--port'" in result.stderr and "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("workflow", "run", "inner-loop", "--input", "commit"), "--input 'commit' is not KEY=VALUE"),
        (("init", "--existing", "--input", "data="), "--input data=: give NAME=PATH (the input's name"),
        (("init", "--existing", "--input", "=x.csv"), "--input =x.csv: give NAME=PATH (the input's name"),
    ],
)
def test_a_repeated_key_value_option_without_its_key_or_value_is_one_line_and_exit_2(
    capsys: pytest.CaptureFixture[str], args: tuple[str, ...], message: str
) -> None:
    refused = cli(capsys, *args)
    assert refused.exit_code == 2 and refused.stderr.startswith(f"error: {message}"), refused.stderr
    assert len(refused.stderr.strip().splitlines()) == 1


def test_serving_a_workspace_the_tier_lacks_is_refused_before_it_says_it_serves(
    new_project: ProjectFactory, capsys: pytest.CaptureFixture[str]
) -> None:
    project = new_project("simple")
    refused = cli(capsys, "serve", "-w", "test", "-C", str(project))
    assert refused.exit_code != 0 and "workspace 'test' is not part of the 'simple' tier" in refused.stderr
    assert "serving the endpoints" not in refused.stderr


def test_serving_on_a_port_another_process_holds_fails_before_it_says_it_serves(
    new_project: ProjectFactory, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    project = new_project("simple")
    with socket.create_server(("127.0.0.1", 0)) as taken:  # another process's server, for the CLI
        port = str(taken.getsockname()[1])
        refused = cli(capsys, "serve", "-w", "prod", "--port", port, "-C", str(project))
    assert refused.exit_code == 2, refused.stderr
    assert (
        refused.stderr.strip()
        == f"error: cannot listen on 127.0.0.1:{port}: Address already in use; choose another --port"
    )
    assert "serving the endpoints" not in refused.stdout + refused.stderr
    # on the workspace's own port (its endpoints_url), where loopline's commands look for its server
    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = str(taken.getsockname()[1])
        monkeypatch.setenv("LOOPLINE_WORKSPACES__PROD__ENDPOINTS_URL", f"http://127.0.0.1:{port}")
        refused = cli(capsys, "serve", "-w", "prod", "-C", str(project))
    assert refused.exit_code == 2, refused.stderr
    assert refused.stderr.strip() == (
        f"error: cannot listen on 127.0.0.1:{port}: Address already in use; give prod another port: set "
        "workspaces.prod.endpoints_url to http://127.0.0.1:PORT in loopline.yaml (serve listens there, and "
        "loopline's commands call it there)"
    )


def test_a_rollback_before_any_release_says_nothing_was_released(
    new_project: ProjectFactory, capsys: pytest.CaptureFixture[str]
) -> None:
    project = new_project("simple")
    result = cli(capsys, "rollback", "--previous", "-C", str(project))
    assert result.exit_code == 1
    assert result.stderr == (
        "error: nothing has been released to prod yet (it has no endpoint proj), so there is nothing to roll "
        "back; release a version first: `loopline outer-loop prod`\n"
    )
    # an endpoint the caller names is looked up as named
    named = cli(capsys, "rollback", "--previous", "--endpoint", "churn", "-C", str(project))
    assert "no endpoint named 'churn' in prod" in named.stderr


def test_a_model_name_or_run_id_no_registry_can_hold_is_refused_before_anything_runs(
    new_project: ProjectFactory, capsys: pytest.CaptureFixture[str]
) -> None:
    project = new_project("simple")
    rule = "use letters, digits, '.', '_' and '-', starting with a letter or digit (100 at most)"
    for argv in (
        ("inner-loop", "--model", "../../../etc/passwd"),  # was trained, then MLflow's unexpected refusal
        ("rollback", "--previous", "--model", "churn model"),
        ("outer-loop", "prod", "--model", "a:b"),
        ("deployment", "create", "proj", "blue", "--version", "1", "--model", "x/y"),
    ):
        refused = cli(capsys, *argv, "-C", str(project))
        assert refused.exit_code == 2, (argv, refused.stderr)
        assert refused.stderr.startswith(f"error: model name '{argv[-1]}' cannot be registered: {rule}")
    assert not (project / ".loopline" / "logs").exists() or not list(
        (project / ".loopline" / "logs").iterdir()
    )
    for run_id in ("-1", "../run", "r\u00e9n"):
        refused = cli(capsys, "compare", "--runs", run_id, "-C", str(project))
        assert refused.exit_code == 2, refused.stderr
        assert refused.stderr.startswith(f"error: '{run_id}' is not an MLflow run ID"), refused.stderr


def test_a_workspace_the_tier_lacks_is_named_as_such_not_as_a_missing_endpoint(
    new_project: ProjectFactory, capsys: pytest.CaptureFixture[str]
) -> None:
    project = new_project("simple")
    said = "workspace 'test' is not part of the 'simple' tier; this instance has dev, prod, shared"
    for argv in (
        ("endpoint", "show", "proj", "--workspace", "test"),
        ("batch-endpoint", "show", "nightly", "--workspace", "test"),
        ("policy", "evaluate", "proj", "--workspace", "test"),  # was: "has no monitoring check yet"
        ("monitor", "check", "proj", "--workspace", "test"),
    ):
        refused = cli(capsys, *argv, "-C", str(project))
        assert refused.exit_code == 1 and said in refused.stderr, (argv, refused.stderr)


def test_an_error_repeating_input_that_holds_a_newline_is_still_one_line(
    new_project: ProjectFactory, capsys: pytest.CaptureFixture[str]
) -> None:
    project = new_project("simple")
    for argv, said in (
        (("monitor", "check", "proj", "--window", "1\nx"), "error: window '1\\nx' is not a duration"),
        (("data", "register", "a\nb", "--path", "inbox://x.csv"), "error: data asset name 'a\\nb' must be"),
    ):
        refused = cli(capsys, *argv, "-C", str(project))
        assert refused.exit_code == 2 and refused.stderr.count("\n") == 1, refused.stderr
        assert refused.stderr.startswith(said), refused.stderr


def test_paths_urls_spans_and_filters_the_system_cannot_take_are_usage_errors_not_unexpected_ones(
    trained_project: ProjectFactory, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    project = trained_project("simple")
    before = cli(capsys, "history", "--json", "-C", str(project)).json()["events"]
    for argv, said in (
        # /proc takes no new folder: the message names the path and what to do, exit 2.
        (
            ("init", "/proc/loopline"),
            "cannot create the project in /proc/loopline: no such file or directory",
        ),
        (("report", "experiment", "--out", "/proc/loopline"), "cannot write the report into /proc/loopline"),
        # Longer than a date can be from now (it overflowed Python's time types).
        (("monitor", "check", "--window", "99999999999d"), "window '99999999999d' is longer than loopline"),
        (("token", "create", "--user", "ada", "--expires", "9999999w"), "--expires '9999999w' is longer"),
        # No dialect SQLAlchemy knows, or no URL at all.
        (("migrate-state", "--to", "nope://host/db"), "--to is not a database URL loopline can open"),
        (("migrate-state", "--to", ""), "--to is not a database URL loopline can open"),
        (
            ("migrate-tracking", "--workspace", "dev", "--to", "nope://host/db"),
            "--to 'nope://host/db' is not",
        ),
        # An unset shell variable ("--commit $SHA") would have matched every commit.
        (("history", "--commit", ""), "the commit filter is empty"),
        # A store moved to a folder that cannot be made: said before anything is copied.
        (("migrate-models", "--to", "/proc/loopline"), "cannot make the model store at /proc/loopline"),
        (("migrate-datastores", "--inbox", "/proc/loopline"), "cannot make the inbox datastore at /proc"),
        (("migrate-state", "--to", "sqlite:////proc/loopline/state.db"), "cannot write the database at"),
        (
            ("migrate-tracking", "--workspace", "dev", "--to", "sqlite:///dev.db", "--artifacts", "/proc/x"),
            "cannot make the artifact store at /proc/x",
        ),
    ):
        refused = cli(capsys, "-C", str(project), *argv)
        assert refused.exit_code == 2 and refused.stderr.count("\n") == 1, (argv, refused.stderr)
        assert said in refused.stderr and "unexpected" not in refused.stderr, (argv, refused.stderr)
    assert cli(capsys, "history", "--json", "-C", str(project)).json()["events"] == before  # nothing done
    assert not (project / "dev.db").exists()


@pytest.mark.parametrize(
    ("argv", "said"),
    [
        (
            ["audit", "verify", "--checkpoint", "{missing}"],
            "cannot read the checkpoint {missing}: no such file or directory; give a file "
            "`loopline audit checkpoint --to FILE` wrote",
        ),
        (
            ["endpoint", "invoke", "proj", "--request-file", "{folder}"],
            "cannot read {folder}: is a directory; give a file of the request's body, or - for stdin",
        ),
        (
            ["endpoint", "create", "--file", "{missing}"],
            "cannot read {missing}: no such file or directory; give an Azure ML online endpoint file",
        ),
        (
            ["endpoint", "create", "--file", "{binary}"],
            "{binary} is not valid YAML; give an Azure ML online endpoint file",
        ),
    ],
)
def test_a_file_that_cannot_be_read_is_named_with_what_to_give(
    new_project: ProjectFactory, capsys: pytest.CaptureFixture[str], argv: list[str], said: str
) -> None:
    project = new_project("simple", commit=False)
    (project / "folder").mkdir()
    (project / "binary.yml").write_bytes(b"\xff\xfe\x00\x01")
    paths = {"missing": project / "gone.json", "folder": project / "folder", "binary": project / "binary.yml"}
    result = cli(capsys, "-C", str(project), *(arg.format(**paths) for arg in argv))
    assert result.exit_code == 2, result.stderr
    assert result.stderr.strip() == f"error: {said.format(**paths)}"
