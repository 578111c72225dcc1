"""A training of dev: the project's entry point run against dev's store (here, or as a Ray job), its runs
tagged with the commit and the session, and the model it logged. The inner loop and a sweep's trials
train through it."""

from __future__ import annotations

import os
import socket
import threading
import time
import uuid
from pathlib import Path

from loopline.compute.ray_jobs import run_on_ray
from loopline.compute.targets import RayTarget
from loopline.errors import TrainingFailed
from loopline.git import CommitIdentity
from loopline.inputs import (
    AssetSource,
    TrainingInput,
    fill_inputs,
    input_environment,
    input_tags,
    log_datasets,
    prepare,
)
from loopline.instance import Instance
from loopline.loops import trained as sessions
from loopline.loops.trained import Trained
from loopline.progress import Reporter
from loopline.training import no_sub_command, only_defines, run_training, training_environment
from loopline.versions import watched_paths

__all__ = ["DEV", "RUN_COMMIT", "RUN_DIFF", "run_tags", "train", "trained_run"]

DEV = "dev"
RUN_COMMIT = "loopline.git_commit"
RUN_DIFF = "loopline.git_diff_digest"


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


def trained_run(instance: Instance, run_id: str) -> Trained:
    """The model of the training session that made run ``run_id`` (a sweep's best trial)."""
    store = instance.store(DEV)
    session = store.run(run_id).tags.get(sessions.SESSION, "")
    runs = store.search_all_runs(f"tags.`{sessions.SESSION}` = '{session}'") if session else []
    config = instance.settings.config
    return sessions.pick_model(store, runs, config.model, config.training.command, None, instance.root)


def _inputs(instance: Instance, report: Reporter, assets: AssetSource | None) -> list[TrainingInput]:
    """The data assets the training reads, copied here (and from here into a Ray job's files)."""
    if not instance.settings.config.training.inputs:
        return []
    return prepare(instance, report, assets)


def train(
    instance: Instance,
    identity: CommitIdentity,
    report: Reporter,
    target: RayTarget | None = None,
    *,
    command: str | None = None,
    extra_tags: dict[str, str] | None = None,
    extra_env: dict[str, str] | None = None,
    session: str | None = None,
    stop: threading.Event | None = None,
    root: Path | None = None,
    assets: AssetSource | None = None,
) -> Trained:
    """Run the project's training entry point (or ``command``) against dev (here, or as a job on the Ray
    cluster ``target``); the model it logged, with its run and metrics. A sweep's trial adds its tags and
    environment, names the session, may ``stop`` the training (here) when it prunes the trial, and may run
    it in its own working copy of the commit (``root``). ``assets`` gives ``training.inputs``' data asset
    versions and their files (a control plane's, for a training run for one).

    The script makes its own runs (in the experiment it picks, default ``training.experiment``); each
    carries the session's tags, and afterwards none is left RUNNING, whatever happened.
    """
    settings = instance.settings
    config = settings.config
    store = instance.store(DEV)
    abandoned = sessions.fail_abandoned_runs(store, config.training.timeout_seconds)
    if abandoned:
        report.step(f"marked {abandoned} run(s) of ended loopline processes FAILED")
    session = session or uuid.uuid4().hex
    tags = {
        **run_tags(instance, identity),
        sessions.SESSION: session,
        sessions.HOST: socket.gethostname(),
        sessions.PID: str(os.getpid()),
        **(extra_tags or {}),
    }
    log = instance.logs_dir / f"train-{identity.commit[:7]}-{session[:8]}.log"
    inputs = _inputs(instance, report, assets)
    tags.update(input_tags(inputs))
    paths = {item.name: item.path for item in inputs}
    command = command or config.training.command
    if target is None:  # a Ray job gets the inputs among its files, and their paths there
        extra_env = {**(extra_env or {}), **input_environment(paths)}
        command = fill_inputs(command, paths)
    where = f" on Ray cluster '{target.name}'" if target else ""
    report.step(f"training{where}: {command} (output in {log})")
    started = int(time.time() * 1000) - 1000  # MLflow stamps runs in milliseconds; allow for clock steps
    timeout = config.training.timeout_seconds
    try:
        if target is None:
            run_training(
                root=root or instance.root,
                command=command,
                store=store,
                experiment=settings.experiment,
                tags=tags,
                log_path=log,
                timeout=timeout,
                on_line=report.output,
                extra_env=extra_env,
                stop=stop,
            )
        else:
            env = {**training_environment(store, settings.experiment, tags), **(extra_env or {})}
            run_on_ray(
                target,
                root=root or instance.root,
                command=command,
                env=env,
                log_path=log,
                timeout=timeout,
                on_line=report.output,
                paths=watched_paths(instance),
                stop=stop,
                inputs=paths,
            )
    except BaseException:
        sessions.fail_session(store, session, started, tags)
        raise
    runs = sessions.session_runs(store, session, started)
    if not runs:
        raise TrainingFailed(
            command=command,
            outcome=only_defines(root or instance.root, command)
            or no_sub_command(log, root or instance.root, command)
            or "finished without logging a run to the dev workspace (a script that calls "
            "mlflow.set_tracking_uri sends its runs elsewhere: loopline sets MLFLOW_TRACKING_URI for it)",
            log=log,
        )
    runs = sessions.close_session(store, runs, tags, succeeded=True)
    log_datasets(store.client, [run.run_id for run in runs], inputs)
    sessions.check_artifacts(store, runs)
    return sessions.pick_model(store, runs, config.model, command, log, instance.root)
