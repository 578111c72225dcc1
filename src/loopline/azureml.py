"""Azure ML files a repository that trained there keeps: command and sweep jobs (``az ml job create
--file``), and the data asset and environment files they name (``az ml data create --file``, ``az ml
environment create --file``). Pipeline jobs are ``azureml_pipeline.py``'s, endpoint and deployment files
``azureml_endpoints.py``'s.

A command job keeps the training command, with the arguments the script needs (``python main.py --data
${{inputs.data}} --test_train_ratio ${{inputs.ratio}}``). ``init --existing`` takes it from the file: each
``${{inputs.NAME}}`` becomes the input's value (a literal, a local path, or a URL), each
``${{outputs.NAME}}`` a folder ``outputs/NAME``, and a script named from the job's ``code`` folder gets its
path from the repository's root, where loopline runs the training. An input Azure ML reads from its own
storage (``azureml:credit-data:1``, ``azureml://datastores/...``, ``abfss://...``) becomes loopline's
``{inputs.NAME}``: a data asset of loopline's (``azureml:NAME``'s name, else the input's) that the training
reads, verified, from ``training.inputs``; a data asset file of the repository names a local copy of it.
A sweep job gives ``loopline sweep`` its search space, objective and trial limit, its trial the training
command where no command job does (with the middle of each range). What only Azure ML provides (its
environments, compute, instance types) has no other meaning here: what would change the outcome is
refused, naming it; what only sizes Azure's machines is listed as not used.
"""

from __future__ import annotations

import math
import re
import shlex
from collections.abc import Callable, Collection, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from loopline.errors import UsageError

__all__ = [
    "ANY_PLACEHOLDER",
    "AZURE_ONLY",
    "DATA_ASSET",
    "URL",
    "DataAssetFile",
    "JobCommand",
    "JobInput",
    "command_line",
    "conda_file",
    "data_asset_files",
    "environment_files",
    "find_job_command",
    "local_asset_copies",
    "read_yaml",
    "training_line",
    "yaml_files",
]

_PLACEHOLDER = re.compile(r"\$\{\{\s*(inputs|outputs)\.([A-Za-z0-9_]+)\s*\}\}")
ANY_PLACEHOLDER = re.compile(r"\$\{\{.*?\}\}")  # any ${{...}} of a job file
URL = re.compile(r"^[a-z][a-z0-9+.-]*://")  # https://, s3://: read as they are
_PYTHON = {"python", "python3"}
_HELPERS = {"echo", "ls", "cat", "pwd", "env", "nvidia-smi", "pip", "printenv"}  # lines that train nothing
AZURE_ONLY = ("azureml:", "azureml://", "wasbs://", "wasb://", "abfss://", "abfs://", "adl://")
_SKIPPED = frozenset({".git", ".venv", "venv", "env", "node_modules", "site-packages", "build", "dist"})


@dataclass(frozen=True)
class JobInput:
    """An input of a command job that Azure ML reads from its own storage: a data asset here."""

    name: str  # the input's name: {inputs.NAME} in the command
    asset: str  # the data asset of loopline's it becomes
    azure: str  # what the job file gives (azureml:credit-data:1, say)
    file: str  # the job file, relative to the root


@dataclass(frozen=True)
class JobCommand:
    """The training command of an Azure ML command job file, run from the repository's root."""

    command: str
    file: str  # the job file, relative to the root
    code: str  # the job's code folder, relative to the root ("" for the root)
    inputs: tuple[JobInput, ...] = ()  # read from data assets: {inputs.NAME} in the command
    sweep: dict[str, Any] | None = None  # loopline's sweep: section, from a sweep job file
    sweep_file: str = ""  # that file, relative to the root
    conda_file: str = ""  # the conda environment file of the job's environment, relative to the root
    steps: tuple[str, ...] = ()  # a pipeline job's steps, in the order they run
    scripts: tuple[str, ...] = ()  # the scripts those steps run, from the root


def yaml_files(
    root: Path, read: Callable[[Path], dict[str, Any] | None], depth: int = 3
) -> list[tuple[Path, dict[str, Any]]]:
    """YAML files (``depth`` folders down) that ``read`` gives a document for, with it."""
    found = []
    folders = [root]
    for _ in range(depth + 1):
        nested = []
        for folder in folders:
            for entry in sorted(folder.iterdir()):
                if entry.is_dir() and entry.name not in _SKIPPED and not entry.name.startswith("."):
                    nested.append(entry)
                elif entry.suffix in {".yml", ".yaml"} and entry.is_file():
                    document = read(entry)
                    if document is not None:
                        found.append((entry, document))
        folders = nested
    return found


_LARGEST_JOB_FILE = 1 << 20  # a job file is a page of YAML; a larger one (data kept as YAML) is not read


def read_yaml(path: Path) -> Any:
    try:
        if path.stat().st_size > _LARGEST_JOB_FILE:
            return None
        return yaml.safe_load(path.read_text(encoding="utf-8", errors="replace"))
    except (yaml.YAMLError, OSError):
        return None


def _command_job(document: Any) -> bool:
    if not isinstance(document, dict) or not isinstance(document.get("command"), str):
        return False
    if "commandComponent" in str(document.get("$schema", "")):  # a pipeline's step, not a job
        return False
    return "commandJob" in str(document.get("$schema", "")) or document.get("type") == "command"


def _job_document(path: Path) -> dict[str, Any] | None:
    """A command job file's document; a sweep job file's trial (its own, or the command job file it
    names), with the sweep's inputs and the sweep itself under ``_sweep``; None for any other file."""
    document = read_yaml(path)
    if _command_job(document):
        return dict(document)
    if not isinstance(document, dict) or not (
        "sweepJob" in str(document.get("$schema", "")) or document.get("type") == "sweep"
    ):
        return None
    trial = document.get("trial")
    if isinstance(trial, str):  # trial: ./train.yml
        trial = read_yaml(path.parent / trial)
    if not isinstance(trial, dict) or not isinstance(trial.get("command"), str):
        return None
    inputs = {**(trial.get("inputs") or {}), **(document.get("inputs") or {})}
    return {**trial, "inputs": inputs, "_sweep": document}


_DATA_TYPES = {"uri_file", "uri_folder", "mltable"}


@dataclass(frozen=True)
class DataAssetFile:
    """An Azure ML data asset file whose data is in the repository (``az ml data create --file``)."""

    name: str
    path: str  # the data, relative to the root
    file: str  # the data asset file, relative to the root


def data_asset_files(root: Path) -> dict[str, DataAssetFile]:
    """The repository's Azure ML data asset files that name data in it, by the asset's name."""

    def read(path: Path) -> dict[str, Any] | None:
        document = read_yaml(path)
        if not isinstance(document, dict) or document.get("type") not in _DATA_TYPES:
            return None
        if not isinstance(document.get("name"), str) or not isinstance(document.get("path"), str):
            return None
        return None if {"command", "jobs", "trial"} & set(document) else dict(document)

    found = {}
    for path, document in yaml_files(root, read):
        data = (path.parent / document["path"]).resolve()
        if data.is_relative_to(root) and data.exists():
            where = path.relative_to(root).as_posix()
            found[document["name"]] = DataAssetFile(
                document["name"], data.relative_to(root).as_posix(), where
            )
    return found


def local_asset_copies(root: Path, inputs: Iterable[JobInput]) -> dict[str, str]:
    """For each input read from an Azure ML data asset whose file is in the repository (an asset file's
    local ``path``), that data, by the input's name: ``init``'s run reads it where no ``--input`` says."""
    inputs = list(inputs)
    files = data_asset_files(root) if inputs else {}
    return {item.name: str(root / files[item.asset].path) for item in inputs if item.asset in files}


def find_job_command(root: Path, skip: Collection[Path] = ()) -> JobCommand | None:
    """The training command of the repository's Azure ML command job file (other than those ``skip``
    names: a pipeline's component files); None when it has none."""
    jobs = [job for job in yaml_files(root, _job_document) if job[0] not in skip]
    commands = [job for job in jobs if "_sweep" not in job[1]]
    sweeps = [job for job in jobs if "_sweep" in job[1]]
    for found, kind in ((commands, "command"), (sweeps, "sweep")):
        if len(found) > 1:
            listed = ", ".join(str(path.relative_to(root)) for path, _ in found[:5])
            raise UsageError(
                f"several Azure ML {kind} job files could be the training ({listed}); name the training "
                "with --command 'python PATH ARGS'"
            )
    if not jobs:
        return None
    path, document = (commands or sweeps)[0]
    where = str(path.relative_to(root))
    sweep, sweep_file = None, ""
    defaults: dict[str, str] = {}
    if sweeps:
        sweep_path, sweep_document = sweeps[0]
        sweep_file = str(sweep_path.relative_to(root))
        parameters, defaults = _search_space(sweep_file, sweep_document["_sweep"].get("search_space"))
        placeholders = {name: f"{{{name}}}" for name in parameters}
        trial = _job_command(root, sweep_path, sweep_document, sweep_file, placeholders)
        sweep = _sweep_section(sweep_document["_sweep"], parameters, trial.command)
    job = _job_command(root, path, document, where, defaults)
    return JobCommand(job.command, where, job.code, job.inputs, sweep, sweep_file, job.conda_file)


def _job_command(
    root: Path, path: Path, document: dict[str, Any], where: str, search: dict[str, str]
) -> JobCommand:
    """The training command of one job file's document, run from ``root``; each
    ``${{search_space.NAME}}`` becomes ``search[NAME]``."""
    code = (path.parent / str(document.get("code") or ".")).resolve()
    if not code.is_relative_to(root):
        raise UsageError(f"{where}: its code folder {document.get('code')} is outside the repository")
    line = training_line(where, str(document["command"]))
    for name, value in search.items():
        line = re.sub(r"\$\{\{\s*search_space\." + re.escape(name) + r"\s*\}\}", value, line)
    assets: list[JobInput] = []  # filled in with the job file's inputs read from Azure ML's storage
    filled = _fill(where, line, path.parent, root, document, assets)
    inside = code.relative_to(root).as_posix()
    command = _from_root(where, filled, code, root)
    conda = conda_file(root, path, document.get("environment"))
    return JobCommand(command, where, "" if inside == "." else inside, tuple(assets), conda_file=conda)


def conda_file(root: Path, path: Path, environment: Any, named: Mapping[str, str] | None = None) -> str:
    """The conda file an environment of the job file ``path`` names (``conda_file:``), from ``root``: its
    own, or that of the repository's environment file of the name it gives (``azureml:NAME@latest``, as
    ``az ml environment create --file`` registered it; ``named``: those files, where already read); ""
    where it names none in the repository."""
    if isinstance(environment, str):
        reference = _ENVIRONMENT.match(environment)
        files = environment_files(root) if named is None else named
        return files.get(reference["name"], "") if reference else ""
    named = environment.get("conda_file") if isinstance(environment, dict) else None
    if not isinstance(named, str):
        return ""
    file = (path.parent / named).resolve()
    return file.relative_to(root).as_posix() if file.is_relative_to(root) and file.is_file() else ""


_ENVIRONMENT = re.compile(r"^azureml:(?P<name>[A-Za-z0-9][A-Za-z0-9._-]*)(?::[^@:]+|@latest)?$")


def environment_files(root: Path) -> dict[str, str]:
    """The conda file of each of the repository's Azure ML environment files, by the environment's name."""

    def read(path: Path) -> dict[str, Any] | None:
        document = read_yaml(path)
        if not isinstance(document, dict) or "environment" not in str(document.get("$schema", "")).lower():
            return None
        return dict(document) if isinstance(document.get("name"), str) else None

    found = {}
    for path, document in yaml_files(root, read):
        conda = conda_file(root, path, {"conda_file": document.get("conda_file")})
        if conda:
            found[document["name"]] = conda
    return found


def _search_space(where: str, space: Any) -> tuple[dict[str, dict[str, Any]], dict[str, str]]:
    """A sweep job's ``search_space`` as loopline's ``sweep.parameters``, and a value of each for the one
    training that is not a trial (a range's middle, the first choice)."""
    if not isinstance(space, dict) or not space:
        raise UsageError(f"{where}: a sweep job needs a search_space; loopline reads its ranges and choices")
    parameters: dict[str, dict[str, Any]] = {}
    for name, given in space.items():
        kind = str(given.get("type", "")) if isinstance(given, dict) else ""
        try:
            parameters[str(name)] = _parameter(kind, given)
        except (KeyError, TypeError, ValueError):
            raise UsageError(
                f"{where}: search_space.{name} ({kind or repr(given)}) is not one loopline's sweep can draw "
                "from: give it choice (values), uniform, loguniform, quniform or randint"
            ) from None
    defaults = {name: _middle(spec) for name, spec in parameters.items()}
    return parameters, defaults


def _parameter(kind: str, given: dict[str, Any]) -> dict[str, Any]:
    """One Azure ML search space entry as a loopline parameter (its loguniform bounds are exponents)."""
    if kind == "choice":
        values = list(given["values"])
        if not values:
            raise ValueError(kind)
        return {"choices": values}
    if kind == "randint":
        return {"type": "int", "low": 0, "high": int(given["upper"]) - 1}
    low, high = float(given["min_value"]), float(given["max_value"])
    if kind == "uniform":
        return {"low": low, "high": high}
    if kind == "loguniform":
        return {"low": math.exp(low), "high": math.exp(high), "log": True}
    if kind == "quniform":
        step = float(given["q"])
        whole = step.is_integer() and low.is_integer()
        return {"type": "int" if whole else "float", "low": low, "high": high, "step": step}
    raise ValueError(kind)  # normal, lognormal and their q forms: no range to draw from


def _middle(spec: dict[str, Any]) -> str:
    if "choices" in spec:
        return shlex.quote(str(spec["choices"][0]))
    low, high = spec["low"], spec["high"]
    middle = math.sqrt(low * high) if spec.get("log") else (low + high) / 2
    if spec.get("step"):
        middle = low + round((middle - low) / spec["step"]) * spec["step"]
    return str(int(middle)) if spec.get("type") == "int" else f"{middle:g}"


def _sweep_section(sweep: dict[str, Any], parameters: dict[str, Any], command: str) -> dict[str, Any]:
    """loopline's ``sweep:`` from an Azure ML sweep job: its objective, trials and early termination."""
    objective = sweep.get("objective") or {}
    limits = sweep.get("limits") or {}
    stopping = (sweep.get("early_termination") or {}).get("type")
    goal = str(objective.get("goal", "maximize")).lower()  # Azure ML writes Maximize or maximize
    section: dict[str, Any] = {"trials": int(limits.get("max_total_trials") or 20)}
    if limits.get("max_concurrent_trials"):  # at most 64 at once here
        section["parallel"] = max(1, min(64, int(limits["max_concurrent_trials"])))
    section["objective"] = {
        "metric": str(objective.get("primary_metric") or "accuracy"),
        "direction": goal if goal in ("maximize", "minimize") else "maximize",
    }
    section["pruner"] = "median" if stopping == "median_stopping" else "none"
    section["parameters"] = parameters
    section["command"] = command
    return section


def training_line(where: str, command: str) -> str:
    """The one line of ``command`` that runs Python (a job's command may echo or list things first, and
    join its steps with ``&&``); ``cd DIR`` before it is kept as part of it."""
    steps = [" ".join(step.split()) for line in command.splitlines() for step in line.split("&&")]
    steps = [step for step in steps if step]
    moves = [step for step in steps if step.split()[0] == "cd"]
    runs = [step for step in steps if step.split()[0] in _PYTHON]
    others = [step for step in steps if step.split()[0] not in {"cd", *_PYTHON, *_HELPERS}]
    if len(runs) != 1 or others or len(moves) > 1:
        raise UsageError(
            f"{where}: its command is not one Python run loopline can take ({' && '.join(steps)[:120]}); "
            "name the training with --command 'python PATH ARGS'"
        )
    return f"{moves[0]} && {runs[0]}" if moves else runs[0]


DATA_ASSET = re.compile(r"^azureml:(?P<name>[A-Za-z0-9][A-Za-z0-9._-]{0,99})(?::\d+|@latest)?$")


def _fill(
    where: str, line: str, folder: Path, root: Path, document: dict[str, Any], assets: list[JobInput]
) -> str:
    """``line`` with each ``${{inputs.NAME}}`` and ``${{outputs.NAME}}`` replaced by its value (local paths
    as from ``root``, where the training runs); an input in Azure ML's storage becomes ``{inputs.NAME}``,
    added to ``assets``."""
    inputs = document.get("inputs") or {}

    def value(match: re.Match[str]) -> str:
        kind, name = match.groups()
        if kind == "outputs":
            return shlex.quote(f"outputs/{name}")
        if name not in inputs:
            raise UsageError(f"{where}: its command names inputs.{name}, which its inputs do not have")
        given = inputs[name]
        if not isinstance(given, dict):
            return shlex.quote(str(given).lower() if isinstance(given, bool) else str(given))
        path = str(given.get("path", given.get("default", "")))
        if path.startswith(AZURE_ONLY):  # read from a data asset of loopline's, named after Azure ML's
            asset = DATA_ASSET.match(path)
            if name not in {item.name for item in assets}:
                assets.append(JobInput(name, asset["name"] if asset else name, path, where))
            return f"{{inputs.{name}}}"
        return _path_value(where, name, path, folder, root)

    filled = _PLACEHOLDER.sub(value, line)
    left = ANY_PLACEHOLDER.search(filled)
    if left:
        raise UsageError(f"{where}: its command uses {left.group(0)}, which loopline cannot fill in")
    return filled


def _path_value(where: str, name: str, path: str, folder: Path, root: Path) -> str:
    """An input's path outside Azure ML's storage, as the training run from ``root`` reads it."""
    if not path:
        raise UsageError(
            f"{where}: input '{name}' has no path; give it one, or name the training with --command"
        )
    if URL.match(path):
        return shlex.quote(path)
    local = (folder / path).resolve()
    if not local.is_relative_to(root):
        raise UsageError(
            f"{where}: input '{name}' is {path}, outside the repository; name the training with --command"
        )
    return shlex.quote(local.relative_to(root).as_posix())


def _from_root(where: str, line: str, code: Path, root: Path) -> str:
    """``line`` (as Azure ML runs it, in the job's code folder) as a command run from ``root``."""
    argv = shlex.split(line)
    if argv[0] == "cd":
        code = (code / argv[1]).resolve()
        argv = argv[3:]  # cd DIR && python ...
    if code == root:
        return command_line(argv)
    inside = code.relative_to(root)
    if len(argv) < 2 or argv[1].startswith("-"):
        raise UsageError(
            f"{where}: its command runs Python in {inside}/ without naming a script there; name the "
            "training with --command 'python PATH ARGS'"
        )
    # The script moves; its arguments that name files in the code folder move with it.
    moved = [argv[0], (inside / argv[1]).as_posix()]
    for argument in argv[2:]:
        moved.append((inside / argument).as_posix() if (code / argument).exists() else argument)
    return command_line(moved)


def command_line(argv: list[str]) -> str:
    """``argv`` as one command line, with loopline's ``{inputs.NAME}`` and a sweep's ``{NAME}`` left
    unquoted, as written by hand."""
    return re.sub(r"'((?:[A-Za-z0-9_.]+=)?\{(?:inputs\.)?[A-Za-z0-9_]+\})'", r"\1", shlex.join(argv))
