"""Batch endpoints that follow prod's online endpoint: ``release.batch_endpoints`` names the prod batch
endpoints whose default moves with each release and each rollback to a deployment of the same version
(made where the endpoint has none, with the compute target and output file of the default it replaces).
The others are only named where their default scores with another commit (``batch/behind.py``)."""

from __future__ import annotations

from typing import Any

from loopline import failpoints
from loopline.batch import service
from loopline.batch.behind import batch_behind
from loopline.domain import ModelVersionInfo
from loopline.errors import ConfigError, LooplineError, NotFound
from loopline.instance import Instance
from loopline.loops.outer import PROD, deployment_name
from loopline.loops.release_result import ReleaseResult
from loopline.progress import Reporter

__all__ = ["check_followers", "follow"]


def check_followers(instance: Instance) -> None:
    """Refuse, before a release moves anything, where ``release.batch_endpoints`` names a batch endpoint
    that prod does not have."""
    for name in instance.settings.config.release.batch_endpoints:
        try:
            service.get_batch_endpoint(instance, name, PROD)
        except NotFound:
            raise ConfigError(
                f"release.batch_endpoints names batch endpoint '{name}', which prod does not have: create it "
                f"(`loopline batch-endpoint create {name} --workspace prod`) or take it out of the list"
            ) from None


def follow(
    instance: Instance, result: ReleaseResult, version: ModelVersionInfo, why: str, reporter: Reporter
) -> None:
    """Move the default of each batch endpoint of ``release.batch_endpoints`` to prod's ``version``, which
    the online endpoint now serves (``why`` goes into the audit log); then name in ``result`` those moved
    and every batch endpoint of prod still scoring with another commit. One that cannot follow (its
    default changed meanwhile, a deployment it cannot have) is said and stays behind: the online
    endpoint's move stands. Nothing for a version of another workspace than prod."""
    if version.workspace != PROD:
        return
    failpoints.hit("batch-follow")
    for name in instance.settings.config.release.batch_endpoints:
        try:
            moved = _follow(instance, name, version, why)
        except LooplineError as exc:
            reporter.step(f"batch endpoint {name} did not follow: {exc.message}")
            continue
        if moved is not None:
            reporter.step(f"batch endpoint {name} scores with {moved['deployment']} now")
            result.batch_moved.append(moved)
    result.batch_behind = batch_behind(instance, PROD, version.name, version.git_commit)


def _follow(instance: Instance, name: str, version: ModelVersionInfo, why: str) -> dict[str, Any] | None:
    info = service.get_batch_endpoint(instance, name, PROD)
    current = info.deployment(None)
    if current is not None and (current.model, current.git_commit) == (version.name, version.git_commit):
        return None
    same = [d for d in info.deployments if (d.model, d.git_commit) == (version.name, version.git_commit)]
    if same:
        chosen = same[0].name
    else:
        chosen = deployment_name(version)
        service.create_batch_deployment(
            instance,
            name,
            chosen,
            version.name,
            version=version.version,
            workspace=PROD,
            compute=current.compute if current else None,
            output_file=current.output_file if current else None,
        )
    service.promote(instance, name, chosen, expected_current=info.default, workspace=PROD, reason=why)
    return {"endpoint": name, "deployment": chosen, "previous": info.default}
