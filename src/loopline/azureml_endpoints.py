"""Azure ML endpoint and deployment files, online and batch (``az ml online-endpoint create --file``,
``az ml online-deployment create --file``, and their ``batch-`` twins): the names and the registered model
they give loopline's ``create --file`` commands, and the prod endpoint ``init --existing`` keeps.

What only Azure ML provides (its tokens, instance types, scoring scripts, compute, retries) has no other
meaning here: what would change the outcome is refused, naming it; what only sizes Azure's machines is
listed as not used. A file whose ``$schema`` says it is another kind than the command takes is refused,
naming the command that takes it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import yaml

from loopline.azureml import read_yaml, yaml_files
from loopline.domain import Tier
from loopline.errors import UsageError, on_path

__all__ = [
    "DeploymentFile",
    "EndpointFile",
    "read_batch_deployment",
    "read_batch_endpoint",
    "read_deployment",
    "read_endpoint",
    "release_endpoint",
]


@dataclass(frozen=True)
class EndpointFile:
    """What an Azure ML endpoint file (online or batch) says that loopline uses."""

    name: str
    auth: str  # key or none (none for a batch endpoint: loopline invokes those itself)
    unused: tuple[str, ...]  # its keys that only configure Azure ML


@dataclass(frozen=True)
class DeploymentFile:
    """What an Azure ML deployment file (online or batch) says that loopline uses."""

    endpoint: str
    name: str
    model: str | None
    version: int | None  # None: the file names no version (``@latest``, or none at all)
    unused: tuple[str, ...]
    latest: bool = False  # ``azureml:NAME@latest``: the newest version, as Azure ML resolves it
    output_file: str | None = None  # a batch deployment's one file of predictions (``append_row``)


_ENDPOINT_KEYS = {"$schema", "name", "auth_mode"}
_DEPLOYMENT_KEYS = {"$schema", "name", "endpoint_name", "model", "type"}


def _no_scoring_script(script: str, use: str, uses: str) -> dict[str, str]:
    return {
        "code_configuration": f"a scoring script ({script}) is Azure ML's way to {use} a model that is not "
        f"an MLflow model; loopline {uses} the MLflow model itself: log it with mlflow.<flavor>.log_model "
        "(mlflow.pyfunc.PythonModel for custom code), run `loopline inner-loop`, and leave "
        "code_configuration out",
    }


_REFUSED_DEPLOYMENT_KEYS = _no_scoring_script("score.py", "serve", "serves")
_REFUSED_BATCH_KEYS = _no_scoring_script("batch_driver.py", "score with", "scores with")


def _document(path: Path, what: str) -> dict[str, Any]:
    with on_path("read", path, f"give an Azure ML {what} file"):
        text = path.read_text(encoding="utf-8", errors="replace")
    try:
        document = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = f" (line {mark.line + 1})" if mark is not None else ""
        raise UsageError(f"{path} is not valid YAML{line}; give an Azure ML {what} file") from None
    if not isinstance(document, dict):
        raise UsageError(f"{path} is not an Azure ML {what} file (a YAML mapping)")
    return document


def _text(path: Path, document: dict[str, Any], key: str) -> str:
    value = document.get(key)
    if not isinstance(value, str) or not value:
        raise UsageError(f"{path}: '{key}' is missing; an Azure ML file names it")
    return value


_KINDS = {  # what a file's $schema says it is, and the command that creates one here
    "batchendpoint": ("a batch endpoint", "loopline batch-endpoint create --file"),
    "batchdeployment": ("a batch deployment", "loopline batch-deployment create --file"),
    "onlineendpoint": ("an online endpoint", "loopline endpoint create --file"),
    "onlinedeployment": ("an online deployment", "loopline deployment create --file"),
}


def _checked(path: Path, what: str) -> dict[str, Any]:
    """The file's document, refused where its ``$schema`` says it is another kind of Azure ML file than
    ``what`` (a batch deployment given to ``deployment create``, say)."""
    document = _document(path, what)
    schema = str(document.get("$schema", "")).lower()
    found = next((kind for kind in _KINDS if kind in schema), None)
    if found is not None and found != what.replace(" ", ""):
        said, command = _KINDS[found]
        raise UsageError(f"{path} is {said} file (its $schema); create it with `{command} {path}`")
    return document


def read_endpoint(path: Path) -> EndpointFile:
    """The endpoint an Azure ML online endpoint file describes."""
    document = _checked(path, "online endpoint")
    auth = str(document.get("auth_mode", "key"))
    if auth != "key":
        raise UsageError(
            f"{path}: auth_mode {auth} is Azure ML's own token; loopline endpoints take keys: set auth_mode: "
            "key (or create it with --auth none for no authentication)"
        )
    unused = tuple(sorted(set(document) - _ENDPOINT_KEYS))
    return EndpointFile(_text(path, document, "name"), "key", unused)


def read_batch_endpoint(path: Path) -> EndpointFile:
    """The endpoint an Azure ML batch endpoint file describes (loopline's batch endpoints are invoked
    through loopline, so its ``auth_mode`` is Azure ML's alone)."""
    document = _checked(path, "batch endpoint")
    unused = tuple(sorted(set(document) - {"$schema", "name"}))
    return EndpointFile(_text(path, document, "name"), "none", unused)


def read_deployment(path: Path) -> DeploymentFile:
    """The deployment an Azure ML online deployment file describes."""
    return _deployment(path, _checked(path, "online deployment"), _REFUSED_DEPLOYMENT_KEYS)


def read_batch_deployment(path: Path) -> DeploymentFile:
    """The deployment an Azure ML batch deployment file describes: a model deployment (``type: model``,
    or no type); its compute, sizes, retries and output file are Azure ML's."""
    document = _checked(path, "batch deployment")
    if document.get("type", "model") != "model" or "component" in document:
        raise UsageError(
            f"{path}: a pipeline component deployment runs an Azure ML pipeline; loopline's batch "
            "deployments score a registered model: give the model (model: azureml:NAME@latest)"
        )
    described = _deployment(
        path, {k: v for k, v in document.items() if k not in _OUTPUT_KEYS}, _REFUSED_BATCH_KEYS
    )
    return replace(described, output_file=_output_file(path, document))


_OUTPUT_KEYS = ("output_action", "output_file_name")


def _output_file(path: Path, document: dict[str, Any]) -> str | None:
    """The file Azure ML's ``append_row`` (its default ``output_action``) appends every prediction to:
    ``output_file_name``, ``predictions.csv`` by default; none with ``summary_only``."""
    action = document.get("output_action", "append_row")
    if action == "summary_only":
        return None
    if action != "append_row":
        raise UsageError(
            f"{path}: output_action {action} is neither append_row nor summary_only, as Azure ML's"
        )
    name = document.get("output_file_name", "predictions.csv")
    if not isinstance(name, str) or not name.endswith(".csv"):
        raise UsageError(f"{path}: output_file_name {name} is not a CSV file name: give one ending in .csv")
    return name


def _deployment(path: Path, document: dict[str, Any], refused: dict[str, str]) -> DeploymentFile:
    for key, why in refused.items():
        if key in document:
            raise UsageError(f"{path}: {key}: {why}")
    model, version = _model(path, document.get("model"))
    unused = tuple(sorted(set(document) - _DEPLOYMENT_KEYS))
    latest = isinstance(document.get("model"), str) and document["model"].endswith("@latest")
    return DeploymentFile(
        _text(path, document, "endpoint_name"), _text(path, document, "name"), model, version, unused, latest
    )


_REFERENCE = re.compile(r"^azureml:(?P<name>[A-Za-z0-9_.-]+)(?::(?P<version>\d+)|@latest)?$")


def _model(path: Path, given: Any) -> tuple[str | None, int | None]:
    """A deployment file's model: ``azureml:NAME:VERSION`` (or ``@latest``), or ``{name, version}``."""
    if given is None:
        return None, None
    if isinstance(given, str):
        matched = _REFERENCE.match(given)
        if matched is None:
            raise UsageError(
                f"{path}: model {given} is not a model loopline registered; name it azureml:NAME:VERSION "
                "(or {name: NAME, version: N}) as the registry holds it"
            )
        version = matched["version"]
        return matched["name"], int(version) if version else None
    if isinstance(given, dict) and "path" in given:
        raise UsageError(
            f"{path}: model.path {given['path']} is a folder of files; loopline deploys the versions "
            "its inner loop registered from a commit (trained, gated, tied to its code): run `loopline "
            "inner-loop`, then name the version (model: azureml:NAME:VERSION, or --version N)"
        )
    if isinstance(given, dict) and isinstance(given.get("name"), str):
        version = given.get("version")
        if version is not None and not str(version).isdigit():
            raise UsageError(f"{path}: model.version {version} is not a version number")
        return given["name"], int(version) if version is not None else None
    raise UsageError(f"{path}: model must be azureml:NAME:VERSION or {{name: NAME, version: N}}")


def _online_endpoint_file(root: Path) -> tuple[str, str] | None:
    """The endpoint name the repository's Azure ML online endpoint files give, and the file: None where
    they give none, or several."""

    def read(path: Path) -> dict[str, Any] | None:
        document = read_yaml(path)
        if not isinstance(document, dict) or "onlineendpoint" not in str(document.get("$schema", "")).lower():
            return None
        return dict(document) if isinstance(document.get("name"), str) else None

    # four folders down: Azure's MLOps templates keep it in mlops/azureml/deploy/online/
    found = {document["name"]: path for path, document in yaml_files(root, read, depth=4)}
    if len(found) != 1:
        return None
    ((name, path),) = found.items()
    return name, path.relative_to(root).as_posix()


def release_endpoint(root: Path, tier: Tier) -> tuple[str, list[str]]:
    """``release.endpoint`` for loopline.yaml (with what ``init`` says of it): the endpoint the repository's
    online endpoint file names, so its callers keep that name; nothing for a tier without prod, a
    repository with no such file or several, or a name loopline's endpoints cannot have."""
    from loopline.endpoints.rows import check_name

    endpoint = _online_endpoint_file(root) if tier is not Tier.EXPERIMENTATION else None
    if endpoint is None:
        return "", []
    name, file = endpoint
    try:
        check_name("endpoint", name)
    except UsageError as refused:
        return "", [f"{file} names endpoint {name}; {refused.message}: prod's endpoint keeps its default"]
    text = f"\nrelease:\n  endpoint: {name}   # as {file} names it: its callers keep the name\n"
    return text, [f"outer-loop prod releases to endpoint {name}, the one {file} names (release.endpoint)"]
