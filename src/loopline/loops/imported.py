"""Runs trained on another machine, imported into dev so the inner loop can gate and register them.

What the caller sends is not trusted as it is: the commit must be in the project's repository, the model
must load (in a sandbox, away from every credential), a commit that already has a version keeps it (a
different model for it is refused), and where ``gate.evaluation_data`` is set the gate's metrics are the
ones loopline computes on that data, not the caller's. Metrics loopline did not compute are recorded as
the caller's claims. The data asset versions the run names as its training inputs must be this
instance's, bytes and all; they are recorded as the run's MLflow datasets, as for a run trained here.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

from loopline import registry
from loopline.domain import SHARED, Provenance
from loopline.errors import Refused
from loopline.git import CommitIdentity, require_commit
from loopline.inputs import claimed_inputs, log_datasets
from loopline.instance import Instance
from loopline.loops.inner import Trained, Trainer, refuse
from loopline.loops.training_runs import DEV, run_tags
from loopline.mlflow_store import RunInfo
from loopline.progress import Reporter
from loopline.run_record import RunRecord, own_tags, write_model, write_record, write_related
from loopline.sandbox import SandboxedModel
from loopline.storage.datastores import text_columns
from loopline.storage.digest import digest_tree

__all__ = ["admit", "importer"]


def admit(instance: Instance, name: str, identity: CommitIdentity, model_dir: Path) -> None:
    """Refuse an upload whose commit the repository does not hold, or that would put a second model on a
    commit that has one (the refusal is audited)."""
    try:
        require_commit(instance.root, identity.commit, instance.settings.config.registry.remote)
    except Refused as refused:
        refuse(instance, name, identity, refused, step="inner-loop upload")
    for workspace in (SHARED, DEV):
        existing = registry.find(instance, workspace, name, identity.commit, identity.diff_digest)
        if existing is None:
            continue
        uploaded = digest_tree(model_dir)
        if uploaded == existing.content_digest:
            return
        message = (
            f"commit {identity.commit[:7]} already has {name} {workspace} v{existing.version} "
            f"({existing.provenance.value}, {existing.content_digest[:19]}); a different model for the "
            "same commit is refused: commit the change and run the inner loop for the new commit"
        )
        refuse(instance, name, identity, Refused(message), step="inner-loop upload", content_digest=uploaded)


def _gate_metrics(
    instance: Instance, model: SandboxedModel, claimed: dict[str, float], report: Reporter
) -> tuple[dict[str, float], dict[str, Any]]:
    """The metrics the gate sees (loopline's own where it computes them) and what the version records."""
    from loopline.validation import load_heldout, metrics_for

    config = instance.settings.config
    detail: dict[str, Any] = {"by": instance.actor}
    computed: dict[str, float] = {}
    if config.gate.evaluation_data:
        data = config.validation.model_copy(update={"data": config.gate.evaluation_data})
        features, labels, source = load_heldout(
            instance, data, text_columns(model.folder, data.label_columns)
        )
        report.step(f"scoring {source['rows']} rows of {source['path']} to compute the gate's metrics")
        answers = model.score(features)
        computed = metrics_for(data.task, labels.to_numpy(), answers.iloc[:, 0].to_numpy())
        detail["computed"] = {"data": source["path"], "digest": source["digest"], "metrics": computed}
    claims = {k: v for k, v in claimed.items() if k not in computed}
    detail["claimed"] = sorted(claims)
    return {**claims, **computed}, detail


def importer(
    run: RunInfo, model_dir: Path, artifacts: Path | None, details: RunRecord | None = None
) -> Trainer:
    """A trainer that, instead of training, records ``run`` and its files (and ``details``: its name,
    experiment, metric history, datasets and the training's other runs) as a new dev run of the commit."""
    shown = details or RunRecord()

    def record(instance: Instance, identity: CommitIdentity, report: Reporter) -> Trained:
        report.step("loading the uploaded model in a sandbox")
        with SandboxedModel(model_dir, instance.settings.config.sandbox) as model:
            # no loadable flavor, or a model that cannot answer: nothing is recorded (nulls in optional
            # columns are a deployment's check, as for a model trained here)
            model.check(nulls=False)
            inputs = claimed_inputs(instance, run.tags)  # the versions it names, as this instance holds them
            metrics, detail = _gate_metrics(instance, model, dict(run.metrics), report)
        store = instance.store(DEV)
        # The caller's own tags first (of MLflow's, only the description), then the ones that tie the run
        # to its commit and author: those are loopline's to set, so an upload cannot claim another commit
        # or person.
        ours = {**run_tags(instance, identity), "loopline.trained_on": "caller"}
        tags = {**own_tags(run.tags), **ours}
        experiment = shown.experiment or instance.settings.experiment
        store.ensure_experiment(experiment)
        run_id = store.create_run(
            experiment, tags, run_name=shown.name or f"inner-loop-{identity.commit[:7]}"
        )
        report.step(f"importing the uploaded run as dev run {run_id}")
        name = instance.settings.config.model.artifact_path
        name = "model" if any(c in name for c in "*?[") else name  # a pattern named the checkpoint chosen
        try:
            write_record(store, run_id, shown, run.metrics)
            logged = store.import_run(run_id, replace(run, metrics={}), artifacts, model_dir, name)
            log_datasets(store.client, [run_id], inputs)
            if logged.model_id:
                write_model(store, run_id, logged.model_id, shown, ours)
            write_related(store, run_id, shown, ours)  # a sweep's parent and trials, a search's children
        except BaseException:
            store.end_run(run_id, "FAILED")
            raise
        return Trained(
            run_id,
            logged.model_id,
            logged.uri,
            name,
            metrics,
            provenance=Provenance.UPLOADED,
            provenance_detail=detail,
        )

    return record
