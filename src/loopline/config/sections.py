"""The sections of ``loopline.yaml``, one pydantic model each, and the model of the whole file."""

from __future__ import annotations

import re
from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from loopline.config.fields import SimpleName, Strict, Url
from loopline.config.team import AuditConfig, ControlPlaneConfig, NotificationsConfig, StateConfig
from loopline.domain import Tier, canary_steps, parse_duration
from loopline.errors import UsageError


class StoreConfig(Strict):
    """Where one workspace (or the shared registry) keeps its MLflow store and model files."""

    tracking_uri: Url = Field(None, description="MLflow tracking URI; default a SQLite file.")
    registry_uri: Url = Field(None, description="MLflow registry URI; default the tracking URI.")
    artifact_location: str | None = Field(None, description="Where runs' artifacts go.")
    model_store: str | None = Field(
        None, description="Content-addressed model files; stores that share it share bytes."
    )
    endpoints_url: str | None = Field(
        None, description="Base URL where this workspace's online endpoints are served."
    )


class ModelConfig(Strict):
    """The model the training entry point logs."""

    name: SimpleName = Field(description="Registered model name.")
    artifact_path: str = Field(
        "model",
        description="The name the entry point logs the model under (when unset and the training logs "
        "one model, that one).",
    )
    select: Literal["only", "last", "best"] = Field(
        "only",
        description="When several runs of one training log that model: only = refuse, last = the newest, "
        "best = the first by the ranking file.",
    )
    ranking: str = Field(
        "ranking.yaml",
        description="Ranking file (primary metric, weighted secondary metrics, constraints) for `select: "
        "best` and `loopline compare`, relative to the project root.",
    )


class TrainingConfig(Strict):
    """How the inner loop trains."""

    command: str = Field(
        "python train.py",
        description="Training entry point, run in the project root; a line of shell syntax (make data && "
        "python train.py, DATA=... python train.py) runs through /bin/sh.",
    )
    experiment: str | None = Field(None, description="MLflow experiment in dev; default: the project.")
    timeout_seconds: float = Field(3600, gt=0, description="Kill training after this long.")
    paths: list[str] | None = Field(
        None,
        description="Paths, relative to the project, whose changes make a new model (for a project in a "
        'folder of a larger repository: ["."], and any shared code it imports); !PATTERN leaves files out '
        '(["." , "!*.md", "!tests"]). A commit that changed none of them since its newest ancestor with a '
        "version takes that version and trains nothing. Default: every commit trains.",
    )
    inputs: dict[str, str] = Field(
        default_factory=dict,
        description="Data assets the training reads, as INPUT: ASSET (its newest version) or ASSET:VERSION. "
        "Each is copied (verified) under .loopline/inputs/ before the training starts; its path replaces "
        "{inputs.INPUT} in the command and is in LOOPLINE_INPUTS (JSON), and the runs record the versions.",
    )

    @field_validator("inputs")
    @classmethod
    def _input_names(cls, value: dict[str, str]) -> dict[str, str]:
        for name in value:
            if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name):
                raise ValueError(f"training.inputs name '{name}' must be letters, digits and '_'")
        return value


class GateConfig(Strict):
    """The inner loop's gate."""

    file: str = Field("gate.yaml", description="Metric thresholds file, relative to the project root.")
    evaluation_data: str | None = Field(
        None,
        description="Labelled data: a data asset (NAME or NAME:VERSION), else a file in the inbox "
        "datastore (CSV or Parquet; label and task as in `validation`): loopline scores a model trained "
        "elsewhere on it and gates on the metrics it computed itself, not on the uploader's claims.",
    )


class AttestationConfig(Strict):
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


class RegistryConfig(Strict):
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


class ServingConfig(Strict):
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
    model_timeout_seconds: float = Field(
        60,
        gt=0,
        description="A chat model or agent that has not answered a request within this time: 504.",
    )


_VARIABLE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_LOOPLINE_S = ("LOOPLINE_", "MLFLOW_")  # loopline's own settings and credentials, and MLflow's


class SandboxConfig(Strict):
    """What model code is given beyond its files, where it runs in the sandbox (loopline's checks, batch
    jobs, monitoring): for an agent that calls an LLM's API, its key and the API's port."""

    environment: list[str] = Field(
        [], description="Variables of loopline's environment model code gets, by name (an LLM's API key)."
    )
    connect_ports: list[int] = Field(
        [], description="TCP ports model code may connect to, on any host (443: an API over HTTPS)."
    )

    @field_validator("environment")
    @classmethod
    def _named_variables(cls, names: list[str]) -> list[str]:
        for name in names:
            if not _VARIABLE.match(name):
                raise ValueError(f"'{name[:60]}' is no environment variable's name")
            if name.upper().startswith(_LOOPLINE_S):
                raise ValueError(
                    f"{name} is loopline's or MLflow's own setting, which model code never gets; name the "
                    "variables the model itself reads (OPENAI_API_KEY, say)"
                )
        return names

    @field_validator("connect_ports")
    @classmethod
    def _ports(cls, ports: list[int]) -> list[int]:
        for port in ports:
            if not 0 < port < 65536:
                raise ValueError(f"{port} is no TCP port (1 to 65535)")
        return ports


class ThresholdBound(Strict):
    """A metric's bounds."""

    min: float | None = None
    max: float | None = None


# What outer-loop test measures on held-out rows, by task (``loopline.answer_metrics.metrics_for``), the
# usual comparison first; roc_auc and log_loss of a classifier answering probabilities only.
MEASURED: dict[str, tuple[str, ...]] = {
    "classification": ("accuracy", "precision", "recall", "f1", "roc_auc", "log_loss"),
    "regression": ("rmse", "mae", "r2"),
}


class ValidationConfig(Strict):
    """How ``outer-loop test`` validates a candidate in the test workspace."""

    endpoint: str | None = Field(None, description="The test workspace's endpoint (default: PROJECT-test).")
    data: str = Field(
        "heldout.csv",
        description="Held-out rows with their labels: a data asset (NAME or NAME:VERSION), else a file in "
        "the inbox datastore (CSV or Parquet).",
    )
    label: str | list[str] = Field(
        "label",
        description="The column holding the true labels; of a model answering several values a row (a "
        "multi-output regressor), a list of columns, one for each of its outputs in their order.",
    )
    task: Literal["classification", "regression"] = "classification"
    thresholds: dict[str, ThresholdBound] = Field(
        default_factory=lambda: {"accuracy": ThresholdBound(min=0.9)},
        description="Metrics computed through the endpoint on the held-out data, and their bounds.",
    )
    challenger_metric: str | None = Field(
        None,
        description="The metric the candidate is compared on (default: the first of thresholds; with no "
        "thresholds, accuracy for classification and rmse for regression).",
    )
    challenger_margin: float = Field(0.01, ge=0, description="How much worse than the champion is tolerated.")
    challenger_better: Literal["higher", "lower"] | None = Field(
        None,
        description="Whether more or less of challenger_metric is better (default: as its name says, lower "
        "for errors, losses and the like: rmse, mae, mape, log_loss, davies_bouldin, ...; else higher).",
    )
    command: str | None = Field(
        None,
        description="A command that measures a deployment through the endpoint and writes its metrics "
        "(a JSON object of numbers) to the file $LOOPLINE_METRICS, run in the project folder for the "
        "candidate and for the champion; its metrics take the place of loopline's own on held-out data.",
    )
    command_timeout_minutes: float = Field(
        30, gt=0, description="How long one run of validation.command may take."
    )
    latency_p95_ms: float = Field(250, gt=0, description="p95 of single-row requests through the endpoint.")
    latency_requests: int = Field(50, gt=0, le=10000, description="How many requests measure latency.")

    @property
    def label_columns(self) -> tuple[str, ...]:
        """The columns of true values: one, or one for each output of a model answering several."""
        return (self.label,) if isinstance(self.label, str) else tuple(self.label)

    @property
    def measured(self) -> tuple[str, ...]:
        """What loopline measures for the task; of several label columns, each measure averaged over them
        and each of each column, named ``MEASURE_COLUMN`` (``mae_heating_load``)."""
        usual = MEASURED[self.task]
        columns = self.label_columns
        return usual if len(columns) == 1 else (*usual, *(f"{m}_{c}" for c in columns for m in usual))

    @field_validator("label")
    @classmethod
    def _columns(cls, value: str | list[str]) -> str | list[str]:
        if isinstance(value, list):
            if not value or len(set(value)) != len(value) or not all(v.strip() for v in value):
                raise ValueError(
                    "a list of label columns names each column once, at least one: one for each value the "
                    "model answers a row, in their order"
                )
            return value[0] if len(value) == 1 else value
        return value

    @property
    def compared_on(self) -> str:
        """The challenger check's metric: ``challenger_metric``, else the first threshold's, else the
        task's usual one."""
        return self.challenger_metric or next(iter(self.thresholds), MEASURED[self.task][0])

    @model_validator(mode="after")
    def _measured(self) -> ValidationConfig:
        """Without a command of the project, the metrics named must be ones loopline measures for the task
        (else the first validation fails after its deployments, or a champion's is compared on nothing)."""
        if self.command is not None:
            return self
        measured = self.measured
        told = f"a {self.task} validation measures {', '.join(measured)}"
        unmeasured = [name for name in self.thresholds if name not in measured]
        if unmeasured and "thresholds" not in self.model_fields_set:
            raise ValueError(
                f"{told}, and thresholds defaults to a classifier's ({unmeasured[0]}): give the task's, for "
                f"example thresholds: {{{MEASURED[self.task][-1]}: {{min: 0.5}}}}"
            )
        if unmeasured:
            raise ValueError(
                f"{told}, not {', '.join(unmeasured)}: bound those in thresholds, or measure others with "
                "validation.command"
            )
        if self.challenger_metric is not None and self.challenger_metric not in measured:
            raise ValueError(
                f"{told}, not {self.challenger_metric} (challenger_metric): compare on one of those, or "
                "measure others with validation.command"
            )
        return self


class ApprovalsConfig(Strict):
    """Approvals that ``outer-loop prod`` needs: by users other than the one who asked for the release."""

    required: int = Field(0, ge=0, le=10, description="Approvals a release needs (0: none).")
    approvers: list[str] = Field(
        default_factory=list,
        description="Who may approve: user names, or a role on prod as `role:releaser` or `role:admin` "
        "(default: anyone holding the releaser role on prod).",
    )
    expires_after: str = Field("24h", description="How long an approval stands, e.g. 30m, 24h, 7d.")
    github_environment: str | None = Field(
        None,
        description="In GitHub Actions, an approved deployment review of this protected environment for "
        "the workflow run counts as one approval, recorded with the run's URL.",
    )

    @field_validator("approvers")
    @classmethod
    def _approver_names(cls, values: list[str]) -> list[str]:
        for value in values:
            if value.startswith("role:") and value[5:] not in ("releaser", "admin"):
                raise ValueError(f"'{value}': approvers by role are role:releaser or role:admin")
        return values

    @field_validator("expires_after")
    @classmethod
    def _duration(cls, value: str) -> str:
        try:
            parse_duration(value)
        except UsageError as exc:
            raise ValueError(exc.message) from None
        return value


class ReleaseConfig(Strict):
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
    max_rejected_rise: float = Field(
        0.05,
        ge=0,
        le=1,
        description="Largest rise a step may see in the share of requests refused (4xx) over the "
        "deployment it replaces: requests the live model took that the new one refuses.",
    )
    min_requests: int = Field(
        20, ge=0, description="Fewer requests in a window than this: the step is not judged."
    )
    too_few_requests: Literal["proceed", "roll-back"] = Field(
        "proceed",
        description="A watched step that saw fewer than min_requests: go on to the next step, or roll "
        "back as at a breach (a release then needs the evidence of live traffic).",
    )
    keep_deployments: int = Field(
        2, ge=1, description="Deployments kept loaded (the live one and previous ones)."
    )
    require_validation: bool = Field(
        True, description="Full tier: only versions that passed outer-loop test."
    )
    batch_endpoints: list[str] = Field(
        default_factory=list,
        description="Prod batch endpoints whose default moves with each release and rollback to the "
        "version the online endpoint then serves.",
    )
    approvals: ApprovalsConfig = ApprovalsConfig()

    @field_validator("canary")
    @classmethod
    def _steps(cls, steps: list[int]) -> list[int]:
        try:
            return canary_steps(steps)
        except UsageError as exc:
            raise ValueError(exc.message) from None


class ParameterSpec(Strict):
    """One hyperparameter's search space: a range (``low``, ``high``; ``log``, ``step``) or ``choices``."""

    type: Literal["float", "int"] = Field("float", description="float or int, for a range.")
    low: float | None = Field(None, description="The smallest value of a range.")
    high: float | None = Field(None, description="The largest value of a range.")
    log: bool = Field(False, description="Draw on a log scale (for scales such as 0.001 to 10).")
    step: float | None = Field(None, gt=0, description="Only multiples of this above low.")
    choices: list[Any] | None = Field(None, description="Values to choose from instead of a range.")

    @model_validator(mode="after")
    def _range_or_choices(self) -> ParameterSpec:
        if self.choices is not None:
            if not self.choices or self.low is not None or self.high is not None:
                raise ValueError("give either a non-empty list of choices, or low and high")
            return self
        if self.low is None or self.high is None:
            raise ValueError("give low and high (a range), or choices")
        if self.low > self.high:
            raise ValueError(f"low ({self.low:g}) is above high ({self.high:g})")
        if self.log and self.low <= 0:
            raise ValueError("a log scale needs low above 0")
        return self


class ObjectiveConfig(Strict):
    """What a sweep optimises: a metric the training logs, and which way is better."""

    metric: str = Field("accuracy", description="A metric the training logs on the model's run.")
    direction: Literal["maximize", "minimize"] = Field("maximize", description="maximize or minimize.")


class PruningConfig(Strict):
    """When a trial that reports its objective step by step may be stopped early."""

    startup_trials: int = Field(3, ge=0, description="Trials that always run to the end first.")
    warmup_steps: int = Field(2, ge=0, description="Steps of each trial before it may be stopped.")


class SweepConfig(Strict):
    """``loopline sweep``: the search space, the objective, and where Optuna keeps the studies."""

    trials: int = Field(20, ge=1, le=10_000, description="Trials per commit (--trials overrides).")
    parallel: int = Field(
        1, ge=1, le=64, description="Trials at a time, each in its own git worktree of the commit "
        "(--parallel overrides)."
    )  # fmt: skip
    objective: ObjectiveConfig = ObjectiveConfig()
    parameters: dict[str, ParameterSpec] = Field({}, description="The search space, by parameter name.")
    params_file: str = Field(
        "params.yaml", description="The file the training reads its parameters from; each trial's values "
        "are written over it for the trial (when it exists), then it is restored."
    )  # fmt: skip
    command: str | None = Field(
        None, description="The training command for trials, with {name} placeholders for the values "
        "(default: training.command)."
    )  # fmt: skip
    seed: int | None = Field(None, description="Seed of Optuna's sampler, for repeatable sweeps.")
    pruner: Literal["median", "none"] = Field(
        "median",
        description="median: stop a trial whose objective, logged step by step (mlflow.log_metric(..., "
        "step=)), is below the median of earlier trials at the same step; none: every trial runs to its end.",
    )
    pruning: PruningConfig = PruningConfig()
    storage: str | None = Field(
        None, description="Optuna's storage URL (default: a SQLite file under .loopline/); a database "
        "URL lets a team see, and go on with, each other's sweeps."
    )  # fmt: skip


class BatchConfig(Strict):
    """How batch jobs read and write."""

    chunk_rows: int = Field(50_000, gt=0, description="Most rows scored at once.")
    max_chunk_mb: float = Field(
        256, gt=0, description="Memory cap of one chunk; chunks shrink to stay below."
    )


class RayTargetConfig(Strict):
    """A Ray cluster, reached through its Jobs API: training runs as a Ray job, batch scoring as a job
    whose driver feeds an actor pool of Ray Data."""

    kind: Literal["ray"] = Field(description="The engine: ray.")
    address: str = Field(description="The cluster's Jobs API (its dashboard), e.g. http://head:8265.")
    num_cpus: float = Field(
        1, ge=0, description="CPUs for the training job, and for each batch scoring actor."
    )
    num_gpus: float = Field(
        0, ge=0, description="GPUs for the training job, and for each batch scoring actor."
    )
    memory_mb: int | None = Field(None, gt=0, description="Memory reserved for the training job, in MiB.")
    pip: list[str] = Field([], description="Packages the cluster installs for a job (Ray's runtime_env pip).")
    workers: int = Field(2, gt=0, le=1000, description="Batch scoring actors, each loading the model once.")

    @field_validator("address")
    @classmethod
    def _address_is_http(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError("give the Ray Jobs API's URL (the dashboard), e.g. http://head:8265")
        return value.rstrip("/")


class ComputeConfig(Strict):
    """Where training and batch scoring run: ``local`` (this process's machine) or a named target."""

    default: str = Field("local", description="The target used when a command names none.")
    targets: dict[SimpleName, RayTargetConfig] = Field({}, description="Named compute targets.")

    @model_validator(mode="after")
    def _default_is_known(self) -> ComputeConfig:
        if "local" in self.targets:
            raise ValueError("'local' is this machine; name the target otherwise")
        if self.default != "local" and self.default not in self.targets:
            known = ", ".join(["local", *self.targets])
            raise ValueError(f"default '{self.default}' is not a target (known: {known})")
        return self


class MonitoringConfig(Strict):
    """What online endpoints keep for monitoring, and what a check needs."""

    sample_size: int = Field(5000, ge=0, description="Requests kept per deployment (older ones rotate out).")
    sample_per_second: float = Field(
        20,
        ge=0,
        description="Rows sampled per second per serving process (of all the rows scored, at random).",
    )
    min_samples: int = Field(300, gt=0, description="Fewer samples in the window: insufficient evidence.")
    window: str = Field("1h", description="The default window of `monitor check`, e.g. 30m, 1h, 1d.")
    reference_artifact: str = Field(
        "reference_data.parquet", description="A run artifact of training features."
    )
    reference_data: str | None = Field(
        None,
        description="A data asset (NAME or NAME:VERSION) of training rows, the reference of a model whose "
        "run logged no reference_artifact.",
    )
    policy: str = Field(
        "monitoring/policy.yaml", description="The policy `policy evaluate` applies by default."
    )


class DatastoreConfig(Strict):
    """A datastore's location."""

    url: str | None = Field(None, description="A folder or an fsspec URL.")
    seed: str | None = Field(
        None, description="A project folder whose files `loopline up` copies in when they are missing."
    )


class ProjectConfig(Strict):
    """The whole of ``loopline.yaml``."""

    project: SimpleName
    tier: Tier
    model: ModelConfig
    training: TrainingConfig = TrainingConfig()
    sweep: SweepConfig = SweepConfig()
    gate: GateConfig = GateConfig()
    registry: RegistryConfig = RegistryConfig()
    state: StateConfig = StateConfig()
    serving: ServingConfig = ServingConfig()
    sandbox: SandboxConfig = SandboxConfig()
    validation: ValidationConfig = ValidationConfig()
    release: ReleaseConfig = ReleaseConfig()
    batch: BatchConfig = BatchConfig()
    compute: ComputeConfig = ComputeConfig()
    monitoring: MonitoringConfig = MonitoringConfig()
    control_plane: ControlPlaneConfig = ControlPlaneConfig()
    audit: AuditConfig = AuditConfig()
    notifications: NotificationsConfig = NotificationsConfig()
    workspaces: dict[Literal["dev", "test", "prod", "shared"], StoreConfig] = Field({})
    datastores: dict[Literal["inbox", "predictions"], DatastoreConfig] = Field({})

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

    @model_validator(mode="after")
    def _servers_get_shared_model_files(self) -> ProjectConfig:
        for name, store in self.workspaces.items():
            registry = store.registry_uri or store.tracking_uri or ""
            if registry.split("://", 1)[0].lower() in {"http", "https"} and "://" not in (
                store.model_store or ""
            ):
                # An MLflow server refuses versions whose files are on a disk of one of its clients (which
                # its other clients could not read anyway).
                raise ValueError(
                    f"workspaces.{name}.model_store: {name}'s registry is an MLflow server ({registry}), "
                    "which registers model files only from storage every machine reads, not a local folder; "
                    "set it to an object store (az://container/models, s3://bucket/models, gs://...)"
                )
        return self
