"""Real `loopline serve` processes for tests, on free ports of 127.0.0.1."""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import httpx

CLIENTS = 32


@dataclass
class Load:
    """32 clients scoring in a background thread, spread evenly over ``urls`` (replicas of one endpoint).

    Each answer is recorded as (time it came back, status, answering deployment, index of the URL).
    ``sending`` counts the requests on their way with each key (``key[0]`` is read as each one starts).
    """

    urls: list[str]
    body: bytes
    key: list[str]
    answers: list[tuple[float, int, str, int]] = field(default_factory=list)
    stop: threading.Event = field(default_factory=threading.Event)
    sending: Counter[str] = field(default_factory=Counter)

    async def _client(self, client: httpx.AsyncClient, index: int) -> None:
        url = self.urls[index]
        while not self.stop.is_set():
            key = self.key[0]
            self.sending[key] += 1
            try:
                answer = await client.post(
                    url,
                    content=self.body,
                    headers={"content-type": "application/json", "authorization": f"Bearer {key}"},
                )
                self.answers.append(
                    (
                        time.monotonic(),
                        answer.status_code,
                        answer.headers.get("loopline-deployment", ""),
                        index,
                    )
                )
            except httpx.HTTPError as exc:
                self.answers.append((time.monotonic(), 0, type(exc).__name__, index))
            finally:
                self.sending[key] -= 1

    async def _main(self) -> None:
        limits = httpx.Limits(max_connections=CLIENTS, max_keepalive_connections=CLIENTS)
        async with httpx.AsyncClient(limits=limits, timeout=10) as client:
            await asyncio.gather(*[self._client(client, i % len(self.urls)) for i in range(CLIENTS)])

    def run(self) -> threading.Thread:
        """Start the clients; set ``stop`` and join the thread to end them."""
        thread = threading.Thread(target=lambda: asyncio.run(self._main()), daemon=True)
        thread.start()
        return thread

    def share(self, since: float, until: float, deployment: str) -> tuple[float, int]:
        """The share (%) of successful answers in [since, until) that ``deployment`` gave, and their count."""
        window = [a for a in self.answers if since <= a[0] < until and a[1] == 200]
        return (100 * sum(1 for a in window if a[2] == deployment) / max(1, len(window)), len(window))


def free_port() -> int:
    """A port nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Server:
    """A `loopline serve` child process; its stdout (the request log) goes to a file."""

    def __init__(
        self,
        project: Path,
        workspace: str = "dev",
        *,
        workers: int = 1,
        port: int | None = None,
        env: dict[str, str] | None = None,
    ) -> None:
        self.project = project
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = project.parent / f"serve-{self.port}.log"
        self.errors = project.parent / f"serve-{self.port}.err"
        script = Path(sys.executable).with_name("loopline")
        argv = [
            str(script),
            "serve",
            "-C",
            str(project),
            "-w",
            workspace,
            "--port",
            str(self.port),
            "--workers",
            str(workers),
        ]
        with self.log.open("wb") as out, self.errors.open("wb") as err:
            self.process = subprocess.Popen(argv, stdout=out, stderr=err, env={**os.environ, **(env or {})})

    def invoke(self, endpoint: str, key: str, body: dict[str, Any]) -> httpx.Response:
        """The answer of ``endpoint`` (MLflow's route) to the JSON ``body``, sent with ``key``."""
        return httpx.post(
            f"{self.url}/endpoints/{endpoint}/invocations",
            json=body,
            headers={"authorization": f"Bearer {key}"},
            timeout=30,
        )

    def wait_ready(self, timeout: float = 90) -> None:
        """Wait until /readyz says every deployment with traffic is loaded."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(
                    f"server exited with {self.process.returncode}: {self.errors.read_text()[-2000:]}"
                )
            try:
                if httpx.get(f"{self.url}/readyz", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise AssertionError(f"server not ready after {timeout} s: {self.errors.read_text()[-2000:]}")

    def wait_for(self, endpoint: str, deployment: str, timeout: float = 60) -> None:
        """Wait until a deployment is loaded and answering in this server."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                answer = httpx.get(
                    f"{self.url}/endpoints/{endpoint}/deployments/{deployment}/ready", timeout=2
                )
                if answer.status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.05)
        raise AssertionError(f"{endpoint}/{deployment} not ready after {timeout} s")

    def stop(self, sig: int = signal.SIGTERM) -> int:
        """Stop the server; return its exit code."""
        if self.process.poll() is None:
            self.process.send_signal(sig)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        return self.process.returncode

    def __enter__(self) -> Server:
        self.wait_ready()
        return self

    def __exit__(self, *_exc: Any) -> None:
        self.stop()


class _Process:
    """A `loopline COMMAND -C PROJECT --port P` child serving HTTP on a free port; its output goes to a log.

    It runs without LOOPLINE_URL, as the server side of a team does; it is up once ``ready`` answers 200.
    """

    command = ""
    ready = "/"
    environment: ClassVar[dict[str, str]] = {}
    group: ClassVar[bool] = False  # a process group of its own, stopped whole (a server of worker children)

    def __init__(self, project: Path, *, env: dict[str, str] | None = None) -> None:
        self.project = project
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = project.parent / f"{self.command}-{self.port}.log"
        argv = self.argv()
        environment = {**os.environ, **self.environment, **(env or {})}
        environment.pop("LOOPLINE_URL", None)
        with self.log.open("wb") as out:
            self.process = subprocess.Popen(
                argv, stdout=out, stderr=subprocess.STDOUT, env=environment, start_new_session=self.group
            )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(f"loopline {self.command} exited: {self.log.read_text()[-2000:]}")
            try:
                if httpx.get(f"{self.url}{self.ready}", timeout=5).status_code == 200:
                    return
            except httpx.HTTPError:
                time.sleep(0.1)
        raise AssertionError(f"loopline {self.command} not up after 60 s: {self.log.read_text()[-2000:]}")

    def argv(self) -> list[str]:
        """The command line of the process."""
        script = Path(sys.executable).with_name("loopline")
        return [str(script), self.command, "-C", str(self.project), "--port", str(self.port)]

    def stop(self, sig: int = signal.SIGTERM) -> int:
        """Stop the process (killed when it does not stop within 20 s), its group's too; its exit code."""
        if self.process.poll() is None:
            self.process.send_signal(sig)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        if self.group:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGKILL)
        return self.process.returncode


class ControlPlane(_Process):
    """A `loopline server` child process (the control plane)."""

    command = "server"
    ready = "/healthz"

    def post(self, route: str, body: Any = None, token: str | None = None, **kwargs: Any) -> httpx.Response:
        """POST a JSON body (or raw ``content=``) to ``/v1/<route>`` with a bearer token."""
        headers = {**kwargs.pop("headers", {}), **({"Authorization": f"Bearer {token}"} if token else {})}
        if "content" not in kwargs:
            kwargs["json"] = body if body is not None else {}
        return httpx.post(f"{self.url}/v1/{route}", headers=headers, timeout=120, **kwargs)

    def __enter__(self) -> ControlPlane:
        return self

    def __exit__(self, *_exc: Any) -> None:
        self.stop()


class Dashboard(_Process):
    """A `loopline ui` child process (the dashboard for the person at this machine)."""

    command = "ui"
    ready = "/ui/"


class MlflowTrackingServer(_Process):
    """A stock `mlflow server` (tracking and registry on a SQLite file in ``project``'s parent folder, run
    artifacts proxied to a folder beside it, ``artifacts``), as a team runs one already."""

    command = "mlflow-server"
    ready = "/health"
    # Without the job runner (seven queue consumers for MLflow's GenAI jobs, which tracking does not use).
    environment: ClassVar[dict[str, str]] = {"MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}

    def argv(self) -> list[str]:
        """`mlflow server` on this port, one worker."""
        store = self.project.parent / f"mlflow-server-{self.port}"
        store.mkdir()
        return [
            str(Path(sys.executable).with_name("mlflow")),
            "server",
            "--backend-store-uri",
            f"sqlite:///{store / 'mlflow.db'}",
            "--artifacts-destination",
            str(self.artifacts),
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--workers",
            "1",
        ]

    @property
    def artifacts(self) -> Path:
        """Where the server keeps the run artifacts its clients send it."""
        return self.project.parent / f"mlflow-server-{self.port}" / "artifacts"


# MLflow 2 over the test environment's packages (scripts/mlflow2, run by scripts/test).
MLFLOW_2 = Path(__file__).resolve().parents[1] / ".tools" / "mlflow2" / "bin" / "python"


class Mlflow2TrackingServer(MlflowTrackingServer):
    """A stock `mlflow server` of MLflow 2.22, as teams still run them."""

    command = "mlflow2-server"
    group = True  # MLflow 2's `mlflow server` starts gunicorn, whose workers outlive it

    def argv(self) -> list[str]:
        """`mlflow server` of MLflow 2, on this port."""
        if not MLFLOW_2.is_file():
            raise AssertionError("no MLflow 2 for the tests: run ./scripts/mlflow2")
        return [str(MLFLOW_2), "-m", "mlflow", *super().argv()[1:]]


def _postgres_bin() -> Path:
    """The folder of PostgreSQL's server programs (initdb, pg_ctl), installed by scripts/services."""
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"), reverse=True)
    if not found:
        raise AssertionError("PostgreSQL's server is not installed: run ./scripts/services")
    return found[0].parent


class Postgres:
    """A throwaway PostgreSQL cluster in a temporary folder, on a free port of 127.0.0.1.

    As root, the server runs as the ``postgres`` user (PostgreSQL refuses to run as root).
    """

    def __init__(self) -> None:
        import pwd
        import tempfile

        # Not under pytest's folder: its parents are private to root, and the server runs as postgres.
        workdir = self.workdir = Path(tempfile.mkdtemp(prefix="loopline-pg-"))
        self.bin = _postgres_bin()
        self.port = free_port()
        self.data = workdir / "data"
        self.socket_dir = workdir / "socket"
        self.socket_dir.mkdir()
        self.log = workdir / "postgres.log"
        self._as: list[str] = []
        if os.geteuid() == 0:
            user = pwd.getpwnam("postgres")
            for path in (workdir, self.socket_dir):
                os.chown(path, user.pw_uid, user.pw_gid)
            self._as = ["runuser", "-u", "postgres", "--"]
        self._run(
            str(self.bin / "initdb"),
            "-D",
            str(self.data),
            "-A",
            "trust",
            "-U",
            "postgres",
            "--no-sync",
            "-E",
            "UTF8",
        )
        options = (
            f"-p {self.port} -k {self.socket_dir} -c listen_addresses=127.0.0.1 -c fsync=off "
            "-c synchronous_commit=off -c full_page_writes=off -c max_connections=300"
        )
        self._run(
            str(self.bin / "pg_ctl"), "-D", str(self.data), "-l", str(self.log), "-o", options, "-w", "start"
        )
        self.base = f"postgresql+psycopg://postgres@127.0.0.1:{self.port}"
        self._count = 0

    def _run(self, *argv: str) -> None:
        result = subprocess.run([*self._as, *argv], capture_output=True, text=True, check=False)
        if result.returncode:
            raise AssertionError(f"{argv[0]} failed: {result.stderr[-2000:]}")

    def url(self, name: str | None = None) -> str:
        """The URL of a database (created on first use by whoever connects through loopline)."""
        if name is None:
            self._count += 1
            name = f"db{self._count}"
        return f"{self.base}/{name}"

    def stop(self) -> None:
        """Stop the server (fast shutdown)."""
        subprocess.run(
            [*self._as, str(self.bin / "pg_ctl"), "-D", str(self.data), "-m", "immediate", "stop"],
            capture_output=True,
            check=False,
        )
        shutil.rmtree(self.workdir, ignore_errors=True)


AZURITE_ACCOUNT = "devstoreaccount1"
AZURITE_KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="


class S3Server(_Process):
    """An S3 API on a free port: moto's server (from PyPI), in memory, as a team's S3, MinIO or R2; its log
    goes beside ``project`` (a folder that need not exist)."""

    command = "s3"
    ready = "/moto-api/"

    def argv(self) -> list[str]:
        """moto's server on this port."""
        return [str(Path(sys.executable).with_name("moto_server")), "-H", "127.0.0.1", "-p", str(self.port)]

    def bucket(self, name: str) -> str:
        """Create a bucket; return its s3:// URL."""
        import boto3

        boto3.client("s3", endpoint_url=self.url, region_name="us-east-1").create_bucket(Bucket=name)
        return f"s3://{name}"

    def keys(self, bucket: str) -> list[str]:
        """The keys of the objects in ``bucket``."""
        import boto3

        client = boto3.client("s3", endpoint_url=self.url, region_name="us-east-1")
        pages = client.get_paginator("list_objects_v2").paginate(Bucket=bucket)
        return [item["Key"] for page in pages for item in page.get("Contents", [])]


class Azurite:
    """The Azure Blob emulator from npm (installed by scripts/services), in memory, on a free port."""

    def __init__(self, workdir: Path) -> None:
        binary = Path(__file__).resolve().parent.parent / ".tools" / "node_modules" / ".bin" / "azurite-blob"
        if not binary.exists():
            raise AssertionError(f"Azurite is not installed at {binary}: run ./scripts/services")
        self.port = free_port()
        self.connection_string = (
            f"DefaultEndpointsProtocol=http;AccountName={AZURITE_ACCOUNT};AccountKey={AZURITE_KEY};"
            f"BlobEndpoint=http://127.0.0.1:{self.port}/{AZURITE_ACCOUNT};"
        )
        log = workdir / "azurite.log"
        with log.open("wb") as out:
            self.process = subprocess.Popen(
                [
                    str(binary),
                    "--blobHost",
                    "127.0.0.1",
                    "--blobPort",
                    str(self.port),
                    "--inMemoryPersistence",
                    "--skipApiVersionCheck",
                    "--loose",
                ],
                stdout=out,
                stderr=subprocess.STDOUT,
                cwd=workdir,
            )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and self.process.poll() is None:
            with socket.socket() as sock:
                if sock.connect_ex(("127.0.0.1", self.port)) == 0:
                    return
            time.sleep(0.1)
        raise AssertionError(f"Azurite did not start: {log.read_text()[-1000:]}")

    def container(self, name: str) -> str:
        """Create a container; return its az:// URL."""
        from azure.storage.blob import BlobServiceClient

        client = BlobServiceClient.from_connection_string(self.connection_string)
        if not client.get_container_client(name).exists():
            client.create_container(name)
        return f"az://{name}"

    def stop(self) -> None:
        """Stop the emulator."""
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()


class PathProxy:
    """A reverse proxy on a free port that serves ``upstream`` under ``path`` and strips it before passing a
    request on (as nginx's ``location /loopline/ { proxy_pass http://upstream/; }``); other paths get 404.
    Answers, redirects included, go back as the upstream gave them."""

    def __init__(self, upstream: str, path: str) -> None:
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

        client = httpx.Client(base_url=upstream, timeout=120)
        hop = {"connection", "keep-alive", "transfer-encoding", "content-length", "content-encoding"}

        class Handler(BaseHTTPRequestHandler):
            def forward(self) -> None:
                if not self.path.startswith(f"{path}/"):
                    self.send_error(404)
                    return
                length = int(self.headers.get("content-length") or 0)
                headers = {k: v for k, v in self.headers.items() if k.lower() not in hop | {"host"}}
                answer = client.request(
                    self.command, self.path[len(path) :], content=self.rfile.read(length), headers=headers
                )
                self.send_response(answer.status_code)
                for name, value in answer.headers.multi_items():
                    if name.lower() not in hop:
                        self.send_header(name, value)
                self.send_header("Content-Length", str(len(answer.content)))
                self.end_headers()
                self.wfile.write(answer.content)

            do_GET = do_POST = forward

            def log_message(self, *_args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}{path}"
        self.origin = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def __enter__(self) -> PathProxy:
        return self

    def __exit__(self, *_exc: Any) -> None:
        self.server.shutdown()
        self.server.server_close()


class ConnectionCounter:
    """A TCP forwarder on a free port of 127.0.0.1 to ``port``, counting the connections made through it."""

    def __init__(self, port: int) -> None:
        self.socket = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.socket.getsockname()[1]}"
        self.connections = 0
        threading.Thread(target=self._serve, args=(port,), daemon=True).start()

    def _serve(self, port: int) -> None:
        with contextlib.suppress(OSError):
            while True:
                near, _ = self.socket.accept()
                self.connections += 1
                far = socket.create_connection(("127.0.0.1", port))
                for source, sink in ((near, far), (far, near)):
                    threading.Thread(target=self._pipe, args=(source, sink), daemon=True).start()

    @staticmethod
    def _pipe(source: socket.socket, sink: socket.socket) -> None:
        with contextlib.suppress(OSError):
            while data := source.recv(1 << 16):
                sink.sendall(data)
        with contextlib.suppress(OSError):
            sink.shutdown(socket.SHUT_WR)

    def __enter__(self) -> ConnectionCounter:
        return self

    def __exit__(self, *_exc: Any) -> None:
        self.socket.close()


class DatabaseServer:
    """A TCP server on 127.0.0.1 where a database should be: it counts connections, and closes each at once
    (a server going down) or keeps it open and says nothing (a host behind a firewall, a hung server)."""

    def __init__(self, silent: bool) -> None:
        self.socket = socket.create_server(("127.0.0.1", 0))
        self.port = self.socket.getsockname()[1]
        self.connections: list[socket.socket] = []
        self.silent = silent
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        with contextlib.suppress(OSError):
            while True:
                connection, _ = self.socket.accept()
                self.connections.append(connection)
                if not self.silent:
                    connection.close()

    def close(self) -> None:
        self.socket.close()
        for connection in self.connections:
            connection.close()


def split_body(rows: Any) -> dict[str, Any]:
    """A DataFrame's rows as a ``dataframe_split`` body: Python's JSON keeps every float exactly (pandas'
    ``to_json`` rounds to 10 digits), and missing values go as nulls."""
    values = rows.astype(object).where(rows.notna(), None).to_numpy().tolist()
    return {"dataframe_split": {"columns": list(rows.columns), "data": values}}


@contextlib.contextmanager
def serving_models(
    root: Path, models: dict[str, Path], metrics: dict[str, float], strict: dict[str, str] | None = None
) -> Iterator[tuple[Server, Path]]:
    """A sample project at ``root/proj`` whose dev workspace serves each of ``models`` (name: saved model
    folder), imported as the inner loop imports an uploaded run (its check in the sandbox included) with
    ``metrics``, at an endpoint of that name whose deployment ``only`` takes all traffic, and a strict
    endpoint for each of ``strict`` (endpoint: model): the running server and the project."""
    import loopline
    from tests.helpers import commit_all, git

    project = root / "proj"
    loopline.init(project, "simple")
    commit_all(project, "Sample project")
    loopline.up(project)
    head = git(project, "rev-parse", "HEAD")
    for name, folder in models.items():
        loopline.import_inner_loop(
            folder,
            None,
            commit=head,
            branch="main",
            dirty_files=[],
            diff_digest=None,
            params={},
            metrics=metrics,
            tags={},
            model=name,
            project=project,
        )
        loopline.create_endpoint(name, "dev", project=project)
        loopline.create_deployment(name, "only", model=name, version=1, project=project)
    for endpoint, model in (strict or {}).items():
        loopline.create_endpoint(endpoint, "dev", strict=True, project=project)
        loopline.create_deployment(endpoint, "only", model=model, version=1, project=project)
    with Server(project, workspace="dev") as server:
        for name in (*models, *(strict or {})):
            server.wait_for(name, "only")
        yield server, project
