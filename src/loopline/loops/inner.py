"""The inner loop: train at a commit, pass the gate, register in dev, share to the registry.

Each step can be interrupted and rerun: a finished training run of the same commit is reused, a dev
version without its registry copy is shared, and a commit already in the registry registers nothing.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from loopline import audit, failpoints, registry
from loopline.domain import SHARED, GateResult, ModelVersionInfo
from loopline.errors import DirtyWorkingTree, GateFailed, TrainingFailed
from loopline.events import GateEvaluated, RefusedAttempt
from loopline.gates import evaluate, load_thresholds
from loopline.git import CommitIdentity, commit_identity
from loopline.instance import Instance
from loopline.progress import NullReporter, Reporter
from loopline.state import locks
from loopline.training import run_training

__all__ = ["InnerLoopResult", "Trainer", "run_inner_loop", "run_tags", "train"]

DEV = "dev"
RUN_COMMIT = "loopline.git_commit"
RUN_DIFF = "loopline.git_diff_digest"
RUN_GATE = "loopline.gate"

Trainer = Callable[[Instance, "CommitIdentity", Reporter], tuple[str, Path | None]]
"""Makes the finished dev run of a commit: its run ID and its training log, if any."""


@dataclass(frozen=True)
class InnerLoopResult:
    """What the inner loop did for one commit."""

    model: str
    git_commit: str
    git_branch: str
    git_dirty: bool
    created: bool
    dev: ModelVersionInfo
    shared: ModelVersionInfo
    run_id: str | None
    gate: GateResult | None
    trained: bool
    message: str
    log_path: str | None = None
    dirty_files: tuple[str, ...] = field(default=())

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready mapping."""
        return {
            "model": self.model,
            "git_commit": self.git_commit,
            "git_branch": self.git_branch,
            "git_dirty": self.git_dirty,
            "created": self.created,
            "trained": self.trained,
            "run_id": self.run_id,
            "message": self.message,
            "log_path": self.log_path,
            "gate": self.gate.to_dict() if self.gate else None,
            "dev": self.dev.to_dict(),
            "registry": self.shared.to_dict(),
            "dirty_files": list(self.dirty_files),
        }


def run_inner_loop(
    instance: Instance,
    *,
    model: str | None = None,
    allow_dirty: bool = False,
    reporter: Reporter | None = None,
    identity: CommitIdentity | None = None,
    trainer: Trainer | None = None,
) -> InnerLoopResult:
    """Train, gate, register and share the model of the working tree's commit.

    ``identity`` and ``trainer`` replace the working tree and the training entry point when the run was
    made on another machine (the control plane imports it into dev).
    """
    report = reporter or NullReporter()
    instance.db.require_current(instance.root)
    name = model or instance.settings.config.model.name
    identity = identity or commit_identity(instance.root)
    report.step(
        f"commit {identity.commit[:12]} on {identity.branch}" + (" (dirty)" if identity.dirty else "")
    )
    if identity.dirty and not allow_dirty:
        shown = ", ".join(identity.dirty_files[:5]) + (" ..." if len(identity.dirty_files) > 5 else "")
        error = DirtyWorkingTree(files=shown)
        audit.record(
            instance.db,
            RefusedAttempt(
                actor=instance.actor,
                workspace=DEV,
                model=name,
                git_commit=identity.commit,
                reason=error.message,
                details={"step": "inner-loop", "dirty_files": list(identity.dirty_files)},
            ),
        )
        raise error
    lock = f"inner-loop:{name}:{identity.commit}:{identity.diff_digest or 'clean'}"
    with locks.hold(instance.db, lock, instance.actor):
        return _locked(instance, name, identity, report, trainer or train)


def _locked(
    instance: Instance, name: str, identity: CommitIdentity, report: Reporter, trainer: Trainer
) -> InnerLoopResult:
    diff = identity.diff_digest
    shared = registry.find(instance, SHARED, name, identity.commit, diff)
    dev = registry.find(instance, DEV, name, identity.commit, diff)
    if shared is not None and dev is not None:
        return _result(
            name,
            identity,
            dev,
            shared,
            created=False,
            trained=False,
            gate=None,
            message=f"commit {identity.commit[:7]} is already registered "
            f"(dev v{dev.version}, registry v{shared.version}); nothing to do",
        )
    gate: GateResult | None = None
    trained = False
    log_path: str | None = None
    if dev is None:
        dev, gate, trained, log_path = _train_and_register(instance, name, identity, report, trainer)
    report.step(f"sharing dev v{dev.version} to the registry")
    shared = registry.share(instance, dev)
    return _result(
        name,
        identity,
        dev,
        shared,
        created=True,
        trained=trained,
        gate=gate,
        log_path=log_path,
        message=f"registered {name} from {identity.commit[:7]}: dev v{dev.version}, "
        f"registry v{shared.version}",
    )


def _result(
    name: str, identity: CommitIdentity, dev: ModelVersionInfo, shared: ModelVersionInfo, **fields: Any
) -> InnerLoopResult:
    return InnerLoopResult(
        model=name,
        git_commit=identity.commit,
        git_branch=identity.branch,
        git_dirty=identity.dirty,
        dev=dev,
        shared=shared,
        run_id=dev.run_id,
        dirty_files=identity.dirty_files,
        **fields,
    )


def _train_and_register(
    instance: Instance, name: str, identity: CommitIdentity, report: Reporter, trainer: Trainer
) -> tuple[ModelVersionInfo, GateResult, bool, str | None]:
    settings = instance.settings
    thresholds = load_thresholds(settings.gate_file)
    store = instance.store(DEV)
    run_id, trained, log_path = _reusable_run(instance, identity), False, None
    if run_id is None:
        run_id, log = trainer(instance, identity, report)
        trained, log_path = True, str(log) if log else None
    else:
        report.step(f"reusing finished training run {run_id} of this commit")
    run = store.run(run_id)
    gate = evaluate(thresholds, run.metrics)
    store.set_run_tag(run_id, RUN_GATE, "passed" if gate.passed else "failed")
    audit.record(
        instance.db,
        GateEvaluated(
            actor=instance.actor,
            workspace=DEV,
            model=name,
            git_commit=identity.commit,
            outcome="passed" if gate.passed else "failed",
            details={**gate.to_dict(), "run_id": run_id},
        ),
    )
    if not gate.passed:
        raise GateFailed(
            failures="; ".join(check.describe() for check in gate.failures),
            details={"gate": gate.to_dict(), "run_id": run_id, "git_commit": identity.commit},
        )
    logged = store.logged_model(run_id, settings.config.model.artifact_path)
    if logged is None:
        raise TrainingFailed(
            command=settings.config.training.command,
            outcome=f"finished without logging a model named '{settings.config.model.artifact_path}' "
            "(set model.artifact_path in loopline.yaml to the name it logs)",
            log=log_path or f"run {run_id}",
        )
    model_id, artifact_uri = logged
    report.step("storing model files by content digest")
    with tempfile.TemporaryDirectory() as scratch:
        digest = instance.model_store(DEV).put(store.local_copy(artifact_uri, Path(scratch)))
    failpoints.hit("before-dev-register")
    tags = {
        registry.TAG_COMMIT: identity.commit,
        registry.TAG_BRANCH: identity.branch,
        registry.TAG_DIRTY: "true" if identity.dirty else "false",
        registry.TAG_SOURCE_WORKSPACE: DEV,
        registry.TAG_SOURCE_RUN: run_id,
    }
    if identity.diff_digest:
        tags[registry.TAG_DIFF] = identity.diff_digest
    report.step(f"registering {name} in dev")
    dev = registry.register(instance, DEV, name, digest, tags, run_id=run_id, model_id=model_id)
    failpoints.hit("after-dev-register")
    from loopline.monitoring.reference import store_reference

    if store_reference(instance, run_id, digest, name):
        report.step("stored the reference profile of the training data, for monitoring")
    return dev, gate, trained, log_path


def _reusable_run(instance: Instance, identity: CommitIdentity) -> str | None:
    """A finished run of this exact commit (and diff) that logged a model: training it again adds nothing."""
    clauses = [f"tags.`{RUN_COMMIT}` = '{identity.commit}'", "attributes.status = 'FINISHED'"]
    if identity.diff_digest:
        clauses.append(f"tags.`{RUN_DIFF}` = '{identity.diff_digest}'")
    runs = instance.store(DEV).find_runs(instance.settings.experiment, " AND ".join(clauses))
    artifact = instance.settings.config.model.artifact_path
    for run in runs:
        if run.tags.get(RUN_DIFF) == identity.diff_digest and instance.store(DEV).logged_model(
            run.run_id, artifact
        ):
            return run.run_id
    return None


def run_tags(instance: Instance, identity: CommitIdentity) -> dict[str, str]:
    """The tags that tie a dev training run to its commit and its author."""
    tags = {
        RUN_COMMIT: identity.commit,
        "mlflow.source.git.commit": identity.commit,
        "mlflow.source.git.branch": identity.branch,
        "loopline.git_dirty": str(identity.dirty).lower(),
        "mlflow.user": instance.actor,
    }
    if identity.diff_digest:
        tags[RUN_DIFF] = identity.diff_digest
    return tags


def train(instance: Instance, identity: CommitIdentity, report: Reporter) -> tuple[str, Path | None]:
    """Run the project's training entry point into a new dev run of the commit; its ID and log."""
    settings = instance.settings
    store = instance.store(DEV)
    tags = run_tags(instance, identity)
    run_id = store.create_run(settings.experiment, tags, run_name=f"inner-loop-{identity.commit[:7]}")
    log = instance.logs_dir / f"train-{run_id}.log"
    report.step(f"training: {settings.config.training.command} (run {run_id})")
    try:
        run_training(
            root=instance.root,
            command=settings.config.training.command,
            store=store,
            experiment=settings.experiment,
            run_id=run_id,
            log_path=log,
            timeout=settings.config.training.timeout_seconds,
            on_line=report.output,
        )
    except KeyboardInterrupt:
        store.end_run(run_id, "KILLED")
        raise
    except TrainingFailed:
        store.end_run(run_id, "FAILED")
        raise
    if store.run(run_id).status != "FINISHED":
        store.end_run(run_id, "FINISHED")
    return run_id, log
