"""Compute targets: ``local`` (this machine, loopline's own processes) or a Ray cluster named in
``compute.targets`` of ``loopline.yaml``."""

from __future__ import annotations

from dataclasses import dataclass
from types import ModuleType
from urllib.parse import urlsplit

from loopline.config.sections import ComputeConfig, RayTargetConfig
from loopline.errors import ConfigError, UsageError

__all__ = ["LOCAL", "RayTarget", "resolve"]

LOCAL = "local"


@dataclass(frozen=True)
class RayTarget:
    """A Ray cluster, as ``loopline.yaml`` names it."""

    name: str
    settings: RayTargetConfig

    @property
    def address(self) -> str:
        """The Jobs API (the dashboard): where training jobs are submitted."""
        return self.settings.address

    @property
    def on_this_machine(self) -> bool:
        """True when the cluster's head is this machine (it can read this machine's files)."""
        return urlsplit(self.address).hostname in {"127.0.0.1", "localhost", "::1"}

    def import_ray(self) -> ModuleType:
        """Ray itself, or a UsageError saying how to install it."""
        try:
            import ray
            import ray.data
            import ray.job_submission
        except ImportError:
            raise UsageError(
                f"compute target '{self.name}' is a Ray cluster, and Ray is not installed here; "
                "install it with: pip install 'loopline[ray]'"
            ) from None
        return ray


def resolve(config: ComputeConfig, name: str | None, where: str = "--compute") -> RayTarget | None:
    """The target ``name`` (default ``compute.default``); None for ``local``. ``where`` says where the
    name came from, for the error when ``loopline.yaml`` has no such target."""
    chosen = name or config.default
    if chosen == LOCAL:
        return None
    settings = config.targets.get(chosen)
    if settings is None:
        known = ", ".join([LOCAL, *config.targets])
        where = where if name else "compute.default"
        raise (UsageError if where == "--compute" else ConfigError)(
            f"{where} names '{chosen}', which is not a compute target (known: {known}); "
            "add it under compute.targets in loopline.yaml"
        )
    return RayTarget(chosen, settings)
