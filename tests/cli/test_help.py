"""Every command and every argument explains itself."""

from __future__ import annotations

import typer.core

from loopline.cli import _command
from tests.helpers import cli_process


def walk(command: typer.core.TyperCommand | typer.core.TyperGroup, path: str = "loopline"):  # type: ignore[no-untyped-def]
    yield path, command
    for name, child in sorted(getattr(command, "commands", {}).items()):
        yield from walk(child, f"{path} {name}")


def test_every_command_and_parameter_has_help_text() -> None:
    missing = []
    commands = list(walk(_command()))
    assert len(commands) > 5
    for path, command in commands:
        if not (command.help or "").strip():
            missing.append(path)
        for parameter in command.params:
            if not (getattr(parameter, "help", None) or "").strip():
                missing.append(f"{path} {parameter.name}")
    assert missing == []


def test_the_fixed_command_names_exist() -> None:
    names = {path.removeprefix("loopline ") for path, _ in walk(_command())}
    assert {"init", "up", "status", "inner-loop", "history", "demo"} <= names


def test_help_works_from_the_console_script() -> None:
    result = cli_process("inner-loop", "--help")
    assert result.exit_code == 0
    assert "--allow-dirty" in result.stdout
