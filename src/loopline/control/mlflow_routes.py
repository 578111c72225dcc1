"""What each call to MLflow's server through the control plane touches: the closed list of MLflow's REST
routes it serves for dev (each a read, or a change of a run, experiment, logged model or file), and the
page, scripts and reads of MLflow's web UI. Anything else is not served."""

from __future__ import annotations

import re

from loopline.errors import UsageError

__all__ = [
    "CREATE_EXPERIMENT",
    "CREATE_MODEL",
    "CREATE_RUN",
    "EXPERIMENT",
    "FILES",
    "LISTING",
    "MODEL",
    "MODEL_FILES",
    "READ",
    "REGISTRY",
    "REGISTRY_READS",
    "RUN",
    "RUN_FILES",
    "STATIC",
    "UI_FILES",
    "classify",
    "classify_browser",
]

READ, REGISTRY = "read", "registry"
CREATE_RUN, CREATE_EXPERIMENT, CREATE_MODEL = "create-run", "create-experiment", "create-model"
RUN, EXPERIMENT, MODEL, FILES = "run", "experiment", "model", "files"

_RUN_WRITES = (
    "update",
    "delete",
    "restore",
    "log-metric",
    "log-parameter",
    "set-tag",
    "delete-tag",
    "log-batch",
    "log-model",
    "log-inputs",
    "outputs",
)
_EXPERIMENT_WRITES = ("update", "delete", "restore", "set-experiment-tag", "delete-experiment-tag")
_ROUTES: dict[tuple[str, str], str] = {
    **{("GET", f"experiments/{r}"): READ for r in ("get-by-name", "get", "search")},
    ("POST", "experiments/search"): READ,
    ("POST", "experiments/create"): CREATE_EXPERIMENT,
    **{("POST", f"experiments/{r}"): EXPERIMENT for r in _EXPERIMENT_WRITES},
    ("GET", "runs/get"): READ,
    ("POST", "runs/search"): READ,
    ("POST", "runs/create"): CREATE_RUN,
    **{("POST", f"runs/{r}"): RUN for r in _RUN_WRITES},
    **{
        ("GET", r): READ
        for r in ("artifacts/list", "metrics/get-history", "metrics/get-history-bulk-interval")
    },
    ("POST", "logged-models"): CREATE_MODEL,
    ("POST", "logged-models/search"): READ,
    **{("GET", f"registered-models/{r}"): READ for r in ("get", "search", "get-latest-versions", "alias")},
    ("POST", "registered-models/get-latest-versions"): READ,
    **{("GET", f"model-versions/{r}"): READ for r in ("get", "search", "get-download-uri")},
    ("GET", "server-info"): READ,
}
_MODEL_ID = r"m-[0-9a-f]{32}"
_MODEL_ROUTES: list[tuple[str, re.Pattern[str], str]] = [
    ("GET", re.compile(rf"logged-models/({_MODEL_ID})(/artifacts/directories)?"), READ),
    ("PATCH", re.compile(rf"logged-models/({_MODEL_ID})(/tags)?"), MODEL),
    ("DELETE", re.compile(rf"logged-models/({_MODEL_ID})(/tags/[^/]+)?"), MODEL),
    ("POST", re.compile(rf"logged-models/({_MODEL_ID})/params"), MODEL),
]
_API = re.compile(r"api/[23]\.0/mlflow/(.+)")
REGISTRY_READS = re.compile(r"api/[23]\.0/mlflow/(?:registered-models|model-versions)/[\w/-]+")
"""The routes of the registry; those ``classify`` calls READ are what a reader of test or prod reads."""
_FILES = re.compile(r"api/2\.0/mlflow-artifacts/artifacts(?:/(.*))?")
RUN_FILES = re.compile(r"(?:^|/)([0-9a-f]{32})/artifacts(?:/|$)")
MODEL_FILES = re.compile(rf"(?:^|/)models/({_MODEL_ID})/artifacts(?:/|$)")
LISTING = "api/2.0/mlflow-artifacts/artifacts"
# MLflow's web UI: its page and scripts, and the reads it makes besides the REST API (``ajax-api/``).
STATIC = re.compile(r"(?:static-files/(?:[\w-]+(?:\.[\w-]+)*/)*[\w-]+(?:\.[\w-]+)*)?")
UI_FILES = ("get-artifact", "model-versions/get-artifact")
_UI_READS = {
    ("GET", "graphql"),
    ("POST", "graphql"),
    *(("GET", route) for route in UI_FILES),
    ("POST", "api/2.0/mlflow/experiments/search-datasets"),
}


def classify(method: str, path: str) -> tuple[str, str | None]:
    """What a call to ``path`` (below the tracking URI) touches, and the logged model or file path it
    names; UsageError for what the control plane does not serve."""
    if files := _FILES.fullmatch(path):
        where = files.group(1) or ""
        if method == "GET":
            return READ, where
        if method in ("PUT", "DELETE") and where:
            return FILES, where
    elif api := _API.fullmatch(path):
        route = api.group(1).rstrip("/")
        if kind := _ROUTES.get((method, route)):
            return kind, None
        for verb, pattern, touched in _MODEL_ROUTES:
            if method == verb and (named := pattern.fullmatch(route)):
                return touched, named.group(1)
        if route.startswith(("registered-models/", "model-versions/")):
            return REGISTRY, None
    raise UsageError(
        f"{method} /{path[:120]} is not served here: the control plane serves MLflow's runs, experiments, "
        "logged models and their files for dev, and reads of its registry"
    )


def classify_browser(method: str, path: str) -> tuple[str, str | None]:
    """``classify`` for a call of MLflow's web UI to ``path`` (below ``/ui/mlflow/``): its page and
    scripts, its reads, and the REST API, which it calls as ``ajax-api/``."""
    route = path.removeprefix("ajax-")
    if (method == "GET" and STATIC.fullmatch(route)) or (method, route) in _UI_READS:
        return READ, None
    return classify(method, route)
