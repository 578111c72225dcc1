"""What a training script cannot start without, read from its argparse calls, and the configuration file
init passes it."""

from __future__ import annotations

from pathlib import Path

import pytest

from loopline.script_arguments import Required, config_argument, required_arguments
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
