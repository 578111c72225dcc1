"""``loopline.yaml``: one pydantic model (its sections in ``sections.py``), ``LOOPLINE_`` environment
overrides, and resolved locations.

``load_config(root)`` reads the file, lays environment overrides over it (``LOOPLINE_TIER=full``,
``LOOPLINE_WORKSPACES__PROD__TRACKING_URI=postgresql://...``: ``__`` separates nested keys), validates
the result, and names the offending key, with its line in the file or its environment variable, when
something is wrong.
"""

from __future__ import annotations

import difflib
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from loopline.config.fields import url_password
from loopline.config.sections import (
    ApprovalsConfig,
    AttestationConfig,
    BatchConfig,
    ComputeConfig,
    DatastoreConfig,
    GateConfig,
    ModelConfig,
    MonitoringConfig,
    ObjectiveConfig,
    ParameterSpec,
    ProjectConfig,
    PruningConfig,
    RegistryConfig,
    ReleaseConfig,
    SandboxConfig,
    ServingConfig,
    StoreConfig,
    SweepConfig,
    ThresholdBound,
    TrainingConfig,
    ValidationConfig,
)
from loopline.config.team import (
    EVENT_KINDS,
    AuditConfig,
    ControlPlaneConfig,
    NotificationsConfig,
    StateConfig,
    WebhookConfig,
)
from loopline.domain import SHARED, TIER_WORKSPACES, Tier
from loopline.errors import ConfigError, ProjectNotFound
from loopline.yamlfile import DuplicateKey, Loader

__all__ = [
    "CONFIG_FILE",
    "DATASTORES",
    "ENV_PREFIX",
    "EVENT_KINDS",
    "ApprovalsConfig",
    "AttestationConfig",
    "AuditConfig",
    "BatchConfig",
    "ComputeConfig",
    "ControlPlaneConfig",
    "DatastoreConfig",
    "GateConfig",
    "ModelConfig",
    "MonitoringConfig",
    "NotificationsConfig",
    "ObjectiveConfig",
    "ParameterSpec",
    "ProjectConfig",
    "PruningConfig",
    "RegistryConfig",
    "ReleaseConfig",
    "SandboxConfig",
    "ServingConfig",
    "Settings",
    "StateConfig",
    "StoreConfig",
    "StoreLocation",
    "SweepConfig",
    "ThresholdBound",
    "TrainingConfig",
    "ValidationConfig",
    "WebhookConfig",
    "endpoint_slug",
    "find_project_root",
    "load_config",
    "redact",
]

CONFIG_FILE = "loopline.yaml"
ENV_PREFIX = "LOOPLINE_"
STATE_DIR = ".loopline"
DATASTORES = ("inbox", "predictions")
STORE_NAMES = ("dev", "test", "prod", SHARED)
DEFAULT_PORTS = {"prod": 8700, "dev": 8701, "test": 8702}

# LOOPLINE_ variables that steer the process rather than override a key of loopline.yaml.
RESERVED_ENV = frozenset(
    {
        "PROJECT",
        "USER",
        "TRACEBACK",
        "URL",
        "TOKEN",
        "FAILPOINT",
        "CACHE_DIR",
        "NO_TEMPLATE",
        "LOCAL_RUN",
        "WORKSPACE",
        "RUN_TAGS",
        "AUDIT_KEY",
        "AUDIT_KEY_FILE",
    }
)


@dataclass(frozen=True)
class StoreLocation:
    """The resolved locations of one workspace's (or the registry's) stores."""

    name: str
    tracking_uri: str
    registry_uri: str
    artifact_location: str | None  # None: a tracking server's own artifact root
    model_store: str

    @property
    def on_tracking_server(self) -> bool:
        """True when the tracking store is an MLflow tracking server, which decides where artifacts go."""
        return _is_tracking_server(self.tracking_uri)

    @property
    def is_local_sqlite(self) -> bool:
        """True for the embedded default: a SQLite file on this machine."""
        return self.tracking_uri.startswith("sqlite:///")

    def to_dict(self) -> dict[str, str | None]:
        """A JSON-ready mapping."""
        return {
            "tracking_uri": self.tracking_uri,
            "registry_uri": self.registry_uri,
            "artifact_location": self.artifact_location,
            "model_store": self.model_store,
        }


@dataclass(frozen=True)
class Settings:
    """A validated configuration with every location resolved against the project root."""

    root: Path
    config: ProjectConfig

    @property
    def tier(self) -> Tier:
        """The instance's tier."""
        return self.config.tier

    @property
    def workspaces(self) -> tuple[str, ...]:
        """The workspaces the tier provides, in promotion order."""
        return TIER_WORKSPACES[self.config.tier]

    @property
    def state_dir(self) -> Path:
        """The folder of loopline's local state."""
        return self.root / STATE_DIR

    @property
    def state_url(self) -> str:
        """loopline's own database."""
        url = self.config.state.url
        if url is None:
            return f"sqlite:///{self.state_dir / 'state.db'}"
        return _resolve_sqlite(url, self.root)

    def database_url(self, url: str) -> str:
        """A database URL as this configuration reads it: a relative SQLite path is the project's."""
        return _resolve_sqlite(url, self.root)

    def store(self, name: str) -> StoreLocation:
        """The resolved locations of workspace ``name`` or of the shared registry."""
        given = self.config.workspaces.get(name, StoreConfig())  # type: ignore[call-overload]
        base = self.state_dir / "workspaces" / name
        tracking = (
            _resolve_sqlite(given.tracking_uri, self.root)
            if given.tracking_uri
            else (f"sqlite:///{base / 'mlflow.db'}")
        )
        registry = _resolve_sqlite(given.registry_uri, self.root) if given.registry_uri else tracking
        # A tracking server stores runs' artifacts where it is set up to (proxied, or its object store);
        # a folder of this machine would hold them where no other machine finds them.
        artifacts = (
            None
            if _is_tracking_server(tracking) and given.artifact_location is None
            else _resolve_location(given.artifact_location, self.root, base / "artifacts")
        )
        return StoreLocation(
            name=name,
            tracking_uri=tracking,
            registry_uri=registry,
            artifact_location=artifacts,
            model_store=_resolve_location(given.model_store, self.root, self.state_dir / "models"),
        )

    def endpoints_url(self, workspace: str) -> str:
        """The base URL of the workspace's online endpoints."""
        given = self.config.workspaces.get(workspace, StoreConfig())  # type: ignore[call-overload]
        if given.endpoints_url:
            return str(given.endpoints_url).rstrip("/")
        return f"http://127.0.0.1:{DEFAULT_PORTS.get(workspace, 8700)}"

    def datastore(self, name: str) -> str:
        """The resolved location of datastore ``name`` (``inbox`` or ``predictions``)."""
        given = self.config.datastores.get(name, DatastoreConfig())  # type: ignore[call-overload]
        return _resolve_location(given.url, self.root, self.state_dir / "datastores" / name)

    @property
    def gate_file(self) -> Path:
        """The inner loop's thresholds file."""
        return self.root / self.config.gate.file

    @property
    def test_endpoint(self) -> str:
        """The test workspace's endpoint name."""
        return self.config.validation.endpoint or f"{endpoint_slug(self.config.project)}-test"

    @property
    def prod_endpoint(self) -> str:
        """The prod workspace's endpoint name."""
        return self.config.release.endpoint or endpoint_slug(self.config.project)

    @property
    def experiment(self) -> str:
        """The MLflow experiment the inner loop trains in."""
        return self.config.training.experiment or self.config.project


def _is_tracking_server(tracking_uri: str) -> bool:
    return tracking_uri.split(":", 1)[0].lower() in {"http", "https", "databricks"}


def endpoint_slug(name: str) -> str:
    """The endpoint name a project's name gives (prod's, unless ``release.endpoint`` names another)."""
    return re.sub(r"[^a-z0-9-]+", "-", name.lower()).strip("-") or "endpoint"


def _resolve_sqlite(url: str, root: Path) -> str:
    prefix = "sqlite:///"
    if url.startswith(prefix) and not url[len(prefix) :].startswith("/"):
        return f"{prefix}{(root / url[len(prefix) :]).resolve()}"
    return url


def _resolve_location(given: str | None, root: Path, default: Path) -> str:
    if given is None:
        return str(default)
    if "://" in given:
        return given
    path = Path(given).expanduser()
    return str(path if path.is_absolute() else (root / path).resolve())


def find_project_root(start: str | os.PathLike[str] | None = None) -> Path:
    """The folder holding ``loopline.yaml``: ``start`` (or ``LOOPLINE_PROJECT``, or cwd) or above."""
    if start is None:
        start = os.environ.get(f"{ENV_PREFIX}PROJECT") or Path.cwd()
    here = Path(start).expanduser().resolve()
    for folder in (here, *here.parents):
        if (folder / CONFIG_FILE).is_file():
            return folder
    below = _projects_below(here)
    if len(below) == 1:
        raise ProjectNotFound(
            f"no loopline.yaml in {here} or any folder above it; the project in {below[0]}/ has one: "
            f"cd {below[0]} (or pass -C {below[0]})"
        )
    if below:
        raise ProjectNotFound(
            f"no loopline.yaml in {here} or any folder above it; projects below it: "
            f"{', '.join(f'{p}/' for p in below[:5])}: cd into one (or pass -C FOLDER)"
        )
    raise ProjectNotFound(path=here)


def _projects_below(top: Path, depth: int = 3, budget: int = 400) -> list[str]:
    """The folders under ``top`` (a few levels down, at most ``budget`` of them read) holding a
    ``loopline.yaml``, shallowest first: a project in a folder of the repository where a command was run
    from the top."""
    found: list[str] = []
    for folder, subfolders, files in os.walk(top):
        budget -= 1
        level = len(Path(folder).relative_to(top).parts)
        if CONFIG_FILE in files and level:
            found.append(Path(folder).relative_to(top).as_posix())
        subfolders[:] = (
            []
            if level >= depth or budget <= 0
            else sorted(d for d in subfolders if not d.startswith(".") and d not in _NOT_PROJECTS)
        )
    return sorted(found, key=lambda path: (path.count("/"), path))


_NOT_PROJECTS = frozenset({"node_modules", "venv", "env", "site-packages", "__pycache__", "mlruns"})


def load_config(
    root: str | os.PathLike[str] | None = None, environ: Mapping[str, str] | None = None
) -> Settings:
    """Read, override and validate the project's ``loopline.yaml``."""
    folder = find_project_root(root)
    path = folder / CONFIG_FILE
    environ = os.environ if environ is None else environ
    raw, lines = _read_yaml(path)
    origins: dict[tuple[str, ...], str] = {key: f"{CONFIG_FILE} line {line}" for key, line in lines.items()}
    for variable, keys, value in _env_overrides(environ):
        _set_nested(raw, keys, value, variable)
        origins[keys] = f"environment variable {variable}"
    try:
        config = ProjectConfig.model_validate(raw)
    except ValidationError as exc:
        raise ConfigError(_describe(exc, origins)) from None
    return Settings(root=folder, config=config)


def _read_yaml(path: Path) -> tuple[dict[str, Any], dict[tuple[str, ...], int]]:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot read {path}: {exc.strerror}") from None
    loader = Loader(text)  # one parse gives the values and the line of each key
    try:
        node = loader.get_single_node()
        data = None if node is None else loader.construct_document(node)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        if isinstance(exc, DuplicateKey):
            raise ConfigError(f"{CONFIG_FILE}{where}: {problem}") from None
        raise ConfigError(f"{CONFIG_FILE}{where}: not valid YAML: {problem}; fix the syntax there") from None
    finally:
        loader.dispose()
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(
            f"{CONFIG_FILE}: the top level must be a mapping of keys (project, tier, model, ...)"
        )
    lines: dict[tuple[str, ...], int] = {}
    if node is not None:
        _collect_lines(node, (), lines)
    return data, lines


def _collect_lines(node: yaml.Node, prefix: tuple[str, ...], out: dict[tuple[str, ...], int]) -> None:
    if isinstance(node, yaml.MappingNode):
        for key_node, value_node in node.value:
            key = (*prefix, str(key_node.value))
            out[key] = key_node.start_mark.line + 1
            _collect_lines(value_node, key, out)


def _env_overrides(environ: Mapping[str, str]) -> list[tuple[str, tuple[str, ...], str]]:
    found = []
    for variable in sorted(environ):
        if not variable.startswith(ENV_PREFIX):
            continue
        rest = variable[len(ENV_PREFIX) :]
        if rest in RESERVED_ENV or not rest or environ[variable] == "":
            continue  # an empty value (an unset secret in GitHub Actions, say) overrides nothing
        keys = tuple(part.lower() for part in rest.split("__"))
        if any(not part for part in keys):
            raise ConfigError(f"environment variable {variable}: empty key between '__' separators")
        found.append((variable, keys, environ[variable]))
    return found


def _set_nested(raw: dict[str, Any], keys: tuple[str, ...], value: str, variable: str) -> None:
    target = raw
    for depth, key in enumerate(keys[:-1]):
        child = target.setdefault(key, {})
        if not isinstance(child, dict):
            where = ".".join(keys[: depth + 1])
            raise ConfigError(f"environment variable {variable}: {where} is not a mapping in {CONFIG_FILE}")
        target = child
    target[keys[-1]] = value


def _describe(exc: ValidationError, origins: dict[tuple[str, ...], str]) -> str:
    error = exc.errors()[0]
    loc = tuple(str(part) for part in error["loc"])
    dotted = ".".join(loc) or "(top level)"
    origin = _origin_of(loc, origins)
    kind = error["type"]
    if loc and loc[-1] == "[key]":
        section, name = loc[0], loc[-2]
        return f"{origin}: unknown {section[:-1]} '{name}' under '{section}'; use one of " + ", ".join(
            _known_keys((section,))
        )
    if kind == "extra_forbidden":
        parent = loc[:-1]
        known = _known_keys(parent)
        hint = difflib.get_close_matches(loc[-1], known, n=1)
        suggestion = f"; did you mean '{hint[0]}'?" if hint else f"; known keys: {', '.join(known)}"
        return f"{origin}: unknown key '{dotted}'{suggestion}"
    if kind == "missing":
        return f"{CONFIG_FILE}: required key '{dotted}' is missing; add it"
    if kind in {"enum", "literal_error"}:
        allowed = error.get("ctx", {}).get("expected", "")
        value = error.get("input")
        return f"{origin}: '{dotted}' cannot be '{value}'; use one of {allowed}"
    message = error["msg"].removeprefix("Value error, ")
    if not loc:
        return f"{CONFIG_FILE}: {message}"
    return f"{origin}: '{dotted}': {message}"


def _origin_of(loc: tuple[str, ...], origins: dict[tuple[str, ...], str]) -> str:
    """Where the key at ``loc`` was given: its line (or its section's), or the environment variable that
    gave it or a key below it (``LOOPLINE_WORKSPACE__DEV__TRACKING_URI`` gives the unknown ``workspace``)."""
    for end in range(len(loc), 0, -1):
        if loc[:end] in origins:
            return origins[loc[:end]]
    return next((origin for key, origin in origins.items() if key[: len(loc)] == loc), CONFIG_FILE)


def _known_keys(parent: tuple[str, ...]) -> list[str]:
    sections: dict[tuple[str, ...], type[BaseModel]] = {
        (): ProjectConfig,
        ("model",): ModelConfig,
        ("training",): TrainingConfig,
        ("gate",): GateConfig,
        ("state",): StateConfig,
        ("serving",): ServingConfig,
        ("sandbox",): SandboxConfig,
        ("validation",): ValidationConfig,
        ("release",): ReleaseConfig,
        ("batch",): BatchConfig,
        ("compute",): ComputeConfig,
        ("monitoring",): MonitoringConfig,
        ("release", "approvals"): ApprovalsConfig,
        ("notifications",): NotificationsConfig,
        ("sweep",): SweepConfig,
        ("sweep", "objective"): ObjectiveConfig,
        ("sweep", "pruning"): PruningConfig,
        ("control_plane",): ControlPlaneConfig,
        ("audit",): AuditConfig,
    }
    if parent in sections:
        return list(sections[parent].model_fields)
    if parent == ("workspaces",):
        return list(STORE_NAMES)
    if parent == ("datastores",):
        return list(DATASTORES)
    if len(parent) == 2 and parent[0] == "workspaces":
        return list(StoreConfig.model_fields)
    if len(parent) == 2 and parent[0] == "datastores":
        return list(DatastoreConfig.model_fields)
    if len(parent) == 3 and parent[:2] == ("notifications", "webhooks"):
        return list(WebhookConfig.model_fields)
    return []


def redact(uri: str) -> str:
    """``uri`` with any password replaced by ``***``: all of it, also where it holds characters a URL
    reserves (``@``, ``/``, ``#``) written as they are rather than encoded (the address is after the last
    ``@`` then)."""
    parts = url_password(uri)
    return uri if parts is None else f"{parts[0]}:***{parts[2]}"
