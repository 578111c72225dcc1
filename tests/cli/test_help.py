"""Every command and every argument explains itself."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import typer.core
import typer.models

from loopline.cli import _command, commands
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


def test_every_command_lists_as_one_unbroken_summary() -> None:
    # the listings (`loopline --help`, `loopline endpoint --help`) show a command's first paragraph with
    # its line breaks as they are in the docstring, which rich then wraps again: a ragged line
    broken = []
    for path, command in walk(_command()):
        summary = command.short_help or (command.help or "").split("\n\n")[0]
        if "\n" in summary.strip():
            broken.append(path)
    assert broken == []


def test_the_fixed_command_names_exist() -> None:
    names = {path.removeprefix("loopline ") for path, _ in walk(_command())}
    assert {"init", "up", "status", "inner-loop", "history", "demo"} <= names


def test_the_workflow_commands_name_every_workflow_file_a_project_gets() -> None:
    from loopline.domain import WORKFLOW_TIERS

    commands = dict(walk(_command()))
    for path in ("loopline workflow run", "loopline workflow enabled"):
        [name] = [p for p in commands[path].params if p.name == "name"]
        assert all(workflow in (getattr(name, "help", None) or "") for workflow in WORKFLOW_TIERS), path


def test_the_listing_groups_every_command_in_one_panel_in_the_order_a_project_meets_them() -> None:
    listed = [name for names in commands.PANELS.values() for name in names]
    assert sorted(listed) == sorted(commands.MODULES)  # each command in exactly one panel
    root = _command()
    assert list(root.commands) == listed  # not the order the modules happened to register them
    shown = cli_process("--help").stdout
    panels = [shown.index(f"─ {panel} ") for panel in commands.PANELS]
    assert panels == sorted(panels) and shown.index("│ init ") < shown.index("│ migrate-state ")


def test_help_works_from_the_console_script() -> None:
    result = cli_process("inner-loop", "--help")
    assert result.exit_code == 0
    assert "--allow-dirty" in result.stdout


def _module_of(info: Any) -> str:
    """The module that defines a registered command, or the commands of a registered group."""
    if isinstance(info, typer.models.CommandInfo):
        return str(info.callback.__module__)
    group = info.typer_instance
    return _module_of(
        group.registered_commands[0] if group.registered_commands else group.registered_groups[0]
    )


def test_each_command_is_registered_by_the_module_the_table_names() -> None:
    from loopline.cli.app import app

    commands.load()  # every module
    found = {
        info.name or info.callback.__name__.replace("_", "-"): _module_of(info)
        for info in [*app.registered_commands, *app.registered_groups]
    }
    assert found == {name: f"loopline.cli.commands.{module}" for name, module in commands.MODULES.items()}


def test_a_command_line_imports_only_the_module_of_its_command(tmp_path: Path) -> None:
    # `status` in a folder without a project: it fails with its usual message, having imported the
    # project commands alone; help and a mistyped name import them all (click's suggestions need them)
    script = (
        "import sys\nfrom loopline.cli import main\ncode = main(sys.argv[1:])\n"
        "print(sorted(m.rpartition('.')[2] for m in sys.modules if m.startswith('loopline.cli.commands.')))\n"
    )
    for args, loaded in [
        (["status"], ["project"]),
        (["outer-loop", "prod", "--help"], ["outer_loop"]),
        (["statsu"], sorted(set(commands.MODULES.values()))),
        (["--help"], sorted(set(commands.MODULES.values()))),
    ]:
        done = subprocess.run(
            [sys.executable, "-c", script, *args], cwd=tmp_path, capture_output=True, text=True, timeout=60
        )
        assert done.stdout.strip().splitlines()[-1] == repr(loaded), (args, done.stdout, done.stderr)
