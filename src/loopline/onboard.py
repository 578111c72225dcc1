"""``loopline init --existing``: put loopline on a repository that already trains a model with MLflow.

Nothing is asked that the repository already tells: the training entry point is found among its files,
and one dry run of it (against a scratch MLflow store under ``.loopline/``) shows the model it logs, the
name it logs it under, the experiment it uses and the metrics it reports. From those, ``loopline.yaml``
and a gate are written, with the workflow files; a file that exists is never overwritten (it is listed
as kept instead), and ``.loopline/`` (with MLflow's default local stores) is added to ``.gitignore``.
"""

from __future__ import annotations

import json
import os
import re
import shlex
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import yaml

from loopline.azureml import JobCommand, local_asset_copies
from loopline.azureml_endpoints import release_endpoint
from loopline.azureml_pipeline import find_training_job, named_pipeline, pipeline_note
from loopline.config import CONFIG_FILE
from loopline.domain import Tier, project_name
from loopline.dry_run import REFERENCE_ARTIFACT, DryRun, dry_run, earlier_run
from loopline.dvc_repo import stage_running
from loopline.errors import Refused, UsageError
from loopline.git import holds, is_git_repo
from loopline.inputs import fill_inputs, input_environment, input_notes, local_copies
from loopline.mlproject import ProjectCommand, find_project_command
from loopline.repo_setup import (
    DVC_TOOLS,
    NOTEBOOK_NOTE,
    NOTEBOOK_TOOLS,
    TOOLS,
    console_scripts,
    extend_gitignore,
    ignored_data,
    ignored_reads,
    output_notes,
    workflow_setup,
    worktree_changes,
    write_new,
)
from loopline.requirements import source_code
from loopline.script_arguments import config_argument, sub_commands, training_sub_command

__all__ = ["Onboarded", "find_entry_point", "notebook_command", "onboard", "runs_notebook"]

_SKIPPED_DIRS = frozenset(
    {".git", ".venv", "venv", "env", "node_modules", "site-packages", "build", "dist", "__pycache__"}
)
_HIGHER = re.compile(r"(accuracy|acc|auc|f1|precision|recall|r2|score|ap|map|ndcg|coverage)", re.I)
# autolog's training_score, train_loss, ...; TensorBoard's and Lightning's train/loss, train:acc
_TRAINING_SET = re.compile(r"^(training|train)[_.\-/: ]", re.I)
_HELD_OUT = re.compile(r"(^|[_.\-/: ])(test|val|valid|validation|eval|holdout|heldout)([_.\-/: ]|$)", re.I)
_LOWER = re.compile(r"(loss|error|mse|rmse|mae|mape|logloss|brier)", re.I)


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


def _training_files(root: Path, depth: int = 3) -> list[Path]:
    """The Python scripts and Jupyter notebooks under ``root``, ``depth`` folders down at the most."""
    found: list[Path] = []
    folders = [root]
    for _ in range(depth + 1):
        nested: list[Path] = []
        for folder in folders:
            for entry in sorted(folder.iterdir()):
                if entry.is_dir() and entry.name not in _SKIPPED_DIRS and not entry.name.startswith("."):
                    nested.append(entry)
                elif entry.suffix in {".py", ".ipynb"} and entry.is_file():
                    found.append(entry)
        folders = nested
    return found


def notebook_command(notebook: Path) -> str:
    """The command that runs ``notebook`` (relative to the repository) top to bottom as Jupyter would: in
    its own folder, on the kernel of the Python loopline runs in (whatever kernel the notebook was saved
    with), its cells' output in the training log; papermill runs it, and the executed copy is dropped."""
    argv = ["python", "-m", "papermill", str(notebook), os.devnull]
    if notebook.parent != Path("."):
        argv += ["--cwd", str(notebook.parent)]
    return shlex.join(
        [*argv, "--log-output", "--no-progress-bar", "--kernel", "python3", "--language", "python"]
    )


def runs_notebook(command: str) -> bool:
    """Whether ``command`` runs a notebook with papermill (the workflows then install it and a kernel)."""
    try:
        argv = shlex.split(command)
    except ValueError:
        return False
    return "papermill" in argv[:3]


def find_entry_point(root: Path) -> str:
    """The command that trains: a Python script that logs an MLflow model (preferring ``train*.py``), a
    notebook that does where no script does, or a Makefile's ``train`` target."""
    return _entry_point(root)[0]


def _entry_point(root: Path) -> tuple[str, list[str]]:
    """``find_entry_point``'s command, and notes on what it added to it (a configuration file the script
    cannot start without)."""
    scored = []
    for path in _training_files(root):
        relative = path.relative_to(root)
        if relative.parts[0] in {"tests", "test"} or path.name.startswith("test_"):
            continue
        text = source_code(path)
        if text is None or "mlflow" not in text or not re.search(r"log_model|autolog\(", text):
            continue
        named = "train" in path.stem.lower()
        script = path.suffix == ".py"
        main = not script or "__main__" in text or not re.search(r"^def |^class ", text, re.M)
        scored.append((named, main, script, -len(relative.parts), str(relative)))
    if scored:
        scored.sort(reverse=True)
        best = scored[0]
        ties = [s for s in scored if s[:4] == best[:4]]
        if len(ties) > 1:
            listed = ", ".join(s[4] for s in ties[:5])
            raise UsageError(
                f"several files could be the training entry point ({listed}); name it with "
                "--command 'python PATH'"
            )
        found = _script_command(root, Path(best[4])) if best[2] else notebook_command(Path(best[4]))
        if best[2] and not best[1]:  # functions, none called when it runs: the package's command calls one
            found = _console_script(root, Path(best[4])) or found
        if wrapped := _wrapper(root, best[4], found):
            return wrapped, _wrapper_notes(wrapped)
        return _with_arguments(root, found, root / best[4]) if best[2] else (found, [])
    if "train" in _make_targets(root):
        return "make train", []
    raise UsageError(
        f"no script or notebook in {root} logs an MLflow model (mlflow.<flavor>.log_model or autolog); "
        "name the training command with --command 'python PATH'"
    )


def _with_arguments(root: Path, found: str, script: Path) -> tuple[str, list[str]]:
    """``found``, the command running ``script``, with the sub-command that trains (a group of them) or
    the configuration file it cannot start without, where either is known; and notes on what was added."""
    source = source_code(script) or ""
    if grouped := _sub_command(found, source):
        return grouped
    configured = config_argument(root, source)
    if configured is None:
        return found, []
    arguments, note = configured
    return shlex.join([*shlex.split(found), *arguments]), [f"{note}; pass another in training.command"]


def _sub_command(found: str, source: str) -> tuple[str, list[str]] | None:
    """``found`` with the sub-command that trains, where the script is a group of sub-commands (click,
    Typer, argparse's sub-parsers) and exactly one is named for training; and a note saying so."""
    names = sub_commands(source)
    chosen = training_sub_command(names) if names else None
    if chosen is None:
        return None
    listed = ", ".join(names or ())
    return f"{found} {shlex.quote(chosen)}", [
        f"the script is a group of sub-commands ({listed}): the training runs its {chosen}; name another "
        "in training.command"
    ]


def _console_script(root: Path, script: Path) -> str | None:
    """The command of the repository's package (``pyproject.toml``'s scripts) that calls a function of
    ``script``, a module of the package (at the top or under ``src/``)."""
    parts = script.with_suffix("").parts
    module = ".".join(parts[1:] if parts[0] == "src" else parts)
    named = [name for name, target in console_scripts(root).items() if target.partition(":")[0] == module]
    return min(named, key=lambda name: ("train" not in name, name)) if named else None


def _make_targets(root: Path) -> dict[str, tuple[list[str], list[str]]]:
    """The rules of the repository's Makefile: each target's prerequisites and recipe lines."""
    makefile = next((root / n for n in ("GNUmakefile", "makefile", "Makefile") if (root / n).is_file()), None)
    rules: dict[str, tuple[list[str], list[str]]] = {}
    recipe: list[str] | None = None
    for line in makefile.read_text(errors="replace").replace("\\\n", " ").splitlines() if makefile else []:
        if line.startswith("\t") or not line.strip() or line.startswith("#"):
            if line.startswith("\t") and recipe is not None:
                recipe.append(line.strip())
            continue
        recipe = None
        if rule := re.match(r"^([\w.\-/ ]+?)\s*::?(?![=:])\s*([^;#]*)", line):
            recipe = []
            for target in rule.group(1).split():
                rules[target] = (rule.group(2).split(), recipe)  # targets of one rule share its recipe
    return rules


def _wrapper(root: Path, script: str, command: str) -> str | None:
    """How the repository says to run ``script`` (that ``command`` runs), where it wraps it: the Makefile's
    ``train`` target, itself or through the targets it depends on (a data step, say), else the stage of
    DVC's pipeline (``dvc.yaml``) that runs it, with the stages it depends on, else a shell script
    ``train*.sh`` at the top or in ``scripts/``."""
    names = {script, command.partition("python ")[2] or script}
    runs = re.compile("|".join(rf"(?<![\w/.-]){re.escape(name)}(?![\w.-])" for name in names))
    rules, seen, todo = _make_targets(root), set(), ["train"]
    while todo:
        target = todo.pop()
        if target in seen or target not in rules:
            continue
        seen.add(target)
        prerequisites, recipe = rules[target]
        if any(runs.search(line) for line in recipe):
            return "make train"
        todo.extend(prerequisites)
    if stage := stage_running(root, script):  # forced: DVC skips a stage whose inputs did not change
        return f"dvc repro --force {shlex.quote(stage)}"
    for shell in [*sorted(root.glob("train*.sh")), *sorted(root.glob("scripts/train*.sh"))]:
        lines = shell.read_text(errors="replace").splitlines()
        if any(runs.search(line) for line in lines if not line.lstrip().startswith("#")):
            return f"bash {shlex.quote(str(shell.relative_to(root)))}"
    return None


def _wrapper_notes(command: str) -> list[str]:
    if not command.startswith(DVC_REPRO):
        return []
    return [
        f"the training command runs DVC's stage {shlex.split(command)[-1]} (dvc.yaml) and the stages it "
        "depends on: forced (--force), since `dvc repro` skips a stage whose dependencies did not change and "
        f"the inner loop trains at every commit; it rewrites {DVC_LOCK} where a stage's outputs change, "
        f"which training.paths leaves out, so a commit of {DVC_LOCK} alone trains nothing"
    ]


def _script_command(root: Path, script: Path) -> str:
    """``python -m PACKAGE.MODULE`` for a script of a package that imports the package (relatively or by
    its name), which only runs as a module of it; ``python SCRIPT`` for any other."""
    packages = [folder for folder in script.parents[:-1] if (root / folder / "__init__.py").is_file()]
    if packages and packages[0] == script.parent:
        top = next((p for p in packages if not (root / p.parent / "__init__.py").is_file()), packages[-1])
        dotted = ".".join(script.with_suffix("").relative_to(top.parent).parts)
        code = source_code(root / script) or ""
        if re.search(rf"^\s*from\s+\.|^\s*(from|import)\s+{re.escape(top.name)}\b", code, re.M):
            return f"python -m {dotted}"
    return f"python {shlex.quote(str(script))}"


# What the workflow files' steps run besides the training: loopline itself, Python CI's tests and lint.
def _gate(metrics: dict[str, float]) -> tuple[dict[str, dict[str, float]], list[str], list[str]]:
    """Thresholds a little below (or above, for losses) what the dry run reached; the metrics left out; and
    those measured on the training rows (autolog's ``training_*``), left out where others are measured
    on held-out rows: a model that generalises better scores lower on its own training rows."""
    gate: dict[str, dict[str, float]] = {}
    skipped: list[str] = []
    held_out = [n for n in metrics if (_LOWER.search(n) or _HIGHER.search(n)) and not _TRAINING_SET.match(n)]
    fitted = sorted(n for n in metrics if held_out and _TRAINING_SET.match(n))
    for name, value in sorted(metrics.items()):
        if name in fitted:
            continue
        if _LOWER.search(name):
            gate[name] = {"max": round(value * 1.1 if value > 0 else value + 0.1, 4)}
        elif _HIGHER.search(name):
            gate[name] = {"min": round(value * 0.9 if value > 0 else value - 0.1, 4)}
        else:
            skipped.append(name)
    return gate, skipped, fitted


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
            [f"  select: best   # {len(run.rivals)} {_rivals(run)} log it: the first by the ranking file"]
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
        f"  command: {_scalar(command)}",
    ]
    if run.experiment and run.experiment != "Default":
        lines.append(f"  experiment: {_scalar(run.experiment)}   # the one the script sets")
    if assets:  # each {inputs.NAME} of the command: a data asset, verified and copied before each training
        lines.append("  inputs:   # upload each once: loopline data upload ASSET PATH")
        lines += [f"    {name}: {_scalar(asset)}" for name, asset in assets.items()]
    if attested or command.startswith(DVC_REPRO):  # commits that change nothing the model is made of
        lines.append(_paths_line(bool(attested), command.startswith(DVC_REPRO)))
    lines += ["", "gate:", f"  file: {files[0]}", ""]
    if attested:  # a project in a folder of its repository: its workflows are at the top, named after it
        lines += ["registry:", "  attestation:", f"    workflow: {attested}", ""]
    return "\n".join(lines + _validation_lines(run))


RANKING = "ranking.yaml"  # model.ranking's default
DVC_REPRO = "dvc repro "  # a training command that runs DVC's pipeline
DVC_LOCK = "dvc.lock"  # what `dvc repro` rewrites where a stage's outputs change


def _paths_line(in_folder: bool, runs_dvc: bool) -> str:
    """``training.paths`` for a project in a folder of its repository (its folder) or that trains with
    DVC (less the lock file the training rewrites): commits that change neither train nothing."""
    said = ["add shared code the training imports"] if in_folder else []
    said += [f"{DVC_LOCK}, which the training rewrites, makes no new model"] if runs_dvc else []
    patterns = [".", f"!{DVC_LOCK}"] if runs_dvc else ["."]
    return f"  paths: {json.dumps(patterns)}   # {'; '.join(said)}"


# What outer-loop test measures through the test endpoint, by task; the first is the challenger's metric.
_VALIDATION_METRICS = {
    "classification": ("accuracy", "f1", "precision", "recall"),
    "regression": ("r2", "rmse", "mae"),
}
_FRACTIONS = {"accuracy", "f1", "precision", "recall", "r2"}  # measured as fractions (r2 at most 1)


# Words that make a metric named after a measure another one: an area under a curve
# (``precision_recall_auc``), a balanced or top-k accuracy, a precision at k.
_OTHER_MEASURE = frozenset({"auc", "ap", "auprc", "auroc", "balanced", "top", "at", "curve", "area"})


def _measured_as(measured: tuple[str, ...], name: str) -> str | None:
    """Which of the metrics outer-loop test ``measured`` the logged metric ``name`` is, if any: one
    that names exactly one of them (``precision_recall_auc`` is neither precision nor recall)."""
    words = set(re.split(r"[^a-z0-9]+", name.lower()))
    if "f1_score" in name.lower():
        words.add("f1")
    named = [m for m in measured if m in words]
    return named[0] if len(named) == 1 and not words & _OTHER_MEASURE else None


def _ranking_text(gate: dict[str, dict[str, float]], run: DryRun) -> str:
    """A ranking file for `loopline compare` and ``model.select: best``, by the metric ``_primary``
    names."""
    primary, direction = _primary(gate, run)
    return (
        "# How `loopline compare` ranks dev's runs, and which run the inner loop registers with\n"
        f"# `model.select: best` (see docs/cli.md, compare); written from {run.origin}. Add secondary\n"
        "# metrics ({direction, weight}) and constraints ({min, max}) as you weigh them.\n"
        + yaml.safe_dump({"primary": {"metric": primary, "direction": direction}}, default_flow_style=None)
    )


def _primary(gate: dict[str, dict[str, float]], run: DryRun) -> tuple[str, str]:
    """The ranking's metric and direction: the gated metric the task's validation measures first (the
    challenger's), else the gate's first, in the gate's direction."""
    measured = _VALIDATION_METRICS[run.task] if run.task else ()
    names = _held_out_first(list(gate))
    primary = next((n for m in measured for n in names if _measured_as(measured, n) == m), next(iter(gate)))
    return primary, "maximize" if "min" in gate[primary] else "minimize"


def _held_out_first(names: list[str]) -> list[str]:
    """``names`` with those that say they were measured on held-out rows (``test_accuracy``,
    ``val_loss``) first: of a training's accuracy and test accuracy, the test one ranks and validates."""
    return sorted(names, key=lambda name: not _HELD_OUT.search(name))


def _rivals(run: DryRun) -> str:
    """What the rivals are: runs of a search by hand, or checkpoints of one run."""
    return "checkpoints" if run.checkpoints else "runs"


def _best_rival(gate: dict[str, dict[str, float]], run: DryRun) -> dict[str, float]:
    """The metrics of the run the ranking file puts first, of those that logged the model (the dry run's
    own where none logged the ranking's metric)."""
    metric, direction = _primary(gate, run)
    ranked = [rival for rival in run.rivals if metric in rival]
    if not ranked:
        return run.metrics
    sign = 1 if direction == "maximize" else -1
    return max(ranked, key=lambda rival: sign * rival[metric])


def _validation_lines(run: DryRun) -> list[str]:
    """``validation:`` for outer-loop test (full tier), from the dry run: the task the model's answers
    tell, and bounds 10% short of what it reached on the metrics outer-loop test measures too."""
    if run.forecast is not None:
        return _forecast_validation_lines(run)
    if run.task is None:
        return []
    measured = _VALIDATION_METRICS[run.task]
    reached: dict[str, dict[str, float]] = {}
    bounds = _gate({k: v for k, v in run.metrics.items() if not _TRAINING_SET.match(k)})[0]
    for name in _held_out_first(list(bounds)):
        bound = bounds[name]
        same = _measured_as(measured, name)
        if same in _FRACTIONS and run.metrics[name] > 1:  # a percentage, where validation measures a fraction
            continue
        if same is not None and same not in reached:
            reached[same] = bound
    reached = {m: reached[m] for m in measured if m in reached}  # the challenger's metric first
    lines = [
        "# outer-loop test (full tier): the test endpoint's answers to held-out rows. The task is read from",
        f"# the model's answers and the metrics it logs, the bounds from {run.origin}: check both.",
        "validation:",
        "  data: heldout   # a data asset of held-out rows and labels: loopline data upload heldout PATH",
        _label_line(run.label),
        f"  task: {run.task}",
        f"  thresholds: {json.dumps(reached) if reached else '{}'}",
        f"  challenger_metric: {next(iter(reached), measured[0])}",
        "",
    ]
    return lines


def _forecast_validation_lines(run: DryRun) -> list[str]:
    """``validation:`` for a forecast: a command of the project measures it through the endpoint, gated on
    the error metrics the training logged (10% short of what it reached)."""
    gate = _gate({k: v for k, v in run.metrics.items() if not _TRAINING_SET.match(k)})[0]
    errors = {name: bound for name, bound in gate.items() if _REGRESSION_ERROR.search(name)}
    return [
        f"# outer-loop test (full tier): a forecast ({run.forecast}) answers a value for each step of the",
        "# horizon a request names, which loopline cannot measure on held-out rows: validate.py (yours to",
        "# write: docs/outer-loops.md, 'A validation of your own') forecasts the held-out steps through the",
        f"# endpoint and writes its metrics. The bounds come from {run.origin}: check them.",
        "validation:",
        "  command: python validate.py",
        "  data: heldout   # the steps held out, for validate.py: loopline data upload heldout PATH",
        f"  thresholds: {json.dumps(errors)}",
        f"  challenger_metric: {next(iter(errors), 'mae')}",
        "",
    ]


# The metrics of a forecast's errors on held-out steps, which validate.py measures again through the endpoint.
_REGRESSION_ERROR = re.compile(r"(rmse|mse|mae|mape|wape|error)", re.I)


def _label_line(label: tuple[str, str] | None) -> str:
    """``validation.label``: the column the dry run found the true values in, else the default name."""
    if label is None:
        return "  label: label    # the column holding the true values"
    column, table = label
    return f"  label: {_scalar(column)}   # the true values: the column of {table} the model does not take"


def _validation_notes(tier: Tier, run: DryRun) -> list[str]:
    """What outer-loop test (full tier) needs that the training does not give: held-out rows (and, for a
    forecast, the command that measures it)."""
    if tier != Tier.FULL:
        return []
    if run.forecast is not None:
        return [
            f"outer-loop test measures this forecast ({run.forecast}) with validation.command: write "
            "validate.py, which forecasts the held-out steps through the test endpoint and writes its "
            "metrics (docs/outer-loops.md, 'A validation of your own'), and upload those steps once "
            "(`loopline data upload heldout PATH`)"
        ]
    what = (
        "the thresholds in validation.thresholds"
        if run.task
        else "validation.task (classification or regression) and its thresholds"
    )
    label = (
        f"{run.label[0]}, as in {run.label[1]}"
        if run.label
        else "label: init could not tell it from the tables the training read"
    )
    return [
        "outer-loop test validates each version on held-out rows the training never saw, with their true "
        f"values in a column named as validation.label says ({label}): upload them once (`loopline data "
        f"upload heldout PATH`, a CSV or Parquet file or folder) before its first run, and check {what}"
    ]


def _scalar(value: str) -> str:
    """``value`` as a YAML scalar: plain where YAML reads it back as the same text, else quoted."""

    plain = re.fullmatch(r"[A-Za-z0-9_][A-Za-z0-9_./ =-]*", value) and not value.endswith(" ")
    return value if plain and yaml.safe_load(value) == value else json.dumps(value)


def _gate_text(gate: dict[str, dict[str, float]], skipped: list[str], fitted: list[str], origin: str) -> str:
    header = (
        f"# The inner loop's gate, written from {origin}: each threshold is 10% short of\n"
        "# what that run reached. Tighten them to what a model must reach to be registered.\n"
    )
    body = yaml.safe_dump({"metrics": gate}, sort_keys=False)
    listed = [
        ("Also logged, not gated", skipped),
        (
            "Measured on the training rows, not gated (a model that generalises better scores lower there)",
            fitted,
        ),
    ]
    return (
        header
        + body
        + "".join(
            f"# {title}:\n" + "".join(f"#   {name}: {{min: ..., max: ...}}\n" for name in names)
            for title, names in listed
            if names
        )
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
) -> Onboarded:
    """Find the training, run it once (or read ``from_run``, a run it made before, in the MLflow store at
    ``tracking_uri``), and write loopline's files into the repository at ``root``; ``inputs`` gives a local
    copy (a path) of each data asset the training reads, for that one run."""
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
    if from_run is None:
        run = dry_run(root, fill_inputs(command, copies), timeout, input_environment(copies))
    else:
        run = earlier_run(root, from_run, tracking_uri)
    made, changed = (
        sorted(after - earlier) for after, earlier in zip(worktree_changes(root), before, strict=True)
    )
    unfetched += ignored_reads(root, run.read, unfetched)  # read through names the code builds
    gate, skipped, fitted = _gate(run.metrics)
    if not gate:
        raise Refused(
            "the training logged no metric loopline can gate on (such as accuracy, f1, auc, r2, loss, rmse); "
            "log one with mlflow.log_metric, then run init again"
        )
    if run.rivals:  # a search by hand: the gate and validation from the run model.select: best takes
        run = replace(run, metrics=_best_rival(gate, run))
        gate, skipped, fitted = _gate(run.metrics)
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
        gate_file: _gate_text(gate, skipped, fitted, run.origin).encode(),
        ranking_file: _ranking_text(gate, run).encode(),
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
    found, notes = _entry_point(root)
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
    notes = []
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
            f"the training calls {call} itself; loopline ignores it while it trains, so the runs go to the "
            "dev workspace; run by hand, the training still logs where the call says"
        )
    if not run.logged_reference:
        notes.append(
            "monitoring compares live requests with training rows, and the training logs none "
            f"({REFERENCE_ARTIFACT}): upload them (`loopline data upload train PATH`) and set "
            "monitoring.reference_data: train in loopline.yaml"
        )
    if not run.has_example:
        notes.append(
            "the model has no input example: log one (input_example=...) so deployments can be smoke-tested"
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
