"""Hyperparameter sweeps: the training entry point once per trial, with values Optuna draws, and the best
trial through the inner loop.

A sweep belongs to a commit: its Optuna study is named after the model and the commit, kept in
``sweep.storage`` (default a SQLite file under ``.loopline/``), so a sweep killed mid-way goes on where it
stopped: finished trials stay finished, and a trial that was cut off runs again with the same values.
Each trial is one training session whose runs are children of the sweep's parent run (``mlflow.
parentRunId``) and carry the trial's number; the script gets the trial's values three ways at once: over
its parameters file (``sweep.params_file``, restored after the trial), as ``{name}`` placeholders in
``sweep.command``, and as JSON in ``LOOPLINE_PARAMS``. When the trials are done, the inner loop gates,
registers and shares the model of the best trial by ``sweep.objective``: still one version per commit.
"""

from __future__ import annotations

import json
import shutil
import threading
import uuid
from concurrent.futures import ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from loopline.config import ParameterSpec, SweepConfig
from loopline.errors import ConfigError, Refused, TrainingFailed, UsageError
from loopline.gates import misspelt
from loopline.git import CommitIdentity, add_worktree, remove_worktree, run_git, toplevel
from loopline.instance import Instance
from loopline.loops import inner, training_runs
from loopline.loops.trained import SESSION, SWEEP, SWEEP_PARENT, SWEEP_TRIAL, Trained
from loopline.loops.trial_values import (
    Overlay,
    passed_as_options,
    refuse_untaken,
    restore_params_file,
    trial_command,
)
from loopline.progress import NullReporter, Reporter

if TYPE_CHECKING:
    import optuna

    from loopline.compute.targets import RayTarget
    from loopline.inputs import AssetSource

__all__ = [
    "SWEEP_TAG",
    "SweepResult",
    "SweepTrainer",
    "TrialResult",
    "plan_sweep",
    "restore_params_file",
    "run_sweep",
]

SWEEP_TAG = SWEEP
TRIAL_TAG = SWEEP_TRIAL
PARENT_TAG = SWEEP_PARENT
_INTERRUPTED = "interrupted"
_POLL_SECONDS = 0.5


@dataclass(frozen=True)
class TrialResult:
    """One trial: its values, what it scored, how it ended, and its run."""

    number: int
    params: dict[str, Any]
    value: float | None
    state: str
    run_id: str | None
    note: str | None = None

    @property
    def shown(self) -> str:
        """``C=0.2066, max_iter=231``."""
        return _shown(self.params)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready mapping."""
        return dict(self.__dict__)


@dataclass
class SweepResult:
    """What ``loopline sweep`` did: the study, its trials, the best one, and the inner loop after it."""

    study: str
    metric: str
    direction: str
    parent_run_id: str | None
    trials: list[TrialResult] = field(default_factory=list)
    ran: int = 0
    best: TrialResult | None = None
    inner_loop: inner.InnerLoopResult | None = None

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready mapping."""
        return {
            "study": self.study,
            "metric": self.metric,
            "direction": self.direction,
            "parent_run_id": self.parent_run_id,
            "ran": self.ran,
            "trials": [t.to_dict() for t in self.trials],
            "best": self.best.to_dict() if self.best else None,
            "inner_loop": self.inner_loop.to_dict() if self.inner_loop is not None else None,
        }


def _optuna() -> Any:
    try:
        import optuna
    except ImportError:
        raise UsageError('sweeps need Optuna: pip install "loopline[sweep]"') from None
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    return optuna


def _suggest(trial: optuna.Trial, name: str, spec: ParameterSpec) -> Any:
    if spec.choices is not None:
        return trial.suggest_categorical(name, spec.choices)
    assert spec.low is not None and spec.high is not None  # the config's validator saw to it
    if spec.type == "int":
        return trial.suggest_int(name, int(spec.low), int(spec.high), log=spec.log, step=int(spec.step or 1))
    return trial.suggest_float(name, spec.low, spec.high, log=spec.log, step=spec.step)


class _Slots:
    """Working copies of the commit (git worktrees under .loopline/), one per parallel trial: each trial
    gets its values over its own parameters file, and the files git ignores in the project (data the
    training reads, say) linked in from the project."""

    def __init__(self, instance: Instance, commit: str, count: int) -> None:
        self.root = instance.root
        self.paths = [instance.root / ".loopline" / "sweep-slots" / str(i) for i in range(count)]
        self.commit = commit
        # a worktree holds the whole repository (its submodules too); the project is in its folder
        self.top = toplevel(self.root) or self.root
        self.folder = self.root.relative_to(self.top)

    def __enter__(self) -> list[Path]:
        run_git(self.root, "worktree", "prune")
        ignored = _ignored(self.root)
        for path in self.paths:
            if path.exists():
                remove_worktree(self.top, path)
                shutil.rmtree(path, ignore_errors=True)
            add_worktree(self.top, path, self.commit)
            for entry in ignored:
                link = path / self.folder / entry
                link.parent.mkdir(parents=True, exist_ok=True)
                link.symlink_to(self.root / entry)
        return [path / self.folder for path in self.paths]

    def __exit__(self, *_exc: object) -> None:
        for path in self.paths:
            remove_worktree(self.top, path)


_NOT_LINKED = {".loopline", ".git", "__pycache__"}  # loopline's own folder (the copies are in it), caches


def _ignored(root: Path) -> list[str]:
    """The files and folders git ignores in the project at ``root`` (a folder ignored whole as one)."""
    listed = run_git(root, "ls-files", "--others", "--ignored", "--exclude-standard", "--directory", "-z")
    entries = [entry.rstrip("/") for entry in listed.split("\0") if entry]
    return [entry for entry in entries if not set(Path(entry).parts) & _NOT_LINKED]


class _Pruning:
    """Watches a trial's runs while it trains: each step of the objective the script logs goes to Optuna,
    and when Optuna's pruner says the trial will not beat the others, the training is stopped."""

    def __init__(
        self, instance: Instance, trial: Any, session: str, halt: threading.Event, lock: threading.Lock
    ) -> None:
        config = instance.settings.config.sweep
        self.store = instance.store("dev")
        self.trial = trial
        self.metric = config.objective.metric
        self.enabled = config.pruner != "none"
        self.session = session
        self.halt = halt
        """Set when the whole sweep stops (Ctrl-C): every training stops."""
        self.lock = lock
        self.stop = threading.Event()
        self.done = threading.Event()
        self.pruned_at: int | None = None
        self.reported: set[int] = set()
        self.thread = threading.Thread(target=self._watch, name="loopline-pruning", daemon=True)

    def __enter__(self) -> _Pruning:
        self.thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self.done.set()
        self.thread.join(timeout=10)

    def _watch(self) -> None:
        while not self.done.wait(_POLL_SECONDS):
            if self.halt.is_set():
                self.stop.set()
                return
            try:
                if self.enabled and self._should_prune():
                    self.stop.set()
                    return
            except Exception:  # the watch is advice: a failed look is tried again next time
                continue

    def _should_prune(self) -> bool:
        runs = self.store.search_all_runs(f"tags.`{SESSION}` = '{self.session}'")
        histories = [self.store.client.get_metric_history(run.run_id, self.metric) for run in runs]
        steps = max(histories, key=len, default=[])
        with self.lock:  # one writer of the study at a time
            for point in sorted(steps, key=lambda m: m.step):
                if point.step not in self.reported:
                    self.trial.report(point.value, point.step)
                    self.reported.add(point.step)
            judged = bool(self.reported) and self.trial.should_prune()
        if judged:
            self.pruned_at = max(self.reported)
            return True
        return False


class SweepTrainer:
    """The inner loop's trainer for a sweep: every trial still to run, then the best trial's model."""

    fresh = True
    """The inner loop must not reuse an earlier training of the commit in its place."""

    def __init__(
        self,
        trials: int,
        parallel: int,
        target: RayTarget | None,
        result: SweepResult,
        assets: AssetSource | None = None,
    ) -> None:
        self.trials = trials
        self.parallel = parallel
        self.target = target
        self.result = result
        self.assets = assets  # where training.inputs come from (a control plane's, for a remote sweep)
        self.lock = threading.Lock()
        self.halt = threading.Event()
        self.options: dict[str, str] = {}
        """The parameters the script takes as its own options (``--trees``), by name."""

    def __call__(self, instance: Instance, identity: CommitIdentity, report: Reporter) -> Trained:
        optuna = _optuna()
        config = instance.settings.config.sweep
        pruner = (
            optuna.pruners.MedianPruner(n_startup_trials=config.pruning.startup_trials,
                                        n_warmup_steps=config.pruning.warmup_steps)
            if config.pruner == "median"
            else optuna.pruners.NopPruner()
        )  # fmt: skip
        study = optuna.create_study(
            study_name=self.result.study,
            storage=_storage(instance, config),
            direction=config.objective.direction,
            sampler=optuna.samplers.TPESampler(seed=config.seed),
            pruner=pruner,
            load_if_exists=True,
        )
        self.result.parent_run_id = _parent_run(instance, identity, self.result.study)
        if config.command is None:  # the script's own options, where it takes the parameters so
            self.options = passed_as_options(
                instance.root, instance.settings.config.training.command, config.parameters
            )
            if self.options:
                shown = " ".join(option.format(f"{{{name}}}") for name, option in self.options.items())
                report.step(f"each trial's values go to the script as its arguments: {shown}")
        _requeue_interrupted(optuna, study, report)
        if self.parallel == 1:
            while (done := _counted(optuna, study)) < self.trials:
                self._one(optuna, study, instance, identity, report, done, None)
        else:
            self._in_parallel(optuna, study, instance, identity, report)
        self.result.trials = [_trial_result(optuna, t) for t in study.trials]
        best = self._best(optuna, study, instance)
        _close_parent(instance, self.result)
        return best

    def _in_parallel(
        self, optuna: Any, study: Any, instance: Instance, identity: CommitIdentity, report: Reporter
    ) -> None:
        """``parallel`` trials at a time, each in its own working copy of the commit."""
        claimed = [_counted(optuna, study)]

        def work(slot: Path) -> None:
            while not self.halt.is_set():
                with self.lock:
                    if claimed[0] >= self.trials:
                        return
                    claimed[0] += 1
                    done = claimed[0] - 1
                self._one(optuna, study, instance, identity, report, done, slot)

        with (
            _Slots(instance, identity.commit, self.parallel) as slots,
            ThreadPoolExecutor(self.parallel) as pool,
        ):
            running = [pool.submit(work, slot) for slot in slots]
            try:
                for future in running:
                    future.result()
            except BaseException:
                self.halt.set()  # the other trials stop too, and run again next time
                wait(running)
                raise

    def _one(
        self,
        optuna: Any,
        study: Any,
        instance: Instance,
        identity: CommitIdentity,
        report: Reporter,
        done: int,
        slot: Path | None,
    ) -> None:
        config = instance.settings.config.sweep
        with self.lock:
            trial = study.ask()
            params = {name: _suggest(trial, name, spec) for name, spec in config.parameters.items()}
        report.step(f"trial {trial.number} ({done + 1} of {self.trials}): {_shown(params)}")
        tags = {
            "mlflow.parentRunId": self.result.parent_run_id or "",
            SWEEP_TAG: self.result.study,
            TRIAL_TAG: str(trial.number),
        }
        command = trial_command(config, instance.settings.config.training.command, params, self.options)
        session = uuid.uuid4().hex
        pruning = _Pruning(instance, trial, session, self.halt, self.lock)
        try:
            with Overlay(instance, params, slot), pruning:
                made = training_runs.train(
                    instance, identity, report, target=self.target, command=command, extra_tags=tags,
                    extra_env={"LOOPLINE_PARAMS": json.dumps(params)}, session=session, stop=pruning.stop,
                    root=slot, assets=self.assets,
                )  # fmt: skip
        except TrainingFailed as failed:
            if self.halt.is_set():  # stopped with the sweep: it runs again next time
                with self.lock:
                    _cut_off(optuna, study, trial._trial_id, params)
                return
            with self.lock:
                self._failed(optuna, study, trial, report, pruning.pruned_at, failed.message)
            return
        except BaseException:  # Ctrl-C, or the trial could not be trained here: it runs again next time
            with self.lock:
                _cut_off(optuna, study, trial._trial_id, params)
            raise
        with self.lock:
            self._finished(optuna, study, trial, report, made, config.objective.metric)
            refuse_untaken(instance, trial.number, params, made.run_id)

    def _failed(
        self, optuna: Any, study: Any, trial: Any, report: Reporter, pruned_at: int | None, message: str
    ) -> None:
        if pruned_at is not None:
            trial.set_user_attr("note", f"pruned at step {pruned_at}")
            study.tell(trial, state=optuna.trial.TrialState.PRUNED)
            report.step(f"trial {trial.number} pruned at step {pruned_at}: others did better there")
            return
        trial.set_user_attr("note", message)
        study.tell(trial, state=optuna.trial.TrialState.FAIL)
        report.step(f"trial {trial.number} failed: {message}")

    def _finished(
        self, optuna: Any, study: Any, trial: Any, report: Reporter, made: Trained, metric: str
    ) -> None:
        trial.set_user_attr("run_id", made.run_id)
        if metric not in made.metrics:
            note = f"its run logged no '{metric}' (sweep.objective.metric), only {sorted(made.metrics)}"
            trial.set_user_attr("note", note)
            study.tell(trial, state=optuna.trial.TrialState.FAIL)
            report.step(f"trial {trial.number} failed: {note}")
            # A name one slip away from one the script logs is a typo no later trial mends: stop now.
            meant = misspelt(metric, made.metrics)
            if meant and self.result.ran == 0:
                raise ConfigError(
                    f"sweep.objective.metric is '{metric}', but trial {trial.number}'s run logged "
                    f"'{meant}' (of {', '.join(sorted(made.metrics))}); name the metric as the script "
                    "logs it in loopline.yaml and run the sweep again"
                )
            return
        study.tell(trial, made.metrics[metric])
        self.result.ran += 1
        report.step(f"trial {trial.number}: {metric} {made.metrics[metric]:.6g}")

    def _best(self, optuna: Any, study: Any, instance: Instance) -> Trained:
        complete = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
        if not complete:
            notes = "; ".join(f"trial {t.number}: {t.user_attrs.get('note', 'failed')}" for t in study.trials)
            raise Refused(
                f"no trial of sweep {self.result.study} finished with a value, so nothing is registered "
                f"({notes})"
            )
        best = study.best_trial
        self.result.best = _trial_result(optuna, best)
        return training_runs.trained_run(instance, best.user_attrs["run_id"])


def _shown(params: dict[str, Any]) -> str:
    return ", ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in params.items())


def _trial_result(optuna: Any, trial: Any) -> TrialResult:
    return TrialResult(
        number=trial.number,
        params=dict(trial.params),
        value=trial.value if trial.state == optuna.trial.TrialState.COMPLETE else None,
        state=trial.state.name.lower(),
        run_id=trial.user_attrs.get("run_id"),
        note=trial.user_attrs.get("note"),
    )


def _counted(optuna: Any, study: Any) -> int:
    """Trials that ended for good: complete, pruned, or failed by their own doing (not cut off)."""
    ended = (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED, optuna.trial.TrialState.FAIL)
    return sum(1 for t in study.trials if t.state in ended and not t.user_attrs.get(_INTERRUPTED))


def _requeue_interrupted(optuna: Any, study: Any, report: Reporter) -> None:
    """Trials a killed sweep left running (the commit's lock says no other sweep runs) end as
    interrupted, and the same values run again."""
    for trial in study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.RUNNING,)):
        _cut_off(optuna, study, trial._trial_id, trial.params)
        report.step(f"trial {trial.number} was cut off; its values run again")


def _cut_off(optuna: Any, study: Any, trial_id: int, params: dict[str, Any]) -> None:
    """End a trial as interrupted (it does not count) and queue its values to run again."""
    study._storage.set_trial_user_attr(trial_id, _INTERRUPTED, True)
    study.enqueue_trial(dict(params), skip_if_exists=False)
    study._storage.set_trial_state_values(trial_id, optuna.trial.TrialState.FAIL)


def _storage(instance: Instance, config: SweepConfig) -> Any:
    url = config.storage
    if url is None:
        folder = instance.root / ".loopline"
        folder.mkdir(exist_ok=True)
        url = f"sqlite:///{folder / 'sweeps.db'}"
    return url


def _parent_run(instance: Instance, identity: CommitIdentity, study: str) -> str:
    """The sweep's parent run in dev (found again when a sweep resumes)."""
    store = instance.store("dev")
    found = store.search_all_runs(f"tags.`{SWEEP_TAG}` = '{study}' AND tags.`{PARENT_TAG}` = 'true'")
    if found:
        return found[0].run_id
    tags = {**training_runs.run_tags(instance, identity), SWEEP_TAG: study, PARENT_TAG: "true"}
    return store.create_run(instance.settings.experiment, tags, run_name=f"sweep {identity.commit[:7]}")


def _close_parent(instance: Instance, result: SweepResult) -> None:
    """The parent run says which trial won, with what, and ends."""
    if result.parent_run_id is None or result.best is None or result.best.value is None:
        return
    store = instance.store("dev")
    client = store.client
    for name, value in result.best.params.items():
        client.set_tag(result.parent_run_id, f"best.{name}", str(value))
    client.set_tag(result.parent_run_id, "best.trial", str(result.best.number))
    client.set_tag(result.parent_run_id, "best.run_id", result.best.run_id or "")
    client.log_metric(result.parent_run_id, f"best_{result.metric}", result.best.value)
    client.log_metric(result.parent_run_id, "trials", len(result.trials))
    store.end_run(result.parent_run_id, "FINISHED")


def put_back(instance: Instance, report: Reporter) -> None:
    """Put back the parameters file a killed sweep left with a trial's values (before the working tree's
    commit and changes are read)."""
    if restore_params_file(instance):
        name = instance.settings.config.sweep.params_file
        report.step(f"put back {name}, which a killed sweep had left with a trial's values")


def plan_sweep(
    instance: Instance,
    identity: CommitIdentity,
    *,
    trials: int | None = None,
    parallel: int | None = None,
    model: str | None = None,
    compute: str | None = None,
    assets: AssetSource | None = None,
) -> tuple[SweepResult, SweepTrainer]:
    """The sweep of ``identity``'s commit, checked, and the trainer that runs its trials still to run
    (``parallel`` at a time, default ``sweep.parallel``, each in its own working copy of the commit).
    ``identity`` is taken after :func:`put_back`."""
    from loopline.compute.targets import resolve

    config = instance.settings.config.sweep
    if not config.parameters:
        raise ConfigError(
            "sweep.parameters in loopline.yaml is empty: name what to search, e.g. "
            "C: {low: 0.01, high: 10, log: true}"
        )
    count = config.trials if trials is None else trials
    parallel = config.parallel if parallel is None else parallel
    if count < 1:
        raise UsageError("--trials must be at least 1")
    if not 1 <= parallel <= 64:
        raise UsageError("--parallel must be between 1 and 64")
    _optuna()
    if parallel > 1 and identity.dirty:
        raise UsageError(
            "parallel trials train copies of the commit, so they cannot sweep uncommitted changes"
        )
    name = instance.model_name(model)
    study = f"{name}-{identity.commit}" + (f"-{identity.diff_digest[7:19]}" if identity.diff_digest else "")
    result = SweepResult(study, config.objective.metric, config.objective.direction, None)
    target = resolve(instance.settings.config.compute, compute)
    return result, SweepTrainer(count, parallel, target, result, assets)


def run_sweep(
    instance: Instance,
    *,
    trials: int | None = None,
    parallel: int | None = None,
    model: str | None = None,
    compute: str | None = None,
    allow_dirty: bool = False,
    reporter: Reporter | None = None,
) -> SweepResult:
    """Run the trials of the commit's sweep still to run (see :func:`plan_sweep`), then the inner loop on
    the best trial."""
    report = reporter or NullReporter()
    put_back(instance, report)
    identity = inner.project_identity(instance)
    name = instance.model_name(model)
    result, trainer = plan_sweep(
        instance, identity, trials=trials, parallel=parallel, model=name, compute=compute
    )
    result.inner_loop = inner.run_inner_loop(
        instance, model=name, allow_dirty=allow_dirty, reporter=report, identity=identity, trainer=trainer
    )
    if result.best is None:  # the commit was registered before: nothing ran
        report.step(f"commit {identity.commit[:7]} is already registered; the sweep ran no trial")
    return result
