"""loopline's own calls to served endpoints, and a temporary server when none is running.

The outer loops validate, smoke-test and watch deployments through the real scoring path. When the
workspace's server answers (at its ``endpoints_url``, or where a ``loopline serve --port`` of this machine
recorded that it listens), they use it; otherwise they start a `loopline serve` of their own on a free
port for the length of the command, and say so.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

import orjson

from loopline import children
from loopline.domain import llm_request
from loopline.endpoints import keys as keymod
from loopline.endpoints import service
from loopline.endpoints.rows import check_name, served_marks
from loopline.errors import Refused, StoreUnavailable, UsageError
from loopline.instance import Instance
from loopline.net import free_port, http_client, http_request
from loopline.state.locks import process_alive

__all__ = [
    "EXAMPLE",
    "EndpointClient",
    "ExampleRequest",
    "InvokeResult",
    "Live",
    "answer_rows",
    "example_request",
    "input_data",
    "invoke",
    "lagging",
    "listening_at",
    "live_server",
    "predict_rows",
    "rows_request",
    "server_url",
]


EXAMPLE = "the model's input example"


@dataclass(frozen=True)
class ExampleRequest:
    """The scoring request that answers a model's input example, and how many rows it holds."""

    route: str
    payload: dict[str, Any]
    rows: int
    source: str = EXAMPLE  # where its rows come from
    llm: bool = False  # a language model's request (domain.LLM_KEYS): one answer, the model's own

    def answers(self, body: Any) -> list[Any] | None:
        """The answers in an endpoint's reply to this request (``/invocations`` wraps them as MLflow's
        server does: ``{"predictions": [...]}``, but for a language model's request); None for a reply that
        holds no list of answers."""
        if self.llm:
            return None if body is None else [body]
        if self.route == "invocations" and isinstance(body, dict):
            body = body.get("predictions")
        return answer_rows(body)


def answer_rows(body: Any) -> list[Any] | None:
    """The answers in a reply's body, one a row: a list as it is; named outputs (a Python model's dict of a
    list each, as an endpoint writes them) as a row of each output's value; None for anything else."""
    if isinstance(body, list):
        return body
    if isinstance(body, dict) and body and all(isinstance(values, list) for values in body.values()):
        counts = {len(values) for values in body.values()}
        if len(counts) == 1:
            return [{name: values[i] for name, values in body.items()} for i in range(counts.pop())]
    return None


def example_request(folder: Path) -> ExampleRequest | None:
    """The request of the model in ``folder`` for its input example: MLflow's own
    ``serving_input_example.json`` (the body its scoring server takes: ``dataframe_split``, ``inputs`` of
    a tensor model, with ``params``), else ``input_example.json`` as Azure ML's ``input_data`` (a table, a
    list of rows, named tensors); None for a model logged without an example."""
    for name, route in (("serving_input_example.json", "invocations"), ("input_example.json", "score")):
        path = folder / name
        if not path.is_file():
            continue
        try:
            document = _example_document(path)
        except (OSError, ValueError):
            continue
        if route == "score":
            return ExampleRequest(route, {"input_data": document}, _rows(document))
        if llm_request(document):
            return ExampleRequest(route, document, 1, llm=True)
        if isinstance(document, dict):
            given = next((document[k] for k in _MLFLOW_KEYS if k in document), None)
            return ExampleRequest(route, document, _rows(given))
    return None


def _example_document(path: Path) -> Any:
    """An input example file as MLflow wrote it: a missing value of a row as ``NaN``, which JSON does not
    have (the request sends it as null, which a model reads as missing again)."""
    data = path.read_bytes()
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError:
        return json.loads(data)  # Python's reads NaN, and orjson writes it as null


def rows_request(features: Any, source: str) -> ExampleRequest:
    """A request of the first rows of the table ``features`` (``source`` says whose), as Azure ML's
    ``input_data``: to smoke-test a model logged without an input example."""
    first = features.head(SMOKE_ROWS)
    return ExampleRequest("score", {"input_data": input_data(first)}, len(first), source)


def input_data(frame: Any) -> dict[str, Any]:
    """The table ``frame`` as Azure ML's ``input_data`` (columns and rows) holds it in JSON: nulls as null,
    dates and times as ISO 8601 text (a Parquet file's timestamps)."""
    import pandas as pd

    dates = [i for i, kind in enumerate(frame.dtypes) if kind.kind == "M"]
    rows = frame.astype(object).where(frame.notna(), None)
    for position in dates:  # as text, and kept as objects: pandas would read a list of texts as strings
        texts = [None if v is None else v.isoformat() for v in rows.iloc[:, position]]
        rows.isetitem(position, pd.Series(texts, index=rows.index, dtype=object))
    return {"columns": [str(c) for c in frame.columns], "data": rows.to_numpy().tolist()}


SMOKE_ROWS = 5
_MLFLOW_KEYS = ("dataframe_split", "dataframe_records", "instances", "inputs")


def _rows(document: Any) -> int:
    """Rows of a table (``{"columns", "data"}``), a list of rows, or named tensors (their first one's)."""
    if isinstance(document, dict):
        if "data" in document:
            return _rows(document["data"])
        return _rows(next(iter(document.values()), None)) if document else 0
    return len(document) if isinstance(document, list) else 1


@dataclass(frozen=True)
class InvokeResult:
    """One answer of an endpoint."""

    status: int
    deployment: str | None
    model_version: str | None
    git_commit: str | None
    body: Any
    seconds: float

    @property
    def ok(self) -> bool:
        """True for a 2xx answer."""
        return 200 <= self.status < 300

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready mapping."""
        return {
            "status": self.status,
            "deployment": self.deployment,
            "model_version": self.model_version,
            "git_commit": self.git_commit,
            "body": self.body,
            "seconds": round(self.seconds, 4),
        }


class EndpointClient:
    """Calls a server's endpoints with loopline's own key."""

    def __init__(self, instance: Instance, workspace: str, base_url: str, timeout: float = 30) -> None:
        self.instance = instance
        self.workspace = workspace
        self.base_url = base_url.rstrip("/")
        self._secret = service.system_secret(instance)
        self._http = http_client(base_url=self.base_url, timeout=timeout)

    def close(self) -> None:
        """Close the connections."""
        self._http.close()

    def key(self, endpoint: str) -> str:
        """loopline's own key for ``endpoint`` (its requests are not sampled by monitoring)."""
        return keymod.system_key(self._secret, self.workspace, endpoint)

    def _authorized(self, endpoint: str) -> dict[str, str]:
        """The header that calls ``endpoint`` with loopline's own key."""
        return {"authorization": f"Bearer {self.key(endpoint)}"}

    def deployment_url(self, endpoint: str, deployment: str) -> str:
        """Where one deployment of ``endpoint`` answers MLflow-style requests, whatever the traffic."""
        return f"{self.base_url}/endpoints/{quote(endpoint)}/deployments/{quote(deployment)}/invocations"

    def score(
        self,
        endpoint: str,
        payload: dict[str, Any] | bytes,
        *,
        deployment: str | None = None,
        route: str = "score",
        content_type: str = "application/json",
    ) -> InvokeResult:
        """POST one scoring request; a server that cannot be reached is a StoreUnavailable."""
        import httpx

        if route not in {"invocations", "score"}:
            raise UsageError(f"route '{route}' is not one of invocations, score")
        headers = {**self._authorized(endpoint), "content-type": content_type}
        if deployment:
            headers["loopline-deployment"] = deployment
        body = (
            payload
            if isinstance(payload, bytes)
            else orjson.dumps(payload, option=orjson.OPT_SERIALIZE_NUMPY)
        )
        started = time.perf_counter()
        try:
            response = self._http.post(f"/endpoints/{endpoint}/{route}", content=body, headers=headers)
        except httpx.HTTPError as exc:
            raise StoreUnavailable(
                what=f"the server of endpoint '{endpoint}'", where=self.base_url, reason=type(exc).__name__
            ) from None
        seconds = time.perf_counter() - started
        try:
            answer: Any = response.json()
        except ValueError:
            answer = response.text[:1000]
        return InvokeResult(
            response.status_code,
            response.headers.get("loopline-deployment"),
            response.headers.get("loopline-model-version"),
            response.headers.get("loopline-git-commit"),
            answer,
            seconds,
        )

    def state(self, endpoint: str, deployment: str) -> str:
        """A deployment's state in this server: ready, loading, failed: ..., or absent."""
        import httpx

        try:
            answer = self._http.get(f"/endpoints/{endpoint}/deployments/{deployment}/ready")
        except httpx.HTTPError:
            return "unreachable"
        if answer.status_code == 404:
            return "absent"
        return str(answer.json().get("state", "unknown"))

    def follows(self, endpoint: str, traffic: dict[str, int], timeout: float = 30) -> bool:
        """Wait until the server routes ``endpoint``'s requests as ``traffic`` splits them (it follows
        loopline's database within its poll, once the deployments taking traffic are loaded); False
        where it did not within ``timeout`` seconds."""
        import httpx

        wanted = {name: share for name, share in traffic.items() if share}
        headers = self._authorized(endpoint)
        deadline = time.monotonic() + timeout
        while True:
            try:
                answer = self._http.get(f"/endpoints/{endpoint}", headers=headers)
                if answer.status_code == 200 and answer.json().get("traffic") == wanted:
                    return True
            except (httpx.HTTPError, ValueError):
                pass
            if time.monotonic() > deadline:
                return False
            time.sleep(0.05)

    def wait_ready(self, endpoint: str, deployment: str, timeout: float = 120) -> None:
        """Wait until the server has loaded the deployment and answered its input example."""
        deadline = time.monotonic() + timeout
        state = "absent"
        while time.monotonic() < deadline:
            state = self.state(endpoint, deployment)
            if state == "ready":
                return
            if state.startswith("failed"):
                break
            time.sleep(0.1)
        raise Refused(
            f"deployment '{deployment}' of endpoint '{endpoint}' is not ready at {self.base_url} "
            f"({state}); it did not load and answer its input example"
        )


CHUNK_ROWS = 1000  # rows a request of ``predict_rows``
_MISSING_COLUMN_HINT = (
    "; the held-out rows (validation.data) must hold every column the model takes, as the training "
    "makes them before it fits: upload rows that do (loopline data upload NAME PATH), or make those "
    "columns in the model"
)


def predict_rows(client: EndpointClient, endpoint: str, deployment: str, features: Any) -> list[Any]:
    """A deployment's answers to the table ``features`` through its endpoint, one a row (named outputs as a
    row of each output's value), in requests of ``CHUNK_ROWS``; Refused where it fails or answers another
    number of rows than it was sent (which would be measured against the wrong rows' labels)."""
    columns = [str(c) for c in features.columns]
    answers: list[Any] = []
    for start in range(0, len(features), CHUNK_ROWS):
        chunk = features.iloc[start : start + CHUNK_ROWS]
        result = client.score(endpoint, {"input_data": input_data(chunk)}, deployment=deployment)
        if not result.ok:
            body = result.body if isinstance(result.body, dict) else {"message": result.body}
            hint = _MISSING_COLUMN_HINT if body.get("error_code") == "MISSING_COLUMN" else ""
            raise Refused(
                f"deployment '{deployment}' answered {result.status} on the held-out data: "
                f"{body.get('message')}{hint}"
            )
        rows = answer_rows(result.body)
        if rows is None:  # one answer (a number, say), right only for one row
            rows = [result.body]
        if len(rows) != len(chunk):
            raise Refused(
                f"deployment '{deployment}' answered {len(rows)} prediction{'s' * (len(rows) != 1)} for "
                f"{len(chunk)} held-out rows "
                f"(columns: {', '.join(columns[:5])}); to be validated, a model answers one prediction a row"
            )
        answers.extend(rows)
    return answers


def lagging(url: str) -> str:
    """What to say of a server that has not taken a traffic change: it follows loopline's database."""
    return (
        f"warning: the server at {url} does not route the new split yet; it takes it from loopline's "
        "database (`loopline serve` logs say if it cannot reach it)"
    )


def invoke(
    instance: Instance,
    name: str,
    payload: dict[str, Any] | bytes,
    *,
    deployment: str | None = None,
    route: str = "invocations",
    content_type: str = "application/json",
    timeout: float = 30,
    workspace: str | None = None,
    wait: float = 0,
) -> InvokeResult:
    """POST ``payload`` to the endpoint at its workspace's configured URL; with ``wait``, give a server
    that is not up yet (or still loading its endpoints) that many seconds to answer."""
    _check_invocation(deployment, content_type, timeout, wait)
    endpoint = service.get_endpoint(instance, name, workspace)
    client = EndpointClient(instance, endpoint.workspace, server_url(instance, endpoint.workspace), timeout)
    deadline = time.monotonic() + wait
    tried = {client.base_url}
    try:
        while True:
            try:
                result = client.score(
                    name, payload, deployment=deployment, route=route, content_type=content_type
                )
            except StoreUnavailable:
                if (url := server_url(instance, endpoint.workspace)) not in tried:
                    client.close()  # a server started meanwhile elsewhere than the URL tried
                    client = EndpointClient(instance, endpoint.workspace, url, timeout)
                    tried.add(url)
                    continue
                if time.monotonic() >= deadline:
                    raise StoreUnavailable(
                        what=f"the server of endpoint '{name}'",
                        where=endpoint.url,
                        reason="nothing answers; start it with "
                        f"`loopline serve --workspace {endpoint.workspace}` (a server of another machine or "
                        f"container: set workspaces.{endpoint.workspace}.endpoints_url to it)",
                    ) from None
            else:
                if result.status in (401, 404) and _foreign(instance, endpoint.workspace, client.base_url):
                    raise StoreUnavailable(
                        what=f"the server of endpoint '{name}'",
                        where=client.base_url,
                        reason=f"it serves another project's endpoints, none of {endpoint.workspace}'s: "
                        f"stop it, or give {endpoint.workspace} another port: set "
                        f"workspaces.{endpoint.workspace}.endpoints_url to http://127.0.0.1:PORT in "
                        f"loopline.yaml (`loopline serve --workspace {endpoint.workspace}` listens there)",
                    )
                if not _starting(result) or time.monotonic() >= deadline:
                    return result
            time.sleep(0.2)
    finally:
        client.close()


MAX_INVOKE_SECONDS = 600.0
"""The longest ``timeout`` or ``wait`` of one invocation: a caller of the control plane holds one of its
threads for as long as both."""


def _check_invocation(deployment: str | None, content_type: str, timeout: float, wait: float) -> None:
    """Refuse what cannot make a request (a header no HTTP request holds) or would wait without end."""
    if not 0 < timeout <= MAX_INVOKE_SECONDS:  # NaN too
        raise UsageError(
            f"timeout is {timeout:g} seconds; give more than 0 and at most {MAX_INVOKE_SECONDS:g}"
        )
    if not 0 <= wait <= MAX_INVOKE_SECONDS:
        raise UsageError(f"wait is {wait:g} seconds; give 0 to {MAX_INVOKE_SECONDS:g}")
    if deployment:
        check_name("deployment", deployment)
    if not (content_type.isascii() and content_type.isprintable() and 0 < len(content_type) <= 200):
        raise UsageError(
            "content type must be a media type such as application/json or text/csv (printable ASCII, "
            "at most 200 characters)"
        )


def _starting(result: InvokeResult) -> bool:
    """True for the answer of a server that is still loading what it serves."""
    code = result.body.get("error_code") if isinstance(result.body, dict) else None
    return result.status == 503 and code in {"NOT_READY", "DEPLOYMENT_NOT_READY", "NO_TRAFFIC"}


@dataclass(frozen=True)
class Live:
    """A server answering for a workspace, and whether this command started it (and why)."""

    client: EndpointClient
    temporary: bool
    why: str = ""  # for a temporary server: what answers, or not, at the workspace's address


def _serves(url: str) -> list[str] | None:
    """The marks of the endpoints the server at ``url`` serves (``keys.served_mark``): None when nothing
    answers there, empty for a server of nothing, ``["?"]`` for a server that is not loopline's."""
    import httpx

    try:
        answer = http_request("GET", f"{url}/healthz", timeout=1)
    except httpx.HTTPError:
        return None
    if answer.status_code != 200:
        return None
    try:
        marks = answer.json().get("serves")
    except (ValueError, AttributeError):
        marks = None
    return [str(m) for m in marks] if isinstance(marks, list) else ["?"]


def _answers(url: str) -> bool:
    return _serves(url) is not None


def _ours(instance: Instance, workspace: str, marks: list[str]) -> bool:
    """Whether a server saying ``marks`` serves ``workspace`` of this instance: it serves one of its
    endpoints, or nothing yet (a new endpoint reaches a server within its poll)."""
    return not marks or bool(set(marks) & served_marks(instance, workspace))


def server_url(instance: Instance, workspace: str) -> str:
    """Where the workspace's server answers: its ``endpoints_url``, or, where nothing of the workspace's
    answers there, the newest ``loopline serve`` of this machine that recorded another address
    (``--port``) and answers as the workspace's; else the ``endpoints_url``."""
    return _located(instance, workspace)[0]


def _located(instance: Instance, workspace: str) -> tuple[str, list[str] | None]:
    """:func:`server_url` and what its server answers there (``_serves``), asking each address once."""
    url = instance.settings.endpoints_url(workspace)
    marks = _serves(url)
    if marks is not None and _ours(instance, workspace, marks):
        return url, marks
    for other in _recorded(instance, workspace):
        if other == url:
            continue
        found = _serves(other)
        if found is not None and _ours(instance, workspace, found):
            return other, found
    return url, marks


def _servers_dir(instance: Instance) -> Path:
    return instance.settings.state_dir / "servers"


@contextlib.contextmanager
def listening_at(instance: Instance, workspace: str, url: str) -> Iterator[None]:
    """Record, for the length of the block, that this process serves ``workspace`` at ``url``, so that
    loopline's commands on this machine call it there whatever the ``endpoints_url``."""
    record = _servers_dir(instance) / f"{workspace}-{os.getpid()}.json"
    try:
        record.parent.mkdir(parents=True, exist_ok=True)
        record.write_bytes(orjson.dumps({"workspace": workspace, "url": url, "pid": os.getpid()}))
    except OSError as exc:  # a read-only folder (a container's): serve all the same, at endpoints_url only
        logging.getLogger("loopline.serve").warning("cannot record where this server listens: %s", exc)
    try:
        yield
    finally:
        record.unlink(missing_ok=True)


def _recorded(instance: Instance, workspace: str) -> list[str]:
    """The URLs recorded by this machine's running servers of ``workspace``, newest first; the records
    of servers that died without removing theirs are removed."""
    found: list[tuple[float, str]] = []
    for path in _servers_dir(instance).glob("*.json"):
        try:
            record = orjson.loads(path.read_bytes())
            pid, url, served = int(record["pid"]), str(record["url"]), record["workspace"]
            when = path.stat().st_mtime
        except (OSError, ValueError, KeyError, TypeError):
            continue
        if not process_alive(pid):
            path.unlink(missing_ok=True)
        elif served == workspace:
            found.append((when, url))
    return [url for _, url in sorted(found, reverse=True)]


def _foreign(instance: Instance, workspace: str, url: str) -> bool:
    """Whether the server at ``url`` answers, and serves another project's endpoints, not ``workspace``'s."""
    marks = _serves(url)
    return marks is not None and not _ours(instance, workspace, marks)


def start_server(
    root: Path, workspace: str, port: int, log: Path, timeout: float = 120
) -> subprocess.Popen[bytes]:
    """``loopline serve`` for ``workspace`` on ``port`` in a child process writing to ``log``, returned once
    it answers. It gets SIGTERM when its starter dies, so a killed command leaves no server behind."""
    argv = [sys.executable, "-m", "loopline", "serve", "-C", str(root), "-w", workspace, "--port", str(port)]
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("wb") as output:
        process = children.start(
            argv, parent_death_signal=signal.SIGTERM, stdout=output, stderr=subprocess.STDOUT
        )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + timeout
    while not _answers(url):
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            process.wait()
            raise StoreUnavailable(
                what=f"a server for {workspace}", where=url, reason=f"it did not start; see {log}"
            )
        time.sleep(0.1)
    return process


@contextlib.contextmanager
def live_server(instance: Instance, workspace: str, timeout: float = 120) -> Iterator[Live]:
    """The workspace's running server, or a temporary one for the length of the block: where nothing
    answers at the workspace's address, or a server that serves none of its endpoints (another project's,
    say, on the same port) while it serves some."""
    url, marks = _located(instance, workspace)
    if marks is not None and _ours(instance, workspace, marks):
        client = EndpointClient(instance, workspace, url)
        try:
            yield Live(client, temporary=False)
        finally:
            client.close()
        return
    why = (
        f"no server answers for {workspace} at {url}"
        if marks is None
        else f"the server at {url} is not {workspace}'s (another project's?): it serves none of its endpoints"
    )
    port = free_port()
    process = start_server(
        instance.root, workspace, port, instance.logs_dir / f"serve-{workspace}-{port}.log", timeout
    )
    temporary = f"http://127.0.0.1:{port}"
    try:
        client = EndpointClient(instance, workspace, temporary)
        try:
            yield Live(client, temporary=True, why=why)
        finally:
            client.close()
    finally:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
