"""What a training session made: its runs, wherever the script put them, and the model to register.

A training script may pick its own experiment, start its own and nested runs, use autolog, log several
models or register one itself. Every run it starts carries the session's tags (``mlflow_plugin.py``);
from those runs loopline takes the model ``loopline.yaml`` names and the metrics the gate needs, and it
refuses, naming the key to set, when it cannot tell which model the script meant.
"""

from __future__ import annotations

import contextlib
import os
import socket
import time
from dataclasses import dataclass, field
from fnmatch import fnmatchcase
from pathlib import Path
from typing import Any

from loopline.config import ModelConfig
from loopline.domain import Provenance
from loopline.errors import ConfigError, Refused, TrainingFailed
from loopline.mlflow_store import LoggedModelInfo, RunInfo, WorkspaceStore, artifact_root_uri
from loopline.state.locks import process_alive

__all__ = [
    "HOST",
    "OUTCOME",
    "PID",
    "SESSION",
    "Trained",
    "check_artifacts",
    "checkpoint_stem",
    "close_session",
    "fail_abandoned_runs",
    "fail_session",
    "pick_model",
    "plain_model_file",
    "rival_runs",
    "session_runs",
]

SWEEP = "loopline.sweep"
"""The study of a sweep's runs: its trials, and its parent."""
SWEEP_PARENT = "loopline.sweep_parent"
"""``true`` on a sweep's parent run."""
SWEEP_TRIAL = "loopline.sweep_trial"
"""The trial's number, on each run of a sweep's trial."""
SESSION = "loopline.session"
HOST = "loopline.host"
PID = "loopline.pid"
OUTCOME = "loopline.training"
SUCCEEDED = "succeeded"


@dataclass(frozen=True)
class Trained:
    """The model a training made (or an upload brought): its run, its files and the gate's metrics."""

    run_id: str
    model_id: str | None
    model_uri: str
    model_name: str
    metrics: dict[str, float]
    log: Path | None = None
    provenance: Provenance = Provenance.BUILT_HERE
    provenance_detail: dict[str, Any] = field(default_factory=dict)


def session_runs(store: WorkspaceStore, session: str, started_ms: int) -> list[RunInfo]:
    """The runs of a training session, in any experiment of the workspace.

    When the training process could not load loopline's MLflow plugin (an interpreter without loopline),
    its runs carry no session tag: then the untagged runs started since the session began are its runs.
    """
    tagged = store.search_all_runs(f"tags.`{SESSION}` = '{session}'")
    if tagged:
        return tagged
    return [
        r for r in store.search_all_runs(f"attributes.start_time >= {started_ms}") if SESSION not in r.tags
    ]


def close_session(
    store: WorkspaceStore, runs: list[RunInfo], tags: dict[str, str], *, succeeded: bool
) -> list[RunInfo]:
    """End the session's runs and tag them all: after success, a run the script left open is FINISHED; after
    a failure, a Ctrl-C or a kill, every run of the session is FAILED (MLflow itself marks a run whose
    script crashed FINISHED when the process exits), so none is left RUNNING or looks successful.
    """
    closed = []
    for run in runs:
        missing = {k: v for k, v in tags.items() if run.tags.get(k) != v}
        missing[OUTCOME] = SUCCEEDED if succeeded else "failed"
        if run.tags.get(OUTCOME) == missing[OUTCOME]:
            del missing[OUTCOME]
        for key, value in missing.items():
            store.set_run_tag(run.run_id, key, value)
        status = None
        if run.status == "RUNNING" and succeeded:
            status = "FINISHED"
        elif run.status in {"RUNNING", "FINISHED", "SCHEDULED"} and not succeeded:
            status = "FAILED"
        if status is not None:
            store.end_run(run.run_id, status)
        closed.append(store.run(run.run_id) if missing or status else run)
    return closed


def fail_session(store: WorkspaceStore, session: str, started_ms: int, tags: dict[str, str]) -> None:
    """After a failed or interrupted training: mark its open runs FAILED (never hiding the first error)."""
    with contextlib.suppress(Exception):
        close_session(store, session_runs(store, session, started_ms), tags, succeeded=False)


def fail_abandoned_runs(store: WorkspaceStore, timeout_seconds: float) -> int:
    """Mark FAILED the RUNNING training runs of loopline processes that ended: on this host, those whose
    process is gone; on any host, those older than the training timeout (loopline would have stopped
    them by then). How many."""
    host = socket.gethostname()
    horizon_ms = (time.time() - timeout_seconds - 60) * 1000
    count = 0
    for run in store.search_all_runs(f"attributes.status = 'RUNNING' AND tags.`{HOST}` != ''"):
        pid = run.tags.get(PID, "")
        here = run.tags.get(HOST) == host and pid.isdigit() and int(pid) != os.getpid()
        if (here and not process_alive(int(pid))) or 0 < run.start_time < horizon_ms:
            store.set_run_tag(run.run_id, "loopline.abandoned", "its loopline process ended")
            store.end_run(run.run_id, "FAILED")
            count += 1
    return count


def check_artifacts(store: WorkspaceStore, runs: list[RunInfo]) -> None:
    """Refuse runs whose artifacts went outside the workspace's artifact store (a stray ``./mlruns``)."""
    location = store.location
    if location.on_tracking_server or location.artifact_location is None:
        return  # a tracking server decides where artifacts go
    root = artifact_root_uri(location.artifact_location).rstrip("/") + "/"
    for run in runs:
        if run.artifact_uri and not run.artifact_uri.startswith(root):
            experiment = store.experiment_name(run.experiment_id)
            raise Refused(
                f"run {run.run_id} keeps its artifacts at {run.artifact_uri}, outside the {store.name} "
                f"workspace's artifact store ({root.rstrip('/')}): experiment '{experiment}' was created "
                "outside loopline; rename it (MlflowClient().rename_experiment) so that the next run "
                "creates it in the workspace, then run the inner loop again"
            )


def pick_model(
    store: WorkspaceStore,
    runs: list[RunInfo],
    config: ModelConfig,
    command: str,
    log: Path | None,
    root: Path | None = None,
) -> Trained:
    """The model of the session's runs that ``model.artifact_path`` (and ``model.select``) names; with
    ``select: best``, ranked by ``model.ranking`` (relative to ``root``, the project)."""
    logged = [model for run in runs for model in store.logged_models(run)]
    if not logged:
        raise TrainingFailed(
            command=command,
            outcome="finished without logging a model"
            + (plain_model_file(store, runs) or " (log one with mlflow.<flavor>.log_model)"),
            log=log or "its runs",
        )
    chosen = _by_name(logged, config)
    model = _one_run(chosen, runs, config, root)
    by_id = {run.run_id: run for run in runs}
    metrics: dict[str, float] = {}
    for run in reversed(_lineage(by_id, model.run_id)):  # the farthest ancestor first, the run itself last
        metrics.update(run.metrics)
    metrics.update(model.metrics)
    return Trained(model.run_id, model.model_id, model.uri, model.name, metrics, log)


def _by_name(logged: list[LoggedModelInfo], config: ModelConfig) -> list[LoggedModelInfo]:
    names = sorted({model.name for model in logged})
    wanted = config.artifact_path
    if "artifact_path" in config.model_fields_set or wanted in names:
        chosen = [model for model in logged if fnmatchcase(model.name, wanted)]
        if not chosen:
            raise ConfigError(
                f"loopline.yaml: model.artifact_path is '{wanted}', but the training logged "
                f"{_listing(names)}; set model.artifact_path to the one to register"
            )
        return chosen
    if len(names) > 1:
        raise ConfigError(
            f"loopline.yaml: the training logged {_listing(names)}; set model.artifact_path to the one "
            f"to register{_checkpoints_hint(logged)}"
        )
    return logged


def checkpoint_stem(logged: list[LoggedModelInfo]) -> str | None:
    """``sgd-`` for models of one run named by their epoch (``sgd-0``, ``sgd-1``, ..., as MLflow 3's deep
    learning guide logs checkpoints); None for any other set of models."""
    stems = {model.name.rstrip("0123456789") for model in logged}
    runs = {model.run_id for model in logged}
    numbered = all(model.name[-1:].isdigit() for model in logged)
    one = len(logged) > 1 and len(stems) == 1 and len(runs) == 1 and numbered
    return stems.pop() if one and stems != {""} else None


def _checkpoints_hint(logged: list[LoggedModelInfo]) -> str:
    """For checkpoints (``checkpoint_stem``): the pattern and ``select`` that take the best."""
    stem = checkpoint_stem(logged)
    if stem is None:
        return ""
    return (
        f", or to '{stem}*' with model.select: best to register the checkpoint your ranking file puts "
        "first (by the metrics logged to each, with log_metric(..., model_id=...) or at its step)"
    )


def _listing(names: list[str]) -> str:
    shown = ", ".join(f"'{name}'" for name in names[:8])
    return f"models named {shown}" + (f" ({len(names)} in all)" if len(names) > 8 else "")


def _one_run(
    chosen: list[LoggedModelInfo], runs: list[RunInfo], config: ModelConfig, root: Path | None
) -> LoggedModelInfo:
    """One model: the newest of one run, of the run the others are nested in, or (``select: last``) of all,
    or (``select: best``) of the run the ranking file puts first; of a run's several (its checkpoints),
    with ``select: best`` the one the ranking file puts first by their own metrics."""
    owners = list(dict.fromkeys(model.run_id for model in chosen))
    if len(owners) > 1 and config.select == "best":
        owners = [_best(chosen, runs, owners, config, root)]
    elif len(owners) > 1:
        roots = _outermost(owners, runs)
        if len(roots) == 1:
            owners = roots  # children logged candidates, their parent the one it kept
        elif config.select == "only":
            shown = ", ".join(owners[:5]) + (" ..." if len(owners) > 5 else "")
            raise ConfigError(
                f"loopline.yaml: {len(owners)} runs of this training logged a model named "
                f"'{chosen[0].name}' ({shown}); log it from one run, or set model.select: last to "
                "register the newest (or best, ranked by a ranking file)"
            )
        else:
            return max(chosen, key=lambda model: model.created)
    own = [m for m in chosen if m.run_id == owners[0]]
    if len(own) > 1 and config.select == "best":
        return _best_checkpoint(own, runs, config, root)
    return max(own, key=lambda model: model.created)


def rival_runs(logged: list[LoggedModelInfo], runs: list[RunInfo], config: ModelConfig) -> list[str]:
    """The runs among ``runs`` that logged (``logged``, their models) the model ``config`` names, less those
    nested in another of them: more than one is a choice ``model.select`` makes."""
    return _outermost(list(dict.fromkeys(model.run_id for model in _by_name(logged, config))), runs)


def _outermost(owners: list[str], runs: list[RunInfo]) -> list[str]:
    """``owners`` less those nested in another of them (children logged candidates, their parent the
    one it kept)."""
    by_id = {run.run_id: run for run in runs}
    return [o for o in owners if not any(a.run_id in owners for a in _lineage(by_id, o)[1:])]


def _best(
    chosen: list[LoggedModelInfo],
    runs: list[RunInfo],
    owners: list[str],
    config: ModelConfig,
    root: Path | None,
) -> str:
    """The owner run the ranking file puts first; refused when none meets its constraints."""
    from loopline.ranking import Candidate

    by_id = {run.run_id: run for run in runs}
    candidates = [
        Candidate(
            o, by_id[o].metrics if o in by_id else {}, start_time=by_id[o].start_time if o in by_id else 0
        )
        for o in owners
    ]
    return _first(candidates, f"runs that logged '{chosen[0].name}'", config, root)


def _best_checkpoint(
    own: list[LoggedModelInfo], runs: list[RunInfo], config: ModelConfig, root: Path | None
) -> LoggedModelInfo:
    """Of one run's models, the one the ranking file puts first by its metrics (the run's, and those of
    the runs it is nested in, under the model's own)."""
    from loopline.ranking import Candidate

    by_id = {run.run_id: run for run in runs}
    inherited: dict[str, float] = {}
    for run in reversed(_lineage(by_id, own[0].run_id)):
        inherited.update(run.metrics)
    by_key = {model.model_id or model.uri: model for model in own}
    candidates = [
        Candidate(key, {**inherited, **model.metrics}, start_time=model.created)
        for key, model in by_key.items()
    ]
    names = ", ".join(sorted({model.name for model in own}))
    return by_key[_first(candidates, f"models the run logged ({names})", config, root)]


def _first(candidates: list[Any], what: str, config: ModelConfig, root: Path | None) -> str:
    """The key of the candidate the ranking file puts first; refused when none meets its constraints."""
    from loopline.ranking import load_ranking, rank

    ranking = load_ranking((root or Path.cwd()) / config.ranking)
    ranked = rank(ranking, candidates)
    if not ranked[0].eligible:
        why = "; ".join(f"{r.candidate.run_id[:12]}: {', '.join(r.reasons)}" for r in ranked[:5])
        raise ConfigError(
            f"{ranking.name}: none of the {len(candidates)} {what} is eligible ({why}); loosen its "
            "constraints or fix the training"
        )
    return str(ranked[0].candidate.run_id)


def _lineage(by_id: dict[str, RunInfo], run_id: str) -> list[RunInfo]:
    """``run_id``'s run, then its parent, grandparent, ... as far as the session's runs go."""
    chain: list[RunInfo] = []
    current = by_id.get(run_id)
    while current is not None and current not in chain:
        chain.append(current)
        current = by_id.get(current.parent_id or "")
    return chain


# A model saved by its library and logged as a file: what a script does before it logs MLflow models.
_MODEL_FILES = (
    ".pkl",
    ".pickle",
    ".joblib",
    ".skops",
    ".onnx",
    ".h5",
    ".keras",
    ".pt",
    ".pth",
    ".cbm",
    ".ubj",
)


def plain_model_file(store: WorkspaceStore, runs: list[RunInfo]) -> str:
    """Where ``runs`` logged no MLflow model but a model file (``mlflow.log_artifact("model.joblib")``, at
    the top of a run's artifacts or one folder down): which, and what to log instead (``: ...``); else
    nothing."""
    for run in runs:
        entries = list(store.client.list_artifacts(run.run_id))
        entries += [
            child
            for entry in entries
            if entry.is_dir
            for child in store.client.list_artifacts(run.run_id, entry.path)
        ]
        found = next(
            (e.path for e in entries if not e.is_dir and e.path.lower().endswith(_MODEL_FILES)), None
        )
        if found:
            return (
                f": it logged {found} as a plain file (mlflow.log_artifact), which no serving process can "
                "load; log the model with its library's mlflow.<flavor>.log_model instead "
                '(mlflow.sklearn.log_model(model, name="model") for scikit-learn)'
            )
    return ""
