"""The arguments a training script cannot start without, read from its ``argparse`` calls, and the
repository's configuration file for one that names a configuration (``--config PATH``, required): what
``init --existing`` passes such a script, where the repository has exactly one file it could mean.

A script that is a group of sub-commands (argparse's sub-parsers, a click group, a Typer app of several
commands) is run with the one of them named for training (``train``, ``fit``, ``train-model``), where
exactly one is; without one, the error of a run names the sub-commands to choose from.

Nothing is guessed beyond that: a required argument of another kind (a data path, a number), or several
configuration files to choose from leave the command as it is, and the dry run's error names the
argument the script wants.
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass
from pathlib import Path

__all__ = [
    "Required",
    "add_sub_command",
    "config_argument",
    "group_usage",
    "hydra_keys",
    "required_arguments",
    "sub_commands",
    "training_sub_command",
    "value_options",
]

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


def _argument_calls(source: str) -> list[ast.Call] | None:
    """The script's ``add_argument`` calls, in order; None for a script with sub-commands (each has its
    own) or one Python cannot parse."""
    try:
        tree = ast.parse(source)
    except (SyntaxError, ValueError):
        return None
    calls = [n for n in ast.walk(tree) if isinstance(n, ast.Call) and isinstance(n.func, ast.Attribute)]
    if any(c.func.attr == "add_subparsers" for c in calls):  # type: ignore[attr-defined]
        return None
    return [c for c in calls if c.func.attr == "add_argument"]  # type: ignore[attr-defined]


def required_arguments(source: str) -> list[Required] | None:
    """The arguments the script's ``argparse`` parser requires, in order; None for a script with
    sub-commands (each asks for its own) or one Python cannot parse."""
    calls = _argument_calls(source)
    if calls is None:
        return None
    found = [_required(c) for c in calls]
    return [r for r in found if r is not None]


def value_options(source: str) -> dict[str, str]:
    """The options of the script's ``argparse`` parser that take a value, by the name they fill
    (``--max-iter`` fills ``max_iter``; ``dest=`` where it says), for a sweep to pass a trial's values as
    the script reads them. Empty for a script with sub-commands or one Python cannot parse."""
    options: dict[str, str] = {}
    for call in _argument_calls(source) or []:
        names = [str(a.value) for a in call.args if isinstance(a, ast.Constant) and isinstance(a.value, str)]
        given = {k.arg: k.value for k in call.keywords if k.arg}
        long = [name for name in names if name.startswith("--")]
        if not long or _constant(given.get("action")) not in (None, "store") or _constant(given.get("nargs")):
            continue  # a flag, a count or a list: not one value
        dest = _constant(given.get("dest"))
        options.setdefault(str(dest) if dest else long[0][2:].replace("-", "_"), long[0])
    return options


def _hydra_main(tree: ast.Module) -> tuple[str, str] | None:
    """The ``config_path`` and ``config_name`` of the script's ``@hydra.main(...)``, where it has one."""
    for node in ast.walk(tree):
        if not isinstance(node, ast.FunctionDef):
            continue
        for decorator in node.decorator_list:
            if isinstance(decorator, ast.Call) and ast.unparse(decorator.func) in ("hydra.main", "main"):
                given = {k.arg: _constant(k.value) for k in decorator.keywords if k.arg}
                if ast.unparse(decorator.func) == "hydra.main" or "config_name" in given:
                    return str(given.get("config_path") or "."), str(given.get("config_name") or "config")
    return None


def hydra_keys(script: Path, source: str) -> dict[str, str]:
    """The keys of a Hydra script's configuration (``@hydra.main(config_path=..., config_name=...)``), by
    their last name where it is one key's alone (``C`` is ``model.C``), for a sweep to pass a trial's
    values as Hydra's overrides (``model.C=0.5``). Empty for any other script (``source``: its text)."""
    import yaml

    try:
        found = _hydra_main(ast.parse(source))
        if found is None:
            return {}
        path = script.parent / found[0] / f"{found[1].removesuffix('.yaml')}.yaml"
        config = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, SyntaxError, ValueError, yaml.YAMLError):
        return {}
    keys: dict[str, list[str]] = {}

    def walk(node: dict[object, object], prefix: str) -> None:
        for key, value in node.items():
            if isinstance(value, dict):
                walk(value, f"{prefix}{key}.")
            elif isinstance(key, str):
                keys.setdefault(key, []).append(f"{prefix}{key}")

    if isinstance(config, dict):
        walk(config, "")
    return {name: paths[0] for name, paths in keys.items() if len(paths) == 1}


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


_TRAINS = re.compile(r"train|fit", re.I)
_CLICK_SUFFIXES = ("_command", "_cmd", "_group", "_grp")  # click 8.2 drops them from a command's name


def _string(node: ast.expr | None) -> str | None:
    value = _constant(node)
    return value if isinstance(value, str) else None


def _decorated_name(function: ast.FunctionDef | ast.AsyncFunctionDef, typer: bool) -> str | None:
    """The name a ``@group.command()`` decorator gives ``function`` as a sub-command (click's or Typer's
    rule for a name not given); None where no such decorator is on it (``@click.command()`` makes a
    command, not a sub-command)."""
    for decorator in function.decorator_list:
        call = decorator if isinstance(decorator, ast.Call) else None
        target = call.func if call else decorator
        if not isinstance(target, ast.Attribute) or target.attr != "command":
            continue
        if isinstance(target.value, ast.Name) and target.value.id in {"click", "typer"}:
            continue
        given = call and (
            _string(call.args[0] if call.args else None)
            or next((_string(k.value) for k in call.keywords if k.arg == "name"), None)
        )
        if given:
            return given
        name = function.name.lower()
        if not typer:
            name = next((name.removesuffix(s) for s in _CLICK_SUFFIXES if name.endswith(s)), name)
        return name.replace("_", "-")
    return None


def sub_commands(source: str) -> list[str] | None:
    """The sub-commands a script is a group of, in the order it declares them: argparse's
    (``add_parser("train")`` under ``add_subparsers``), a click group's or a Typer app's (functions
    decorated ``@app.command()``; one such function of an app without a callback is not a group, Typer
    runs it without a name). None for a script that is no group, or that Python cannot parse."""
    try:
        tree = ast.parse(source)
    except (SyntaxError, ValueError):
        return None
    calls = [n for n in ast.walk(tree) if isinstance(n, ast.Call) and isinstance(n.func, ast.Attribute)]
    calls.sort(key=lambda call: (call.lineno, call.col_offset))  # as written, not as walked
    attributes = [c.func.attr for c in calls]  # type: ignore[attr-defined]
    if "add_subparsers" in attributes:
        parsers = [_string(c.args[0]) for c in calls if c.func.attr == "add_parser" and c.args]  # type: ignore[attr-defined]
        return [n for n in parsers if n] or None
    typer = re.search(r"^\s*(import typer|from typer import)", source, re.M) is not None
    functions = [n for n in ast.walk(tree) if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))]
    named = [n for n in (_decorated_name(f, typer) for f in functions) if n]
    decorators = [d for f in functions for d in f.decorator_list]
    grouped = any(
        isinstance(t := (d.func if isinstance(d, ast.Call) else d), ast.Attribute)
        and t.attr in {"group", "callback"}
        for d in decorators
    )
    return named if named and (grouped or len(named) > 1) else None


def training_sub_command(names: list[str]) -> str | None:
    """The one sub-command of ``names`` named for training (``train``, ``fit``, ``train-model``); None
    where none or several are."""
    found = [name for name in names if _TRAINS.search(name)]
    return found[0] if len(found) == 1 else None


_GROUP_USAGE = re.compile(r"^\s*[Uu]sage: .*(\bCOMMAND|\{[\w,-]+\}) ", re.M)
_CLICK_LISTED = re.compile(r"^Commands:\n((?:  \S.*\n?)+)", re.M)
_TYPER_LISTED = re.compile(r"^\u256d\u2500 Commands \u2500.*\n((?:\u2502.*\n?)+)", re.M)


def group_usage(said: str, source: str | None, command: str) -> str:
    """Where a script's output ``said`` ends in the usage of a group of sub-commands (click's, Typer's,
    argparse's), run as ``command`` without one: which to add (``: ...``), with the sub-commands its help
    lists or ``source`` declares; else nothing."""
    usage = list(_GROUP_USAGE.finditer(said))
    if not usage:
        return ""
    after = said[usage[-1].start() :]
    listed = _CLICK_LISTED.search(after) or _TYPER_LISTED.search(after)
    if usage[-1][1].startswith("{"):  # argparse's usage names them, as it names a positional's choices
        if source is None or sub_commands(source) is None:
            return ""
        names = usage[-1][1].strip("{}").split(",")
    elif listed:
        names = [line.strip(" \u2502").split()[0] for line in listed[1].splitlines() if line.strip(" \u2502")]
    else:
        names = (sub_commands(source) if source else None) or []
    return add_sub_command(names, command)


def add_sub_command(names: list[str], command: str) -> str:
    """What to tell of ``command``, which runs a group of the sub-commands ``names`` (perhaps unknown: [])
    without one (``: ...``)."""
    chosen = training_sub_command(names) or "COMMAND"
    among = f" ({', '.join(names[:8])})" if names else ""
    return (
        f": the script is a group of sub-commands{among} and the training command names none; add the "
        f"one that trains, as in --command '{command} {chosen}' (training.command in loopline.yaml)"
    )
