"""Data assets through the control plane, for a caller that reaches the team's datastores no more than
loopline's database.

An upload packs the files of this machine into one tar.gz (``POST /v1/uploads?for=upload_data``) and
names it with the digest read here (``POST /v1/upload_data``): the control plane copies the files into the
inbox with its own credentials and pins them only if they are those bytes. A training's inputs come back
file by file (``POST /v1/data_file``), each checked against the digest it was registered with.
"""

from __future__ import annotations

import contextlib
import tarfile
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson
from pydantic import BaseModel, ConfigDict, Field

from loopline.data import files_digest, local_files
from loopline.remote.upload import UPLOAD_ID, chunks

if TYPE_CHECKING:
    from loopline.data import DataAsset
    from loopline.remote.client import Client

__all__ = ["DataFile", "DataUpload", "RemoteAssets", "remote_upload_data"]


class DataUpload(BaseModel):
    """The body of ``POST /v1/upload_data``."""

    model_config = ConfigDict(extra="forbid")

    upload: str = Field(pattern=UPLOAD_ID.pattern, description="the id `POST /v1/uploads` answered")
    name: str = Field(max_length=100, description="the data asset")
    digest: str = Field(
        pattern=r"^sha256:[0-9a-f]{64}$",
        description="the content digest of the files, as the caller read them",
    )
    single: bool = Field(description="one file, `data/<its name>` in the upload (else a folder, `data/...`)")


class DataFile(BaseModel):
    """The body of ``POST /v1/data_file``: one file of a data asset version, by its path in the version."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(max_length=100)
    version: int = Field(ge=1)
    path: str = Field(min_length=1, max_length=4096, description="as the version's manifest names it")


def remote_upload_data(client: Client, arguments: dict[str, Any]) -> Any:
    """Upload a file or folder of this machine through the control plane, which copies it into the inbox
    and pins it as a version of the data asset (the same result as a local ``upload_data``)."""
    from loopline.operations import operations
    from loopline.remote.codec import signature

    source = Path(arguments["source"]).expanduser()
    files = local_files(source)
    digest = files_digest(files)
    with tempfile.TemporaryDirectory() as folder:
        archive = Path(folder) / "data.tar.gz"
        # a link's target, not the link: what this machine reads is what gets pinned
        with tarfile.open(archive, "w:gz", compresslevel=1, dereference=True) as packed:
            for inside, path in files:
                packed.add(path, arcname=f"data/{inside}", recursive=False)
        answer = client.post("uploads?for=upload_data", chunks(archive), "application/gzip")
    body = DataUpload(upload=answer["upload"], name=arguments["name"], digest=digest, single=source.is_file())
    result = client.post("upload_data", orjson.dumps(body.model_dump(mode="json")))
    return signature(operations()["upload_data"]).decode_result(result)


class RemoteAssets:
    """The data assets of a control plane: their versions, and their files as it reads them."""

    def __init__(self, client: Client) -> None:
        self.client = client

    def find(self, name: str, version: int | None) -> DataAsset:
        from loopline import api

        return self.client.call(api.get_data, name, version)

    def files(self, asset: DataAsset) -> list[dict[str, Any]]:
        return list(asset.manifest)

    @contextlib.contextmanager
    def chunks(self, asset: DataAsset, entry: dict[str, Any]) -> Iterator[Iterator[bytes]]:
        body = DataFile(name=asset.name, version=asset.version, path=entry["path"])
        with self.client.download("data_file", orjson.dumps(body.model_dump())) as stream:
            yield stream
