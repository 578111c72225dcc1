"""Running the project's training entry point against a workspace.

The entry point is run as the user wrote it: it may pick its own experiment, start its own (and nested)
runs, use autolog or register the model itself. MLflow is pointed at the workspace through its own
environment variables, and every run the script starts carries the session's tags (see
``mlflow_plugin.py``), so the inner loop finds the runs afterwards wherever the script put them.
"""

from __future__ import annotations

import ast
import json
import os
import posixpath
import re
import shlex
import threading
from collections.abc import Callable, Sequence
from pathlib import Path

from loopline import children
from loopline.denied import denied_advice
from loopline.errors import ConfigError, TrainingFailed
from loopline.git import run_git
from loopline.mlflow_plugin import RUN_TAGS_VARIABLE
from loopline.mlflow_store import WorkspaceStore
from loopline.repo_install import builds_package
from loopline.repo_setup import console_scripts
from loopline.requirements import source_code, training_file
from loopline.run_script import STEP_FAILED, command_environment, training_argv
from loopline.script_arguments import add_sub_command, group_usage, sub_commands
from loopline.shell_line import python_words, run_from_its_folder, unset_variable_advice

__all__ = [
    "categories_advice",
    "check_advice",
    "known_cause",
    "lambda_advice",
    "no_sub_command",
    "own_class_advice",
    "own_module_advice",
    "run_training",
    "training_environment",
]

# Inherited MLflow settings that would send the script's runs elsewhere than the workspace.
_DROPPED = ("MLFLOW_RUN_ID", "MLFLOW_EXPERIMENT_ID", "MLFLOW_ARTIFACT_URI")
# MLflow's SQL tracking stores create an experiment's artifact folder under this root; without it they
# use ./mlruns of the current folder (the project), so an experiment the script names itself would keep
# its artifacts there instead of in the workspace's artifact store.
_ARTIFACT_ROOT_VARIABLE = "_MLFLOW_SERVER_ARTIFACT_ROOT"
_SQL_SCHEMES = ("sqlite", "postgresql", "mysql", "mssql")


def training_environment(store: WorkspaceStore, experiment: str, tags: dict[str, str]) -> dict[str, str]:
    """The environment of a training process: MLflow pointed at ``store``, runs tagged with ``tags``."""
    env = {k: v for k, v in os.environ.items() if k not in _DROPPED}
    location = store.location
    env.update(
        {
            "MLFLOW_TRACKING_URI": location.tracking_uri,
            "MLFLOW_REGISTRY_URI": location.registry_uri,
            "MLFLOW_EXPERIMENT_NAME": experiment,
            RUN_TAGS_VARIABLE: json.dumps(tags),
            "LOOPLINE_WORKSPACE": store.name,
            "PYTHONUNBUFFERED": "1",
        }
    )
    if not location.tracking_uri.startswith(("http://", "https://")):
        # Any MLflow request over HTTP goes elsewhere than the workspace (a script's own tracking server,
        # say): fail at once rather than after MLflow's retries, minutes later.
        env.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    sql = location.tracking_uri.split(":", 1)[0].split("+", 1)[0] in _SQL_SCHEMES
    if sql and location.artifact_location is not None:  # always set for a database store
        from loopline.mlflow_store import artifact_root_uri

        env[_ARTIFACT_ROOT_VARIABLE] = artifact_root_uri(location.artifact_location)
    return env


def _command(command: str) -> list[str]:
    try:
        argv = training_argv(command)
    except ValueError as exc:
        raise ConfigError(f"loopline.yaml: training.command cannot be parsed ({exc})") from None
    if not argv:
        raise ConfigError("loopline.yaml: training.command is empty; set it, e.g. 'python train.py'")
    return argv


def only_defines(root: Path, command: str) -> str:
    """Where the Python file ``command`` runs only defines functions (nothing calls one when it runs, no
    ``if __name__ == "__main__":``): why the training started no run, and the fix; else nothing."""
    from loopline.requirements import training_file

    path = training_file(root, command)
    if path is None or path.suffix != ".py":
        return ""
    try:
        tree = ast.parse(path.read_bytes())
    except (OSError, SyntaxError, ValueError):
        return ""
    body = [n for n in tree.body if not (isinstance(n, ast.Expr) and isinstance(n.value, ast.Constant))]
    functions = [n.name for n in body if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))]
    if not functions or not all(isinstance(n, _DEFINITIONS) for n in body):
        return ""
    called = "main" if "main" in functions else functions[0]
    listed = ", ".join(f"{name}()" for name in functions[:3]) + (", ..." if len(functions) > 3 else "")
    return (
        f"finished without starting a run: {path.relative_to(root)} only defines {listed} and nothing calls "
        f'{"it" if len(functions) == 1 else "them"} when it runs: end it with `if __name__ == "__main__": '
        f"{called}()`, or make training.command the command that calls it"
    )


# What a module's top level may hold and still run nothing when it is run.
_DEFINITIONS = (
    ast.Import,
    ast.ImportFrom,
    ast.FunctionDef,
    ast.AsyncFunctionDef,
    ast.ClassDef,
    ast.Assign,
    ast.AnnAssign,
)


def _not_started(argv: list[str], root: Path) -> str:
    """Why ``argv`` did not start, where loopline can tell: a file of the repository named as a command
    (``train.py`` for ``python train.py``), or a command of the repository's package not installed."""
    name = argv[0]
    path = root / name
    if path.is_file():
        runner = "python" if path.suffix == ".py" else "bash" if path.suffix == ".sh" else None
        if runner is not None:
            line = shlex.join([runner, *argv])
            return (
                f": {name} is a file of the repository, not a command; run it with {runner}: set "
                f"training.command to '{line}' in loopline.yaml"
            )
        return (
            f": {name} is a file of the repository that cannot run by itself; name the program that runs it"
        )
    target = console_scripts(root).get(name)
    return (
        f": {name} is a command of this repository's package ({target}, pyproject.toml's scripts), which the "
        "Python loopline runs does not have: install the repository into it (pip install -e .)"
        if target
        else ""
    )


def run_training(
    *,
    root: Path,
    command: str,
    store: WorkspaceStore,
    experiment: str,
    tags: dict[str, str],
    log_path: Path,
    timeout: float,
    on_line: Callable[[str], None] | None = None,
    extra_env: dict[str, str] | None = None,
    stop: threading.Event | None = None,
) -> None:
    """Run ``command`` in ``root`` with MLflow pointed at ``store`` (default ``experiment``), every run it
    starts tagged with ``tags`` (and ``extra_env`` in its environment); raise on failure. Setting
    ``stop`` stops the training (it then fails as killed)."""
    argv = _command(command)
    with command_environment(
        argv, {**training_environment(store, experiment, tags), **(extra_env or {})}
    ) as env:
        _run(
            argv, command, env=env, root=root, log_path=log_path, timeout=timeout, on_line=on_line, stop=stop
        )


def _run(
    argv: list[str],
    command: str,
    *,
    env: dict[str, str],
    root: Path,
    log_path: Path,
    timeout: float,
    on_line: Callable[[str], None] | None,
    stop: threading.Event | None,
) -> None:
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with log_path.open("w", encoding="utf-8") as log:

        def said(line: str) -> None:
            log.write(line)
            if on_line is not None:
                on_line(line.rstrip("\n"))

        try:
            code = children.streamed(argv, on_line=said, timeout=timeout, stop=stop, cwd=root, env=env)
        except OSError as exc:
            cause = _not_started(argv, root)
            raise TrainingFailed(
                command=command, outcome=f"could not start ({exc.strerror}){cause}", log=log_path
            ) from None
    if code is None:
        raise TrainingFailed(
            command=command,
            outcome=f"ran longer than training.timeout_seconds ({timeout:g} s)"
            + known_cause(log_path, root, command),
            log=log_path,
        )
    if code != 0:
        outcome = f"was killed by signal {-code}" if code < 0 else f"exited with code {code}"
        raise TrainingFailed(
            command=command, outcome=outcome + known_cause(log_path, root, command), log=log_path
        )


_UNTRUSTED = re.compile(r"Untrusted types found in the file: \[([^\]]*)\]")
_UNREACHED = re.compile(r"API request to (\S+?)/api/2\.0/mlflow/\S* failed with exception")
# SQL stores say the first, file stores and servers the second.
_NO_EXPERIMENT_ID = re.compile(r"No Experiment with id=(\S+) exists|Could not find experiment with ID (\S+)")
_SAVED_BEFORE = re.compile(r"MlflowException: Path '([^']*)' already exists and is not empty")


def own_class_advice(name: str, untrusted: Sequence[str] = ()) -> str:
    """What to do with a model holding ``name``, a class of the training script (``__main__``) itself
    (``untrusted``: every type skops refused, the script's own named ``__main__.X``, all of them to trust
    once the script's own are moved, so that one change of the script saves the model)."""
    listed = ", ".join(repr(n) for n in _trusted_once_moved(untrusted) or [f"features.{name}"])
    return (
        f"the model holds {name}, which the training script defines itself and no serving process "
        f"can load; move {name} into a module of the repository (features.py, say), import it from there, "
        f"and pass code_paths=['features.py'] to log_model (with skops_trusted_types=[{listed}] "
        "for scikit-learn)"
    )


def _trusted_once_moved(untrusted: Sequence[str]) -> list[str]:
    """The types skops refused (``untrusted``) as they are named once the training script's own
    (``__main__.X``) are moved to features.py: those first, then the rest as they are."""
    own = [f"features.{n.removeprefix('__main__.')}" for n in untrusted if n.startswith("__main__.")]
    return own + [n for n in untrusted if not n.startswith("__main__.")]


def lambda_advice(untrusted: Sequence[str]) -> str:
    """What to do with a scikit-learn model holding a lambda (``FunctionTransformer(lambda x: ...)``, as
    tutorials write it), which skops saves by its name and so cannot save at all, trusted or not
    (``untrusted``: every type skops refused; the other names are to trust once the lambda is a function
    of a module)."""
    others = [n for n in untrusted if not n.endswith(".<lambda>")]
    listed = ", ".join(repr(n) for n in ["features.double", *_trusted_once_moved(others)])
    return (
        "the model holds a lambda (a FunctionTransformer's, say), which skops, MLflow's format for "
        "scikit-learn models, cannot save: define it as a function in a module of the repository "
        "(def double(values): ... in features.py), import it from there, and pass code_paths=['features.py'] "
        f"and skops_trusted_types=[{listed}] to mlflow.sklearn.log_model; or pass "
        "serialization_format='cloudpickle' to it, which saves the lambda itself"
    )


_CATEGORIES = (
    "categorical_feature do not match",
    "DataFrame.dtypes for data must be int, float, bool or category",
)


def categories_advice(reason: str) -> str:
    """What to do with a model whose answer to its input example fails as ``reason`` says where it was
    fitted on pandas category columns (LightGBM's, or XGBoost's with ``enable_categorical``), which a
    request's JSON, and the example saved with the model, give as text. Empty for any other reason."""
    if not any(said in reason for said in _CATEGORIES):
        return ""
    return (
        "the model was fitted on pandas category columns, which a request (and the input example MLflow "
        "saved) gives as text: encode them in the model, a scikit-learn Pipeline of an OrdinalEncoder "
        "(or a ColumnTransformer) before the booster, logged with mlflow.sklearn.log_model"
    )


_MAIN_CLASS = re.compile(r"module '__main__' has no attribute '(\w+)'")


def check_advice(reason: str, root: Path | None = None) -> str:
    """``reason``, why a model failed the check of loading it and answering its input example outside its
    training, with what to do where that is known: a class of the training script itself (instead of
    the reason), a module of the repository at ``root`` the model does not hold, category columns, what the
    sandbox withholds (a variable, a connection)."""
    if found := _MAIN_CLASS.search(reason):
        return own_class_advice(found[1])
    advice = (
        (own_module_advice(reason, root) if root is not None else "")
        or categories_advice(reason)
        or denied_advice(reason)
    )
    return f"{reason}; {advice}" if advice else reason


def own_module_advice(reason: str, root: Path) -> str:
    """What to do with a model whose load ``reason`` says a module is missing that is the repository's own
    (``features.py`` beside the script, a package under ``src/``): the training found it in the repository,
    a serving process has only the model's files. Empty for any other reason."""
    missing = _NO_MODULE.search(reason)
    name = missing[1].partition(".")[0] if missing else ""
    if not name:
        return ""
    listed = run_git(
        root,
        "ls-files",
        "--cached",
        "--others",
        "--exclude-standard",
        "--",
        f":(glob)**/{name}.py",
        f":(glob)**/{name}/__init__.py",
        check=False,
    ).split()
    if not listed:
        return ""
    found = min(listed, key=lambda path: (path.count("/"), path)).removesuffix("/__init__.py")
    return (
        f"{name} is a module of this repository ({found}), which the model's files do not hold: pass "
        f"code_paths=['{found}'] to log_model, so that it goes with the model"
    )


def _tail(log_path: Path) -> str | None:
    """The last 64 KiB of a training's log; None where it cannot be read."""
    try:
        with log_path.open("rb") as log:
            log.seek(max(0, log.seek(0, os.SEEK_END) - (64 << 10)))
            return log.read().decode("utf-8", errors="replace")
    except OSError:
        return None


def _source(root: Path | None, command: str) -> str | None:
    path = training_file(root, command) if root is not None else None
    return source_code(path) if path is not None else None


def _group_cause(tail: str, root: Path | None, command: str | None) -> str:
    """Where ``command`` ran a group of sub-commands without one (its usage ends the log): which to add."""
    return group_usage(tail, _source(root, command), command) if command is not None else ""


def no_sub_command(log_path: Path, root: Path, command: str) -> str:
    """Why a training that ended well started no run, where it is a group of sub-commands ``command``
    names none of (its log ends in their usage, or the script declares them and does nothing without
    one): which sub-command to add; else nothing."""
    tail = _tail(log_path) or ""
    cause = _group_cause(tail, root, command)
    if not cause:
        names = sub_commands(_source(root, command) or "") or []
        if names and not set(shlex.split(command)) & set(names):
            cause = add_sub_command(names, command)
    return f"finished without starting a run{cause}" if cause else ""


def known_cause(log_path: Path, root: Path | None = None, command: str | None = None) -> str:
    """What the end of a failed training's log says in a way worth repeating (``: ...``), or nothing: the
    MLflow errors that first trainings meet, each fixed in the script (below, and a tracking server of the
    script's own that does not answer, an experiment named by an ID of another store); why a notebook
    failed; a group of sub-commands ``command`` names none of; the arguments a script refused; a module
    of the repository at ``root`` (or one ``python -m`` names) that Python does not find; else the
    exception that ended it.

    - MLflow 3.17 and later saves scikit-learn models with skops and refuses, at ``log_model``, the types
      skops does not trust, which every tree model and some imputers have.
    - ``save_model`` into a fixed folder (as Azure ML's tutorial does) works once: each run of a job there
      has a fresh folder, while here every training runs in the project's folder."""
    tail = _tail(log_path)
    if tail is None:
        return ""
    # a step of an Azure ML pipeline: why it failed is in its output, before the runner's last line
    failed = list(_STEP.finditer(tail))
    if failed:
        tail = tail[: failed[-1].start()]
    cause = (
        _mlflow_cause(tail)
        or _notebook_cause(tail)
        or _module_cause(tail, root)
        or _group_cause(tail, root, command)
        or _script_cause(tail)
    )
    cause += (_own_folder_advice(cause, root, command) or _missing_file_advice(cause, root)) + (
        _submodule_advice(cause, root) or _uninstalled_advice(cause)
    )
    cause += unset_variable_advice(cause, tail, command)
    if advice := categories_advice(cause):  # log_model checks the input example: it fails there too
        cause += f"; {advice}"
    return f": step {failed[-1]['step']} failed{cause}" if failed else cause


_STEP = re.compile(
    re.escape(STEP_FAILED).replace(r"\{step\}", r"(?P<step>\S+)").replace(r"\{code\}", r"-?\d+"), re.M
)


def _mlflow_cause(tail: str) -> str:
    if found := _UNTRUSTED.findall(tail):
        names = [name.strip().strip("'\"") for name in found[-1].split(",") if name.strip()]
        if any(name.endswith(".<lambda>") for name in names):
            return f": {lambda_advice(names)}"
        own = [name.removeprefix("__main__.") for name in names if name.startswith("__main__.")]
        if own:  # trusting them would not help: no other process can import the training script's classes
            return f": {own_class_advice(own[0], names)}"
        types = ", ".join(repr(name) for name in names)
        return (
            ": MLflow would not save a scikit-learn model holding types skops does not trust; if you trust "
            f"the model, pass skops_trusted_types=[{types}] to mlflow.sklearn.log_model"
        )
    if unreached := _UNREACHED.search(tail):
        return (
            f": MLflow was sent to {unreached[1]}, where nothing answered (the script's own "
            "mlflow.set_tracking_uri, say); remove that call: loopline points MLflow at the workspace "
            "through MLFLOW_TRACKING_URI"
        )
    if named := _NO_EXPERIMENT_ID.search(tail):
        return (
            f": the script names MLflow experiment {named[1] or named[2]} by its ID, which only the store it "
            "was made in knows; name it instead (mlflow.set_experiment('churn')), or leave it to loopline"
        )
    if found := _SAVED_BEFORE.findall(tail):
        return (
            f": mlflow save_model found '{found[-1]}' made by an earlier run; every training runs in the "
            "project's folder, so save into a temporary folder (or delete that one first)"
        )
    return ""


_ANSI = re.compile(r"\x1b\[[0-9;]*m")
_CELL_FAILED = re.compile(r'Exception encountered at "In \[(\d+)\]":')
_NO_RUNNER = re.compile(r"No module named '?papermill|No such kernel named python3")


def _notebook_cause(tail: str) -> str:
    """Why a notebook run by papermill failed: the cell and its error, or the missing runner."""
    if _NO_RUNNER.search(tail):
        return (
            ": running a notebook takes papermill and ipykernel in loopline's Python: "
            "pip install papermill ipykernel"
        )
    if not (found := _CELL_FAILED.findall(tail)):
        return ""
    after = _ANSI.sub("", tail[tail.rindex(f'"In [{found[-1]}]"') :])
    error = next((line.strip() for line in reversed(after.splitlines()) if line.strip()), "")
    return f": the notebook's cell In [{found[-1]}] raised {error}"


_NO_MODULE = re.compile(r"No module named '([\w.]+)'")
_NO_SPEC = re.compile(r"Error while finding module specification for '([^']+)' \((.+)\)\s*$", re.M)


def _module_cause(tail: str, root: Path | None) -> str:
    """A module that the training imports (or ``python -m`` runs) and Python does not find: where it is
    a package of the repository (at its top or under ``src/``), how to make it found."""
    missing = _NO_MODULE.findall(tail)
    name = missing[-1].partition(".")[0] if missing else ""
    folder = next(
        (
            f
            for f in (Path(name), Path("src", name))
            if name and root and (root / f / "__init__.py").is_file()
        ),
        None,
    )
    if root is not None and folder is not None:
        return (
            f": {name} is this repository's own package ({folder}), which the Python loopline runs does "
            + (
                "not find: install the repository into it (pip install -e .)"
                if builds_package(root)
                else "not find from the repository's top folder, where the training runs: move it there, or "
                "make the repository installable (a [build-system] in pyproject.toml) and install it"
            )
        )
    if spec := _NO_SPEC.search(tail):  # python -m: no traceback to read
        return f": python -m found no module {spec[1]} ({spec[2]})"
    if _NO_PARENT in tail:
        return (
            f": ImportError: {_NO_PARENT}: the script imports relatively, as a module of its package does; "
            "run it as one (python -m PACKAGE.MODULE, from the folder that holds the package)"
        )
    return ""


_NO_PARENT = "attempted relative import with no known parent package"


_USAGE = re.compile(r"^usage: ", re.M)
_REFUSED_ARGUMENTS = re.compile(r"^(\S+: error: .+)$", re.M)


def _script_cause(tail: str) -> str:
    """The arguments a script's parser refused (argparse's ``error:`` line after its usage), the exception
    of the last traceback in the log (its first line not indented; after a traceback drawn in a box, as
    rich and Typer draw them, the lines below the box, which rich wraps at its width, keeping a space it
    wraps at and folding a long word), or an ``error:`` line the log ends with."""
    lines = tail.rstrip().splitlines()
    if lines and _USAGE.search(tail) and (refused := _REFUSED_ARGUMENTS.match(lines[-1])):
        return (
            f": {refused[1]}; give the script its arguments in the training command (--command of "
            "init --existing, training.command in loopline.yaml)"
        )
    plain, boxed = tail.rfind(_TRACEBACK + ":"), tail.rfind(f" {_TRACEBACK} ")
    if boxed > plain:
        below = tail[boxed:].split(_BOX_BOTTOM)[-1].partition("\n")[2]
        said = "".join(below.split("\n\n")[0].splitlines()).strip()  # a wrap keeps its space, if any
        return f": {said[:300]}" if said else ""
    if plain < 0:  # a refusal of its own, as the pipeline runner's: its last line
        return (
            f": {lines[-1][len('error: ') :].strip()[:300]}"
            if lines and lines[-1].startswith("error: ")
            else ""
        )
    for line in tail[plain:].splitlines()[1:]:
        if line and not line[0].isspace():
            return f": {line.strip()[:300]}"
    return ""


_TRACEBACK = "Traceback (most recent call last)"
_BOX_BOTTOM = "\u2570"  # the corner that starts a box's last line
_NOT_FOUND = re.compile(r"(?:FileNotFoundError|No such file or directory)\b.*?'([^']+)'")


_NOT_INSTALLED = re.compile(r"^: ModuleNotFoundError: No module named '([\w.]+)'")


def _submodule_advice(cause: str, root: Path | None) -> str:
    """Where the exception is a module Python does not find and a submodule of the repository is not
    checked out (a clone made without ``--recurse-submodules``): how to check it out."""
    if root is None or _NOT_INSTALLED.match(cause) is None:
        return ""
    listed = run_git(root, "submodule", "status", "--recursive", check=False).splitlines()
    empty = [line[1:].split()[1] for line in listed if line.startswith("-") and len(line[1:].split()) > 1]
    if not empty:
        return ""
    return (
        f"; the repository's submodule {', '.join(empty)} is not checked out (a clone without "
        "--recurse-submodules leaves it empty): git submodule update --init --recursive"
    )


def _uninstalled_advice(cause: str) -> str:
    """Where the exception is a module the Python loopline runs in cannot import (the training runs on
    it): loopline installed in an environment of its own (pipx, ``uv tool``) lacks the project's."""
    import importlib.util
    import sys

    found = _NOT_INSTALLED.match(cause)
    if found is None:
        return ""
    top = found[1].partition(".")[0]
    try:
        if importlib.util.find_spec(top) is not None:
            return ""
    except (ImportError, ValueError):
        pass
    return (
        f"; the training runs on the Python loopline runs in ({sys.executable}), which has no {top}: install "
        "loopline into the project's environment (pipx and uv tool give it one of its own), or the "
        "project's requirements into loopline's"
    )


def _own_folder_advice(cause: str, root: Path | None, command: str | None) -> str:
    """Where the exception is a relative path that the script's own folder holds and the repository's top
    folder (where the training runs) does not (``../data/train.csv``): say to run it from its folder."""
    found = _NOT_FOUND.search(cause)
    if root is None or command is None or found is None or "://" in found[1] or os.path.isabs(found[1]):
        return ""
    script = next((word for word in python_words(command)[1:] if word.endswith(".py")), None)
    if script is None or os.path.isabs(script) or (root / found[1]).exists():
        return ""
    moved = run_from_its_folder(command, script)
    if (
        moved is None
        or not posixpath.dirname(script)
        or not (root / script).parent.joinpath(found[1]).exists()
    ):
        return ""
    return (
        f"; {script} names {found[1]} from its own folder, and the training runs in the repository's top "
        f"folder: run it from its folder (training.command: `{moved}`)"
    )


def _missing_file_advice(cause: str, root: Path | None) -> str:
    """Where the exception is a file of the repository that is not there and that git ignores or does not
    track (data a step makes, or a file only the author's machine has): the fresh checkout the workflows
    train in lacks it as well, so say how to provide it."""
    found = _NOT_FOUND.search(cause)
    if root is None or found is None or "://" in found[1]:  # an object store's key is no file of it
        return ""
    path = (root / found[1]).resolve()
    if not path.is_relative_to(root.resolve()) or path.exists():
        return ""
    relative = path.relative_to(root.resolve()).as_posix()
    if run_git(root, "ls-files", "--", relative, check=False).strip():
        return ""  # tracked, and deleted by hand: git says so already
    ignored = run_git(root, "check-ignore", "--", relative, check=False).strip()
    why = "git ignores it" if ignored else "git does not track it"
    return (
        f"; {relative} is not in the repository ({why}), and a fresh checkout, where the workflows train, "
        "lacks it too: make it before the training (in the training command, `make data && ...`) or upload "
        "it (`loopline data upload NAME PATH`) and name it in training.inputs"
    )
