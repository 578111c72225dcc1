"""MLflow Projects: the training command of a repository's ``MLproject`` file, as ``mlflow run .`` runs it.

The ``main`` entry point's command, with each ``{parameter}`` replaced by the parameter's default (quoted
for the shell, as MLflow quotes it). A parameter the command uses without a default cannot be filled in:
it is refused, naming it. The project's environment (``python_env``, ``conda_env``, ``docker_env``) is
not read: the training runs in the Python loopline runs in, as every training here does.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from loopline.errors import UsageError

__all__ = ["ProjectCommand", "find_project_command"]

_PLACEHOLDER = re.compile(r"\{(\w+)\}")
_ENVIRONMENTS = ("python_env", "conda_env", "docker_env")


@dataclass(frozen=True)
class ProjectCommand:
    """The training command of an ``MLproject`` file."""

    command: str
    environment: str | None  # the environment key the file names (not used), if any


def _default(spec: Any) -> Any:
    """A parameter's default: ``{type: float, default: 0.5}`` has one; ``alpha: float`` has none."""
    return spec.get("default") if isinstance(spec, dict) else None


def find_project_command(root: Path) -> ProjectCommand | None:
    """The ``main`` entry point's command of ``root/MLproject`` with its parameters' defaults; None when
    the repository has no ``MLproject``."""
    path = next((p for p in sorted(root.iterdir()) if p.name.lower() == "mlproject" and p.is_file()), None)
    if path is None:
        return None
    try:
        document = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise UsageError(
            f"{path.name} cannot be read as YAML ({type(exc).__name__}); fix it or give --command"
        ) from None
    points = document.get("entry_points") if isinstance(document, dict) else None
    entry = points.get("main") if isinstance(points, dict) else None
    command = entry.get("command") if isinstance(entry, dict) else None
    if entry is None or not isinstance(command, str) or not command.strip():
        raise UsageError(
            f"{path.name} has no entry point 'main' with a command; name the training with --command"
        )
    parameters = entry.get("parameters") or {}
    if not isinstance(parameters, dict):
        raise UsageError(f"{path.name}: the parameters of entry point 'main' are not a mapping; fix them")
    missing = [name for name in _PLACEHOLDER.findall(command) if _default(parameters.get(name)) is None]
    if missing:
        raise UsageError(
            f"{path.name}: parameter {missing[0]} of entry point 'main' has no default, so the command "
            "cannot be filled in; give it a default, or name the training with --command"
        )
    filled = _PLACEHOLDER.sub(lambda found: shlex.quote(str(_default(parameters[found[1]]))), command)
    environment = next((key for key in _ENVIRONMENTS if key in document), None)
    return ProjectCommand(" ".join(filled.split()), environment)
