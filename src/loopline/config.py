"""``loopline.yaml``: one pydantic model, ``LOOPLINE_`` environment overrides, and resolved locations.

``load_config(root)`` reads the file, lays environment overrides over it (``LOOPLINE_TIER=full``,
``LOOPLINE_WORKSPACES__PROD__TRACKING_URI=postgresql://...``: ``__`` separates nested keys), validates
the result, and names the offending key, with its line in the file or its environment variable, when
something is wrong.
"""

from __future__ import annotations

import difflib
import ipaddress
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from loopline.domain import SHARED, TIER_WORKSPACES, Tier, canary_steps
from loopline.errors import ConfigError, ProjectNotFound, UsageError

__all__ = [
    "CONFIG_FILE",
    "DATASTORES",
    "ENV_PREFIX",
    "ProjectConfig",
    "Settings",
    "StoreLocation",
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

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class StoreConfig(_Strict):
    """Where one workspace (or the shared registry) keeps its MLflow store and model files."""

    tracking_uri: str | None = Field(None, description="MLflow tracking URI; default a SQLite file.")
    registry_uri: str | None = Field(None, description="MLflow registry URI; default the tracking URI.")
    artifact_location: str | None = Field(None, description="Where runs' artifacts go.")
    model_store: str | None = Field(
        None, description="Content-addressed model files; stores that share it share bytes."
    )
    endpoints_url: str | None = Field(
        None, description="Base URL where this workspace's online endpoints are served."
    )


class ModelConfig(_Strict):
    """The model the training entry point logs."""

    name: str = Field(description="Registered model name.")
    artifact_path: str = Field(
        "model",
        description="The name the entry point logs the model under (when unset and the training logs "
        "one model, that one).",
    )
    select: Literal["only", "last"] = Field(
        "only",
        description="When several runs of one training log that model: only = refuse, last = the newest.",
    )

    @field_validator("name")
    @classmethod
    def _name_is_simple(cls, value: str) -> str:
        if not _NAME.match(value):
            raise ValueError("use letters, digits, '.', '_' and '-', starting with a letter or digit")
        return value


class TrainingConfig(_Strict):
    """How the inner loop trains."""

    command: str = Field("python train.py", description="Training entry point, run in the project root.")
    experiment: str | None = Field(None, description="MLflow experiment in dev; default: the project.")
    timeout_seconds: float = Field(3600, gt=0, description="Kill training after this long.")


class GateConfig(_Strict):
    """The inner loop's gate."""

    file: str = Field("gate.yaml", description="Metric thresholds file, relative to the project root.")
    evaluation_data: str | None = Field(
        None,
        description="Labelled data in the inbox datastore (CSV or Parquet; label and task as in "
        "`validation`): loopline scores a model trained elsewhere on it and gates on the metrics it "
        "computed itself, not on the uploader's claims.",
    )


class AttestationConfig(_Strict):
    """Which GitHub Actions OIDC tokens attest an inner-loop run."""

    issuer: str = Field(
        "https://token.actions.githubusercontent.com", description="The OIDC issuer whose keys sign tokens."
    )
    audience: str = Field("loopline", description="The audience the workflow requests its token for.")
    repository: str | None = Field(
        None, description="owner/name on GitHub; default: from the URL of `registry.remote`."
    )
    workflow: str = Field(
        ".github/workflows/inner-loop.yml", description="The workflow file allowed to attest runs."
    )


class RegistryConfig(_Strict):
    """What the shared registry accepts."""

    remote: str = Field(
        "origin", description="The git remote fetched before an uploaded run's commit is looked up."
    )
    require: Literal["any", "ci-attested"] = Field(
        "any",
        description="`ci-attested`: only a run carrying a GitHub Actions OIDC token for this repository, "
        "its commit and the inner-loop workflow is registered and shared.",
    )
    attestation: AttestationConfig = AttestationConfig()


class ServingConfig(_Strict):
    """How ``loopline serve`` answers."""

    max_body_bytes: int = Field(10 * 1024 * 1024, gt=0, description="Larger request bodies get 413.")
    max_batch_rows: int = Field(
        1024, gt=0, description="Most rows one model call scores for batched requests."
    )
    poll_seconds: float = Field(0.1, gt=0, le=1, description="How often servers look for changes.")
    request_log: bool = Field(True, description="One JSON line per request on stdout.")
    header_timeout_seconds: float = Field(
        10,
        gt=0,
        description="A request's headers must arrive within this time, else 408 and the connection closes.",
    )
    max_connections: int = Field(
        4096,
        gt=0,
        description="Connections one worker holds at most (within its open-file limit); over it, the longest "
        "idle one is closed, or the new one gets 503.",
    )


class ThresholdBound(_Strict):
    """A metric's bounds."""

    min: float | None = None
    max: float | None = None


class ValidationConfig(_Strict):
    """How ``outer-loop test`` validates a candidate in the test workspace."""

    endpoint: str | None = Field(None, description="The test workspace's endpoint (default: PROJECT-test).")
    data: str = Field("heldout.csv", description="Held-out data in the inbox datastore (CSV or Parquet).")
    label: str = Field("label", description="The column holding the true labels.")
    task: Literal["classification", "regression"] = "classification"
    thresholds: dict[str, ThresholdBound] = Field(
        default_factory=lambda: {"accuracy": ThresholdBound(min=0.9)},
        description="Metrics computed through the endpoint on the held-out data, and their bounds.",
    )
    challenger_metric: str = Field("accuracy", description="The metric the candidate is compared on.")
    challenger_margin: float = Field(0.01, ge=0, description="How much worse than the champion is tolerated.")
    latency_p95_ms: float = Field(250, gt=0, description="p95 of single-row requests through the endpoint.")
    latency_requests: int = Field(50, gt=0, le=10000, description="How many requests measure latency.")


class ReleaseConfig(_Strict):
    """How ``outer-loop prod`` releases and ``rollback`` returns."""

    endpoint: str | None = Field(None, description="The prod workspace's endpoint (default: the project).")
    canary: list[int] = Field(
        default_factory=list, description="Traffic steps for the new deployment, e.g. [10, 50, 100]."
    )
    watch_seconds: float = Field(30, ge=0, description="How long each canary step is watched.")
    max_error_rate: float = Field(
        0.01, ge=0, le=1, description="Largest share of 5xx answers a step may see."
    )
    max_p99_ms: float = Field(500, gt=0, description="Largest p99 latency a step may see.")
    min_requests: int = Field(
        20, ge=0, description="Fewer requests in a window than this: the step is not judged."
    )
    keep_deployments: int = Field(
        2, ge=1, description="Deployments kept loaded (the live one and previous ones)."
    )
    require_validation: bool = Field(
        True, description="Full tier: only versions that passed outer-loop test."
    )

    @field_validator("canary")
    @classmethod
    def _steps(cls, steps: list[int]) -> list[int]:
        try:
            return canary_steps(steps)
        except UsageError as exc:
            raise ValueError(exc.message) from None


class BatchConfig(_Strict):
    """How batch jobs read and write."""

    chunk_rows: int = Field(50_000, gt=0, description="Most rows scored at once.")
    max_chunk_mb: float = Field(
        256, gt=0, description="Memory cap of one chunk; chunks shrink to stay below."
    )


class MonitoringConfig(_Strict):
    """What online endpoints keep for monitoring, and what a check needs."""

    sample_size: int = Field(5000, ge=0, description="Requests kept per deployment (older ones rotate out).")
    sample_per_second: float = Field(
        20, ge=0, description="Rows sampled per second per serving process (of requests' rows, at random)."
    )
    min_samples: int = Field(300, gt=0, description="Fewer samples in the window: insufficient evidence.")
    window: str = Field("1h", description="The default window of `monitor check`, e.g. 30m, 1h, 1d.")
    reference_artifact: str = Field(
        "reference_data.parquet", description="A run artifact of training features."
    )
    policy: str = Field(
        "monitoring/policy.yaml", description="The policy `policy evaluate` applies by default."
    )


class ControlPlaneConfig(_Strict):
    """``loopline server``: failed sign-ins and the proxies in front of it."""

    max_failed_sign_ins: int = Field(
        10, gt=0, description="Failed sign-ins from one address within the window before it gets 429."
    )
    sign_in_window_seconds: float = Field(60, gt=0, description="The window failed sign-ins are counted in.")
    max_upload_mb: int = Field(8192, gt=0, description="Largest upload of a trained run (compressed).")
    max_upload_expanded_mb: int = Field(
        16384, gt=0, description="Largest total size of an upload's files once unpacked."
    )
    max_upload_files: int = Field(10_000, gt=0, description="Most files an upload may unpack to.")
    trusted_proxies: list[str] = Field(
        default_factory=list,
        description="Addresses or networks (CIDR) of reverse proxies whose X-Forwarded-For names the "
        "client; from anyone else the header is ignored.",
    )

    @field_validator("trusted_proxies", mode="before")
    @classmethod
    def _listed(cls, value: Any) -> Any:
        """A list, or (from an environment variable) addresses separated by commas."""
        if isinstance(value, str):
            return [part.strip() for part in value.split(",") if part.strip()]
        return value

    @field_validator("trusted_proxies")
    @classmethod
    def _networks(cls, values: list[str]) -> list[str]:
        for value in values:
            try:
                ipaddress.ip_network(value, strict=False)
            except ValueError:
                raise ValueError(f"'{value}' is not an IP address or network (like 10.0.0.0/8)") from None
        return values


class AuditConfig(_Strict):
    """Where ``loopline audit checkpoint`` keeps the signed heads of the audit log."""

    checkpoints: str | None = Field(
        None,
        description="A folder (relative to the project) or an fsspec URL (az://, s3://) that the database's "
        "writers cannot change; `audit verify` checks the log against the newest checkpoint there.",
    )


class StateConfig(_Strict):
    """loopline's own database (audit log, catalog, endpoints)."""

    url: str | None = Field(None, description="SQLAlchemy URL; default a SQLite file under .loopline/.")


class DatastoreConfig(_Strict):
    """A datastore's location."""

    url: str | None = Field(None, description="A folder or an fsspec URL.")
    seed: str | None = Field(
        None, description="A project folder whose files `loopline up` copies in when they are missing."
    )


class ProjectConfig(_Strict):
    """The whole of ``loopline.yaml``."""

    project: str
    tier: Tier
    model: ModelConfig
    training: TrainingConfig = TrainingConfig()
    gate: GateConfig = GateConfig()
    registry: RegistryConfig = RegistryConfig()
    state: StateConfig = StateConfig()
    serving: ServingConfig = ServingConfig()
    validation: ValidationConfig = ValidationConfig()
    release: ReleaseConfig = ReleaseConfig()
    batch: BatchConfig = BatchConfig()
    monitoring: MonitoringConfig = MonitoringConfig()
    control_plane: ControlPlaneConfig = ControlPlaneConfig()
    audit: AuditConfig = AuditConfig()
    workspaces: dict[Literal["dev", "test", "prod", "shared"], StoreConfig] = {}
    datastores: dict[Literal["inbox", "predictions"], DatastoreConfig] = {}

    @field_validator("project")
    @classmethod
    def _project_is_simple(cls, value: str) -> str:
        if not _NAME.match(value):
            raise ValueError("use letters, digits, '.', '_' and '-', starting with a letter or digit")
        return value

    @model_validator(mode="after")
    def _stores_are_isolated(self) -> ProjectConfig:
        seen: dict[str, str] = {}
        for name, store in self.workspaces.items():
            uri = store.tracking_uri
            if uri is None:
                continue
            if uri in seen:
                raise ValueError(
                    f"workspaces.{name}.tracking_uri is the same store as workspaces.{seen[uri]}; "
                    "workspaces are isolated, so give each its own"
                )
            seen[uri] = name
        return self


@dataclass(frozen=True)
class StoreLocation:
    """The resolved locations of one workspace's (or the registry's) stores."""

    name: str
    tracking_uri: str
    registry_uri: str
    artifact_location: str
    model_store: str

    @property
    def is_local_sqlite(self) -> bool:
        """True for the embedded default: a SQLite file on this machine."""
        return self.tracking_uri.startswith("sqlite:///")

    def to_dict(self) -> dict[str, str]:
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
        return StoreLocation(
            name=name,
            tracking_uri=tracking,
            registry_uri=registry,
            artifact_location=_resolve_location(given.artifact_location, self.root, base / "artifacts"),
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
        return self.config.validation.endpoint or f"{_slug(self.config.project)}-test"

    @property
    def prod_endpoint(self) -> str:
        """The prod workspace's endpoint name."""
        return self.config.release.endpoint or _slug(self.config.project)

    @property
    def experiment(self) -> str:
        """The MLflow experiment the inner loop trains in."""
        return self.config.training.experiment or self.config.project


def _slug(name: str) -> str:
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
    raise ProjectNotFound(path=here)


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
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise ConfigError(f"{CONFIG_FILE}{where}: not valid YAML: {problem}; fix the syntax there") from None
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
    for end in range(len(loc), 0, -1):
        if loc[:end] in origins:
            return origins[loc[:end]]
    return CONFIG_FILE


def _known_keys(parent: tuple[str, ...]) -> list[str]:
    sections: dict[tuple[str, ...], type[BaseModel]] = {
        (): ProjectConfig,
        ("model",): ModelConfig,
        ("training",): TrainingConfig,
        ("gate",): GateConfig,
        ("state",): StateConfig,
        ("serving",): ServingConfig,
        ("validation",): ValidationConfig,
        ("release",): ReleaseConfig,
        ("batch",): BatchConfig,
        ("monitoring",): MonitoringConfig,
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
    return []


def redact(uri: str) -> str:
    """``uri`` with any password replaced by ``***``."""
    return re.sub(r"(?<=://)([^/:@\s]+):[^@/\s]+@", r"\1:***@", uri)
