"""The files of a workspace's registered model versions through the control plane, so that a stock MLflow
client with a token and no credential for the model store loads them (``mlflow.pyfunc.load_model(
"models:/NAME/3")`` or ``@alias``: dev's versions, and the ``production`` alias of prod's).

A version's source is a folder of loopline's model store (``.../sha256/<hex>``), a path of the control
plane's host or an object store URL the member cannot read. Answers of the workspace's registry name it
instead as ``mlflow-artifacts:/_loopline/models/sha256/<hex>``, which MLflow's client reads through the
tracking URI (``/mlflow/<workspace>/api/2.0/mlflow-artifacts/artifacts/...``): those reads are answered
here, from the model store's verified copy of a content digest that a version of that workspace's registry
holds, never another one.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
from starlette.concurrency import run_in_threadpool
from starlette.responses import FileResponse, Response

from loopline.errors import LooplineError, NotFound, UsageError
from loopline.instance import Instance
from loopline.mlflow_store import artifact_root_uri
from loopline.registry import TAG_DIGEST

__all__ = ["SERVED_ROOT", "RegistryFiles", "VersionFiles", "served_location"]

SERVED_ROOT = "_loopline/models/sha256"
"""Where a version's files are, below ``mlflow-artifacts:/`` as the control plane serves them."""
_SERVED = re.compile(rf"{re.escape(SERVED_ROOT)}/([0-9a-f]{{64}})(?:/(.*))?")
_NO_DIGEST = "sha256:" + "0" * 64


@dataclass
class RegistryFiles:
    """The model files of a workspace's registered versions (``model_store``: its model store location;
    ``store``: its MLflow store, asked which digests its versions hold)."""

    model_store: str
    store: Any
    workspace: str = "dev"
    _prefix: str | None = None
    _known: set[str] = field(default_factory=set)

    def _source_prefix(self) -> str:
        """What precedes ``/sha256/<hex>`` in the sources of versions in the workspace's model store ("" where
        the store cannot be opened from here: its answers are passed on as they are)."""
        if self._prefix is None:
            from loopline.storage.models import open_model_store

            try:
                self._prefix = open_model_store(self.model_store).source(_NO_DIGEST).rsplit("/", 2)[0]
            except (LooplineError, OSError, ValueError):  # asked again next time; the files' route says why
                return ""
        return self._prefix

    @property
    def known(self) -> bool:
        """Whether the model store was asked already how it names its files (``served`` is quick then)."""
        return self._prefix is not None

    def served(self, content: bytes) -> bytes:
        """An MLflow answer with the model store's sources named as the control plane serves them."""
        if not (prefix := self._source_prefix()):
            return content
        return content.replace(f'"{prefix}/sha256/'.encode(), f'"mlflow-artifacts:/{SERVED_ROOT}/'.encode())

    @staticmethod
    def named(path: str) -> tuple[str, str] | None:
        """The digest (hex) and the path within its folder that ``path`` (below ``mlflow-artifacts:/``)
        names, or None where it is no version's file."""
        found = _SERVED.fullmatch(path.strip("/"))
        return (found.group(1), found.group(2) or "") if found else None

    def _folder(self, hex_digest: str) -> Path:
        """The verified local folder of a digest one of the workspace's versions holds; NotFound otherwise."""
        digest = f"sha256:{hex_digest}"
        if digest not in self._known:
            found = self.store.client.search_model_versions(f"tags.{TAG_DIGEST} = '{digest}'", max_results=1)
            if not found:
                raise NotFound(f"no model version in {self.workspace} holds {digest}")
            self._known.add(digest)
        from loopline.storage.models import open_model_store

        return open_model_store(self.model_store).verify(digest)

    async def answer(self, hex_digest: str, inside: str, listing: bool) -> Response:
        """A listing of a folder of the version's files (as MLflow's server lists: names, sizes), or one
        file's bytes."""
        folder = await run_in_threadpool(self._folder, hex_digest)
        parts = inside.split("/") if inside else []
        if any(p in ("", ".", "..") for p in parts) or "\\" in inside:
            raise UsageError(f"the file path {inside[:120]!r} is not a plain relative path")
        target = folder.joinpath(*parts)
        if not target.resolve().is_relative_to(folder.resolve()):
            raise UsageError(f"the file path {inside[:120]!r} leaves the model's folder")
        if listing:
            if target.is_file():
                entries = [target]
            elif target.is_dir():
                entries = sorted(target.iterdir())
            else:
                entries = []
            files = [
                {
                    "path": e.name,
                    "is_dir": e.is_dir(),
                    **({} if e.is_dir() else {"file_size": e.stat().st_size}),
                }
                for e in entries
                if not e.name.startswith(".")
            ]
            return Response(orjson.dumps({"files": files} if files else {}), media_type="application/json")
        if not target.is_file():
            raise NotFound(f"the model has no file {inside[:120]}")
        return FileResponse(
            target,
            media_type="application/octet-stream",
            headers={"content-security-policy": "sandbox", "x-content-type-options": "nosniff"},
        )


class VersionFiles:
    """Each workspace's ``RegistryFiles``, made again where its model store changed."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._files: dict[str, RegistryFiles] = {}

    def of(self, workspace: str, location: Any) -> RegistryFiles:
        """The files of ``workspace``'s versions, in the model store ``location`` names."""
        files = self._files.get(workspace)
        if files is None or files.model_store != location.model_store:
            store = Instance.open(self.root).store(workspace)
            files = self._files[workspace] = RegistryFiles(location.model_store, store, workspace)
        return files


def served_location(instance: Instance, workspace: str, instead: str) -> tuple[Any, str]:
    """The workspace's store and its artifact root URI, where the control plane serves it; refused where
    the store is a tracking server of its own (``instead``: what to do then)."""
    location = instance.settings.store(workspace)
    if location.artifact_location is None:
        raise UsageError(
            f"{workspace}'s store is the MLflow tracking server at {location.tracking_uri}: {instead}"
        )
    return location, artifact_root_uri(location.artifact_location)
