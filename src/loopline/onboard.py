"""``loopline init --existing``: put loopline on a repository that already trains a model with MLflow.

Nothing is asked that the repository already tells: the training entry point is found among its files,
and one dry run of it (against a scratch MLflow store under ``.loopline/``) shows the model it logs, the
name it logs it under, the experiment it uses and the metrics it reports. From those, ``loopline.yaml``
and a gate are written, with the workflow files; a file that exists is never overwritten (it is listed
as kept instead), and ``.loopline/`` (with MLflow's default local stores) is added to ``.gitignore``.
"""

from __future__ import annotations

import json
import shlex
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import yaml

from loopline.answer_metrics import PROBABILITY_METRICS
from loopline.azureml import JobCommand, local_asset_copies
from loopline.azureml_endpoints import release_endpoint
from loopline.azureml_pipeline import find_training_job, named_pipeline, pipeline_note
from loopline.config import CONFIG_FILE
from loopline.domain import Tier, project_name
from loopline.dry_run import REFERENCE_ARTIFACT, DryRun, dry_run, earlier_run
from loopline.entry_point import DVC_LOCK, DVC_REPRO, entry_point, find_entry_point, runs_notebook
from loopline.errors import Refused, UsageError
from loopline.gate_setup import (
    best_rival,
    gate_text,
    gate_thresholds,
    measured_by_validation,
    on_training_rows,
    ranking_text,
    rivals,
    validation_lines,
    validation_thresholds,
    yaml_scalar,
)
from loopline.git import holds, is_git_repo
from loopline.inputs import fill_inputs, input_environment, input_notes, local_copies
from loopline.metric_names import measured_as
from loopline.mlproject import ProjectCommand, find_project_command
from loopline.progress import NullReporter, Reporter
from loopline.repo_setup import (
    DVC_TOOLS,
    NOTEBOOK_NOTE,
    NOTEBOOK_TOOLS,
    TOOLS,
    extend_gitignore,
    ignored_data,
    ignored_reads,
    output_notes,
    workflow_setup,
    worktree_changes,
    write_new,
)

__all__ = ["Onboarded", "find_entry_point", "onboard"]


@dataclass(frozen=True)
class Onboarded:
    """What ``init --existing`` found in the repository and wrote into it."""

    path: Path
    project: str
    tier: Tier
    model: str
    command: str
    artifact_path: str
    experiment: str | None
    metrics: dict[str, float]
    written: tuple[str, ...]
    kept: tuple[str, ...]
    notes: tuple[str, ...] = field(default=())
    inputs: dict[str, str] = field(default_factory=dict)  # training.inputs: input name -> data asset

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready mapping."""
        return {
            "path": str(self.path),
            "project": self.project,
            "tier": self.tier.value,
            "model": self.model,
            "command": self.command,
            "artifact_path": self.artifact_path,
            "experiment": self.experiment,
            "metrics": self.metrics,
            "files": list(self.written),
            "kept": list(self.kept),
            "notes": list(self.notes),
            "inputs": self.inputs,
        }


def _config_text(
    project: str,
    tier: Tier,
    model: str,
    command: str,
    run: DryRun,
    files: tuple[str, str],
    attested: str,
    assets: dict[str, str],
) -> str:
    """``loopline.yaml``'s text; ``files``: the gate file and the ranking file written beside it."""
    lines = [
        f"# loopline instance of {project}; every key is described in loopline's docs/configuration.md.",
        f"project: {project}",
        "# experimentation = dev; simple = dev + prod; full = dev + test + prod.",
        f"tier: {tier.value}",
        "",
        "model:",
        f"  name: {model}",
        f"  artifact_path: {run.chosen}   # the name the training logs the model under",
        *(
            [f"  select: best   # {len(run.rivals)} {rivals(run)} log it: the first by the ranking file"]
            if run.rivals
            else []
        ),
        *(
            [f"  ranking: {files[1]}   # the repository's ranking.yaml is its own"]
            if files[1] != RANKING
            else []
        ),
        "",
        "training:",
        f"  command: {yaml_scalar(command)}",
    ]
    if run.experiment and run.experiment != "Default":
        lines.append(f"  experiment: {yaml_scalar(run.experiment)}   # the one the script sets")
    if assets:  # each {inputs.NAME} of the command: a data asset, verified and copied before each training
        lines.append("  inputs:   # upload each once: loopline data upload ASSET PATH")
        lines += [f"    {name}: {yaml_scalar(asset)}" for name, asset in assets.items()]
    if attested or command.startswith(DVC_REPRO):  # commits that change nothing the model is made of
        lines.append(_paths_line(bool(attested), command.startswith(DVC_REPRO)))
    lines += ["", "gate:", f"  file: {files[0]}", ""]
    if attested:  # a project in a folder of its repository: its workflows are at the top, named after it
        lines += ["registry:", "  attestation:", f"    workflow: {attested}", ""]
    return "\n".join(lines + validation_lines(run))


RANKING = "ranking.yaml"  # model.ranking's default


def _paths_line(in_folder: bool, runs_dvc: bool) -> str:
    """``training.paths`` for a project in a folder of its repository (its folder) or that trains with
    DVC (less the lock file the training rewrites): commits that change neither train nothing."""
    said = ["add shared code the training imports"] if in_folder else []
    said += [f"{DVC_LOCK}, which the training rewrites, makes no new model"] if runs_dvc else []
    patterns = [".", f"!{DVC_LOCK}"] if runs_dvc else ["."]
    return f"  paths: {json.dumps(patterns)}   # {'; '.join(said)}"


def _validation_notes(tier: Tier, run: DryRun) -> list[str]:
    """What outer-loop test (full tier) needs that the training does not give: held-out rows (and, for a
    forecast, the command that measures it)."""
    if tier != Tier.FULL:
        return []
    if run.language_model:
        return [
            "outer-loop test measures this chat model or agent with validation.command: write validate.py, "
            "which asks held-out questions through the test endpoint and measures the answers as the "
            "training does (docs/outer-loops.md, 'A validation of your own'), and upload those questions "
            "once (`loopline data upload heldout PATH`)"
        ]
    if run.forecast is not None:
        return [
            f"outer-loop test measures this forecast ({run.forecast}) with validation.command: write "
            "validate.py, which forecasts the held-out steps through the test endpoint and writes its "
            "metrics (docs/outer-loops.md, 'A validation of your own'), and upload those steps once "
            "(`loopline data upload heldout PATH`)"
        ]
    if run.clustering:
        return [
            "outer-loop test measures this clustering with validation.command: write validate.py, which "
            "clusters the held-out rows through the test endpoint and measures the clusters as the training "
            "does (docs/outer-loops.md, 'A validation of your own'), and upload rows the training never saw "
            "once (`loopline data upload heldout PATH`)"
        ]
    if run.task and not validation_thresholds(run):
        measured = ", ".join(measured_by_validation(run))
        what = (
            f"validation.thresholds, left empty: the training logs none of what outer-loop test measures "
            f"({measured}), so give the bounds a model must reach there"
        )
    elif run.task:
        what = "the thresholds in validation.thresholds"
    else:
        what = "validation.task (classification or regression) and its thresholds"
    label = (
        f"{', '.join(run.label[0])}, as in {run.label[1]}"
        if run.label
        else "label: init could not tell it from the tables the training read"
    )
    return [
        "outer-loop test validates each version on held-out rows the training never saw, with their true "
        f"values in the column{'s' if run.label and len(run.label[0]) > 1 else ''} validation.label names "
        f"({label}): upload them once (`loopline data "
        f"upload heldout PATH`, a CSV or Parquet file or folder) before its first run, and check {what}",
        *_labels_not_probabilities(run),
    ]


def _labels_not_probabilities(run: DryRun) -> list[str]:
    """Where a classifier answers labels and the training logs a measure of probabilities (a ROC AUC, a
    log loss), which outer-loop test cannot measure of labels: how to have it measured."""
    if run.task != "classification" or run.probabilities:
        return []
    logged = sorted(n for n in run.metrics if measured_as(PROBABILITY_METRICS, n) and not on_training_rows(n))
    if not logged:
        return []
    return [
        f"the training logs {', '.join(logged)}, which outer-loop test measures only of a model answering "
        "probabilities, and this one answers labels: to have it validated so, log the model with "
        "pyfunc_predict_fn='predict_proba' (mlflow.sklearn.log_model), whose endpoint then answers a "
        "probability for each class (measured by the most likely one for accuracy, f1, precision, recall)"
    ]


def _no_gate(metrics: dict[str, float]) -> str:
    """Why init cannot write a gate from the metrics a training logged, and what to log instead."""
    examples = (
        "such as accuracy, f1, auc, r2 or silhouette, better higher, and loss, rmse, mae or davies_bouldin, "
        "better lower"
    )
    if not metrics:
        return (
            f"the training logged no metric loopline can gate on ({examples}); log one with "
            "mlflow.log_metric, then run init again"
        )
    return (
        f"the training logged no metric whose name says which way is better ({', '.join(sorted(metrics))}); "
        f"log one that does ({examples}), then run init again"
    )


def onboard(
    root: Path,
    tier: Tier,
    *,
    name: str | None = None,
    model: str | None = None,
    command: str | None = None,
    inputs: dict[str, str] | None = None,
    timeout: float = 3600,
    from_run: str | None = None,
    tracking_uri: str | None = None,
    reporter: Reporter | None = None,
) -> Onboarded:
    """Find the training, run it once (or read ``from_run``, a run it made before, in the MLflow store at
    ``tracking_uri``), and write loopline's files into the repository at ``root``; ``inputs`` gives a local
    copy (a path) of each data asset the training reads, for that one run; ``reporter`` is told which."""
    from loopline.rendering import render_templates
    from loopline.scaffold import project_context
    from loopline.workflows.files import relative_to, workflow_files, workflow_layout

    root = root.expanduser().resolve()
    if not root.is_dir():
        raise UsageError(f"{root} is not a folder; give the repository's folder")
    if (root / CONFIG_FILE).exists():
        raise Refused(
            f"{root / CONFIG_FILE} exists already: this repository is set up for loopline; to bring its "
            "workflow files to this loopline's, run `loopline workflow update`"
        )
    if not is_git_repo(root):
        raise UsageError(f"{root} is not a git repository: loopline ties models to commits; run `git init`")
    command, job, mlproject, found_notes = _training(root, command)
    from_azure = {item.name: item for item in job.inputs} if job else {}
    in_repository = local_asset_copies(root, from_azure.values())
    copies = local_copies(
        command,
        {**in_repository, **(inputs or {})},
        {n: f"{i.azure} in {i.file}" for n, i in from_azure.items()},
    )
    assets = {name: from_azure[name].asset if name in from_azure else asset_name(name) for name in copies}
    before, unfetched = worktree_changes(root), ignored_data(root, command)
    report = reporter or NullReporter()
    if from_run is None:
        report.step(f"running the training once to see what it logs (against a scratch store): {command}")
        run = dry_run(root, fill_inputs(command, copies), timeout, input_environment(copies))
    else:
        which = "the newest run that logged a model" if from_run == "latest" else f"run {from_run}"
        report.step(f"reading what {which} logged (the training is not run)")
        run = earlier_run(root, from_run, tracking_uri)
    made, changed = (
        sorted(after - earlier) for after, earlier in zip(worktree_changes(root), before, strict=True)
    )
    unfetched += ignored_reads(root, run.read, unfetched)  # read through names the code builds
    gate, skipped, fitted = gate_thresholds(run.metrics)
    if not gate:
        raise Refused(_no_gate(run.metrics))
    if run.rivals:  # a search by hand: the gate and validation from the run model.select: best takes
        run = replace(run, metrics=best_rival(gate, run))
        gate, skipped, fitted = gate_thresholds(run.metrics)
    name = name or project_name(root)
    chosen_model = model or run.registered or f"{name}-model"
    gate_file = "gate.yaml" if not (root / "gate.yaml").exists() else "loopline-gate.yaml"
    ranking_file = RANKING if not (root / RANKING).exists() else f"loopline-{RANKING}"
    layout = workflow_layout(root, name)
    tools = TOOLS + (NOTEBOOK_TOOLS if runs_notebook(command) else ())
    tools += DVC_TOOLS if command.startswith(DVC_REPRO) else ()
    conda_file = job.conda_file if job else ""
    scripts = job.scripts if job else ()
    setup, requirements, setup_notes = workflow_setup(
        root, run.requirements, tools, command, conda_file, scripts
    )
    attested = layout.folder and layout.inner_loop
    config = _config_text(
        name, tier, chosen_model, command, run, (gate_file, ranking_file), attested, assets
    )  # fmt: skip
    if job is not None and job.sweep is not None:  # the sweep job's search space, for `loopline sweep`
        section = yaml.safe_dump({"sweep": job.sweep}, sort_keys=False, default_flow_style=None)
        config += (
            f"# From {job.sweep_file}, Azure ML's sweep job: `loopline sweep` runs its trials.\n{section}"
        )
    release, release_notes = release_endpoint(root, tier)  # the prod endpoint its callers know
    config += release
    files = {
        CONFIG_FILE: config.encode(),
        gate_file: gate_text(gate, skipped, fitted, run.origin).encode(),
        ranking_file: ranking_text(gate, run).encode(),
        "monitoring/policy.yaml": render_templates("project", project_context(name, tier, chosen_model))[
            "monitoring/policy.yaml"
        ],
        **requirements,
        **{relative_to(root, path): content for path, content in workflow_files(layout, setup).items()},
    }
    written, kept = write_new(root, files)
    kept += [theirs for theirs, ours in (("gate.yaml", gate_file), (RANKING, ranking_file)) if theirs != ours]
    if added := extend_gitignore(root, made):
        written.append(f".gitignore (added {', '.join(added)})")
    notes = [
        *found_notes,
        *_job_notes(job, mlproject),
        *release_notes,
        *_validation_notes(tier, run),
        *_notes(run, chosen_model),
        *_earlier_run_notes(root, run),
        *output_notes(made, [p for p in changed if p != DVC_LOCK or not command.startswith(DVC_REPRO)]),
        *setup_notes,
        *_data_notes(unfetched),
        *input_notes(root, assets, copies, {name: item.azure for name, item in from_azure.items()}),
    ]
    if runs_notebook(command):
        notes.insert(0, NOTEBOOK_NOTE)
    return Onboarded(
        root,
        name,
        tier,
        chosen_model,
        command,
        run.chosen,
        run.experiment if run.experiment != "Default" else None,
        run.metrics,
        tuple(written),
        tuple(kept),
        tuple(notes),
        assets,
    )


def _training(
    root: Path, command: str | None
) -> tuple[str, JobCommand | None, ProjectCommand | None, list[str]]:
    """The training command, the Azure ML job file or MLproject it comes from, and notes on what was added
    to a script's command: ``command`` where given (read as its pipeline file where it runs one), else
    the one found in the repository."""
    job = named_pipeline(root, command) if command else find_training_job(root)
    if job is not None:
        return job.command, job, None, []
    if command:
        return command, None, None, []
    mlproject = find_project_command(root)
    if mlproject is not None:
        return mlproject.command, None, mlproject, []
    found, notes = entry_point(root)
    return found, None, None, notes


def _job_notes(job: JobCommand | None, mlproject: ProjectCommand | None) -> list[str]:
    if mlproject is not None:
        unused = f"; its {mlproject.environment} is not read" if mlproject.environment else ""
        return [
            "the training command is MLproject's main entry point, with its parameters' defaults filled in "
            f"(as `mlflow run .` runs it); it runs in this environment{unused}"
        ]
    if job is None:
        return []
    if job.steps:
        return [pipeline_note(job)]
    moved = f", not from {job.code}/ where Azure ML runs it" if job.code else ""
    kind = (
        "an Azure ML sweep job's trial, with the middle of its search space"
        if job.file == job.sweep_file
        else ("an Azure ML command job")
    )
    notes = [
        f"the training command is the one of {job.file}, {kind}, with its inputs filled in; "
        f"it runs from the repository's root{moved}, in this environment (the job's environment and "
        "compute are Azure ML's)"
    ]
    if job.sweep is not None:
        notes.append(
            f"{job.sweep_file}'s search space, objective, trial limit and concurrent trials are "
            "loopline.yaml's sweep: `loopline sweep` runs the trials (with Optuna's sampler, not the job's "
            "sampling_algorithm) and registers the best"
        )
    return notes


def asset_name(name: str) -> str:
    """The data asset an input of the training command is read from: the input's name, which may start
    with '_' where an asset's must start with a letter or digit."""
    return name.lstrip("_") or "data"


def _encoded_notes(run: DryRun) -> list[str]:
    """What a model fitted on columns the script one-hot encoded asks of its callers."""
    if not run.encoded or run.label is None:
        return []
    column, made = run.encoded[0]
    shown = ", ".join(made[:3]) + (", ..." if len(made) > 3 else "")
    more = f" (and {len(run.encoded) - 1} more such column(s))" if len(run.encoded) > 1 else ""
    return [
        f"the model takes {shown}, which the training makes of {run.label[1]}'s column {column} before it "
        f"fits (pd.get_dummies){more}: requests, held-out rows and batch files must hold those columns, "
        f"not {column}; to take {column} as it comes, encode it in the model (a Pipeline with a "
        "OneHotEncoder(handle_unknown='ignore'))"
    ]


def _computed_notes(run: DryRun) -> list[str]:
    """What a model fitted on columns the script computes asks of its callers."""
    if not run.computed or run.label is None:
        return []
    computed, table = run.computed, run.label[1]
    shown = ", ".join(computed[:3]) + (f" and {len(computed) - 3} more" if len(computed) > 3 else "")
    them = "it" if len(computed) == 1 else "them"
    return [
        f"the model takes {shown}, which {table} does not hold (the training computes {them} before it "
        f"fits): requests, held-out rows and batch files must hold {them} too; to take {table}'s columns "
        f"as they come, compute {them} in the model (a Pipeline with a FunctionTransformer, or a pyfunc "
        "model)"
    ]


def _data_notes(unfetched: list[str]) -> list[str]:
    if not unfetched:
        return []
    return [
        f"the training reads {', '.join(unfetched[:3])}, which git ignores: the workflows' fresh checkout "
        "has none of it; upload it (`loopline data upload NAME PATH`) and name it in training.inputs (see "
        "docs/inner-loop.md, training data from data assets), or make it in the training command before "
        "the training (`make data && ...`)"
    ]


def _notes(run: DryRun, model: str) -> list[str]:
    notes = [*_encoded_notes(run), *_computed_notes(run)]
    if run.refused:
        notes.append(
            "the inner loop will refuse the model the training logs until the training changes: "
            + run.refused
        )
    if len(run.model_names) > 1 and not run.checkpoints:
        listed = ", ".join(f"'{n}'" for n in run.model_names)
        notes.append(
            f"the training logged models named {listed}; loopline registers '{run.chosen}' "
            "(model.artifact_path): change it if you meant another"
        )
    if run.rivals:
        told = (
            f"the training logs {len(run.rivals)} checkpoints of a run ('{run.chosen}', model.artifact_path)"
            if run.checkpoints
            else f"{len(run.rivals)} runs of the training log '{run.chosen}'"
        )
        notes.append(
            f"{told}; loopline registers the one the ranking file puts first (model.select: best), and the "
            "gate's thresholds come from that one: set model.select: last to register the newest instead"
        )
    if run.registered:
        notes.append(
            f"the script registers '{run.registered}' itself; loopline registers the same name with the "
            "commit's tags (the script's own registration stays, tagged with the commit and the gate's "
            "outcome)"
        )
    for call in run.ignored:
        notes.append(
            f"the training {'sets' if call.startswith('os.') else 'calls'} {call} itself; loopline ignores "
            "it while it trains, so the runs go to the dev workspace; run by hand, the training still logs "
            "where it says"
        )
    if not run.logged_reference and not run.language_model:  # a conversation is no row to compare
        upload = (
            f"`loopline data upload train {shlex.quote(run.label[1])}`, the table the training read"
            if run.label
            else "`loopline data upload train PATH`"
        )
        notes.append(
            "monitoring compares live requests with training rows, and the training logs none "
            f"({REFERENCE_ARTIFACT}): upload them ({upload}) and set monitoring.reference_data: train in "
            "loopline.yaml"
        )
    if not run.has_example:
        notes.append(
            "the model has no input example: log one (input_example=...), or releases smoke-test each "
            "deployment on the first rows of validation.data or monitoring.reference_data, and with neither "
            "send it nothing"
        )
    return notes


def _earlier_run_notes(root: Path, run: DryRun) -> list[str]:
    """What reading an earlier run (``--from-run``) rather than training leaves to check."""
    if run.from_run is None:
        return []
    notes = [
        f"read what run {run.from_run} logged instead of running the training; the gate's thresholds come "
        "from its figures, and the first `loopline inner-loop` trains at a commit, in the dev workspace"
    ]
    if run.source_commit and not holds(root, run.source_commit):
        notes.append(
            f"run {run.from_run} was made from commit {run.source_commit[:12]}, which this repository does "
            "not have: check that its training is the code here"
        )
    return notes
