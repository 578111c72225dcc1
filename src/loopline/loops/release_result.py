"""What a release or a rollback of an online endpoint did (``outer-loop prod``, ``rollback``)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

__all__ = ["ReleaseResult"]


@dataclass
class ReleaseResult:
    """What ``outer-loop prod`` (or ``rollback``) did."""

    model: str
    git_commit: str
    version: int
    endpoint: str
    deployment: str
    previous: dict[str, Any] | None
    changed: bool
    message: str
    steps: list[dict[str, Any]] = field(default_factory=list)
    reason: str | None = None
    temporary_server: bool = False
    batch_moved: list[dict[str, Any]] = field(default_factory=list)
    """The batch endpoints whose default followed (``release.batch_endpoints``): endpoint, deployment,
    previous default."""
    batch_behind: list[dict[str, Any]] = field(default_factory=list)
    """The workspace's batch endpoints whose default scores with another commit (``batch/behind.py``)."""

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready mapping."""
        return dict(self.__dict__)
