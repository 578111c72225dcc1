"""What a training script cannot start without, read from its argparse calls, and the configuration file
init passes it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from loopline.script_arguments import Required, config_argument, group_usage, required_arguments, sub_commands
from tests.helpers import tree


def parser(*lines: str) -> str:
    body = "\n".join(f"parser.{line}" for line in lines)
    return f"import argparse\nparser = argparse.ArgumentParser()\n{body}\nargs = parser.parse_args()\n"


def test_required_arguments_are_required_options_and_positionals_without_defaults() -> None:
    source = parser(
        'add_argument("-c", "--config-file", required=True)',
        'add_argument("--seed", type=int, required=True, default=0)',  # a default: not needed
        'add_argument("--epochs", type=int)',  # optional
        'add_argument("--verbose", action="store_true", required=True)',
        'add_argument("data")',
        'add_argument("extra", nargs="?")',
        'add_argument("--out", required=True, dest="output")',
    )
    assert required_arguments(source) == [
        Required("--config-file", "config_file"),
        Required(None, "data"),
        Required("--out", "output"),
    ]
    subcommands = parser("add_subparsers()", 'add_argument("--config", required=True)')
    assert required_arguments(subcommands) is None
    assert required_arguments("def broken(:\n") is None
    assert required_arguments("print('no parser')\n") == []


CONFIGS = {"configs/train.yaml": "lr: 0.1\n"}


@pytest.mark.parametrize(
    ("source", "files", "expected"),
    [
        (parser('add_argument("--config", required=True)'), CONFIGS, ["--config", "configs/train.yaml"]),
        (
            parser('add_argument("--cfg", required=True)'),
            {"conf/base.json": "{}"},
            ["--cfg", "conf/base.json"],
        ),
        (parser('add_argument("params_file")'), {"params.yaml": "a: 1\n"}, ["params.yaml"]),
        (
            parser('add_argument("--config", required=True)'),
            {"src/config/model.toml": "", "src/train.py": ""},
            ["--config", "src/config/model.toml"],
        ),
        # one of several named for training
        (
            parser('add_argument("--config", required=True)'),
            {**CONFIGS, "configs/serve.yaml": "", "configs/eval.yaml": ""},
            ["--config", "configs/train.yaml"],
        ),
        # several, none named for training: not guessed
        (
            parser('add_argument("--config", required=True)'),
            {"configs/a.yaml": "", "configs/b.yaml": ""},
            None,
        ),
        # not a configuration; or a configuration and something else
        (parser('add_argument("--data", required=True)'), CONFIGS, None),
        (
            parser('add_argument("--config", required=True)', 'add_argument("--data", required=True)'),
            CONFIGS,
            None,
        ),
        # nothing required, or no file: the command stays
        (parser('add_argument("--config", default="configs/train.yaml")'), CONFIGS, None),
        (parser('add_argument("--config", required=True)'), {"README.md": ""}, None),
        # files that configure tools, not the training
        (
            parser('add_argument("--config", required=True)'),
            {"pyproject.toml": "", "environment.yml": "", ".pre-commit-config.yaml": "", "dvc.yaml": ""},
            None,
        ),
        (parser('add_argument("--config", required=True)'), {"data.yaml": ""}, None),  # not named as one
    ],
)
def test_a_required_configuration_gets_the_repository_s_one_file(
    tmp_path: Path, source: str, files: dict[str, str], expected: list[str] | None
) -> None:
    found = config_argument(tree(tmp_path, files), source)
    assert (found[0] if found else None) == expected


TYPER_HELP = """\
import typer

app = typer.Typer(no_args_is_help=True)


@app.command("fit-model")
def fit():
    pass


@app.command()
def export_onnx():
    pass


if __name__ == "__main__":
    app()
"""


def test_the_sub_commands_of_a_group_are_read_as_click_and_typer_name_them() -> None:
    click_group = (
        "import click\n@click.group()\ndef cli(): pass\n"
        "@cli.command()\ndef train_cmd(): pass\n@cli.command(name='score')\ndef run(): pass\n"
    )
    assert sub_commands(click_group) == ["train", "score"]  # click 8.2 drops _cmd
    assert sub_commands(TYPER_HELP) == ["fit-model", "export-onnx"]
    typer_one = "import typer\napp = typer.Typer()\n@app.command()\ndef train_cmd(): pass\napp()\n"
    assert sub_commands(typer_one) is None  # Typer runs a lone command without its name
    with_callback = typer_one.replace("app()", "@app.callback()\ndef main(): pass\napp()")
    assert sub_commands(with_callback) == ["train-cmd"]
    assert sub_commands("import click\n@click.command()\ndef train(): pass\ntrain()\n") is None
    assert sub_commands("print('no group')\n") is None
    assert sub_commands("def broken(:\n") is None


def test_the_sub_commands_a_typer_help_box_lists_are_named(tmp_path: Path) -> None:
    script = tmp_path / "tasks.py"
    script.write_text(TYPER_HELP)
    ran = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, env={"COLUMNS": "60"})
    assert ran.returncode == 2, ran
    said = ran.stdout + ran.stderr
    assert group_usage(said, None, "python tasks.py") == (
        ": the script is a group of sub-commands (fit-model, export-onnx) and the training command names "
        "none; add the one that trains, as in --command 'python tasks.py fit-model' (training.command in "
        "loopline.yaml)"
    )
    assert group_usage("usage: train.py [-h] --data DATA\n", None, "python train.py") == ""
    # a positional's choices read like sub-commands in argparse's usage: only sub-parsers are a group
    choices = parser('add_argument("size", choices=["small", "large"])', 'add_argument("data")')
    said = "usage: train.py [-h] {small,large} data\ntrain.py: error: the following arguments are required\n"
    assert group_usage(said, choices, "python train.py") == ""
    commands = (
        "import argparse\np = argparse.ArgumentParser()\ns = p.add_subparsers()\ns.add_parser('small')\n"
    )
    said = said.replace("{small,large} data", "{small,large} ...")  # as argparse shows sub-parsers
    assert "sub-commands (small, large)" in group_usage(said, commands, "python train.py")
