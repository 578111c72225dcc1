"""What every part of the SDK facade shares: the project argument and how it is opened."""

from __future__ import annotations

import os

from loopline.domain import Tier
from loopline.errors import NotFound, UsageError
from loopline.instance import Instance

PathLike = str | os.PathLike[str]


def tier_of(value: str | Tier) -> Tier:
    try:
        return Tier(value)
    except ValueError:
        raise UsageError(
            f"tier '{value}' does not exist; use one of {', '.join(t.value for t in Tier)}"
        ) from None


def provisioned(project: PathLike | None) -> Instance:
    instance = Instance.open(project)
    instance.db.require_current(instance.root)
    return instance


def commit_filter(instance: Instance, commit: str | None) -> str | None:
    """A commit a listing is filtered by: hex digits as the prefix they are, a git ref of the project's
    repository (``HEAD``, a tag) as the full SHA it names."""
    from loopline.git import commit_prefix

    return None if commit is None else commit_prefix(instance.root, commit)


def endpoint_workspace(instance: Instance, endpoint: str | None, workspace: str | None) -> str:
    """The workspace of an endpoint named by a caller: given, else that of the only endpoint of the name,
    else prod (for the prod endpoint, and for history that outlived its endpoint)."""
    if workspace:
        instance.require_workspace(workspace)
    if workspace is not None or endpoint is None:
        return workspace or "prod"
    from loopline.endpoints import service

    try:
        return service.get_endpoint(instance, endpoint).workspace
    except NotFound:
        return "prod"
