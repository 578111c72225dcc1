"""The batch endpoints a release or a rollback leaves behind: those of the workspace whose default
deployment scores with another commit's version of the model than the one its online endpoint now serves
(the outer loop moves the online endpoint only; a batch endpoint's default moves with ``batch promote``)."""

from __future__ import annotations

from typing import Any

from loopline.batch.service import list_batch_endpoints
from loopline.instance import Instance

__all__ = ["batch_behind"]


def batch_behind(instance: Instance, workspace: str, model: str, git_commit: str) -> list[dict[str, Any]]:
    """Each batch endpoint of ``workspace`` whose default scores with a version of ``model`` from another
    commit than ``git_commit``: its name and workspace, the default deployment, and that version and
    commit."""
    found = []
    for info in list_batch_endpoints(instance):
        chosen = info.deployment(None)
        if info.workspace != workspace or chosen is None:
            continue
        if chosen.model == model and chosen.git_commit != git_commit:
            found.append(
                {
                    "endpoint": info.name,
                    "workspace": info.workspace,
                    "deployment": chosen.name,
                    "version": chosen.version,
                    "git_commit": chosen.git_commit,
                }
            )
    return found
