"""The scoring core: a request in (method, path, headers, body), a response out. No web framework.

Routes: ``POST /endpoints/{name}/score`` (Azure ML style), ``POST /endpoints/{name}/invocations``
(MLflow style), both also under ``/endpoints/{name}/deployments/{d}/`` for one deployment,
``GET /endpoints/{name}``, ``GET /endpoints/{name}/deployments/{d}/ready``,
``GET /healthz``, ``GET /readyz`` (and MLflow's ``GET /ping``, ``/health`` and ``/version``),
``GET /metrics``, ``GET /openapi.json``.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import importlib.metadata
import logging
import os
import random
import time
from collections.abc import Awaitable, Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import Any, NamedTuple

import numpy as np
import orjson

from loopline.endpoints.keys import served_mark
from loopline.errors import RequestRejected
from loopline.serving.encoders import unseen_category
from loopline.serving.failures import describe_failure, offset_refusal
from loopline.serving.llm import llm_failure, llm_input, llm_threads
from loopline.serving.params import checked_params
from loopline.serving.requests import decoded
from loopline.serving.sampling import Sampler
from loopline.serving.schema import bad, parse_body, to_model_input
from loopline.serving.state import DeploymentRuntime, EndpointRoute
from loopline.serving.stats import StatsRecorder
from loopline.serving.tally import Tally, drain

__all__ = ["AccessLog", "Response", "ScoringCore"]

log = logging.getLogger("loopline.serve")

JSON = [(b"content-type", b"application/json")]
DEPLOYMENT_HEADER = b"loopline-deployment"
AZURE_DEPLOYMENT_HEADER = b"azureml-model-deployment"  # what Azure ML's clients send for the same


class NotSeenYet(RequestRejected):
    """An endpoint, a deployment or a key the routing table does not hold: perhaps one made a moment ago,
    which the server's next look at the database brings in."""


_MLFLOW_VERSION = importlib.metadata.version("mlflow").encode()  # what MLflow's server's /version says
_ACCEPTED_KEYS = 256  # keys remembered per routing table, so a valid key is hashed once, not per request


class Response(NamedTuple):
    """What the shell sends back."""

    status: int
    headers: list[tuple[bytes, bytes]]
    body: bytes


def error(exc: RequestRejected, headers: list[tuple[bytes, bytes]] | None = None) -> Response:
    """A client or server error as ``{"error_code", "message"}``."""
    body = orjson.dumps({"error_code": exc.error_code, "message": exc.message})
    return Response(exc.http_status, headers or JSON, body)


def _not_allowed(message: str, allow: bytes) -> Response:
    """A 405, with the methods the route takes (``Allow``, as HTTP asks of it)."""
    return error(bad("METHOD_NOT_ALLOWED", message, 405), [*JSON, (b"allow", allow)])


class AccessLog:
    """One JSON line per request (queued by the core when enabled), written in batches."""

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled
        self.lines: list[bytes] = []

    def flush(self) -> None:
        """Write what is queued to stdout."""
        if self.lines:
            lines, self.lines = self.lines, []
            os.write(1, b"\n".join(lines) + b"\n")


def _predictions(value: Any) -> Any:
    """The model's answers as MLflow's scoring server writes them (``predictions_to_json``)."""
    if type(value) is list:  # a batch's share, already plain values, or a Python model's list
        first = value
        while type(first) is list and first:
            first = first[0]
        return _widened(value) if isinstance(first, np.generic | np.ndarray | dict) else value
    if isinstance(value, dict):  # a Python model's named outputs
        return _widened(value)
    if isinstance(value, np.ndarray):
        # Integers, booleans and float64 orjson writes itself. A float32 it would write with its own
        # shortest digits, which read back as another float64 than MLflow's (the exact value); text and
        # other kinds it cannot write.
        return value if value.dtype.kind in "iub" or value.dtype == np.float64 else value.tolist()
    if hasattr(value, "to_dict"):
        if not hasattr(value, "columns"):  # a Series: MLflow writes it as a table of one column
            value = value.to_frame()
        if not all(isinstance(column, str) for column in value.columns):
            value = value.rename(columns=str)
        return value.to_dict(orient="records")
    if hasattr(value, "tolist"):
        return value.tolist()
    return value


def _widened(value: Any) -> Any:
    """NumPy's narrow floats in the lists and mappings a Python model answers, as Python floats: orjson
    would write a float32 with its own shortest digits, MLflow's server writes its exact value."""
    if isinstance(value, list):
        return [_widened(item) for item in value]
    if isinstance(value, dict):
        return {key: _widened(item) for key, item in value.items()}
    if isinstance(value, np.ndarray) and value.dtype.kind == "f" and value.dtype != np.float64:
        return value.tolist()
    if isinstance(value, np.floating) and not isinstance(value, np.float64):
        return value.item()
    return value


def _jsonable(value: Any) -> Any:
    """What orjson does not write itself, as MLflow's server writes it: numpy scalars as Python values,
    timestamps as ISO 8601 text, bytes as base64, and arrays orjson leaves out (a column of a matrix,
    ``predict_proba(rows)[:, 1]``, is not contiguous) as lists."""
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    if hasattr(value, "isoformat"):
        return value.isoformat()
    if isinstance(value, bytes | bytearray):
        return base64.encodebytes(value).decode("ascii")
    raise TypeError(type(value).__name__)


def answer_body(answers: Any, wrapped: bool) -> bytes:
    """The JSON of a model's answers (``{"predictions": ...}`` when ``wrapped``); TypeError when a value
    has no JSON form."""
    predictions = _predictions(answers)
    payload = {"predictions": predictions} if wrapped else predictions
    return orjson.dumps(payload, default=_jsonable, option=orjson.OPT_SERIALIZE_NUMPY)


class _Scoring:
    """A scoring request between its checks and its answer."""

    __slots__ = (
        "answers",
        "data",
        "document",
        "future",
        "kind",
        "own",
        "params",
        "route",
        "rows",
        "runtime",
        "sample",
        "started",
    )

    def __init__(
        self, route: EndpointRoute, runtime: DeploymentRuntime, kind: str, sample: bool, own: bool = False
    ) -> None:
        self.started = time.perf_counter()
        self.route = route
        self.runtime = runtime
        self.kind = kind
        self.sample = sample
        self.own = own  # loopline's own request (its system key): not a client's
        self.data: Any = None
        self.rows = 0
        self.future: asyncio.Future[Any] | None = None
        self.answers: Any = None
        self.document = False  # a language model's request (serving/llm.py): answered as the model answers
        self.params: dict[str, Any] | None = None


class ScoringCore:
    """Routes requests to deployments and answers them; the routing tables are swapped in from outside."""

    def __init__(
        self,
        metrics: Any,
        access_log: AccessLog,
        openapi: bytes,
        stats: StatsRecorder | None = None,
        sampler: Sampler | None = None,
        max_body_bytes: int = 10 * 2**20,
        model_timeout: float = 60.0,
    ) -> None:
        self.routes: Mapping[str, EndpointRoute] = {}
        # A compressed body's limit once inflated (the ASGI shell holds bodies to it as they arrive).
        self.max_body_bytes = max_body_bytes
        self.started = False
        # None while the routing table follows loopline's database; else since when, and why, it does not
        self.stale: dict[str, str] | None = None
        self.metrics = metrics
        self.stats = stats
        self.sampler = sampler
        self.access_log = access_log
        self.openapi = openapi
        self._random = random.Random()
        self._requests = 0
        self._prefix = f"{os.getpid():x}-"
        self._tallies: list[Tally] = []  # those holding requests not yet drained
        self._healthy: tuple[Mapping[str, EndpointRoute] | None, bytes] = (None, b"")
        # Waits until the routing table holds what the database held when it was called (the follower's
        # next look); None where nothing follows the database.
        self.caught_up: Callable[[], Awaitable[None]] | None = None
        self._llm_pool: ThreadPoolExecutor | None = None  # language models' requests (serving/llm.py)
        self.model_timeout = model_timeout  # seconds a language model's request may take

    async def handle(self, method: str, path: str, headers: Mapping[bytes, bytes], body: bytes) -> Response:
        """Answer one request; never raises.

        Everything up to the model call runs without suspending; a request waits only for its batch, so
        the one await sits here, close to the task, and not at the bottom of a chain of coroutines.
        """
        try:
            try:
                started = self._dispatch(method, path, headers, body)
            except NotSeenYet:
                # A key regenerated, an endpoint or a deployment created a moment ago (a script's next
                # line): answer as the database stands now, after one look at it, before refusing.
                if self.caught_up is None or self.stale is not None:
                    raise
                await self.caught_up()
                started = self._dispatch(method, path, headers, body)
            if isinstance(started, Response):
                return started
            if started.future is None:
                return self._complete(started, started.answers)
            try:
                if started.document:  # an agent waiting on its API: answered within the timeout, as MLflow's
                    answers = await asyncio.wait_for(started.future, self.model_timeout)
                else:
                    answers = await started.future
            except TimeoutError:
                return self._complete(started, None, self._timed_out(started))
            except Exception as exc:
                return self._complete(started, None, self._model_failure(started, exc))
            return self._complete(started, answers)
        except RequestRejected as exc:
            return error(exc)
        except Exception:  # a bug here must cost one request, not the server
            log.exception("internal error answering %s %s", method, path[:100])
            return error(RequestRejected(500, "INTERNAL_ERROR", "the server failed to answer; see its log"))

    def _dispatch(
        self, method: str, path: str, headers: Mapping[bytes, bytes], body: bytes
    ) -> Response | _Scoring:
        if method == "HEAD":  # GET's answer, which the HTTP server sends without its body (RFC 9110)
            method = "GET"
        parts = path.strip("/").split("/")
        if parts[0] == "endpoints" and len(parts) >= 2:
            return self._endpoint(method, parts, headers, body)
        if parts == ["invocations"] or parts == ["score"]:
            raise self._unrouted(parts[0])
        if method != "GET":
            return _not_allowed(f"{method} is not allowed on {path[:100]}", b"GET, HEAD")
        return self._plain(path)

    def _health(self) -> bytes:
        """``/healthz``'s answer: alive, and a mark of each endpoint served (``keys.served_mark``), by which
        loopline tells its own server from another project's on the same address."""
        routes = self.routes
        if self._healthy[0] is not routes:
            marks = sorted({served_mark(r.system_hash) for r in routes.values() if r.system_hash})
            self._healthy = (routes, orjson.dumps({"status": "ok", "serves": marks}))
        return self._healthy[1]

    def _plain(self, path: str) -> Response:
        if path == "/healthz":
            return Response(200, JSON, self._health())
        if path == "/readyz":
            waiting = sorted(name for name, route in self.routes.items() if not route.ready)
            ready = self.started and not waiting
            body = orjson.dumps(
                {
                    "ready": ready,
                    "endpoints": {n: dict(r.states) for n, r in self.routes.items()},
                    # what answers each loaded deployment: compiled (numpy, treelite) or the model itself
                    "serving": {
                        n: {d: rt.model.path for d, rt in r.deployments.items()}
                        for n, r in self.routes.items()
                    },
                    # the model's requirements that the packages of this process do not meet
                    "environment": {
                        n: {d: [str(x) for x in rt.model.environment] for d, rt in r.deployments.items()}
                        for n, r in self.routes.items()
                    },
                    # Without its database a replica keeps answering with the last routing table it read.
                    "database": self.stale or "following",
                }
            )
            return Response(200 if ready else 503, JSON, body)
        if path in ("/ping", "/health"):  # MLflow's server's health checks: it answers once its model loaded
            ready = self.started and all(route.ready for route in self.routes.values())
            return Response(
                200 if ready else 503, JSON, b'{"status":"ok"}' if ready else b'{"status":"loading"}'
            )
        if path == "/version":  # MLflow's server's: the version of MLflow serving, as plain text
            return Response(200, [(b"content-type", b"text/plain; charset=utf-8")], _MLFLOW_VERSION)
        if path == "/metrics":
            from loopline.serving.metrics import render

            self.drain()
            text, content_type = render()
            return Response(200, [(b"content-type", content_type.encode())], text)
        if path == "/openapi.json":
            return Response(200, JSON, self.openapi)
        raise bad("NOT_FOUND", f"no route {path[:100]}; scoring is at /endpoints/NAME/score", 404)

    def _unrouted(self, route: str) -> RequestRejected:
        """A request for MLflow's ``/invocations`` (or ``/score``) of a server of one model: where each
        endpoint of this one answers it (the names ``/readyz`` lists too)."""
        served = ", ".join(sorted(self.routes)[:10]) or "none yet"
        return bad(
            "NOT_FOUND",
            f"no route /{route}: a loopline server serves several endpoints, each at "
            f"/endpoints/NAME/{route} (served here: {served})",
            404,
        )

    def _route(self, name: str) -> EndpointRoute:
        route = self.routes.get(name)
        if route is None:
            if not self.started:
                raise bad("NOT_READY", "the server is still loading its endpoints", 503)
            raise NotSeenYet(404, "UNKNOWN_ENDPOINT", f"no endpoint named '{name[:64]}' is served here")
        return route

    def _authorize(self, route: EndpointRoute, headers: Mapping[bytes, bytes]) -> bool:
        """Check the key; True when the caller is loopline itself (its requests are not sampled)."""
        given = headers.get(b"authorization", b"")
        known = route.accepted.get(given)
        if known is not None:
            return known
        scheme, _, key = given.partition(b" ")
        if scheme.lower() != b"bearer" or not key:
            if route.auth == "key":
                raise bad("UNAUTHORIZED", "send the endpoint's key as 'Authorization: Bearer KEY'", 401)
            return False
        digest = hashlib.sha256(key.strip()).hexdigest()
        system = route.system_hash is not None and hmac.compare_digest(digest, route.system_hash)
        if (
            route.auth == "key"
            and not system
            and not any(hmac.compare_digest(digest, k) for k in route.key_hashes)
        ):
            raise NotSeenYet(401, "UNAUTHORIZED", "the key is not valid for this endpoint")
        if len(route.accepted) >= _ACCEPTED_KEYS:
            route.accepted.clear()
        route.accepted[given] = system
        return system

    def _endpoint(
        self, method: str, parts: list[str], headers: Mapping[bytes, bytes], body: bytes
    ) -> Response | _Scoring:
        name = parts[1]
        if len(parts) == 5 and parts[2] == "deployments" and parts[4] == "ready" and method == "GET":
            route = self._route(name)
            state = route.states.get(parts[3])
            if state is None:
                message = f"endpoint '{name}' has no deployment '{parts[3][:64]}'"
                raise NotSeenYet(404, "UNKNOWN_DEPLOYMENT", message)
            body = orjson.dumps({"endpoint": name, "deployment": parts[3], "state": state})
            return Response(200 if state == "ready" else 503, JSON, body)
        route = self._route(name)
        system = self._authorize(route, headers)
        if len(parts) == 2 and method == "GET":
            return Response(200, JSON, orjson.dumps(self._describe(route)))
        # /endpoints/NAME/deployments/D/score: one deployment, as the deployment header names it
        named = parts[3] if len(parts) == 5 and parts[2] == "deployments" else None
        kind = parts[-1]
        if len(parts) != (3 if named is None else 5) or kind not in {"score", "invocations"}:
            raise bad("NOT_FOUND", f"no route /{'/'.join(parts)[:100]}; use /endpoints/{name}/score", 404)
        if method != "POST":
            return _not_allowed(f"{method} is not allowed; scoring takes POST", b"POST")
        if (encoding := headers.get(b"content-encoding")) is not None:  # inflated for callers with a key only
            body = decoded(encoding, body, self.max_body_bytes)
        return self._score(
            route, kind, headers, body, sample=route.sampled and not system, deployment=named, own=system
        )

    def _describe(self, route: EndpointRoute) -> dict[str, Any]:
        return {
            "endpoint": route.name,
            "deployments": {
                name: {"version": rt.version, "git_commit": rt.git_commit, "state": route.states.get(name)}
                for name, rt in route.deployments.items()
            },
            "traffic": {name: route.slots.count(name) for name in dict.fromkeys(route.slots)},
            "mirror": dict([route.mirror]) if route.mirror else {},
        }

    def _choose(
        self, route: EndpointRoute, headers: Mapping[bytes, bytes], named: str | None
    ) -> DeploymentRuntime:
        wanted = headers.get(DEPLOYMENT_HEADER)
        if wanted is None:
            wanted = headers.get(AZURE_DEPLOYMENT_HEADER)
        if named is None and wanted is not None:
            named = wanted.decode("latin-1")
        if named is not None:
            target = named
            runtime = route.deployments.get(target)
            if runtime is None:
                state = route.states.get(target)
                if state is None:
                    message = f"endpoint '{route.name}' has no deployment '{target[:64]}'"
                    raise NotSeenYet(404, "UNKNOWN_DEPLOYMENT", message)
                raise bad("DEPLOYMENT_NOT_READY", f"deployment '{target}' is not ready here ({state})", 503)
            return runtime
        slots = route.slots
        if not slots:
            raise NotSeenYet(503, "NO_TRAFFIC", f"endpoint '{route.name}' has no deployment taking traffic")
        if slots[0] == slots[-1]:  # slots are sorted by name: one deployment takes all the traffic
            return route.deployments[slots[0]]
        return route.deployments[slots[int(self._random.random() * len(slots))]]

    def _score(
        self,
        route: EndpointRoute,
        kind: str,
        headers: Mapping[bytes, bytes],
        body: bytes,
        *,
        sample: bool,
        deployment: str | None = None,
        own: bool = False,
    ) -> Response | _Scoring:
        """Check the input and start the model on it (on ``deployment`` where the path names one); a
        refused request is answered at once."""
        scoring = _Scoring(route, self._choose(route, headers, deployment), kind, sample, own)
        runtime = scoring.runtime
        content_type = headers.get(b"content-type", b"")
        model = runtime.model
        try:
            table = parse_body(
                kind,
                "application/json" if content_type == b"application/json" else content_type.decode("latin-1"),
                body,
                strict=route.strict,
            )
            if table.document is not None:
                return self._start_document(scoring, table.document, route.strict)
            scoring.data, scoring.rows = to_model_input(
                model.schema, table, matrix=model.batchable, strict=route.strict
            )
            if runtime.batcher is not None and isinstance(scoring.data, np.ndarray):
                scoring.future = runtime.batcher.submit(scoring.data)
            else:
                # A model declaring params gets them checked, and the schema's defaults for those not sent,
                # as MLflow's server gives them; one declaring none ignores params, as MLflow's does.
                with_params = model.predict_with_params if model.params_schema is not None else None
                params = checked_params(model.params_schema, table.params or {}) if with_params else {}
                try:
                    if with_params is not None:
                        scoring.answers = with_params(scoring.data, params)
                    else:
                        scoring.answers = model.predict(scoring.data)
                except Exception as exc:
                    raise self._model_failure(scoring, exc) from None
        except RequestRejected as exc:
            return self._complete(scoring, None, exc)
        return scoring

    def _start_document(self, scoring: _Scoring, document: dict[str, Any], strict: bool) -> _Scoring:
        """Start the model on a language model's request, on the threads beside the loop (serving/llm.py)."""
        model = scoring.runtime.model
        takes = model.predict_document is not None
        data, params = llm_input(
            model.schema, model.document_params, document, takes_documents=takes, strict=strict
        )
        scoring.data, scoring.params, scoring.rows, scoring.document = data, params, 1, True
        scoring.future = self._on_llm_threads(model.predict_document, data, params)
        return scoring

    def _on_llm_threads(self, function: Any, *args: Any) -> asyncio.Future[Any]:
        if self._llm_pool is None:
            self._llm_pool = llm_threads()
        return asyncio.get_running_loop().run_in_executor(self._llm_pool, function, *args)

    def _timed_out(self, scoring: _Scoring) -> RequestRejected:
        log.warning(
            "deployment %s/%s: a language model's request took over %g s",
            scoring.runtime.endpoint,
            scoring.runtime.name,
            self.model_timeout,
        )
        return RequestRejected(
            504,
            "MODEL_TIMEOUT",
            f"deployment '{scoring.runtime.name}' did not answer within {self.model_timeout:g} s "
            "(serving.model_timeout_seconds in loopline.yaml)",
        )

    def close(self) -> None:
        """Let go of the threads of language models' requests (those under way end on their own)."""
        if self._llm_pool is not None:
            self._llm_pool.shutdown(wait=False, cancel_futures=True)

    def _complete(self, scoring: _Scoring, answers: Any, failure: RequestRejected | None = None) -> Response:
        """The answer to a scoring request, counted and logged."""
        runtime = scoring.runtime
        body = b""
        if failure is None:
            try:
                body = answer_body(answers, scoring.kind == "invocations" and not scoring.document)
            except TypeError as exc:  # orjson's errors are TypeErrors too
                failure = RequestRejected(
                    500,
                    "MODEL_ERROR",
                    f"deployment '{runtime.name}' answered a value JSON cannot hold ({exc}); "
                    "answer numbers, text, booleans, lists or tables of them",
                )
        if failure is None:
            if scoring.route.mirror is not None:
                self._mirror(scoring.route, scoring)
            sampled = scoring.sample and not scoring.document  # the sample is of tables' rows
            if sampled and self.sampler is not None and self.sampler.wants(scoring.rows):
                self.sampler.take(
                    scoring.route.name, runtime.name, runtime.model.schema.names, scoring.data, answers
                )
            status, response = 200, Response(200, runtime.headers, body)
        else:
            status = failure.http_status
            response = error(failure, runtime.headers)
        tally = runtime.own_tally if scoring.own else runtime.tally
        self._account(runtime, tally, status, scoring.rows, time.perf_counter() - scoring.started)
        return response

    def _model_failure(self, scoring: _Scoring, exc: Exception) -> RequestRejected:
        """What to answer when the model raised: where in the input and why; the server logs the cause."""
        runtime = scoring.runtime
        model = runtime.model
        if scoring.document:
            return llm_failure(runtime.name, exc, log.warning)
        if (offset := offset_refusal(model.schema, scoring.data, exc)) is not None:
            return RequestRejected(400, "WRONG_TYPE", offset)
        if (unseen := unseen_category(model.categories, scoring.data)) is not None:
            return RequestRejected(400, "UNKNOWN_CATEGORY", unseen)
        described = describe_failure(model.schema, model.predict, scoring.data, exc, model.example_data)
        if (
            type(exc).__name__ == "MlflowException"
            and getattr(exc, "error_code", "") == "INVALID_PARAMETER_VALUE"
        ):
            # MLflow's own checks (of params, or of a tensor signature) refused the input: the client's
            # mistake, not the model's.
            return RequestRejected(400, "SCHEMA_MISMATCH", f"the model does not accept {described}")
        log.warning(
            "deployment %s/%s: the model failed on %s",
            runtime.endpoint,
            runtime.name,
            described,
            exc_info=exc,
        )
        return RequestRejected(500, "MODEL_ERROR", f"deployment '{runtime.name}' failed on {described}")

    def _mirror(self, route: EndpointRoute, scoring: _Scoring) -> None:
        """Copy the request to the mirror deployment after answering; its result is only counted."""
        data = scoring.data
        if route.mirror is None or self._random.random() * 100 >= route.mirror[1]:
            return
        runtime = route.deployments.get(route.mirror[0])
        if runtime is None:
            return
        counter = self.metrics.mirrored.labels(route.name, runtime.name, "ok") if self.metrics else None
        failed = self.metrics.mirrored.labels(route.name, runtime.name, "error") if self.metrics else None

        def count(ok: bool) -> None:
            if counter is not None and failed is not None:
                (counter if ok else failed).inc()

        if runtime.batcher is not None and isinstance(data, np.ndarray):
            runtime.batcher.submit(data).add_done_callback(lambda f: count(f.exception() is None))
            return
        if scoring.document:  # on the threads of language models' requests, as the request itself
            document = runtime.model.predict_document
            if document is None:
                count(False)
                return
            self._on_llm_threads(document, data, scoring.params).add_done_callback(
                lambda f: count(f.exception() is None)
            )
            return

        def later() -> None:
            try:
                runtime.model.predict(data)
            except Exception:  # the mirror's failure is discarded, like its answer
                count(False)
                return
            count(True)

        asyncio.get_running_loop().call_soon(later)

    def _account(
        self, runtime: DeploymentRuntime, tally: Tally, status: int, rows: int, seconds: float
    ) -> None:
        if not tally.statuses:
            self._tallies.append(tally)
        tally.statuses.append(status)
        tally.latencies.append(seconds)
        tally.rows += rows
        self._requests += 1
        if self.access_log.enabled:
            template = runtime.log_template
            if template is None:
                template = runtime.log_template = self._log_template(runtime)
            self.access_log.lines.append(
                template % (time.time(), self._requests, status, rows, seconds * 1000)
            )

    def _log_template(self, runtime: DeploymentRuntime) -> bytes:
        """The request log line of ``runtime`` with %-placeholders for what changes per request."""
        fixed = orjson.dumps(
            {
                "endpoint": runtime.endpoint,
                "deployment": runtime.name,
                "model_version": runtime.version,
                "git_commit": runtime.git_commit,
            }
        )[1:-1].replace(b"%", b"%%")
        prefix = self._prefix.encode().replace(b"%", b"%%")
        return (
            b'{"ts":%.3f,"request_id":"'
            + prefix
            + b'%d",'
            + fixed
            + b',"status":%d,"rows":%d,"latency_ms":%.3f}'
        )

    def drain(self) -> None:
        """Move the requests counted since the last drain into the metrics and statistics (on the loop)."""
        tallies, self._tallies = self._tallies, []
        drain(tallies, self.metrics, self.stats)
