"""Azure ML pipeline jobs (``type: pipeline``), run here step by step.

    python -m loopline.azureml_pipeline mlops/azureml/train/pipeline.yml --set inputs.raw=data/raw.csv

A repository that trained on Azure ML as a pipeline (prepare the data, train, evaluate, register: the
layout of Azure's MLOps templates) keeps that pipeline in a job file. Here its command steps run in the
order their inputs and outputs need, each as Azure ML runs it: its command in its code folder, with
``${{inputs.NAME}}`` filled in (from the step's inputs, a step's ``component: ./FILE.yml`` and its
defaults, the pipeline's inputs) and each ``${{outputs.NAME}}`` a fresh, empty folder, which the steps
after it read. ``--set inputs.NAME=VALUE`` (or ``jobs.STEP.inputs.NAME=VALUE``) gives an input, as ``az ml
job create --set`` does; an input Azure ML reads from its own storage (``azureml:taxi-data@latest``) must
be given so. All the steps log to one MLflow run, started here (Azure ML gives each step a run of its
own under the pipeline's), so the metrics of an evaluation step sit beside the model a training or
registration step logs. A pipeline output holding an MLflow model (``MLmodel``) is logged to that run
when no step logged a model. The first step that fails ends the run as failed, with its exit code.
"""

from __future__ import annotations

import argparse
import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from loopline.azureml import (
    ANY_PLACEHOLDER,
    AZURE_ONLY,
    DATA_ASSET,
    URL,
    JobCommand,
    JobInput,
    command_line,
    conda_file,
    environment_files,
    find_job_command,
    read_yaml,
    training_line,
    yaml_files,
)
from loopline.errors import UsageError
from loopline.git import toplevel
from loopline.run_script import PIPELINE_EXPERIMENT, STEP_FAILED, command_argv

__all__ = [
    "RUNNER",
    "PipelineStep",
    "find_training_job",
    "main",
    "named_pipeline",
    "pipeline_note",
    "plan",
]

RUNNER = "loopline.azureml_pipeline"
_STEP_PLACEHOLDER = re.compile(r"\$\{\{\s*(inputs|outputs)\.([A-Za-z0-9_]+)\s*\}\}")
_OPTIONAL = re.compile(r"\$\[\[(.*?)\]\]", re.DOTALL)
_PARENT_INPUT = re.compile(r"^\$\{\{\s*parent\.inputs\.([A-Za-z0-9_]+)\s*\}\}$")
_STEP_OUTPUT = re.compile(r"^\$\{\{\s*parent\.jobs\.([A-Za-z0-9_]+)\.outputs\.([A-Za-z0-9_]+)\s*\}\}$")
_PARENT_OUTPUT = re.compile(r"^\$\{\{\s*parent\.outputs\.([A-Za-z0-9_]+)\s*\}\}$")
_PATH_TYPES = {"uri_file", "uri_folder", "mltable", "mlflow_model", "custom_model", "triton_model"}
_UNSET = object()


@dataclass(frozen=True)
class PipelineStep:
    """One command step of a pipeline, filled in, in the order the steps run."""

    name: str
    line: str  # its command, filled in, as it runs in ``folder``
    folder: Path  # its code folder (or the folder its command moves to)
    outputs: dict[str, Path]  # each output's folder, made empty before the step runs
    environment: dict[str, str] = field(default_factory=dict)  # the job's environment_variables


@dataclass(frozen=True)
class Pipeline:
    """A pipeline job file, planned: its steps in order, the pipeline outputs the steps write, and the
    inputs in Azure ML's storage it was not given."""

    steps: tuple[PipelineStep, ...]
    outputs: dict[str, Path]  # the pipeline's outputs (``${{parent.outputs.NAME}}``): their folders
    missing: tuple[JobInput, ...]  # inputs read from Azure ML's storage that no --set gave
    conda_file: str  # the first step's conda file in the repository, from the root ("" for none)
    experiment: str  # the file's experiment_name ("" for none)


def _pipeline_document(path: Path) -> dict[str, Any] | None:
    document = read_yaml(path)
    if not isinstance(document, dict) or not isinstance(document.get("jobs"), dict):
        return None
    kind = document.get("type")
    return dict(document) if kind == "pipeline" or "pipelineJob" in str(document.get("$schema", "")) else None


def find_training_job(root: Path) -> JobCommand | None:
    """The training of the repository's Azure ML job files: a pipeline job's steps (run by this module), or
    else a command or sweep job's command (``azureml.find_job_command``); None when it has neither."""
    pipelines = yaml_files(root, _pipeline_document)
    components = {component for path, document in pipelines for component in _components(path, document)}
    job = find_job_command(root, skip=components)
    if len(pipelines) > 1 or (pipelines and job is not None):
        listed = [str(path.relative_to(root)) for path, _ in pipelines] + ([job.file] if job else [])
        raise UsageError(
            f"several Azure ML job files could be the training ({', '.join(listed[:5])}); name the training "
            f"with --command 'python -m {RUNNER} FILE' for a pipeline, or 'python PATH ARGS'"
        )
    if not pipelines:
        return job
    return _pipeline_job(root, *pipelines[0], {}, None)


def named_pipeline(root: Path, command: str) -> JobCommand | None:
    """The pipeline job file a training command runs (``python -m loopline.azureml_pipeline FILE ...``),
    read as ``find_training_job`` reads one; None for any other command."""
    try:
        argv = shlex.split(command)
    except ValueError:
        return None
    if len(argv) < 3 or not argv[0].startswith("python") or argv[1:3] != ["-m", RUNNER]:
        return None
    try:
        args = _arguments(argv[3:])
    except SystemExit:  # argparse said why on stderr
        raise UsageError(f"--command {command}: give python -m {RUNNER} FILE [--set KEY=VALUE ...]") from None
    path = (root / args.file).resolve()
    if not path.is_relative_to(root):
        raise UsageError(f"--command {command}: {args.file} is outside the repository")
    document = _pipeline_document(path) if path.is_file() else None
    if document is None:
        raise UsageError(f"--command {command}: {args.file} is not an Azure ML pipeline job file there")
    given = dict(item.partition("=")[::2] for item in args.sets)
    return _pipeline_job(root, path, document, given, command)


def _pipeline_job(
    root: Path, path: Path, document: dict[str, Any], given: dict[str, str], command: str | None
) -> JobCommand:
    """The training of the pipeline file ``path``: ``command`` (else the runner on that file), with a
    ``--set`` for each input in Azure ML's storage that it does not give, read from a data asset."""
    where = str(path.relative_to(root))
    with tempfile.TemporaryDirectory() as scratch:  # the folders do not matter: nothing runs
        planned = plan(path, root, given, Path(scratch), document)
    sets = [
        word
        for item in planned.missing
        for word in ("--set", f"{item.name}={{inputs.{_input_name(item.name)}}}")
    ]
    command = " ".join(
        filter(None, [command or command_line(["python", "-m", RUNNER, where]), command_line(sets)])
    )
    inputs = tuple(
        JobInput(_input_name(item.name), item.asset, item.azure, item.file) for item in planned.missing
    )
    steps = tuple(step.name for step in planned.steps)
    scripts = [step.folder / [*shlex.split(step.line), ""][1] for step in planned.steps]
    return JobCommand(
        command,
        where,
        "",
        inputs,
        conda_file=planned.conda_file,
        steps=steps,
        scripts=tuple(str(s.relative_to(root)) for s in scripts if s.is_file() and s.is_relative_to(root)),
    )


def pipeline_note(job: JobCommand) -> str:
    """What ``init --existing`` says of a training that runs a pipeline job's steps."""
    return (
        f"the training runs {job.file}, an Azure ML pipeline job, step by step ({', '.join(job.steps)}) with "
        f"`python -m {RUNNER}`: each step's command in its code folder as Azure ML runs it, its outputs in "
        "fresh folders, all steps logging to one MLflow run, in this environment (the steps' environments "
        "and compute are Azure ML's)"
    )


def _input_name(key: str) -> str:
    """The name of loopline's ``{inputs.NAME}`` for an input given as ``--set KEY=...``: the pipeline's
    input name, or STEP_NAME for a step's own input."""
    parts = key.split(".")
    return parts[1] if parts[0] == "inputs" else f"{parts[1]}_{parts[3]}"


def _components(path: Path, document: dict[str, Any]) -> set[Path]:
    """The component files the pipeline's steps name (``component: ./train.yml``)."""
    named = set()
    for job in document["jobs"].values():
        component = job.get("component") if isinstance(job, dict) else None
        if isinstance(component, str) and not component.startswith("azureml:"):
            named.add((path.parent / component).resolve())
    return named


def plan(
    path: Path,
    root: Path,
    given: dict[str, str],
    outputs: Path,
    document: dict[str, Any] | None = None,
) -> Pipeline:
    """The steps of the pipeline job file ``path`` (in the repository ``root``) in the order they run,
    with ``given`` (``--set`` keys ``inputs.NAME`` and ``jobs.STEP.inputs.NAME``) and each step output a
    folder ``outputs/STEP/NAME``. An input in Azure ML's storage that ``given`` lacks is left as
    ``{inputs.NAME}`` and listed in ``missing``."""
    where = str(path.relative_to(root)) if path.is_relative_to(root) else str(path)
    if not path.is_file():
        raise UsageError(f"{where}: no such file; give the pipeline job file (type: pipeline)")
    document = document if document is not None else _pipeline_document(path)
    if document is None:
        raise UsageError(f"{where} is not an Azure ML pipeline job file (type: pipeline, with jobs)")
    jobs = {str(name): _job(where, path, str(name), job, root) for name, job in document["jobs"].items()}
    if not jobs:
        raise UsageError(f"{where}: its jobs are empty; a pipeline needs at least one command step")
    unknown = [key for key in given if not _known_key(key, document, jobs)]
    if unknown:
        raise UsageError(
            f"--set {unknown[0]}: {where} has no such input; give inputs.NAME (the pipeline's inputs: "
            f"{', '.join(map(str, document.get('inputs') or {})) or 'none'}) or jobs.STEP.inputs.NAME"
        )
    inputs = document.get("inputs") or {}
    if not isinstance(inputs, dict):
        raise UsageError(f"{where}: its inputs are not a mapping of NAME: VALUE")
    context = _Context(where, path.parent, root, inputs, given, outputs)
    order = _order(where, jobs)
    steps, pipeline_outputs = [], {}
    for name in order:
        step, bound = _step(context, name, jobs[name])
        steps.append(step)
        pipeline_outputs.update(bound)
    refs = [ref for job in jobs.values() for ref in job.environments]
    named = environment_files(root) if any(isinstance(env, str) for _, env in refs) else {}
    conda = next((found for file, env in refs if (found := conda_file(root, file, env, named))), "")
    experiment = str(document.get("experiment_name") or "")
    return Pipeline(tuple(steps), pipeline_outputs, tuple(context.missing.values()), conda, experiment)


def _known_key(key: str, document: dict[str, Any], jobs: dict[str, _Job]) -> bool:
    parts = key.split(".")
    if len(parts) == 2 and parts[0] == "inputs":
        return parts[1] in (document.get("inputs") or {})
    return len(parts) == 4 and parts[0] == "jobs" and parts[2] == "inputs" and parts[1] in jobs


@dataclass(frozen=True)
class _Job:
    """One step as the file gives it: its command, code folder, inputs, outputs and what they default to."""

    command: str
    code: Path
    inputs: dict[str, Any]  # the step's inputs, over its component's (declarations, with any default)
    outputs: dict[str, Any]
    environment: dict[str, str]
    environments: tuple[tuple[Path, Any], ...]  # its component's, its own: each with the file naming it
    paths: frozenset[str]  # the inputs that are files or folders
    folders: dict[str, Path]  # where each input's relative path starts: the folder of the file giving it


def _definition(where: str, path: Path, name: str, job: Any, root: Path) -> tuple[dict[str, Any], Path]:
    """What defines the step ``job``: itself, its inline component, or its component file (with that file)."""
    if not isinstance(job, dict):
        raise UsageError(f"{where}: jobs.{name} is not a step (a mapping with a command or a component)")
    component = job.get("component")
    if isinstance(component, dict):  # an inline component
        return component, path
    if not isinstance(component, str):
        return job, path
    if component.startswith("azureml:"):
        raise UsageError(
            f"{where}: jobs.{name} runs component {component}, registered in Azure ML; loopline runs "
            "components whose files are in the repository (component: ./FILE.yml)"
        )
    source = (path.parent / component).resolve()
    if not source.is_relative_to(root):
        raise UsageError(f"{where}: jobs.{name}'s component {component} is outside the repository")
    loaded = read_yaml(source) if source.is_file() else None
    if not isinstance(loaded, dict):
        raise UsageError(f"{where}: jobs.{name}'s component {component} is not a YAML file there")
    return loaded, source


def _job(where: str, path: Path, name: str, job: Any, root: Path) -> _Job:
    definition, source = _definition(where, path, name, job, root)
    kind = str(definition.get("type", "command"))
    if kind != "command" or not isinstance(definition.get("command"), str):
        raise UsageError(
            f"{where}: jobs.{name} is a {kind} step; loopline runs command steps (a command, or a component "
            "file with one)"
        )
    code = (source.parent / str(definition.get("code") or ".")).resolve()
    if not code.is_relative_to(root) or not code.is_dir():
        trouble = "is outside the repository" if not code.is_relative_to(root) else "is not a folder there"
        raise UsageError(f"{where}: jobs.{name}'s code folder {definition.get('code')} {trouble}")

    def merged(key: str) -> dict[str, Any]:  # the step's own, over its component's
        parts = [definition] if definition is job else [definition, job]
        return {str(k): v for part in parts for k, v in _mapping(where, name, key, part.get(key)).items()}

    inputs, outputs, environment = merged("inputs"), merged("outputs"), merged("environment_variables")
    declared = [_mapping(where, name, "inputs", part.get("inputs")) for part in (definition, job)]
    paths = frozenset(  # the inputs a component or the step says are files or folders
        str(key)
        for part in declared
        for key, value in part.items()
        if isinstance(value, dict) and ("path" in value or value.get("type") in _PATH_TYPES)
    )
    # a value's relative path is from the file that gives it: the step's, else its component's
    folders = {key: (path if key in declared[1] else source).parent for key in inputs}
    environments = ((source, definition.get("environment")), (path, job.get("environment")))
    return _Job(
        str(definition["command"]),
        code,
        inputs,
        outputs,
        {k: str(v) for k, v in environment.items()},
        environments,
        paths,
        folders,
    )


def _mapping(where: str, step: str, key: str, value: Any) -> dict[str, Any]:
    """A step's (or its component's) ``key``: a mapping, or nothing."""
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise UsageError(f"{where}: jobs.{step}.{key} is not a mapping of NAME: VALUE")
    return value


def _order(where: str, jobs: dict[str, _Job]) -> list[str]:
    """The steps in an order where each runs after the steps whose outputs it reads (else file order)."""
    needs = {
        name: {match[1] for value in job.inputs.values() if (match := _STEP_OUTPUT.match(_text(value)))}
        for name, job in jobs.items()
    }
    for name, needed in needs.items():
        for other in sorted(needed - set(jobs)):
            raise UsageError(
                f"{where}: jobs.{name} reads an output of jobs.{other}, which the pipeline lacks"
            )
    order: list[str] = []
    while len(order) < len(jobs):
        ready = [name for name in jobs if name not in order and needs[name] <= set(order)]
        if not ready:
            left = ", ".join(name for name in jobs if name not in order)
            raise UsageError(
                f"{where}: jobs {left} read each other's outputs in a circle; no order runs them"
            )
        order.append(ready[0])
    return order


def _text(value: Any) -> str:
    """A binding as text: ``${{...}}`` given as it is, or as a mapping's ``path``."""
    if isinstance(value, dict):
        value = value.get("path", "")
    return value.strip() if isinstance(value, str) else ""


@dataclass
class _Context:
    where: str
    folder: Path  # the pipeline file's folder: its relative paths start there
    root: Path
    inputs: dict[str, Any]  # the pipeline's inputs
    given: dict[str, str]
    outputs: Path
    made: dict[tuple[str, str], Path] = field(default_factory=dict)  # (step, output) -> folder
    missing: dict[str, JobInput] = field(default_factory=dict)  # --set key -> the input


def _step(context: _Context, name: str, job: _Job) -> tuple[PipelineStep, dict[str, Path]]:
    """One step filled in, and the pipeline outputs it writes."""
    where = f"{context.where}: jobs.{name}"
    folders: dict[str, Path] = {}
    bound: dict[str, Path] = {}
    for output, binding in job.outputs.items():
        folder = context.outputs / name / output
        folders[output] = context.made[(name, output)] = folder
        parent = _PARENT_OUTPUT.match(_text(binding))
        if parent:
            bound[parent[1]] = folder
    own = f"jobs.{name}.inputs."  # --set may give an input the step does not declare, an optional one say
    declared = {**job.inputs, **{key[len(own) :]: None for key in context.given if key.startswith(own)}}
    values = {key: _value(context, name, key, value, job) for key, value in declared.items()}

    def optional(match: re.Match[str]) -> str:  # $[[--flag ${{inputs.x}}]]: kept when x has a value
        named = [found[2] for found in _STEP_PLACEHOLDER.finditer(match[1]) if found[1] == "inputs"]
        return match[1] if all(values.get(key, _UNSET) is not _UNSET for key in named) else ""

    def fill(match: re.Match[str]) -> str:
        kind, key = match.groups()
        if kind == "outputs":
            folder = folders.setdefault(key, context.outputs / name / key)
            context.made[(name, key)] = folder
            return shlex.quote(str(folder))
        value = values.get(key, _UNSET)
        if value is _UNSET:
            raise UsageError(
                f"{where}: its command uses inputs.{key}, which has no value; give it in the step's inputs "
                f"or --set jobs.{name}.inputs.{key}=VALUE"
            )
        return str(value) if str(value).startswith("{inputs.") else shlex.quote(str(value))

    line = training_line(where, _OPTIONAL.sub(optional, job.command))
    filled = _STEP_PLACEHOLDER.sub(fill, line)
    left = ANY_PLACEHOLDER.search(filled)
    if left:
        raise UsageError(f"{where}: its command uses {left.group(0)}, which loopline cannot fill in")
    folder = job.code
    if filled.startswith("cd "):  # cd DIR && python ...
        moved, _, filled = filled.partition(" && ")
        folder = (folder / shlex.split(moved)[1]).resolve()
    return PipelineStep(name, filled, folder, folders, job.environment), bound


def _value(context: _Context, step: str, key: str, value: Any, job: _Job) -> Any:
    """The value of input ``key`` of ``step``: given by --set, a pipeline input, another step's output
    folder, a path (from the file that names it), a literal, or a default; ``_UNSET`` when none."""
    own = f"jobs.{step}.inputs.{key}"
    if own in context.given:
        return _given(context, own, {"type": "uri_file"} if key in job.paths else value)
    text = _text(value)
    parent = _PARENT_INPUT.match(text)
    if parent:
        if parent[1] not in context.inputs:
            raise UsageError(
                f"{context.where}: jobs.{step} reads inputs.{parent[1]}, which the pipeline lacks"
            )
        pipeline_key = f"inputs.{parent[1]}"
        if pipeline_key in context.given:
            return _given(context, pipeline_key, context.inputs[parent[1]])
        return _value_of(context, pipeline_key, context.inputs[parent[1]], context.folder)
    produced = _STEP_OUTPUT.match(text)
    if produced:
        made = context.made.get((produced[1], produced[2]))
        if made is None:
            raise UsageError(
                f"{context.where}: jobs.{step} reads outputs.{produced[2]} of jobs.{produced[1]}, which that "
                "step does not have; declare it in its outputs"
            )
        return made
    return _value_of(context, own, value, job.folders.get(key, context.folder))


def _value_of(context: _Context, key: str, value: Any, folder: Path) -> Any:
    if value is _UNSET or value is None:
        return _UNSET
    if isinstance(value, dict):
        if "path" not in value:
            return value.get("value", value.get("default", _UNSET))
        path = str(value["path"])
        if path.startswith(AZURE_ONLY):  # read from Azure ML's storage: --set gives a copy
            asset = DATA_ASSET.match(path)
            name = _input_name(key)
            context.missing.setdefault(
                key, JobInput(key, asset["name"] if asset else name, path, context.where)
            )
            return f"{{inputs.{name}}}"
        if URL.match(path):
            return path
        local = (folder / path).resolve()
        if not local.is_relative_to(context.root):
            raise UsageError(
                f"{context.where}: {key} is {path}, outside the repository, which the workflows' checkout "
                f"lacks; keep the data in the repository, or give it with --set {key}=PATH"
            )
        return local
    if isinstance(value, bool):
        return str(value).lower()
    return value


def _given(context: _Context, key: str, declared: Any) -> Any:
    """A value ``--set`` gave: a path (as from the current folder) where the input is one, else as it is."""
    value = context.given[key]
    is_path = isinstance(declared, dict) and ("path" in declared or declared.get("type") in _PATH_TYPES)
    if is_path and not URL.match(value) and not value.startswith("{inputs."):
        return Path(value).expanduser().resolve()
    return value


def _run(pipeline: Pipeline, title: str) -> int:
    """Run the steps into one MLflow run; the exit code of the first that fails, else 0."""
    import mlflow

    if pipeline.experiment and not {"MLFLOW_EXPERIMENT_NAME", "MLFLOW_EXPERIMENT_ID"} & set(os.environ):
        mlflow.set_experiment(pipeline.experiment)  # as Azure ML names it, where nothing else does
    with mlflow.start_run(run_name=title) as run:
        env = {**os.environ, "MLFLOW_RUN_ID": run.info.run_id, PIPELINE_EXPERIMENT: run.info.experiment_id}
        for step in pipeline.steps:
            for folder in step.outputs.values():
                shutil.rmtree(folder, ignore_errors=True)
                folder.mkdir(parents=True)
            print(f"loopline: step {step.name}: {step.line}", flush=True)
            code = subprocess.call(
                command_argv(shlex.split(step.line)), cwd=step.folder, env={**env, **_own(step)}
            )
            if code != 0:
                print(STEP_FAILED.format(step=step.name, code=code), file=sys.stderr, flush=True)
                mlflow.end_run("FAILED")
                return code
        _log_output_models(run.info.run_id, run.info.experiment_id, pipeline.outputs)
    return 0


_KEPT = re.compile(r"^(LOOPLINE_|MLFLOW_(TRACKING|REGISTRY|RUN|EXPERIMENT)_)")  # how the steps reach the run


def _own(step: PipelineStep) -> dict[str, str]:
    """The step's environment variables, but those that point MLflow somewhere else than the run."""
    for name in sorted(name for name in step.environment if _KEPT.match(name)):
        print(
            f"loopline: step {step.name}'s {name} is not set: the steps log to the pipeline's run", flush=True
        )
    return {name: value for name, value in step.environment.items() if not _KEPT.match(name)}


def _log_output_models(run_id: str, experiment_id: str, outputs: dict[str, Path]) -> None:
    """Log each pipeline output that is an MLflow model to the run, where no step logged a model."""
    import mlflow

    models = [(name, folder) for name, folder in outputs.items() if (folder / "MLmodel").is_file()]
    if not models:
        return
    client = mlflow.MlflowClient()
    logged = client.search_logged_models(
        experiment_ids=[experiment_id], filter_string=f"source_run_id = '{run_id}'", max_results=1
    )
    if logged:
        return
    for name, folder in models:
        print(f"loopline: logging pipeline output {name} (an MLflow model) to the run", flush=True)
        mlflow.log_artifacts(str(folder), artifact_path=name)


def _arguments(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog=f"python -m {RUNNER}",
        description="Run an Azure ML pipeline job file's command steps here, in order, into one MLflow run.",
    )
    parser.add_argument("file", help="the pipeline job file (type: pipeline)")
    parser.add_argument(
        "--set",
        dest="sets",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="an input: inputs.NAME=VALUE for the pipeline's, jobs.STEP.inputs.NAME=VALUE for a step's",
    )
    parser.add_argument(
        "--outputs",
        metavar="DIR",
        help="keep the steps' outputs in DIR/STEP/NAME (default: a folder removed after)",
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    """Run the pipeline the arguments name; its exit code (2 for a file or input loopline cannot run)."""
    args = _arguments(sys.argv[1:] if argv is None else argv)
    path = Path(args.file).resolve()
    given = {}
    for item in args.sets:
        key, equals, value = item.partition("=")
        if not equals:
            print(f"error: --set {item}: give KEY=VALUE, for example inputs.data=data.csv", file=sys.stderr)
            return 2
        given[key.strip()] = value
    with tempfile.TemporaryDirectory(prefix="loopline-pipeline-") as scratch:
        outputs = Path(args.outputs).resolve() if args.outputs else Path(scratch)
        try:
            here = Path.cwd().resolve()  # where loopline runs the training: the project's folder
            root = here if path.is_relative_to(here) else toplevel(path.parent) or path.parent
            pipeline = plan(path, root, given, outputs)
            if pipeline.missing:
                first = pipeline.missing[0]
                raise UsageError(
                    f"{first.file}: input {first.name} is {first.azure}, in Azure ML's storage; give a local "
                    f"copy: --set {first.name}=PATH"
                )
        except UsageError as exc:
            print(f"error: {exc.message}", file=sys.stderr)
            return 2
        return _run(pipeline, path.stem)


if __name__ == "__main__":
    sys.exit(main())
