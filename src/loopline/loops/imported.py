"""Runs trained on another machine, imported into dev so the inner loop can gate and register them."""

from __future__ import annotations

from pathlib import Path

from loopline.git import CommitIdentity
from loopline.instance import Instance
from loopline.loops.inner import DEV, Trained, Trainer, run_tags
from loopline.mlflow_store import RunInfo
from loopline.progress import Reporter
from loopline.sandbox import check_model

__all__ = ["importer"]


def importer(run: RunInfo, model_dir: Path, artifacts: Path | None) -> Trainer:
    """A trainer that, instead of training, records ``run`` and its files as a new dev run of the commit."""

    def record(instance: Instance, identity: CommitIdentity, report: Reporter) -> Trained:
        report.step("loading the uploaded model in a sandbox")
        check_model(model_dir)  # no loadable flavor, or a model that cannot answer: nothing is recorded
        store = instance.store(DEV)
        # The caller's own tags first, then the ones that tie the run to its commit and author: those
        # are loopline's to set, so an upload cannot claim another commit or person.
        tags = {**run.tags, **run_tags(instance, identity), "loopline.trained_on": "caller"}
        run_id = store.create_run(
            instance.settings.experiment, tags, run_name=f"inner-loop-{identity.commit[:7]}"
        )
        report.step(f"importing the uploaded run as dev run {run_id}")
        name = instance.settings.config.model.artifact_path
        try:
            logged = store.import_run(run_id, run, artifacts, model_dir, name)
        except BaseException:
            store.end_run(run_id, "FAILED")
            raise
        return Trained(run_id, logged.model_id, logged.uri, name, dict(run.metrics))

    return record
