"""The arguments a training script cannot start without, read from its ``argparse`` calls, and the
repository's configuration file for one that names a configuration (``--config PATH``, required): what
``init --existing`` passes such a script, where the repository has exactly one file it could mean.

Nothing is guessed beyond that: a required argument of another kind (a data path, a number), a script
with sub-commands, or several configuration files to choose from leave the command as it is, and the
dry run's error names the argument the script wants.
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass
from pathlib import Path

__all__ = ["Required", "config_argument", "required_arguments"]

_CONFIG = re.compile(r"conf|cfg|param|setting", re.I)
_SUFFIXES = frozenset({".yaml", ".yml", ".json", ".toml"})
_FOLDERS = frozenset({"config", "configs", "conf", "cfg", "params", "settings"})
_NOT_CONFIG = frozenset(
    {
        "pyproject.toml",
        "environment.yml",
        "environment.yaml",
        "conda.yml",
        "conda.yaml",
        "dvc.yaml",
        "mkdocs.yml",
        "codecov.yml",
        "package.json",
        "tsconfig.json",
        "renovate.json",
        "ruff.toml",
        "mypy.toml",
        "uv.toml",
        "poetry.toml",
    }
)


@dataclass(frozen=True)
class Required:
    """An argument a script cannot start without: an option (``--config``), or a positional (no flag)."""

    flag: str | None
    name: str

    @property
    def shown(self) -> str:
        return self.flag or self.name.upper()


def _constant(node: ast.expr | None) -> object:
    return node.value if isinstance(node, ast.Constant) else None


def _required(call: ast.Call) -> Required | None:
    """The argument an ``add_argument`` call declares, where the script cannot start without it."""
    names = [str(a.value) for a in call.args if isinstance(a, ast.Constant) and isinstance(a.value, str)]
    given = {k.arg: k.value for k in call.keywords if k.arg}
    if not names or "default" in given or str(_constant(given.get("action"))).startswith(("store_", "count")):
        return None
    if names[0].startswith("-"):
        if _constant(given.get("required")) is not True:
            return None
        flag = max(names, key=lambda n: (n.startswith("--"), len(n)))
        return Required(flag, str(_constant(given.get("dest")) or flag.lstrip("-").replace("-", "_")))
    if _constant(given.get("nargs")) in ("?", "*"):
        return None
    return Required(None, names[0])


def required_arguments(source: str) -> list[Required] | None:
    """The arguments the script's ``argparse`` parser requires, in order; None for a script with
    sub-commands (each asks for its own) or one Python cannot parse."""
    try:
        tree = ast.parse(source)
    except (SyntaxError, ValueError):
        return None
    calls = [n for n in ast.walk(tree) if isinstance(n, ast.Call) and isinstance(n.func, ast.Attribute)]
    if any(c.func.attr == "add_subparsers" for c in calls):  # type: ignore[attr-defined]
        return None
    found = [_required(c) for c in calls if c.func.attr == "add_argument"]  # type: ignore[attr-defined]
    return [r for r in found if r is not None]


def _config_files(root: Path) -> list[str]:
    """The repository's configuration files: YAML, JSON or TOML ones in a ``configs/`` (``config/``,
    ``conf/``, ...) folder at the top or one level down, or at the top named as a configuration."""
    found = []
    folders = [f for f in root.iterdir() if f.is_dir() and f.name.lower() in _FOLDERS]
    folders += [f for f in root.glob("*/*") if f.is_dir() and f.name.lower() in _FOLDERS]
    for path in [*root.iterdir(), *(p for folder in folders for p in folder.iterdir())]:
        top = path.parent == root
        if not path.is_file() or path.suffix.lower() not in _SUFFIXES or path.name.lower() in _NOT_CONFIG:
            continue
        if path.name.startswith(".") or (top and not _CONFIG.search(path.stem)):
            continue
        found.append(path.relative_to(root).as_posix())
    return sorted(found)


def config_argument(root: Path, source: str) -> tuple[list[str], str] | None:
    """The arguments that start a script whose only required argument names a configuration (``--config``,
    ``--cfg``, ``--params``, or a positional ``config``), and the repository's one file it means (the one
    such file, else the one named for training); with a line saying what was chosen. None otherwise."""
    required = required_arguments(source)
    if not required or len(required) > 1 or not _CONFIG.search(required[0].name):
        return None
    files = _config_files(root)
    if len(files) > 1:
        files = [f for f in files if "train" in Path(f).stem.lower()]
    if len(files) != 1:
        return None
    wanted = required[0]
    arguments = [wanted.flag, files[0]] if wanted.flag else [files[0]]
    return arguments, f"the training cannot start without {wanted.shown}: init passes {files[0]}"
