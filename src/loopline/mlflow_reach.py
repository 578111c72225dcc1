"""Reaching a workspace's MLflow stores, once a process, before MLflow is given them: a database server
connected to with a timeout (MLflow itself tries for about 100 seconds before it says one is down), a
tracking server asked its MLflow version (one older than MLflow 3 cannot store the models this MLflow
logs), and the client package of an artifact store checked for; each failure a one-line error naming
the workspace."""

from __future__ import annotations

import re

from loopline.config import StoreLocation
from loopline.errors import StoreUnavailable, UsageError

__all__ = ["reach", "require_artifact_client"]

_REACHED: dict[str, str] = {}  # database URLs this process connected to once, as MLflow is given them

_DATABASES = ("postgresql", "mysql", "mssql")

_ARTIFACT_CLIENTS = {
    "s3": ("boto3", "boto3"),
    "wasbs": ("azure.storage.blob", "azure-storage-blob"),
    "abfss": ("azure.storage.filedatalake", "azure-storage-file-datalake"),
    "gs": ("google.cloud.storage", "google-cloud-storage"),
}


def require_artifact_client(location: StoreLocation) -> None:
    """Refuse a workspace whose artifact location MLflow cannot write from here (its client package is not
    installed), before anything runs that would log to it."""
    import importlib.util

    scheme = (location.artifact_location or "").partition("://")[0]
    if scheme not in _ARTIFACT_CLIENTS:
        return
    module, package = _ARTIFACT_CLIENTS[scheme]
    try:
        found = importlib.util.find_spec(module) is not None
    except ModuleNotFoundError:  # a parent package is missing
        found = False
    if not found:
        raise UsageError(
            f"{location.name}'s artifact_location {location.artifact_location} needs the {package} package "
            f"(MLflow's {scheme}:// artifact store imports {module}): pip install {package}"
        )


def reach(location: StoreLocation) -> tuple[str, str]:
    """A workspace's tracking and registry URIs as MLflow is to open them, its database servers connected
    to (once a process); StoreUnavailable naming the workspace when one cannot be."""
    return _reached(location.tracking_uri, location.name), _reached(location.registry_uri, location.name)


def _reached(uri: str, workspace: str) -> str:
    """``uri`` as MLflow is to open it: a database server is connected to once first (MLflow itself tries
    ten times over about 100 seconds before it says a server is down), and a PostgreSQL connection is given
    ``state.CONNECT_TIMEOUT`` seconds to open. StoreUnavailable naming ``workspace`` when it cannot be."""
    if uri in _REACHED:
        return _REACHED[uri]
    if uri.startswith(("http://", "https://")):
        _require_mlflow_3_server(uri, workspace)
        _REACHED[uri] = uri
        return uri
    if not uri.startswith(_DATABASES):
        return uri
    from sqlalchemy.exc import OperationalError
    from sqlalchemy.pool import NullPool

    from loopline.config import redact
    from loopline.state import new_engine, with_connect_timeout

    engine = new_engine(uri, poolclass=NullPool)
    try:
        with engine.connect():
            pass
    except OperationalError as exc:
        reason = str(exc.orig or exc).strip().splitlines()[0][:300]
        raise StoreUnavailable(
            what=f"the MLflow store of {workspace}", where=redact(uri), reason=reason
        ) from None
    finally:
        engine.dispose()
    _REACHED[uri] = with_connect_timeout(uri).render_as_string(hide_password=False)
    return _REACHED[uri]


def _require_mlflow_3_server(uri: str, workspace: str) -> None:
    """Refuse an MLflow tracking server older than MLflow 3, asked for its version (``/version``) once a
    process: this MLflow logs every model through the logged-models API, which such a server lacks, so a
    training's ``log_model`` would fail only after the whole training, with a 404 page. A server that
    does not say (a proxy in front of it, a sign-in first) is left to MLflow's own calls."""
    import os
    import ssl

    import httpx

    from loopline.config import redact

    verify: bool | ssl.SSLContext = True  # as MLflow's client checks the server
    try:
        if os.environ.get("MLFLOW_TRACKING_INSECURE_TLS", "").lower() == "true":
            verify = False
        elif cafile := os.environ.get("MLFLOW_TRACKING_SERVER_CERT_PATH"):
            verify = ssl.create_default_context(cafile=cafile)
        answer = httpx.get(f"{uri.rstrip('/')}/version", timeout=5, verify=verify)
    except (httpx.HTTPError, OSError, ssl.SSLError):  # MLflow's own calls say why
        return
    version = answer.text.strip()
    found = re.fullmatch(r"(\d+)\.\d+[\w.+-]*", version)
    if answer.status_code != 200 or found is None or int(found[1]) >= 3:
        return
    import mlflow.version

    raise UsageError(
        f"{workspace}'s MLflow tracking server ({redact(uri)}) runs MLflow {version}, which cannot store "
        f"models that MLflow {mlflow.version.VERSION} logs (MLflow 3's logged-models API): upgrade the "
        "server to MLflow 3 (`pip install -U mlflow`, then `mlflow db upgrade` on its database)"
    )
