"""What a serving process serves, and how it follows loopline's database without a restart.

A ``Follower`` polls the workspace's endpoints (a cheap query of their ``generation``), loads the
models of new deployments (checking their files against the content digest and answering their input
example once), and publishes a new, immutable routing table by swapping one reference. A traffic split
is published only when every deployment it sends traffic to is loaded here; until then the previous
split keeps answering. Keys change at once. A model no table uses any more is released when the last
request holding it finishes.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

from loopline.domain import DeploymentInfo
from loopline.endpoints.rows import Routable, generations, routing_snapshot
from loopline.model_environment import said
from loopline.serving.batching import Batcher
from loopline.serving.model import LoadedModel, load_model
from loopline.serving.tally import Tally
from loopline.state import Database
from loopline.storage.models import ModelStore, model_store_of, store_holding

__all__ = ["DeploymentRuntime", "EndpointRoute", "Follower"]

log = logging.getLogger("loopline.serve")

RETRY_FAILED_SECONDS = 30.0


@dataclass(eq=False)
class DeploymentRuntime:
    """One deployment as this process serves it."""

    endpoint: str
    name: str
    version: int
    git_commit: str
    digest: str
    model: LoadedModel
    batcher: Batcher | None
    headers: list[tuple[bytes, bytes]]
    tally: Tally = field(init=False)
    own_tally: Tally = field(init=False)  # loopline's own requests (its system key)
    log_template: bytes | None = None  # this deployment's request log line, filled in per request

    def __post_init__(self) -> None:
        self.tally = Tally(self.endpoint, self.name)
        self.own_tally = Tally(self.endpoint, self.name, clients=False)


@dataclass(frozen=True)
class EndpointRoute:
    """One endpoint's routing table: keys, loaded deployments, the traffic slots and the mirror."""

    name: str
    auth: str
    key_hashes: tuple[str, ...]
    deployments: Mapping[str, DeploymentRuntime]
    slots: tuple[str, ...]
    mirror: tuple[str, int] | None
    generation: int
    states: Mapping[str, str]
    sampled: bool = True
    system_hash: str | None = None
    strict: bool = (
        False  # loopline's stricter checks instead of MLflow's (unknown fields refused, no conversions)
    )
    # Keys this table accepted, each with whether it is loopline's own; a new table (new keys) starts empty.
    accepted: dict[bytes, bool] = field(default_factory=dict, compare=False)

    @property
    def ready(self) -> bool:
        """True when every deployment that takes traffic (live or mirrored) is loaded here."""
        wanted = set(self.slots) | ({self.mirror[0]} if self.mirror else set())
        return all(self.states.get(name) == "ready" for name in wanted)


def traffic_slots(traffic: Mapping[str, int]) -> tuple[str, ...]:
    """100 slots, one per percent, so a weighted choice is one random index."""
    return tuple(name for name, percent in sorted(traffic.items()) for _ in range(percent))


MAX_WAITING = 64
"""Requests at most that wait for the next look at the database (``Follower.caught_up``)."""


def _resolve(future: asyncio.Future[None]) -> None:
    if not future.done():  # a wait that timed out was cancelled
        future.set_result(None)


class Follower:
    """Keeps a process's routing tables in step with loopline's database."""

    def __init__(
        self,
        db: Database,
        workspace: str,
        loop: asyncio.AbstractEventLoop,
        publish: Callable[[dict[str, EndpointRoute]], None],
        *,
        max_batch_rows: int,
        poll_seconds: float,
        metrics: Any = None,
        on_stale: Callable[[dict[str, str] | None], None] | None = None,
        model_store: ModelStore | None = None,
    ) -> None:
        self.metrics = metrics
        self.model_store = model_store
        """The workspace's model store as configured (None: the one each version's source names)."""
        self.on_stale = on_stale
        self.stale: dict[str, str] | None = None  # since when, and why, the database cannot be read
        self.db = db
        self.workspace = workspace
        self.loop = loop
        self.publish = publish
        self.max_batch_rows = max_batch_rows
        self.poll_seconds = poll_seconds
        self.routes: dict[str, EndpointRoute] = {}
        self._seen: dict[str, int] | None = None
        self._models: dict[str, LoadedModel] = {}
        self._failed: dict[str, tuple[float, str]] = {}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._waiting: list[tuple[float, asyncio.Future[None]]] = []  # since when, and who, see caught_up
        self._lock = threading.Lock()

    def start(self) -> None:
        """Follow changes in a background thread."""
        self._thread = threading.Thread(target=self._run, name="loopline-follower", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop following."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)

    async def caught_up(self) -> None:
        """Return once a look at the database that began after this call has published its routing table
        (within about two polls); at once where many requests wait already (a flood of wrong keys is
        refused without waiting)."""
        future: asyncio.Future[None] = self.loop.create_future()
        with self._lock:
            if len(self._waiting) >= MAX_WAITING:
                return
            self._waiting.append((time.monotonic(), future))
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(future, timeout=2 * self.poll_seconds + 1.0)

    def _wake(self, began: float) -> None:
        """Resolve the waits that began before the look that began at ``began``."""
        with self._lock:
            due = [future for since, future in self._waiting if since <= began]
            self._waiting = [(since, future) for since, future in self._waiting if since > began]
        for future in due:
            self.loop.call_soon_threadsafe(_resolve, future)

    def _run(self) -> None:
        while not self._stop.wait(self.poll_seconds):
            began = time.monotonic()
            try:
                self.sync()
            except Exception as exc:  # a database hiccup must not stop a server that is answering fine
                if self.stale is None:
                    log.exception("could not read endpoint changes; serving the last known state")
                    reason = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]
                    self._stale({"since": datetime.now(UTC).isoformat(timespec="seconds"), "reason": reason})
            else:
                if self.stale is not None:
                    log.warning("following loopline's database again")
                    self._stale(None)
            self._wake(began)

    def _stale(self, stale: dict[str, str] | None) -> None:
        self.stale = stale
        if self.on_stale is not None:
            self.on_stale(stale)

    def sync(self) -> bool:
        """Look once for changes and publish new routing tables; True when anything changed."""
        with self.db.read() as connection:
            seen = generations(connection, self.workspace)
            retry = any(time.monotonic() - at > RETRY_FAILED_SECONDS for at, _ in self._failed.values())
            if seen == self._seen and not retry and not self._loading():
                return False
            snapshot = routing_snapshot(connection, self.workspace, base_url="")
        routes = {name: self._route(name, endpoint) for name, endpoint in snapshot.items()}
        self.routes = routes
        self._seen = seen
        self.publish(routes)
        used = {rt.digest for route in routes.values() for rt in route.deployments.values()}
        for digest in list(self._models):
            if digest not in used:
                del self._models[digest]
        return True

    def _loading(self) -> bool:
        return any(state == "loading" for route in self.routes.values() for state in route.states.values())

    def _route(self, name: str, endpoint: Routable) -> EndpointRoute:
        info = endpoint.info
        previous = self.routes.get(name)
        runtimes: dict[str, DeploymentRuntime] = {}
        states: dict[str, str] = {}
        for deployment in info.deployments:
            runtime, state = self._runtime(name, deployment, previous)
            states[deployment.name] = state
            if runtime is not None:
                runtimes[deployment.name] = runtime
        live = {d.name: d.traffic for d in info.deployments if d.traffic > 0}
        mirror = next(iter(info.mirror.items()), None)
        wanted = set(live) | ({mirror[0]} if mirror else set())
        ready = all(states.get(n) == "ready" for n in wanted)
        route = EndpointRoute(
            name=name,
            auth=info.auth,
            key_hashes=endpoint.key_hashes,
            deployments=runtimes,
            slots=traffic_slots({n: p for n, p in live.items() if n in runtimes}),
            mirror=mirror if mirror and mirror[0] in runtimes else None,
            generation=info.generation,
            states=states,
            sampled=not info.sensitive,
            system_hash=endpoint.system_key_hash,
            strict=info.strict,
        )
        if ready or previous is None:
            return route
        # Not every deployment that should take traffic is loaded yet: keep the last split, new keys at once.
        kept = {
            **runtimes,
            **{n: previous.deployments[n] for n in previous.slots if n in previous.deployments},
        }
        return replace(
            route,
            deployments=kept,
            slots=previous.slots,
            mirror=previous.mirror,
            generation=previous.generation,
        )

    def _runtime(
        self, endpoint: str, deployment: DeploymentInfo, previous: EndpointRoute | None
    ) -> tuple[DeploymentRuntime | None, str]:
        digest = deployment.content_digest
        if previous is not None:
            existing = previous.deployments.get(deployment.name)
            if existing is not None and existing.digest == digest:
                return existing, "ready"
        model = self._model(digest, deployment.source_uri)
        if model is None:
            failure = self._failed.get(digest)
            return None, f"failed: {failure[1]}" if failure else "loading"
        batcher = None
        if model.batchable:
            calls = self.metrics.calls.labels(endpoint, deployment.name).inc if self.metrics else None
            batcher = Batcher(
                model.predict, self.loop, self.max_batch_rows, on_call=calls, off_loop=model.off_loop
            )
        headers = [
            (b"content-type", b"application/json"),
            (b"loopline-deployment", deployment.name.encode()),
            (b"loopline-model-version", str(deployment.version).encode()),
            (b"loopline-git-commit", deployment.git_commit.encode()),
        ]
        runtime = DeploymentRuntime(
            endpoint,
            deployment.name,
            deployment.version,
            deployment.git_commit,
            digest,
            model,
            batcher,
            headers,
        )
        return runtime, "ready"

    def _model(self, digest: str, source_uri: str) -> LoadedModel | None:
        if digest in self._models:
            return self._models[digest]
        failure = self._failed.get(digest)
        if failure and time.monotonic() - failure[0] < RETRY_FAILED_SECONDS:
            return None
        try:
            store = self.model_store
            held = model_store_of(source_uri) if store is None else store_holding(store, digest, source_uri)
            folder = held.verify(digest)
            model = load_model(folder, digest)
            model.answer_example()
        except Exception as exc:  # record and keep serving everything else
            message = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]
            self._failed[digest] = (time.monotonic(), message)
            log.error("deployment model %s could not be loaded: %s", digest, message)
            return None
        if model.environment:
            log.warning("deployment model %s: %s", digest, said(model.environment))
        self._failed.pop(digest, None)
        self._models[digest] = model
        return model
