"""The inner loop: train at a commit, pass the gate, register in dev, share to the registry.

Each step can be interrupted and rerun: a finished training run of the same commit is reused, a dev
version without its registry copy is shared, and a commit already in the registry registers nothing.
"""

from __future__ import annotations

import functools
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, NoReturn

from loopline import audit, catalog, failpoints, registry
from loopline.attestation import Attestation, AttestationRefused, verify
from loopline.compute.targets import resolve
from loopline.config import SandboxConfig
from loopline.domain import SHARED, GateResult, ModelVersionInfo, Provenance
from loopline.errors import (
    ConfigError,
    DirtyWorkingTree,
    GateFailed,
    ModelFailed,
    Refused,
)
from loopline.events import GateEvaluated, RefusedAttempt
from loopline.gates import evaluate, failures, load_thresholds
from loopline.git import (
    SHALLOW_HINT,
    CommitIdentity,
    commit_identity,
    github_repository,
    is_shallow,
    shown_paths,
    unchanged_since,
)
from loopline.instance import Instance
from loopline.loops import trained as sessions
from loopline.loops.restore import held
from loopline.loops.trained import Trained
from loopline.loops.trained_inputs import newer_inputs, retrain_advice
from loopline.loops.training_runs import DEV, RUN_COMMIT, RUN_DIFF, train
from loopline.mlflow_reach import require_artifact_client
from loopline.mlflow_store import VersionInfo, WorkspaceStore
from loopline.model_environment import differences, said
from loopline.moved import refuse_moved
from loopline.progress import NullReporter, Reporter
from loopline.sandbox import check_model
from loopline.state import locks
from loopline.storage.datastores import date_columns, text_columns
from loopline.training import (
    check_advice,
)
from loopline.versions import watched_paths

__all__ = [
    "InnerLoopResult",
    "Trained",
    "Trainer",
    "already_registered",
    "project_identity",
    "refuse",
    "run_inner_loop",
    "unchanged",
]

RUN_GATE = "loopline.gate"

Trainer = Callable[[Instance, "CommitIdentity", Reporter], Trained]
"""Makes the finished dev run of a commit and says which model it logged."""


@dataclass(frozen=True)
class InnerLoopResult:
    """What the inner loop did for one commit."""

    model: str
    git_commit: str
    git_branch: str
    git_dirty: bool
    created: bool
    dev: ModelVersionInfo
    registry: ModelVersionInfo
    run_id: str | None
    gate: GateResult | None
    trained: bool
    message: str
    log_path: str | None = None
    dirty_files: tuple[str, ...] = field(default=())

    @property
    def shared(self) -> ModelVersionInfo:
        """The version in the shared registry (the same as ``registry``)."""
        return self.registry

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready mapping: the same names as on the wire (``registry`` for the shared registry's)."""
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
            "registry": self.registry.to_dict(),
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
    attestation: str | None = None,
    compute: str | None = None,
) -> InnerLoopResult:
    """Train, gate, register and share the model of the working tree's commit.

    ``identity`` and ``trainer`` replace the working tree and the training entry point when the run was
    made on another machine (the control plane imports it into dev). ``attestation`` is the GitHub
    Actions OIDC token of the run, checked before anything else (and required by
    ``registry.require: ci-attested``). ``compute`` names where training runs (default
    ``compute.default``: this machine).
    """
    report = reporter or NullReporter()
    instance.db.require_current(instance.root)
    target = resolve(instance.settings.config.compute, compute)
    name = instance.model_name(model)
    # The working tree's commit (not a run made on another machine), and what its model is made of.
    watched = watched_paths(instance) if identity is None else None
    identity = identity or commit_identity(instance.root, watched)
    report.step(
        f"commit {identity.commit[:12]} on {identity.branch}" + (" (dirty)" if identity.dirty else "")
    )
    if identity.dirty and not allow_dirty:
        shown = ", ".join(identity.dirty_files[:5]) + (" ..." if len(identity.dirty_files) > 5 else "")
        refuse(
            instance, name, identity, DirtyWorkingTree(files=shown), dirty_files=list(identity.dirty_files)
        )
    if watched and not identity.dirty:
        versions = catalog.list_versions(instance.db, name=name)
        if (same := unchanged(instance.root, name, identity, watched, versions, report)) is not None:
            newer = newer_inputs(instance, same.dev)
            if not newer:
                return same
            report.step(f"{same.message}, but {'; '.join(map(str, newer))}: training")
    # Where the training and the registration will write, reachable from here: a missing package is said
    # now, not after a training.
    require_artifact_client(instance.settings.store(DEV))
    for store in (DEV, SHARED):
        instance.model_store(store)
    attested = _attested(instance, name, identity, attestation)
    if attested is not None:
        report.step(f"attested by {attested.workflow} (run {attested.run_id})")
    lock = f"inner-loop:{name}:{identity.commit}:{identity.diff_digest or 'clean'}"
    with locks.hold(instance.db, lock, instance.actor):
        trainer = trainer or functools.partial(train, target=target)
        return _locked(instance, name, identity, report, _attesting(trainer, attested))


def refuse(
    instance: Instance, name: str, identity: CommitIdentity, error: Refused, **details: Any
) -> NoReturn:
    """Record the refusal of ``name`` at ``identity`` in the audit log, then raise it."""
    audit.record(
        instance.db,
        RefusedAttempt(
            actor=instance.actor,
            workspace=DEV,
            model=name,
            git_commit=identity.commit,
            reason=error.message,
            details={"step": "inner-loop", "error_code": error.error_code, **details},
        ),
    )
    raise error


def _attested(
    instance: Instance, name: str, identity: CommitIdentity, token: str | None
) -> Attestation | None:
    """The run's verified attestation; refused (and audited) when it does not hold, or when the registry
    requires one and there is none."""
    config = instance.settings.config.registry
    if token is None:
        if config.require != "ci-attested":
            return None
        refuse(
            instance,
            name,
            identity,
            AttestationRefused(
                "the registry takes only ci-attested runs (registry.require: ci-attested): run the inner "
                f"loop in the GitHub Actions workflow {config.attestation.workflow} with "
                "`permissions: id-token: write`"
            ),
        )
    settings = config.attestation
    repository = settings.repository or github_repository(instance.root, config.remote)
    if repository is None:
        raise ConfigError(
            f"registry.attestation.repository is not set and remote '{config.remote}' is not a GitHub "
            "repository; set it to owner/name"
        )
    try:
        return verify(
            token,
            issuer=settings.issuer,
            audience=settings.audience,
            repository=repository,
            workflow=settings.workflow,
            commit=identity.commit,
        )
    except AttestationRefused as refused:
        refuse(instance, name, identity, refused)


def _attesting(trainer: Trainer, attested: Attestation | None) -> Trainer:
    """``trainer``, whose model is marked ci-attested when the run carried a verified attestation."""
    if attested is None:
        return trainer

    def attest(instance: Instance, identity: CommitIdentity, report: Reporter) -> Trained:
        made = trainer(instance, identity, report)
        detail = {**made.provenance_detail, **attested.to_dict()}
        return replace(made, provenance=Provenance.CI_ATTESTED, provenance_detail=detail)

    return attest


def _locked(
    instance: Instance, name: str, identity: CommitIdentity, report: Reporter, trainer: Trainer
) -> InnerLoopResult:
    shared = _registered(instance, SHARED, name, identity, report)
    dev = _registered(instance, DEV, name, identity, report)
    if shared is not None and dev is not None:
        newer = newer_inputs(instance, dev)
        return already_registered(name, identity, dev, shared, retrain_advice(newer) if newer else "")
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


def _registered(
    instance: Instance, workspace: str, name: str, identity: CommitIdentity, report: Reporter
) -> ModelVersionInfo | None:
    """The commit's version of ``name`` in ``workspace``, as its MLflow registry holds it; one someone
    deleted there (the MLflow UI, a client's ``delete_model_version``) is registered there again from the
    files loopline keeps, as releases and rollbacks do: neither trained again nor shared twice."""
    found = registry.find(instance, workspace, name, identity.commit, identity.diff_digest)
    if found is not None:
        return found
    known = catalog.find_by_commit(instance.db, workspace, name, identity.commit, identity.diff_digest)
    return None if known is None else held(instance, known, report)


def project_identity(instance: Instance) -> CommitIdentity:
    """The working tree's commit: dirty files and their digest only within ``training.paths`` when set
    (what the model is made of), else anywhere in the repository."""
    return commit_identity(instance.root, watched_paths(instance))


def unchanged(
    root: Path,
    name: str,
    identity: CommitIdentity,
    named: list[str],
    versions: list[ModelVersionInfo],
    reporter: Reporter | None = None,
) -> InnerLoopResult | None:
    """The result for a commit that changed none of ``named`` (``training.paths`` as the repository names
    them) since its newest ancestor with a version of ``name`` among ``versions`` (dev's and the
    registry's): that version, nothing trained. None when the commit has a version of its own, or changed
    one of them."""
    clean = [v for v in versions if v.name == name and v.diff_digest is None]
    shared = {v.git_commit for v in clean if v.workspace == SHARED}
    if identity.commit in shared:
        return None
    ancestor = unchanged_since(root, identity.commit, shared, named)
    if ancestor is None:
        if shared and reporter is not None and is_shallow(root):
            reporter.step(f"training.paths cannot spare this training: {SHALLOW_HINT}")
        return None
    newest = {
        workspace: max(
            (v for v in clean if v.workspace == workspace and v.git_commit == ancestor),
            key=lambda v: v.version,
            default=None,
        )
        for workspace in (DEV, SHARED)
    }
    dev, registered = newest[DEV], newest[SHARED]
    if dev is None or registered is None:
        return None
    return _result(
        name,
        replace(identity, commit=ancestor),
        dev,
        registered,
        created=False,
        trained=False,
        gate=None,
        message=f"{identity.commit[:7]} changed nothing in {shown_paths(named)} (training.paths) since "
        f"{ancestor[:7]}, whose model is dev v{dev.version}, registry v{registered.version}; nothing to "
        "train",
    )


def already_registered(
    name: str, identity: CommitIdentity, dev: ModelVersionInfo, shared: ModelVersionInfo, advice: str = ""
) -> InnerLoopResult:
    """The result of an inner loop for a commit that dev and the registry already have: nothing to do
    (and ``advice``, where its inputs have newer versions, on how to train on them)."""
    return _result(
        name,
        identity,
        dev,
        shared,
        created=False,
        trained=False,
        gate=None,
        message=f"commit {identity.commit[:7]} is already registered "
        f"(dev v{dev.version}, registry v{shared.version}); nothing to do"
        + (f"; {advice}" if advice else ""),
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
        registry=shared,
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
    # MLflow would log a training into the folder the project was moved from (and a finished one's files
    # are there): refused until `loopline up` points dev's store here
    refuse_moved(store, instance.root)
    # A sweep's trainer runs its own trials; anything else takes a finished training of the commit.
    made, trained = (None if getattr(trainer, "fresh", False) else _reusable(instance, identity)), False
    if made is None:
        made, trained = trainer(instance, identity, report), True
    else:
        report.step(f"reusing finished training run {made.run_id} of this commit")
    log_path = str(made.log) if made.log else None
    gate = evaluate(thresholds, made.metrics)
    store.set_run_tag(made.run_id, RUN_GATE, "passed" if gate.passed else "failed")
    own = _own_registrations(store, made.run_id, identity, gate.passed)
    audit.record(
        instance.db,
        GateEvaluated(
            actor=instance.actor,
            workspace=DEV,
            model=name,
            git_commit=identity.commit,
            outcome="passed" if gate.passed else "failed",
            details={**gate.to_dict(), "run_id": made.run_id},
        ),
    )
    if not gate.passed:
        raise GateFailed(
            failures=failures(gate, made.metrics),
            details={"gate": gate.to_dict(), "run_id": made.run_id, "git_commit": identity.commit},
        )
    with tempfile.TemporaryDirectory() as scratch:
        files = store.local_copy(made.model_uri, Path(scratch))
        if made.provenance == Provenance.BUILT_HERE:  # an upload was loaded when it came in
            report.step("loading the model in a sandbox, as a serving process will")
            _loads_elsewhere(files, made.run_id, instance.root, instance.settings.config.sandbox)
        if found := differences(files):  # trained by another Python than loopline's, or uploaded
            report.step(
                f"warning: {said(found)}; a serving process with these packages may load or answer it "
                "otherwise"
            )
        report.step(f"storing model files of '{made.model_name}' (run {made.run_id}) by content digest")
        digest = instance.model_store(DEV).put(files)
        texts = text_columns(files)  # of a CSV of training rows logged as the reference: see csv_options
        dates = date_columns(files)
    from loopline.monitoring.reference import store_reference

    # Before registering: a reference that cannot be read refuses the version rather than follow it.
    if store_reference(instance, made.run_id, digest, name, texts, dates):
        report.step("stored the reference profile of the training data, for monitoring")
    failpoints.hit("before-dev-register")
    tags = {
        registry.TAG_COMMIT: identity.commit,
        registry.TAG_BRANCH: identity.branch,
        registry.TAG_DIRTY: "true" if identity.dirty else "false",
        registry.TAG_SOURCE_WORKSPACE: DEV,
        registry.TAG_SOURCE_RUN: made.run_id,
    }
    if identity.diff_digest:
        tags[registry.TAG_DIFF] = identity.diff_digest
    tags.update(registry.provenance_tags(made.provenance, made.provenance_detail))
    report.step(f"registering {name} in dev")
    dev = registry.register(instance, DEV, name, digest, tags, run_id=made.run_id, model_id=made.model_id)
    failpoints.hit("after-dev-register")
    for version in own:
        store.set_version_tag(version.name, version.version, TAG_LOOPLINE_VERSION, f"{name}/{dev.version}")
    return dev, gate, trained, log_path


# On a version the training script registered itself: the gate's outcome, and loopline's own version
# of the same run (the one that is shared, promoted and served).
TAG_GATE = "loopline_gate"
TAG_LOOPLINE_VERSION = "loopline_version"


def _own_registrations(
    store: WorkspaceStore, run_id: str, identity: CommitIdentity, passed: bool
) -> list[VersionInfo]:
    """Tag the versions the training registered itself (``registered_model_name=``) with the commit it ran
    at and the gate's outcome, so that a reader of dev's registry never meets an unexplained version; they
    stay the script's, and loopline registers its own."""
    own = [v for v in store.versions_of_run(run_id) if registry.TAG_DIGEST not in v.tags]
    tags = {
        registry.TAG_COMMIT: identity.commit,
        registry.TAG_BRANCH: identity.branch,
        registry.TAG_DIRTY: "true" if identity.dirty else "false",
        TAG_GATE: "passed" if passed else "failed",
    }
    for version in own:
        for key, value in tags.items():
            store.set_version_tag(version.name, version.version, key, value)
    return own


def _loads_elsewhere(folder: Path, run_id: str, root: Path, allowed: SandboxConfig) -> None:
    """Refuse a model only its training process can load (a class the training script defines itself, or
    one of a module of the repository the model does not hold): registered, it would fail at every
    deployment."""
    try:
        # what a deployment takes beyond that is checked when deploying
        check_model(folder, nulls=False, allowed=allowed)
    except ModelFailed as failed:
        raise ModelFailed(
            f"the model of run {run_id} passed the gate but does not load and answer its input example "
            f"outside its training, as a serving process would: {check_advice(failed.message, root)}; "
            "nothing was registered"
        ) from None


def _reusable(instance: Instance, identity: CommitIdentity) -> Trained | None:
    """The model of the newest training of this exact commit (and diff) that finished: training it again
    adds nothing."""
    clauses = [f"tags.`{RUN_COMMIT}` = '{identity.commit}'", f"tags.`{sessions.OUTCOME}` = 'succeeded'"]
    if identity.diff_digest:
        clauses.append(f"tags.`{RUN_DIFF}` = '{identity.diff_digest}'")
    store = instance.store(DEV)
    runs = [
        run
        for run in store.search_all_runs(" AND ".join(clauses))
        if run.tags.get(RUN_DIFF) == identity.diff_digest and sessions.SWEEP not in run.tags
    ]
    if not runs:
        return None
    newest = runs[0].tags.get(sessions.SESSION, runs[0].run_id)
    session = [run for run in runs if run.tags.get(sessions.SESSION, run.run_id) == newest]
    config = instance.settings.config
    return sessions.pick_model(store, session, config.model, config.training.command, None, instance.root)
