"""Training as a Ray job: the repository as its working directory, MLflow pointed at dev, its log streamed.

The job runs ``python -m loopline.compute.entry``, which runs the training command there and stops it
at ``training.timeout_seconds``; so the cluster's Python needs loopline (which also tags the runs the
script starts, as it does locally). A small watchdog process stops the job if this process dies before
the job ends (killed, not only interrupted); Ctrl-C and SIGTERM stop it from here.
"""

from __future__ import annotations

import asyncio
import os
import queue
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from loopline.compute.targets import RayTarget
from loopline.errors import ComputeFailed, StoreUnavailable, TrainingFailed, UsageError
from loopline.git import included_paths, run_git, toplevel
from loopline.inputs import DIGEST_MARK, fill_inputs, input_environment
from loopline.mlflow_plugin import RUN_TAGS_VARIABLE
from loopline.training import known_cause

__all__ = ["STORE_CREDENTIALS", "run_job", "run_on_ray", "snapshot"]

_POLL_SECONDS = 0.5
_STOP_WAIT_SECONDS = 30.0
# What a training job takes from loopline's side: MLflow's settings (and those of the object stores its
# artifacts may go to), the session's run tags. Nothing else of this process's environment goes to the
# cluster: its PATH and home mean nothing there, and loopline's own secrets (tokens, the audit key) stay.
STORE_CREDENTIALS = ("AZURE_STORAGE_", "AWS_", "GOOGLE_APPLICATION_CREDENTIALS")
"""Variables (by prefix) that let a job on the cluster reach the object stores, passed on when set here."""
_PASSED_PREFIXES = ("MLFLOW_", *STORE_CREDENTIALS)
_PASSED = frozenset(
    {RUN_TAGS_VARIABLE, "LOOPLINE_WORKSPACE", "_MLFLOW_SERVER_ARTIFACT_ROOT", "PYTHONUNBUFFERED"}
)
_LOCAL_SCHEMES = ("sqlite:", "file:")


@contextmanager
def snapshot(root: Path, paths: Sequence[str] | None = None) -> Iterator[tuple[Path, str]]:
    """A copy of the files git sees in ``root`` (tracked, those of its submodules, and untracked but not
    ignored): what the job runs, without the virtual environments, caches and state folders a project
    keeps beside its code; and the folder, within the copy, the command runs in.

    When ``paths`` (``training.paths`` as the repository names them) reach outside the project's folder,
    the copy is of the repository, holding that folder and those paths in their places, so a training
    that imports the repository's shared code finds it as it does at home."""
    top = toplevel(root) or root
    inside = root.resolve().relative_to(top).as_posix() if root.resolve() != top else ""
    # The files training.paths leaves out still go: they only say which changes make a new model.
    included = included_paths(paths or ())
    outside = [p for p in included if inside and p != inside and not p.startswith(f"{inside}/")]
    base, pathspecs, cwd = (top, [inside, *outside], inside) if outside else (root, [], "")
    # git lists submodules' files only among the tracked ones (--recurse-submodules takes no --others)
    tracked = run_git(base, "ls-files", "-z", "--cached", "--recurse-submodules", "--", *pathspecs)
    listed = (
        tracked + "\0" + run_git(base, "ls-files", "-z", "--others", "--exclude-standard", "--", *pathspecs)
    )
    with tempfile.TemporaryDirectory(prefix="loopline-ray-") as scratch:
        folder = Path(scratch) / base.name
        for name in filter(None, listed.split("\0")):
            source = base / name
            if source.is_file():
                (folder / name).parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(source, folder / name)
        (folder / cwd).mkdir(parents=True, exist_ok=True)
        yield folder, cwd


_INPUTS_FOLDER = ".loopline-inputs"


def _with_inputs(folder: Path, cwd: str, inputs: dict[str, Path]) -> dict[str, Path]:
    """Each input's copy put among the job's files (under ``.loopline-inputs/NAME/``), and its path there
    as from the folder the command runs in."""
    there = {}
    for name, source in inputs.items():
        target = folder / _INPUTS_FOLDER / name / source.name
        target.parent.mkdir(parents=True, exist_ok=True)
        if source.is_dir():
            shutil.copytree(source, target, ignore=shutil.ignore_patterns(DIGEST_MARK))
        else:
            shutil.copy2(source, target)
        there[name] = Path(os.path.relpath(target, folder / cwd))
    return there


def _refuse_unreachable_stores(target: RayTarget, env: dict[str, str]) -> None:
    if target.on_this_machine:
        return
    for key in ("MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI", "_MLFLOW_SERVER_ARTIFACT_ROOT"):
        value = env.get(key, "")
        if value.startswith(_LOCAL_SCHEMES) or value.startswith("/"):
            raise UsageError(
                f"compute target '{target.name}' is another machine, and dev's MLflow store is on this one "
                f"({key}={value}); give the dev workspace a PostgreSQL tracking store and an object store "
                "for artifacts (docs/team-deployment.md)"
            )


def _watchdog(target: RayTarget, job_id: str) -> subprocess.Popen[bytes]:
    """A process that stops ``job_id`` when this one dies without saying the job is over."""
    return subprocess.Popen(
        [sys.executable, "-m", "loopline.compute.watchdog", target.address, job_id],
        stdin=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,  # a Ctrl-C to loopline's group must not end it first
    )


def _stop(client: Any, job_id: str) -> None:
    try:
        client.stop_job(job_id)
        deadline = time.monotonic() + _STOP_WAIT_SECONDS
        while time.monotonic() < deadline and not client.get_job_status(job_id).is_terminal():
            time.sleep(_POLL_SECONDS)
    except Exception:  # the cluster went away: nothing left to stop from here
        pass


class _Lines:
    """A job's log as it arrives in chunks, passed on a whole line at a time."""

    def __init__(self, log: Any, on_line: Callable[[str], None]) -> None:
        self.log = log
        self.on_line = on_line
        self.received = 0
        self.pending = ""

    def add(self, chunk: str) -> None:
        self.received += len(chunk)
        *whole, self.pending = (self.pending + chunk).split("\n")
        for line in whole:
            self.log.write(line + "\n")
            self.on_line(line)

    def finish(self) -> None:
        """The job ended: a last line without its newline is passed on too."""
        if self.pending:
            self.log.write(self.pending)
            self.on_line(self.pending)
            self.pending = ""


def _stream(client: Any, job_id: str, chunks: queue.SimpleQueue[str | BaseException | None]) -> None:
    """Put the job's log on ``chunks`` as the cluster sends it (Ray's log tail, from the start), then None
    when the job ended and the stream closed, or the exception if the stream broke."""

    async def tail() -> None:
        async for chunk in client.tail_job_logs(job_id):
            chunks.put(chunk)

    try:
        asyncio.run(tail())
        chunks.put(None)
    except BaseException as exc:  # the connection broke: the caller reads the rest by polling
        chunks.put(exc)


def _follow(
    client: Any,
    job_id: str,
    log: Any,
    on_line: Callable[[str], None],
    timeout: float | None,
    stop: threading.Event | None = None,
) -> Any:
    """Pass the job's log on, line by line, until it ends (or ``stop`` is set: then the job is stopped);
    its final status. The log arrives over Ray's log tail, so a long log is sent once, not again at every
    look; should that stream break, what it had not sent yet is read from the whole log at each look."""
    lines = _Lines(log, on_line)
    stop = stop or threading.Event()
    chunks: queue.SimpleQueue[str | BaseException | None] = queue.SimpleQueue()
    streaming = threading.Thread(target=_stream, args=(client, job_id, chunks), daemon=True)
    streaming.start()
    streamed = True  # until the stream breaks
    deadline = None if timeout is None else time.monotonic() + timeout + 60  # a backstop to the job's own
    while True:
        status = client.get_job_status(job_id)
        while not chunks.empty():
            chunk = chunks.get()
            if isinstance(chunk, str):
                lines.add(chunk)
            elif chunk is not None:
                streamed = False
        # The tail looks at the file once a second and closes some time after the job ended: once it has
        # ended, what the tail has not sent yet is read in one piece instead of waiting for it.
        if not streamed or status.is_terminal():
            lines.add(client.get_job_logs(job_id)[lines.received :])
        if status.is_terminal():
            lines.finish()
            return status
        if (deadline is not None and time.monotonic() > deadline) or stop.is_set():
            _stop(client, job_id)
            return client.get_job_status(job_id)
        stop.wait(_POLL_SECONDS)


_IGNORE_GITIGNORE = "RAY_RUNTIME_ENV_IGNORE_GITIGNORE"
_SUBMITTING = threading.Lock()
# What Ray's dashboard answers for a job's files over its upload limit (RAY_max_grpc_message_size).
_OVER_RAY_S_LIMIT = re.compile(r"Package size \([^)]*\) exceeds the maximum size of [\d.]+ ?\w+")


@contextmanager
def _gitignore_kept() -> Iterator[None]:
    """While a job's files are packed: Ray leaves out what ``.gitignore`` files name, and the folder holds
    the files git sees and the training's inputs, which a project's ``.gitignore`` often names (``*.csv``,
    ``data/``). Ray reads the variable as it packs; it is set for no longer (one job at a time)."""
    with _SUBMITTING:
        before = os.environ.get(_IGNORE_GITIGNORE)
        os.environ[_IGNORE_GITIGNORE] = "1"
        try:
            yield
        finally:
            if before is None:
                os.environ.pop(_IGNORE_GITIGNORE, None)
            else:
                os.environ[_IGNORE_GITIGNORE] = before


def _too_large(target: RayTarget, folder: Path, said: str) -> ComputeFailed:
    """Ray's refusal of a job's files over its upload limit, with the largest of them named."""
    files = [path for path in folder.rglob("*") if path.is_file() and not path.is_symlink()]
    largest = sorted(files, key=lambda path: path.stat().st_size, reverse=True)[:3]
    named = ", ".join(
        f"{path.relative_to(folder)} ({path.stat().st_size / 2**20:.1f} MiB)" for path in largest
    )
    return ComputeFailed(
        f"the job's files for Ray cluster '{target.name}' (the commit's files and the training's inputs) "
        f"are over what Ray takes ({said}); the largest: {named}. Keep large files out of "
        "the repository (or of training.paths), and read data that large on the cluster from storage it "
        "reaches rather than as a training input"
    )


def run_job(
    target: RayTarget,
    *,
    folder: Path,
    entrypoint: list[str],
    kind: str,
    env: dict[str, str],
    log_path: Path,
    on_line: Callable[[str], None],
    timeout: float | None = None,
    stop: threading.Event | None = None,
) -> str | None:
    """Run ``entrypoint`` as a Ray job with ``folder`` as its working directory, passing each line of its
    log to ``on_line`` (and to ``log_path``); stop it if this process is interrupted or dies, or once
    ``stop`` is set. None when it succeeded, else why it did not."""
    ray = target.import_ray()
    settings = target.settings
    runtime_env: dict[str, Any] = {"working_dir": str(folder), "env_vars": env}
    if settings.pip:
        runtime_env["pip"] = list(settings.pip)
    try:
        client = ray.job_submission.JobSubmissionClient(target.address)
        with _gitignore_kept():
            job_id = str(
                client.submit_job(
                    entrypoint=shlex.join(entrypoint),
                    runtime_env=runtime_env,
                    entrypoint_num_cpus=settings.num_cpus if kind == "training" else 0,
                    entrypoint_num_gpus=settings.num_gpus if kind == "training" else 0,
                    entrypoint_memory=(settings.memory_mb or 0) * 2**20 if kind == "training" else 0,
                    metadata={"loopline": kind},
                )
            )
    except Exception as exc:  # not reachable, or not a Ray dashboard, or files over Ray's limit
        if (over := _OVER_RAY_S_LIMIT.search(str(exc))) is not None:
            raise _too_large(target, folder, over[0]) from None
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise StoreUnavailable(
            what=f"Ray cluster '{target.name}'", where=target.address, reason=reason
        ) from None
    log_path.parent.mkdir(parents=True, exist_ok=True)
    watchdog = _watchdog(target, job_id)
    try:
        with log_path.open("w", encoding="utf-8") as log:
            status = _follow(client, job_id, log, on_line, timeout, stop)
    except BaseException:
        _stop(client, job_id)
        raise
    finally:
        assert watchdog.stdin is not None
        watchdog.stdin.write(b"over\n")
        watchdog.stdin.close()
        watchdog.wait()
    if status == ray.job_submission.JobStatus.SUCCEEDED:
        return None
    message = (client.get_job_info(job_id).message or "").strip().splitlines()[-1:] or [str(status)]
    return f"Ray job {job_id} on '{target.name}': {message[0]}"


def run_on_ray(
    target: RayTarget,
    *,
    root: Path,
    command: str,
    env: dict[str, str],
    log_path: Path,
    timeout: float,
    on_line: Callable[[str], None] | None = None,
    paths: Sequence[str] | None = None,
    stop: threading.Event | None = None,
    inputs: dict[str, Path] | None = None,
) -> None:
    """Run ``command`` as a Ray job with ``env`` (the MLflow settings of a local run), with the files of
    ``root`` and of ``paths`` (``training.paths``, see :func:`snapshot`); raise on failure. Setting
    ``stop`` stops the job (the training then fails as stopped), as it stops a local run. ``inputs``
    (the copies of ``training.inputs``) go with the job's files: ``{inputs.NAME}`` in ``command`` and
    ``LOOPLINE_INPUTS`` name them there."""
    passed = {key: value for key, value in env.items() if key in _PASSED or key.startswith(_PASSED_PREFIXES)}
    _refuse_unreachable_stores(target, passed)
    with snapshot(root, paths) as (folder, cwd):
        there = _with_inputs(folder, cwd, inputs or {})
        command = fill_inputs(command, there)
        passed.update(input_environment(there))
        entrypoint = ["python", "-m", "loopline.compute.entry", "--timeout", f"{timeout:g}"]
        entrypoint += [*(["--cwd", cwd] if cwd else []), "--", command]
        failure = run_job(
            target,
            folder=folder,
            entrypoint=entrypoint,
            kind="training",
            env=passed,
            log_path=log_path,
            on_line=on_line or (lambda _line: None),
            timeout=timeout,
            stop=stop,
        )
    if failure is not None:
        cause = known_cause(log_path)
        raise TrainingFailed(command=command, outcome=f"failed as {failure}{cause}", log=log_path)
