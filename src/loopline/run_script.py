"""Run a training script as ``python SCRIPT ARGS...`` (or a module as ``python -m MODULE ARGS...``) would,
with MLflow kept on loopline's workspace.

    python -m loopline.run_script train.py --epochs 3
    python -m loopline.run_script -m churn.train --epochs 3

Scripts written for a tracking server of their own call ``mlflow.set_tracking_uri("http://...")``
(MLflow's own quickstart does): run by the inner loop, their runs would go there instead of the workspace,
or wait minutes on a server that is not there. Here those calls (and ``set_registry_uri``) keep MLflow on
the workspace that ``MLFLOW_TRACKING_URI`` names and say so on stderr, once each, as does a script that
sets ``os.environ["MLFLOW_TRACKING_URI"]`` (said when it ends); the script runs as
``__main__`` with its own ``sys.argv`` and its folder (a module: the current folder) first on ``sys.path``,
as Python runs it.

A command the user's package installs (``churn-train``, its console script for ``churn.train:main``)
runs as ``python -m loopline.run_script --entry churn-train churn.train:main ARGS...``, which calls the
function as the console script would.

A command that is not one Python run (``make train``) finds ``python`` first on its ``PATH`` as a script
calling ``python -m loopline.run_script --as-python ARGS...``: a script or a module of the repository runs
as above, anything else (``python -c``, ``python -m pip``) as the interpreter itself runs it.
"""

from __future__ import annotations

import atexit
import contextlib
import glob
import itertools
import json
import os
import runpy
import shlex
import sys
import tempfile
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from loopline.shell_line import SHELL, uses_shell

__all__ = [
    "OPENED_LOG",
    "PIPELINE_EXPERIMENT",
    "STEP_FAILED",
    "command_argv",
    "command_environment",
    "keep_mlflow_on_the_workspace",
    "main",
    "start_training",
]


def _kept(name: str, variable: str, original: Callable[[Any], None]) -> Callable[[Any], None]:
    """``original`` (``mlflow.<name>``) made to keep the URI the environment gives in ``variable``."""
    workspace = os.environ.get(variable)
    said: set[str] = set()

    def keep(uri: Any) -> None:
        if workspace is None:  # not run by loopline: nothing to keep
            original(uri)
            return
        if str(uri) != workspace and str(uri) not in said:
            said.add(str(uri))
            where = os.environ.get("LOOPLINE_WORKSPACE", "loopline's")
            print(
                f"loopline: mlflow.{name}({str(uri)!r}) ignored: this training logs to the {where} workspace",
                file=sys.stderr,
                flush=True,
            )
        original(workspace)

    keep.__doc__ = original.__doc__
    keep.__name__ = name
    return keep


STEP_FAILED = "loopline: step {step} failed (exit code {code}); the steps after it did not run"
"""What a pipeline's runner says last when one of its steps fails (``azureml_pipeline.py``)."""
PIPELINE_EXPERIMENT = "LOOPLINE_PIPELINE_EXPERIMENT"
"""The experiment (its ID) of the run a pipeline's steps share, in each step's environment."""


def _kept_experiment(original: Callable[..., Any], pipeline_id: str) -> Callable[..., Any]:
    """``mlflow.set_experiment`` made to keep the experiment of a pipeline's run, where every step logs."""
    said: set[str] = set()

    def keep(experiment_name: str | None = None, experiment_id: str | None = None, **kwargs: Any) -> Any:
        kept = original(experiment_id=pipeline_id)
        asked = str(experiment_name if experiment_name is not None else experiment_id)
        if asked not in said and asked not in {pipeline_id, kept.name}:
            said.add(asked)
            print(
                f"loopline: mlflow.set_experiment({asked!r}) ignored: the pipeline's steps log to one run, "
                f"in experiment {kept.name!r}",
                file=sys.stderr,
                flush=True,
            )
        return kept

    keep.__doc__ = original.__doc__
    keep.__name__ = "set_experiment"
    return keep


def keep_mlflow_on_the_workspace() -> None:
    """Make this process's ``mlflow.set_tracking_uri`` and ``set_registry_uri`` keep the workspace's, and
    in a pipeline's step ``mlflow.set_experiment`` keep the experiment of the run the steps share."""
    import mlflow
    import mlflow.tracking
    import mlflow.tracking.fluent

    pipeline = os.environ.get(PIPELINE_EXPERIMENT)
    if pipeline:
        kept_experiment = _kept_experiment(mlflow.set_experiment, pipeline)
        # where it is defined as well: `from mlflow.tracking.fluent import set_experiment`
        mlflow.set_experiment = mlflow.tracking.fluent.set_experiment = kept_experiment

    pinned: dict[str, str] = {}
    for name, variable in (
        ("set_tracking_uri", "MLFLOW_TRACKING_URI"),
        ("set_registry_uri", "MLFLOW_REGISTRY_URI"),
    ):
        original = getattr(mlflow, name)
        kept = _kept(name, variable, original)
        for module in (mlflow, mlflow.tracking):  # `from mlflow.tracking import set_tracking_uri` too
            if hasattr(module, name):
                setattr(module, name, kept)
        if workspace := os.environ.get(variable):
            # Set through MLflow, the URI outranks the variable: a script that sets it in os.environ
            # (os.environ["MLFLOW_TRACKING_URI"] = ..., load_dotenv(override=True)) still logs here.
            original(workspace)
            pinned[variable] = workspace
    if pinned:
        atexit.register(_say_environment_ignored, pinned)


def _say_environment_ignored(pinned: Mapping[str, str]) -> None:
    """Say which of the variables ``pinned`` the script set to another URI, which MLflow did not use."""
    where = os.environ.get("LOOPLINE_WORKSPACE", "loopline's")
    for variable, workspace in pinned.items():
        value = os.environ.get(variable)
        if value is not None and value != workspace:
            print(
                f"loopline: os.environ[{variable!r}] = {value!r} ignored: this training logs to the {where} "
                "workspace",
                file=sys.__stderr__,  # the process's own: a notebook's kernel has closed its cells' by now
                flush=True,
            )


OPENED_LOG = "LOOPLINE_OPENED_LOG"
"""Where a training process notes the files it opens (init's dry run sets it): a line ``r PATH`` for a file
it read before writing it, ``w PATH`` for one it wrote first, each once a process."""


def start_training() -> None:
    """What a training process run through this module does before the training's own code: note the
    files it opens (where ``OPENED_LOG`` says), and keep MLflow on the workspace."""
    if log := os.environ.get(OPENED_LOG):
        _note_opened(log)
    keep_mlflow_on_the_workspace()


def _note_opened(log: str) -> None:
    """Note, in ``log`` when the process ends, each file it opens outside the Python installation: by
    Python's ``open`` audit event, and by the readers and writers that open files natively and raise none
    (pyarrow's, behind ``pandas.read_parquet`` and ``to_parquet`` too), wrapped as their modules are
    imported."""
    import atexit

    installed = tuple({os.path.realpath(p) + os.sep for p in (sys.prefix, sys.base_prefix, sys.exec_prefix)})
    first: dict[str, str] = {}
    written = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_APPEND | os.O_TRUNC

    def note(name: Any, writes: bool) -> None:
        given = os.fspath(name) if isinstance(name, (str, os.PathLike)) else None
        if not isinstance(given, str) or "://" in given:
            return  # a file descriptor, bytes, a buffer, or a file in a store elsewhere
        path = os.path.abspath(given)
        if path not in first and not path.startswith(installed):
            first[path] = "w" if writes else "r"

    def hook(event: str, args: tuple[Any, ...]) -> None:
        if event == "open":
            mode, flags = args[1], args[2]
            note(args[0], any(c in mode for c in "wax+") if isinstance(mode, str) else bool(flags & written))

    def write() -> None:
        lines = "".join(f"{how} {path}\n" for path, how in first.items() if "\n" not in path)
        first.clear()
        with contextlib.suppress(OSError), open(log, "a", encoding="utf-8") as out:
            out.write(lines)  # one write a process, appended to the other processes' lines

    sys.addaudithook(hook)
    sys.meta_path.insert(0, _NativeFiles(note))
    atexit.register(write)


# What opens files natively (no ``open`` audit event), by the module defining it: a function, or a class
# whose instances open the file they are made with; whether it writes (None: as its mode argument, after
# the path, says), and where its call names the file.
_NativeFile = tuple[str, bool | None, int, str]  # name, writes, position, keyword
_NATIVE_FILES: dict[str, tuple[_NativeFile, ...]] = {
    "pyarrow": (("OSFile", None, 0, "path"), ("memory_map", None, 0, "path")),  # DataFrame.to_parquet's
    "pyarrow.parquet.core": (
        ("read_table", False, 0, "source"),
        ("read_pandas", False, 0, "source"),
        ("read_schema", False, 0, "where"),
        ("read_metadata", False, 0, "where"),
        ("ParquetFile", False, 0, "source"),
        ("ParquetDataset", False, 0, "path_or_paths"),
        ("write_table", True, 1, "where"),
        ("ParquetWriter", True, 0, "where"),
        ("write_to_dataset", True, 1, "root_path"),
    ),
    "pyarrow.dataset": (("dataset", False, 0, "source"), ("write_dataset", True, 1, "base_dir")),
    "pyarrow.csv": (
        ("read_csv", False, 0, "input_file"),
        ("open_csv", False, 0, "input_file"),
        ("write_csv", True, 1, "output_file"),
        ("CSVWriter", True, 0, "sink"),
    ),
    "pyarrow.feather": (
        ("read_table", False, 0, "source"),
        ("read_feather", False, 0, "source"),
        ("write_feather", True, 1, "dest"),
    ),
    "pyarrow.orc": (("read_table", False, 0, "source"), ("ORCFile", False, 0, "source")),
    # Polars reads and writes in Rust; a glob ("data/*.parquet") is noted as the files it matches.
    "polars.io.csv.functions": (("read_csv", False, 0, "source"), ("scan_csv", False, 0, "source")),
    "polars.io.parquet.functions": (
        ("read_parquet", False, 0, "source"),
        ("scan_parquet", False, 0, "source"),
        ("read_parquet_schema", False, 0, "source"),
        ("read_parquet_metadata", False, 0, "source"),
    ),
    "polars.io.ipc.functions": (
        ("read_ipc", False, 0, "source"),
        ("scan_ipc", False, 0, "source"),
        ("read_ipc_stream", False, 0, "source"),
        ("read_ipc_schema", False, 0, "source"),
    ),
    "polars.io.ndjson": (("read_ndjson", False, 0, "source"), ("scan_ndjson", False, 0, "source")),
    "polars.io.avro": (("read_avro", False, 0, "source"),),
    "polars.dataframe.frame": tuple(
        (f"DataFrame.write_{kind}", True, 1, "file") for kind in ("csv", "parquet", "ipc", "ndjson", "avro")
    ),
    "polars.lazyframe.frame": tuple(
        (f"LazyFrame.sink_{kind}", True, 1, "path") for kind in ("csv", "parquet", "ipc", "ndjson")
    ),
}


class _NativeFiles:
    """An import hook that wraps what ``_NATIVE_FILES`` names once its module has run (before any other
    module takes it: ``pandas.read_parquet`` and ``DataFrame.to_parquet`` call pyarrow's), to note the paths
    it reads or writes."""

    def __init__(self, note: Callable[[Any, bool], None]) -> None:
        self.note = note

    def find_spec(self, name: str, path: Any, target: Any = None) -> Any:
        if name not in _NATIVE_FILES:
            return None
        import importlib.machinery

        spec = importlib.machinery.PathFinder.find_spec(name, path)
        if spec is None or spec.loader is None or not hasattr(spec.loader, "exec_module"):
            return None
        run = spec.loader.exec_module

        def exec_module(module: Any) -> None:
            run(module)
            for entry in _NATIVE_FILES[name]:
                owner_name, _, attribute = entry[0].rpartition(".")  # Class.method, or a module's name
                owner = getattr(module, owner_name, None) if owner_name else module
                original = getattr(owner, attribute, None)
                with contextlib.suppress(Exception):  # one that cannot be wrapped stays as it is
                    if callable(original):
                        setattr(owner, attribute, self._noting(original, entry))

        spec.loader.exec_module = exec_module  # type: ignore[method-assign]
        return spec

    def _noting(self, original: Any, entry: _NativeFile) -> Any:
        note = self.note
        _name, writes, position, keyword = entry

        def paths(args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
            given = args[position] if len(args) > position else kwargs.get(keyword)
            mode = args[position + 1] if len(args) > position + 1 else kwargs.get("mode", "r")
            with contextlib.suppress(Exception):  # noting never stops the training
                for one in given if isinstance(given, (list, tuple)) else (given,):
                    matched = (
                        glob.glob(one, recursive=True) if isinstance(one, str) and glob.has_magic(one) else []
                    )
                    for each in matched or [one]:
                        note(each, any(c in str(mode) for c in "wax+") if writes is None else writes)

        if isinstance(original, type):
            init = original.__init__  # type: ignore[misc]  # object's, for a native class made with its arguments

            class Noting(original):  # type: ignore[misc]
                def __init__(self, *args: Any, **kwargs: Any) -> None:
                    paths(args, kwargs)
                    if init is not object.__init__:
                        init(self, *args, **kwargs)

            Noting.__name__ = Noting.__qualname__ = original.__name__
            Noting.__module__ = original.__module__
            return Noting

        import functools

        @functools.wraps(original)
        def opens(*args: Any, **kwargs: Any) -> Any:
            paths(args, kwargs)
            return original(*args, **kwargs)

        return opens


def training_argv(command: str) -> list[str]:
    """The arguments that run the training ``command``: a line of shell syntax (``make data && python
    train.py``, ``DATA=... python train.py``) through ``/bin/sh -c``, its ``python`` loopline's own (see
    ``command_environment``); else its words, as ``command_argv`` gives them. Raises ValueError where its
    quotes do not pair up."""
    words = shlex.split(command)
    return [SHELL, "-c", command] if uses_shell(command) else command_argv(words)


def command_argv(argv: list[str]) -> list[str]:
    """A training command's arguments as loopline runs them: ``python`` is the interpreter loopline runs
    in (so the training sees the same packages), and ``python SCRIPT.py ...``, ``python -m MODULE ...``
    (a module of the user's, not papermill's or loopline's own runners) and a command the user's package
    installs (``churn-train ...``, its console script) run through this module."""
    if not argv:
        return []
    if argv[0] not in {"python", "python3"}:
        entry = _own_entry_point(argv[0])
        return (
            [sys.executable, "-m", "loopline.run_script", _ENTRY, argv[0], entry, *argv[1:]]
            if entry
            else list(argv)
        )
    script = len(argv) > 1 and argv[1].endswith(".py")
    module = len(argv) > 2 and argv[1] == "-m" and argv[2].partition(".")[0] not in _RUNNERS
    return [sys.executable, *(["-m", "loopline.run_script"] if script or module else []), *argv[1:]]


_RUNNERS = frozenset({"papermill", "loopline"})
"""Modules a training command may name that run the training themselves: a notebook's, a pipeline's."""


# Run in a notebook's kernel before its first cell, outside its history and its cell numbers.
_KERNEL_SETUP = "__import__('loopline.run_script').run_script.start_training()"


@contextlib.contextmanager
def command_environment(argv: Sequence[str], env: Mapping[str, str]) -> Iterator[dict[str, str]]:
    """The environment to run ``argv`` (as ``command_argv`` gives it) in, while it runs.

    A notebook run by papermill gets a ``python3`` kernel of its own, first on ``JUPYTER_PATH``, that keeps
    MLflow on the workspace as a script run through this module does; the user's kernels and IPython
    profile stay as they are. A command that is not one Python run (``make train``, ``bash train.sh``, a
    DVC stage) gets ``python``, ``python3`` and ``python3.N`` first on ``PATH``: the interpreter loopline
    runs in, running a script or a module of the repository through this module (anything else, ``python
    -m pip`` say, as Python would)."""
    given = dict(env)
    if "papermill" in argv[1:3]:
        with _notebook_kernel(argv[0], given) as kept:
            yield kept
    elif argv and argv[0] != sys.executable:
        with _python_on_path(given) as kept:
            yield kept
    else:
        yield given


@contextlib.contextmanager
def _python_on_path(env: dict[str, str]) -> Iterator[dict[str, str]]:
    with tempfile.TemporaryDirectory(prefix="loopline-python-") as folder:
        line = f'#!/bin/sh\nexec {shlex.quote(sys.executable)} -m loopline.run_script {_AS_PYTHON} "$@"\n'
        major, minor = sys.version_info[:2]
        for name in ("python", f"python{major}", f"python{major}.{minor}"):
            shim = Path(folder, name)
            shim.write_text(line)
            shim.chmod(0o755)
        env["PATH"] = os.pathsep.join(p for p in (folder, env.get("PATH")) if p)
        yield env


@contextlib.contextmanager
def _notebook_kernel(python: str, env: dict[str, str]) -> Iterator[dict[str, str]]:
    with tempfile.TemporaryDirectory(prefix="loopline-kernel-") as folder:
        spec = Path(folder, "kernels", "python3")
        spec.mkdir(parents=True)
        kernel = [python, "-m", "ipykernel_launcher", "-f", "{connection_file}"]
        spec.joinpath("kernel.json").write_text(
            json.dumps(
                {
                    "argv": [*kernel, f"--IPKernelApp.exec_lines={_KERNEL_SETUP}"],
                    "display_name": "Python 3 (ipykernel)",
                    "language": "python",
                }
            ),
            encoding="utf-8",
        )
        env["JUPYTER_PATH"] = os.pathsep.join(p for p in (folder, env.get("JUPYTER_PATH")) if p)
        yield env


_ENTRY = "--entry"
"""How a command of the user's package runs through this module: ``--entry NAME MODULE:FUNCTION ARGS...``."""


def _own_entry_point(name: str) -> str | None:
    """``MODULE:FUNCTION`` of the command ``name`` that a package of the user's installs (its console
    script, as ``pip install -e .`` makes it), where ``name`` is one."""
    from importlib.metadata import entry_points

    if not name or os.sep in name or name.startswith("-"):
        return None
    found = [e for e in entry_points(group="console_scripts", name=name) if _own_module(e.module)]
    return f"{found[0].module}:{found[0].attr}" if found else None


def _call_entry(name: str, entry: str, args: list[str]) -> None:
    """Call ``entry`` (``MODULE:FUNCTION``) as the console script ``name`` does, MLflow kept."""
    import functools
    import importlib

    module, _, attribute = entry.partition(":")
    sys.argv = [name, *args]
    sys.path[0] = os.path.dirname(sys.executable)  # a console script's own folder, not the current one
    start_training()
    function: Any = functools.reduce(getattr, attribute.split("."), importlib.import_module(module))
    sys.exit(function())


_AS_PYTHON = "--as-python"
"""How the ``python`` put on a command's ``PATH`` calls this module: with the arguments ``python`` got."""

# Options of Python's that take no value, as they come before a script in `python -u train.py`.
_FLAGS = frozenset({"-u", "-B", "-O", "-OO", "-s", "-S", "-E", "-b", "-bb", "-q", "-d", "-v"})


def _as_python(args: list[str]) -> None:
    """Do what ``python ARGS`` does, a script or a module of the repository kept on the workspace."""
    flags = list(itertools.takewhile(_FLAGS.__contains__, args))
    rest = args[len(flags) :]
    script = bool(rest) and rest[0].endswith(".py") and os.path.isfile(rest[0])
    module = len(rest) > 1 and rest[0] == "-m" and _own_module(rest[1])
    kept = ["-m", "loopline.run_script", *rest] if script or module else rest
    if flags or not (script or module):
        os.execv(sys.executable, [sys.executable, *flags, *kept])
    sys.argv = [sys.argv[0], *rest]
    main()


def _own_module(name: str) -> bool:
    """Whether ``name`` is a module of the user's (not the runner of a notebook or pipeline, nor one of the
    Python installation: pip, venv, pytest, ...)."""
    import importlib.util
    import site
    import sysconfig

    top = name.partition(".")[0]
    if top in _RUNNERS:
        return False
    sys.path.insert(0, os.getcwd())  # where `python -m` looks first
    try:
        spec = importlib.util.find_spec(top)
    except (ImportError, ValueError):
        return False
    finally:
        sys.path.pop(0)
    origin = spec and (spec.origin or next(iter(spec.submodule_search_locations or []), None))
    if not origin or origin in {"built-in", "frozen"}:
        return False
    installed = {sys.prefix, sys.base_prefix, sys.exec_prefix, *sysconfig.get_paths().values()}
    installed.update([*site.getsitepackages(), site.getusersitepackages()])
    where = os.path.realpath(origin)
    return not any(where.startswith(os.path.realpath(p) + os.sep) for p in installed if p)


def main() -> None:
    """Run ``sys.argv[1]`` (or the module ``-m`` names) as ``__main__`` with the arguments after it, with
    ``sys.path`` as ``python SCRIPT`` (the script's folder first) or ``python -m`` (the current folder)
    has it."""
    if sys.argv[1:2] == [_AS_PYTHON]:
        _as_python(sys.argv[2:])
        return
    if sys.argv[1:2] == [_ENTRY] and len(sys.argv) > 3:
        _call_entry(sys.argv[2], sys.argv[3], sys.argv[4:])
    if len(sys.argv) < 2 or (sys.argv[1:2] == ["-m"] and len(sys.argv) < 3):
        raise SystemExit("usage: python -m loopline.run_script SCRIPT|-m MODULE [ARGS...]")
    if sys.argv[1] == "-m":
        module = sys.argv[2]
        sys.argv = [module, *sys.argv[3:]]  # runpy puts the module's file in sys.argv[0]
        sys.path[0] = os.getcwd()
        start_training()
        runpy.run_module(module, run_name="__main__", alter_sys=True)
        return
    script = sys.argv[1]
    sys.argv = sys.argv[1:]
    sys.path[0] = os.path.dirname(os.path.abspath(script))
    start_training()
    runpy.run_path(script, run_name="__main__")


if __name__ == "__main__":
    main()
