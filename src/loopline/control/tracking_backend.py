"""MLflow's own tracking server for one workspace, as the control plane runs it behind ``/mlflow/dev/``
(and its web UI behind ``/ui/mlflow/``), and behind ``/mlflow/prod/`` (``/mlflow/test/``) for reads of
that workspace's registry.

``python -m loopline.control.tracking_backend PORT`` serves MLflow's REST API, its artifact proxy and its
web UI on 127.0.0.1 only, in this one process (so it ends with the control plane that started it): the
store from ``MLFLOW_BACKEND_STORE_URI`` and ``MLFLOW_REGISTRY_STORE_URI``, run and model files under
``MLFLOW_ARTIFACTS_DESTINATION``. ``Backend`` starts it for the control plane when first needed and ends
it. The control plane signs callers in and checks what they may do before a request reaches it; nothing
else should.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from loopline.errors import StoreUnavailable
from loopline.instance import Instance
from loopline.mlflow_reach import reach

__all__ = ["Backend", "main"]


def main(argv: list[str]) -> None:
    """Serve until stopped."""
    import uvicorn
    from mlflow.server.constants import (
        ARTIFACTS_DESTINATION_ENV_VAR,
        BACKEND_STORE_URI_ENV_VAR,
        REGISTRY_STORE_URI_ENV_VAR,
        SERVE_ARTIFACTS_ENV_VAR,
    )

    os.environ[BACKEND_STORE_URI_ENV_VAR] = os.environ["MLFLOW_BACKEND_STORE_URI"]
    os.environ[REGISTRY_STORE_URI_ENV_VAR] = os.environ["MLFLOW_REGISTRY_STORE_URI"]
    os.environ[ARTIFACTS_DESTINATION_ENV_VAR] = os.environ["MLFLOW_ARTIFACTS_DESTINATION"]
    os.environ[SERVE_ARTIFACTS_ENV_VAR] = "true"
    from mlflow.server.fastapi_app import app

    uvicorn.run(app, host="127.0.0.1", port=int(argv[0]), log_level="warning", access_log=False)


class Backend:
    """MLflow's tracking server for a workspace on 127.0.0.1, started when first needed and again if it
    ended."""

    def __init__(self, root: Path, workspace: str = "dev") -> None:
        self.root = root
        self.workspace = workspace
        self._child: Any = None
        self._url = ""
        self._lock = asyncio.Lock()
        self._client: Any = None

    def client(self) -> Any:
        """One HTTP client for every call to the server (its connections kept open)."""
        import httpx

        if self._client is None:
            self._client = httpx.AsyncClient(timeout=None, limits=httpx.Limits(max_keepalive_connections=16))
        return self._client

    def _start(self, uris: tuple[str, str], artifacts: str) -> None:
        from loopline import children
        from loopline.net import free_port

        port = free_port()
        state = Instance.open(self.root).settings.state_dir  # on a team's stores, maybe not made yet
        state.mkdir(parents=True, exist_ok=True)
        log_file = state / (
            "tracking-server.log" if self.workspace == "dev" else f"tracking-{self.workspace}.log"
        )
        tracking, registry = uris
        env = {
            **os.environ,
            "MLFLOW_BACKEND_STORE_URI": tracking,
            "MLFLOW_REGISTRY_STORE_URI": registry,
            "MLFLOW_ARTIFACTS_DESTINATION": artifacts,
            "MLFLOW_DISABLE_TELEMETRY": "true",  # neither it nor its web UI reports to MLflow's servers
        }
        with log_file.open("ab") as out:
            self._child = children.start(
                [sys.executable, "-m", "loopline.control.tracking_backend", str(port)],
                parent_death_signal=signal.SIGTERM,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=out,
            )
        self._url = f"http://127.0.0.1:{port}"
        self._log = log_file

    async def url(self, location: Any, artifacts: str) -> str:
        """The running server's URL (started, and waited for, when it is not running)."""
        import httpx

        async with self._lock:
            if self._child is not None and self._child.poll() is None:
                return self._url
            # A database that is down is said so at once (MLflow's server would try for about 100 s).
            self._start(await asyncio.to_thread(reach, location), artifacts)
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                if self._child.poll() is not None:
                    break
                with contextlib.suppress(httpx.HTTPError):
                    if (await self.client().get(f"{self._url}/health", timeout=2)).status_code == 200:
                        return self._url
                await asyncio.sleep(0.1)
            await self.stop()
            tail = self._log.read_text(errors="replace").strip().splitlines()[-1:] or ["no output"]
            raise StoreUnavailable(
                what=f"{self.workspace}'s MLflow tracking server",
                where=self._url,
                reason=f"it did not start: {tail[0][:300]}",
            )

    async def stop(self) -> None:
        """End the server, if it runs."""
        if self._client is not None:
            await self._client.aclose()
            self._client = None
        if self._child is not None and self._child.poll() is None:
            self._child.terminate()
            try:
                self._child.wait(10)
            except Exception:
                self._child.kill()
        self._child = None


if __name__ == "__main__":
    main(sys.argv[1:])
