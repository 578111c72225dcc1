"""An opened loopline instance: its settings, database, stores and the acting user."""

from __future__ import annotations

import getpass
import os
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from functools import cached_property
from pathlib import Path

from loopline import notifications
from loopline.config import Settings, load_config
from loopline.config.fields import SIMPLE_NAME_RULE, is_simple_name
from loopline.domain import SHARED, ModelVersionInfo
from loopline.errors import ConfigError, TierDisabled, UsageError, shorten
from loopline.mlflow_store import WorkspaceStore
from loopline.state import Database
from loopline.storage.datastores import Datastore
from loopline.storage.models import ModelStore, open_model_store, store_holding

__all__ = ["Instance", "acting_as", "current_actor", "require_durable"]

_ACTING_AS: ContextVar[str | None] = ContextVar("loopline_acting_as", default=None)


@contextmanager
def acting_as(user: str) -> Iterator[None]:
    """Name ``user`` as the actor of everything done in this context (the control plane's callers)."""
    token = _ACTING_AS.set(user)
    try:
        yield
    finally:
        _ACTING_AS.reset(token)


def current_actor(root: Path | None = None) -> str:
    """Who is acting: the control plane's caller, else ``LOOPLINE_USER``, else the GitHub actor in Actions,
    else git's user, else the login."""
    if (user := _ACTING_AS.get()) is not None:
        return user
    for variable in ("LOOPLINE_USER", "GITHUB_ACTOR"):
        if os.environ.get(variable):
            return os.environ[variable]
    try:
        email = subprocess.run(
            ["git", "config", "user.email"], cwd=root, capture_output=True, text=True, check=False
        ).stdout.strip()
    except OSError:
        email = ""
    if email:
        return email
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"


def _on_disk(location: str) -> bool:
    """True for a SQLite file, a folder or a ``file://`` URL: storage on this machine's disk."""
    if location.split("://", 1)[0] in {"databricks", "databricks-uc"}:  # MLflow's names for Databricks
        return False
    return location.startswith(("sqlite:", "file:")) or "://" not in location


def require_durable(settings: Settings) -> None:
    """On a GitHub-hosted runner, whose disk is gone when the job ends, refuse stores kept on that disk:
    the job would report a model registered or released that no later job could find."""
    if (
        os.environ.get("RUNNER_ENVIRONMENT") != "github-hosted"
        or os.environ.get("LOOPLINE_LOCAL_RUN") == "true"
    ):
        return
    local = ["loopline's database (state.url)"] if _on_disk(settings.state_url) else []
    for name in (*settings.workspaces, SHARED):
        location = settings.store(name)
        if _on_disk(location.tracking_uri) or _on_disk(location.registry_uri):
            local.append(f"{name}'s MLflow store")
        if _on_disk(location.model_store):
            local.append(f"{name}'s model files")
    if local:
        raise ConfigError(
            f"this job runs on a GitHub-hosted runner, whose disk is gone when the job ends, and "
            f"{', '.join(local)} would be kept on it: point them at stores the runner reaches (the "
            'repository secrets of docs/workflows.md, "Secrets", and model_store in loopline.yaml), or set '
            "the secrets LOOPLINE_URL and LOOPLINE_TOKEN for a control plane"
        )


class Instance:
    """One project's platform, opened from its ``loopline.yaml``."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._stores: dict[str, WorkspaceStore] = {}

    @classmethod
    def open(cls, project: str | os.PathLike[str] | None = None) -> Instance:
        """Load the configuration of the project at or above ``project`` (default: cwd)."""
        return cls(load_config(project))

    @property
    def root(self) -> Path:
        """The project's root folder."""
        return self.settings.root

    @cached_property
    def db(self) -> Database:
        """loopline's own database."""
        require_durable(self.settings)
        # Webhooks hear of the events a write appended once it commits (notifications.py).
        hooked = bool(self.settings.config.notifications.webhooks)
        return Database(
            self.settings.state_url,
            after_events=self._events_committed if hooked else None,
            project=self.root,
        )

    def _events_committed(self, seqs: list[int]) -> None:
        notifications.kick(self.settings, self.db, seqs)

    @cached_property
    def actor(self) -> str:
        """Who the audit log names for this process's actions."""
        return current_actor(self.root)

    @property
    def store_names(self) -> tuple[str, ...]:
        """Every store of the tier: its workspaces, then the shared registry."""
        return (*self.settings.workspaces, SHARED)

    def model_name(self, given: str | None) -> str:
        """The registered model a command names (``--model``), or model.name of loopline.yaml; a name no
        registry path or URL can hold is refused before anything runs."""
        if given is None or given == "":
            return self.settings.config.model.name
        if not is_simple_name(given):
            raise UsageError(f"model name '{shorten(given, 100)}' cannot be registered: {SIMPLE_NAME_RULE}")
        return given

    def require_workspace(self, name: str) -> None:
        """Refuse a workspace the tier does not have."""
        if name not in self.store_names:
            raise TierDisabled(
                what=f"workspace '{name}'",
                tier=self.settings.tier.value,
                hint=f"this instance has {', '.join(self.store_names)}",
            )

    def store(self, name: str) -> WorkspaceStore:
        """The MLflow store of workspace ``name`` (or of the shared registry)."""
        self.require_workspace(name)
        if name not in self._stores:
            self._stores[name] = WorkspaceStore(self.settings.store(name))
        return self._stores[name]

    def use_store(self, name: str, store: WorkspaceStore) -> None:
        """Use ``store`` as workspace ``name``'s MLflow store in this process (e.g. a scratch store)."""
        self._stores[name] = store

    def model_store(self, name: str) -> ModelStore:
        """The content-addressed model files of workspace ``name``."""
        return open_model_store(self.settings.store(name).model_store)

    def model_store_holding(self, version: ModelVersionInfo) -> ModelStore:
        """The model store that holds ``version``'s files (``store_holding``): its workspace's, or the one
        its MLflow source names where the workspace's has moved since it was registered."""
        return store_holding(self.model_store(version.workspace), version.content_digest, version.source_uri)

    def model_files(self, workspace: str, digest: str, source_uri: str) -> Path:
        """The checked local folder of a version's files (a deployment's: ``workspace``, its content
        ``digest`` and MLflow ``source_uri``), wherever ``store_holding`` finds them."""
        return store_holding(self.model_store(workspace), digest, source_uri).verify(digest)

    def datastore(self, name: str) -> Datastore:
        """The ``inbox`` or ``predictions`` datastore."""
        return Datastore(name, self.settings.datastore(name))

    @property
    def logs_dir(self) -> Path:
        """Where training logs go."""
        path = self.settings.state_dir / "logs"
        path.mkdir(parents=True, exist_ok=True)
        return path
