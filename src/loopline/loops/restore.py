"""A version deleted from a workspace's MLflow registry outside loopline, registered there again.

loopline's catalog is the record of the versions it made, and the model store holds their files by digest;
each workspace's MLflow registry shows them to MLflow's own clients. When someone deletes a version there
(the MLflow UI, a client's ``delete_model_version``) that a release, a rollback or a validation needs, the
same files are registered again, and the catalog, the aliases and the deployments follow the new number.
"""

from __future__ import annotations

from dataclasses import replace

from loopline import audit, catalog, registry
from loopline.domain import ModelVersionInfo
from loopline.endpoints.deployments import repin
from loopline.events import Registered
from loopline.instance import Instance
from loopline.progress import NullReporter, Reporter

__all__ = ["held"]


def held(instance: Instance, version: ModelVersionInfo, reporter: Reporter | None = None) -> ModelVersionInfo:
    """``version`` as its workspace's MLflow registry holds it: itself, or, where it was deleted there, its
    files registered again under a new number (audited, and said to ``reporter``), which loopline's catalog,
    the aliases that pointed at it (in MLflow too) and the deployments pinning it now carry."""
    if registry.in_mlflow(instance, version):
        return version
    number = registry.register_again(instance, version)
    where, name = version.workspace, version.name
    restored = replace(version, version=number)
    with instance.db.write() as connection:
        aliases = catalog.renumber(connection, version, number)
        repin(connection, restored, version.version)
        audit.append(
            connection,
            Registered(
                actor=instance.actor,
                workspace=where,
                model=name,
                version=number,
                git_commit=version.git_commit,
                source=f"{where}/{name}/{version.version}",
                target=f"{where}/{name}/{number}",
                reason=f"{where}'s MLflow registry no longer held v{version.version}",
                details={"restored": True, "content_digest": version.content_digest},
            ),
        )
    store = instance.store(where)
    for alias in aliases:
        store.set_alias(name, alias, number)
    (reporter or NullReporter()).step(
        f"{where}'s MLflow registry no longer holds {name} v{version.version} ({version.git_commit[:7]}): "
        "it was deleted outside loopline, or the store is a new one; "
        f"registered its files there again as v{number}"
    )
    return restored
