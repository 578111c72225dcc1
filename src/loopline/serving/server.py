"""``loopline serve``: uvicorn worker processes around the scoring core, each following the database.

With several workers each has its own socket with ``SO_REUSEPORT``, so the kernel spreads connections
evenly across them (a shared accept socket lets one worker take most of them), and every listening
socket has ``TCP_NODELAY`` set, which accepted connections inherit (without it, small answers wait for
delayed ACKs). The supervisor binds and holds those sockets and restarts a worker that dies.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import os
import selectors
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson

from loopline import children
from loopline.config import ServingConfig
from loopline.errors import UsageError
from loopline.net import bind, serve_until_stopped
from loopline.serving.guard import http_protocol
from loopline.serving.steering import steer

__all__ = ["bind", "run_worker", "serve"]

log = logging.getLogger("loopline.serve")


def _uvicorn_options(settings: ServingConfig) -> tuple[str, type[Any]]:
    """uvloop when installed, else asyncio; the HTTP protocol guarded (see guard)."""
    loop = "asyncio"
    with contextlib.suppress(ImportError):
        import uvloop  # noqa: F401

        loop = "uvloop"
    return loop, http_protocol(settings.header_timeout_seconds, settings.max_connections)


def _fast_sklearn() -> None:
    """Skip scikit-learn's finiteness scan in this (the event loop's) thread: requests are checked already."""
    with contextlib.suppress(ImportError):
        import sklearn

        sklearn.set_config(assume_finite=True)


class _Worker:
    """One serving process: the core, its follower, and the periodic writers of logs and statistics."""

    def __init__(self, project: Path, workspace: str) -> None:
        from loopline.instance import Instance
        from loopline.serving import metrics as metrics_module
        from loopline.serving.core import AccessLog, ScoringCore
        from loopline.serving.openapi import document
        from loopline.serving.sampling import Sampler
        from loopline.serving.stats import StatsRecorder

        self.instance = Instance.open(project)
        self.instance.db.require_current(self.instance.root)
        self.workspace = workspace
        self.settings = self.instance.settings.config.serving
        self.metrics = metrics_module.create()
        self.access_log = AccessLog(self.settings.request_log)
        self.stats = StatsRecorder(self.instance.db, workspace)
        openapi = orjson.dumps(document(f"loopline endpoints of {workspace}"))
        monitoring = self.instance.settings.config.monitoring
        self.sampler = Sampler(
            self.instance.db, monitoring.sample_per_second, monitoring.sample_size, self.workspace
        )
        self.core = ScoringCore(
            self.metrics,
            self.access_log,
            openapi,
            self.stats,
            self.sampler,
            self.settings.max_body_bytes,
            self.settings.model_timeout_seconds,
        )
        self.tasks: list[asyncio.Task[None]] = []
        self.follower: Any = None

    def publish(self, routes: dict[str, Any]) -> None:
        """Swap in new routing tables (called from the follower thread)."""
        self.core.routes = routes
        for route in routes.values():
            for name, deployment_state in route.states.items():
                self.metrics.ready.labels(route.name, name).set(1 if deployment_state == "ready" else 0)

    async def _every(self, seconds: float, work: Any, in_thread: bool) -> None:
        loop = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(seconds)
            try:
                await loop.run_in_executor(None, work) if in_thread else work()
            except Exception:  # logs and statistics are best effort; answering requests is not
                log.exception("periodic %s failed", getattr(work, "__name__", "work"))

    async def startup(self) -> None:
        """Load every endpoint before the socket accepts, then follow changes."""
        from loopline.serving.state import Follower

        loop = asyncio.get_running_loop()
        _fast_sklearn()
        self.follower = Follower(
            self.instance.db,
            self.workspace,
            loop,
            self.publish,
            max_batch_rows=self.settings.max_batch_rows,
            poll_seconds=self.settings.poll_seconds,
            metrics=self.metrics,
            on_stale=lambda stale: setattr(self.core, "stale", stale),
            model_store=self.instance.model_store(self.workspace),
        )
        await loop.run_in_executor(None, self.follower.sync)
        self.follower.start()
        self.core.caught_up = self.follower.caught_up
        self.core.started = True
        # Everything loaded so far (MLflow, scikit-learn, the models) lives as long as the process: keep the
        # garbage collector from scanning it again and again, which otherwise shows as latency spikes.
        gc.collect()
        gc.freeze()
        self.tasks = [
            loop.create_task(self._every(0.2, self._tick, in_thread=False)),
            loop.create_task(self._write_stats()),
            loop.create_task(self._every(1.0, self.sampler.flush, in_thread=True)),
            loop.create_task(self._every(1.0, self._report_paths, in_thread=True)),
        ]

    def _report_paths(self) -> None:
        """Record what answers each loaded deployment here (for ``deployment show`` and the dashboard)."""
        routes = self.core.routes
        self.stats.report_paths(
            {
                (endpoint, name): (
                    runtime.digest,
                    runtime.model.path,
                    tuple(map(str, runtime.model.environment)),
                )
                for endpoint, route in routes.items()
                for name, runtime in route.deployments.items()
            }
        )

    def _tick(self) -> None:
        """Count what was answered, write the request log, close the sampler's window when it is up."""
        self.core.drain()
        self.sampler.rotate()
        self.access_log.flush()

    async def _write_stats(self) -> None:
        """Once a second: take the statistics here, on the loop, and write them from a worker thread."""
        loop = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(1.0)
            self.core.drain()
            windows = self.stats.take()
            try:
                await loop.run_in_executor(None, self.stats.flush, windows)
            except Exception:  # statistics are best effort; answering requests is not
                log.exception("writing serving statistics failed")

    async def shutdown(self) -> None:
        """Stop following and write what is left."""
        for task in self.tasks:
            task.cancel()
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(None, self.follower.stop)
        self.core.close()
        self.core.drain()
        await loop.run_in_executor(None, self.stats.flush, self.stats.take())
        self.sampler.rotate(last=True)
        await loop.run_in_executor(None, self.sampler.flush)
        try:
            await loop.run_in_executor(None, self.stats.forget_paths)
        except Exception:  # the reports expire on their own
            log.exception("removing this process's serving paths failed")
        self.access_log.flush()


def run_worker(
    project: Path, workspace: str, sock: socket.socket, ready: Callable[[], None] | None = None
) -> None:
    """Serve the workspace's endpoints on ``sock`` until interrupted; ``ready`` is called once they answer."""
    import uvicorn

    from loopline.serving.app import ScoringApp

    worker = _Worker(project, workspace)

    async def startup() -> None:
        await worker.startup()
        if ready is not None:
            ready()

    app = ScoringApp(worker.core, worker.settings.max_body_bytes, startup, worker.shutdown)
    loop, http = _uvicorn_options(worker.settings)
    config = uvicorn.Config(
        app,
        lifespan="on",
        log_level="warning",
        access_log=False,
        timeout_keep_alive=30,
        loop=loop,
        http=http,
        proxy_headers=False,
        server_header=False,
    )
    serve_until_stopped(uvicorn.Server(config), sock)


def serve(
    project: Path,
    workspace: str,
    host: str,
    port: int,
    workers: int,
    listening: Callable[[], None] = lambda: None,
    taken: str = "choose another --port",
) -> None:
    """Serve in this process (one worker) or supervise ``workers`` worker processes; ``listening`` is
    called once the port is taken (a port another process holds fails before it, saying ``taken``)."""
    if workers < 1:
        raise UsageError("--workers must be 1 or more")
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stderr
    )
    if workers == 1:
        # Within a container's CPU limit, which OpenMP and BLAS do not see, they would start a thread per
        # core of the whole machine. OpenMP reads its variable when it loads, later; counting the cores
        # (joblib) has loaded numpy's BLAS already, so that one is limited where it is.
        threads = thread_share(1)
        os.environ.update(threads)
        from threadpoolctl import threadpool_limits

        if threads["OPENBLAS_NUM_THREADS"].isdigit():
            threadpool_limits(int(threads["OPENBLAS_NUM_THREADS"]), user_api="blas")
        log.info("thread pools: %s", _listed(threads))
        sock = bind(host, port, reuse_port=False, taken=taken)
        listening()
        run_worker(project, workspace, sock)
        return
    sockets = [bind(host, port, reuse_port=True, taken=taken) for _ in range(workers)]
    listening()
    metrics_dir = tempfile.mkdtemp(prefix="loopline-metrics-")
    try:
        _Supervisor(project, workspace, sockets, metrics_dir).run()
    finally:
        for sock in sockets:
            sock.close()
        shutil.rmtree(metrics_dir, ignore_errors=True)


# Numerical libraries size their thread pools to every core (OpenMP: scikit-learn's histogram boosting,
# treelite's walk, LightGBM, XGBoost; BLAS). N workers each running a thread per core wait at every
# barrier for cores the others hold. Two workers on two cores with one thread each answered a histogram
# boosting model's 100-row and 1,000-row requests 1.18x and 1.14x as fast, and both answered after 3.6 s
# instead of 5.9 s (benchmarks/serving_workers.py). A variable the environment sets is kept.
THREAD_VARIABLES = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")


def thread_share(workers: int) -> dict[str, str]:
    """The thread-pool sizes each of ``workers`` worker processes starts with: its share of the cores,
    unless the environment says otherwise."""
    share = str(max(1, children.cores() // workers))
    return {name: os.environ.get(name, share) for name in THREAD_VARIABLES}


def _listed(variables: dict[str, str]) -> str:
    return " ".join(f"{name}={value}" for name, value in variables.items())


class _Supervisor:
    """Keeps one worker per listening socket, and new connections on the workers that are up.

    Each worker inherits its slot's socket and a pipe; it writes one byte to the pipe once it answers, and
    the pipe reaches end-of-file the moment it dies. The sockets stay open here, so connections queued on a
    dead worker's socket wait for its replacement rather than being reset, and new ones are steered to the
    live slots meanwhile.
    """

    RESTART_DELAY = 1.0  # between starts of a slot whose worker died before answering

    def __init__(self, project: Path, workspace: str, sockets: list[socket.socket], metrics_dir: str) -> None:
        self.project = project
        self.workspace = workspace
        self.sockets = sockets
        self.metrics_dir = metrics_dir
        self.workers: dict[int, subprocess.Popen[bytes]] = {}
        self.pipes: dict[int, int] = {}  # slot -> read end of its worker's pipe
        self.live: set[int] = set()
        self.restart_at: dict[int, float] = {}
        self.selector = selectors.DefaultSelector()
        self.stopping = False
        self.threads = thread_share(len(sockets))
        log.info("each worker's thread pools: %s", _listed(self.threads))

    def run(self) -> None:
        def stop(_signum: int, _frame: object) -> None:
            self.stopping = True

        previous = {sig: signal.signal(sig, stop) for sig in (signal.SIGINT, signal.SIGTERM)}
        try:
            for slot in range(len(self.sockets)):
                self._start(slot)
            while not self.stopping:
                for key, _ in self.selector.select(timeout=0.2):
                    self._heard(key.data)
                self._reap()
                now = time.monotonic()
                for slot, when in list(self.restart_at.items()):
                    if now >= when and not self.stopping:
                        del self.restart_at[slot]
                        self._start(slot)
        finally:
            self._stop_all()
            for sig, handler in previous.items():
                signal.signal(sig, handler)

    def _start(self, slot: int) -> None:
        read_end, write_end = os.pipe()
        listen_fd = self.sockets[slot].fileno()
        env = {**os.environ, **self.threads, "PROMETHEUS_MULTIPROC_DIR": self.metrics_dir}
        argv = [sys.executable, "-m", "loopline.serving.worker", str(self.project), self.workspace]
        argv += [str(listen_fd), str(write_end)]
        try:  # a worker gets SIGTERM when the supervisor dies
            self.workers[slot] = children.start(
                argv, parent_death_signal=signal.SIGTERM, env=env, pass_fds=(listen_fd, write_end)
            )
        finally:
            os.close(write_end)
        self.pipes[slot] = read_end
        self.selector.register(read_end, selectors.EVENT_READ, slot)

    def _heard(self, slot: int) -> None:
        """The worker of ``slot`` is answering (a byte) or has gone (end of file)."""
        if os.read(self.pipes[slot], 1):
            self.live.add(slot)
            self._steer()
            log.info(
                "worker %s answers (%d of %d)", self.workers[slot].pid, len(self.live), len(self.sockets)
            )
        else:
            self._gone(slot)

    def _reap(self) -> None:
        """A worker that exited while something else still holds its pipe open is gone all the same."""
        for slot, child in list(self.workers.items()):
            if child.poll() is not None:
                self._gone(slot)

    def _gone(self, slot: int) -> None:
        self.selector.unregister(self.pipes[slot])
        os.close(self.pipes.pop(slot))
        was_live = slot in self.live
        self.live.discard(slot)
        self._steer()
        child = self.workers.pop(slot)
        with contextlib.suppress(subprocess.TimeoutExpired):
            child.wait(timeout=5)
        if self.stopping:
            return
        log.warning("worker %s exited with %s; starting another", child.pid, child.returncode)
        self.restart_at[slot] = time.monotonic() + (0.0 if was_live else self.RESTART_DELAY)

    def _steer(self) -> None:
        steer(self.sockets[0], sorted(self.live))

    def _stop_all(self) -> None:
        for child in self.workers.values():
            with contextlib.suppress(ProcessLookupError):
                child.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + 30
        for child in self.workers.values():
            try:
                child.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                child.kill()
        for read_end in self.pipes.values():
            os.close(read_end)
        self.selector.close()
