"""How a sweep's trial values reach the training: written over its parameters file (put back after the
trial, or by the next sweep where one was killed), as ``{name}`` placeholders in ``sweep.command``, as the
script's own ``argparse`` options where it declares them (``--trees``), and as JSON in ``LOOPLINE_PARAMS``;
and the check that the training took them."""

from __future__ import annotations

import re
import shlex
import shutil
from collections.abc import Collection
from pathlib import Path
from typing import Any

import yaml

from loopline.config import SweepConfig
from loopline.errors import ConfigError
from loopline.gates import parse_yaml
from loopline.instance import Instance
from loopline.loops.training_runs import DEV
from loopline.requirements import training_file
from loopline.script_arguments import hydra_keys, value_options

__all__ = ["Overlay", "passed_as_options", "refuse_untaken", "restore_params_file", "trial_command"]

_PLAIN = re.compile(r"(--)?[A-Za-z_][\w.-]*(=| )\{\}")
"""An argument as a trial passes it: an option's or a configuration key's plain name, then the value."""


def _backup(instance: Instance) -> Path:
    return instance.root / ".loopline" / "sweep-params.backup"


def restore_params_file(instance: Instance) -> bool:
    """Put back the parameters file a killed sweep left overlaid; True when there was one."""
    backup = _backup(instance)
    if not backup.is_file():
        return False
    target = instance.root / instance.settings.config.sweep.params_file
    shutil.copyfile(backup, target)
    backup.unlink()
    return True


class Overlay:
    """The trial's values written over the parameters file for one trial, then the file put back (a copy
    waits under .loopline/ until then, for a sweep that is killed)."""

    def __init__(self, instance: Instance, params: dict[str, Any], slot: Path | None) -> None:
        self.instance = instance
        self.params = params
        self.slot = slot
        """A parallel trial's own working copy (thrown away after the sweep: nothing to put back)."""
        self.path = (slot or instance.root) / instance.settings.config.sweep.params_file

    def __enter__(self) -> Overlay:
        if not self.path.is_file():
            return self
        text = self.path.read_text()
        base = parse_yaml(text, self.path.name) or {}
        if not isinstance(base, dict):
            raise ConfigError(f"{self.path.name} is not a mapping of parameters; sweep.params_file names it")
        if self.slot is None:
            backup = _backup(self.instance)
            backup.parent.mkdir(exist_ok=True)
            backup.write_text(text)
        self.path.write_text(yaml.safe_dump({**base, **self.params}, sort_keys=False))
        return self

    def __exit__(self, *_exc: object) -> None:
        if self.slot is None:
            restore_params_file(self.instance)


def passed_as_options(root: Path, command: str, names: Collection[str]) -> dict[str, str]:
    """How the training script of ``command`` takes each parameter it declares, as an argument with
    ``{}`` for the value: its ``argparse`` option (``--trees {}``), or the override of its Hydra
    configuration's key (``model.C={}``). The script would take its defaults otherwise."""
    script = training_file(root, command)
    if script is None or script.suffix != ".py":
        return {}
    try:
        source = script.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return {}
    options = {name: f"{key}={{}}" for name, key in hydra_keys(script, source).items()}
    options |= {name: f"{option} {{}}" for name, option in value_options(source).items()}
    # each goes into a shell command as it is written: a plain key or option name only
    return {name: options[name] for name in names if name in options and _PLAIN.fullmatch(options[name])}


def trial_command(config: SweepConfig, default: str, params: dict[str, Any], options: dict[str, str]) -> str:
    if config.command is None:
        passed = [
            options[name].format(shlex.quote(str(value))) for name, value in params.items() if name in options
        ]
        return " ".join([default, *passed])
    try:  # {inputs.NAME} stays for the training to fill in (training.inputs)
        return re.sub(r"\{(inputs\.\w+)\}", r"{{\1}}", config.command).format_map(params)
    except (KeyError, IndexError, ValueError) as exc:
        raise ConfigError(
            f"sweep.command names {exc} in braces, which is not one of sweep.parameters "
            f"({', '.join(config.parameters)})"
        ) from None


def refuse_untaken(instance: Instance, number: int, params: dict[str, Any], run_id: str) -> None:
    """Stop the sweep where the trial's run logged a parameter with another number than the trial asked
    for: the script took none of the ways the values come (each trial would train the same model)."""
    logged = instance.store(DEV).run(run_id).params
    for name, value in params.items():
        said = logged.get(name)
        if said is None or isinstance(value, str) or _same_number(said, value):
            continue
        config = instance.settings.config
        raise ConfigError(
            f"trial {number} asked for {name}={value}, but its run logged {name}={said}: the training did "
            f"not take the trial's values (from {config.sweep.params_file}, LOOPLINE_PARAMS or an option of "
            f"its script), so every trial would train the same model; pass them in sweep.command "
            f'("{config.training.command} --{name.replace("_", "-")} {{{name}}}"), or read one of those, and '
            "run the sweep again"
        )


def _same_number(said: str, value: Any) -> bool:
    """Whether ``said`` (a logged parameter) is the number ``value`` (a bool as itself), or no number."""
    if isinstance(value, bool):
        return said.strip().lower() in (str(value).lower(), str(int(value)))
    try:
        return abs(float(said) - float(value)) <= 1e-6 * max(1.0, abs(float(value)))
    except (TypeError, ValueError):
        return True  # logged as something else: not for loopline to judge
