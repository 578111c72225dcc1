"""The content-addressed model store and content digests."""

from __future__ import annotations

import hashlib
import os
import uuid
from pathlib import Path
from typing import Any

import pytest

from loopline.errors import IntegrityViolation, NotFound
from loopline.storage.digest import digest_tree, manifest
from loopline.storage.models import FolderModelStore, ObjectModelStore, model_store_of, open_model_store
from tests.servers import AZURITE_ACCOUNT


def model_folder(path: Path, weights: bytes = b"weights") -> Path:
    (path / "sub").mkdir(parents=True)
    (path / "MLmodel").write_text("flavors: {}\n")
    (path / "sub" / "model.bin").write_bytes(weights)
    return path


def test_digest_is_sha256_of_a_manifest_of_paths_and_file_digests(tmp_path: Path) -> None:
    folder = model_folder(tmp_path / "m")
    mlmodel = hashlib.sha256(b"flavors: {}\n").hexdigest()
    weights = hashlib.sha256(b"weights").hexdigest()
    expected_manifest = f"{mlmodel}  MLmodel\n{weights}  sub/model.bin\n"
    assert manifest(folder) == expected_manifest
    assert digest_tree(folder) == "sha256:" + hashlib.sha256(expected_manifest.encode()).hexdigest()


def test_digest_changes_with_a_byte_or_a_name(tmp_path: Path) -> None:
    base = digest_tree(model_folder(tmp_path / "a"))
    assert digest_tree(model_folder(tmp_path / "b", b"weightz")) != base
    renamed = model_folder(tmp_path / "c")
    (renamed / "sub" / "model.bin").rename(renamed / "sub" / "other.bin")
    assert digest_tree(renamed) != base


def test_symbolic_links_are_refused(tmp_path: Path) -> None:
    folder = model_folder(tmp_path / "m")
    os.symlink("/etc/hostname", folder / "link")
    with pytest.raises(ValueError, match="symbolic link"):
        digest_tree(folder)


def test_put_is_idempotent_and_leaves_no_staging(tmp_path: Path) -> None:
    store = FolderModelStore(str(tmp_path / "store"))
    folder = model_folder(tmp_path / "m")
    digest = store.put(folder)
    assert store.put(folder) == digest
    assert store.contains(digest)
    assert store.uri(digest).startswith("file://")
    assert list((tmp_path / "store" / ".staging").iterdir()) == []
    assert digest_tree(store.path(digest)) == digest


def test_verify_refuses_files_changed_after_they_were_stored(tmp_path: Path) -> None:
    store = FolderModelStore(str(tmp_path / "store"))
    digest = store.put(model_folder(tmp_path / "m"))
    assert store.verify(digest) == store.path(digest)
    (store.path(digest) / "sub" / "model.bin").write_bytes(b"tampered")
    with pytest.raises(IntegrityViolation, match="do not match their content digest"):
        store.verify(digest)


def test_two_stores_on_one_folder_are_the_same_storage(tmp_path: Path) -> None:
    assert FolderModelStore(str(tmp_path / "s")) == FolderModelStore(f"file://{tmp_path}/s")
    assert FolderModelStore(str(tmp_path / "s")) != FolderModelStore(str(tmp_path / "t"))


def test_a_file_changed_in_place_is_caught_even_after_a_remembered_check(tmp_path: Path) -> None:
    store = FolderModelStore(str(tmp_path / "store"))
    digest = store.put(model_folder(tmp_path / "m"))
    store.verify(digest)
    weights = store.path(digest) / "sub" / "model.bin"
    before = weights.stat()
    weights.write_bytes(b"weightZ")  # same size
    os.utime(weights, ns=(before.st_atime_ns, before.st_mtime_ns))  # and the old modification time
    with pytest.raises(IntegrityViolation):
        store.verify(digest)


def test_an_added_file_is_caught(tmp_path: Path) -> None:
    store = FolderModelStore(str(tmp_path / "store"))
    digest = store.put(model_folder(tmp_path / "m"))
    (store.path(digest) / "extra.txt").write_text("surprise")
    with pytest.raises(IntegrityViolation):
        store.verify(digest)


@pytest.fixture
def blob(azurite: Any, monkeypatch: pytest.MonkeyPatch) -> Any:
    monkeypatch.setenv("AZURE_STORAGE_CONNECTION_STRING", azurite.connection_string)
    return azurite


def test_an_object_store_shows_a_version_only_once_its_manifest_is_written(blob: Any, tmp_path: Path) -> None:
    store = open_model_store(blob.container("models-a") + f"/{tmp_path.name}")
    assert isinstance(store, ObjectModelStore)
    weights = uuid.uuid4().bytes  # files of this run alone: not in the machine's cache of downloads
    folder = model_folder(tmp_path / "m", weights)
    digest = digest_tree(folder)
    # A crash after the files and before the manifest: nothing is visible.
    store.fs.put_file(str(folder / "MLmodel"), f"{store.uri(digest)}/MLmodel")
    assert not store.contains(digest)
    with pytest.raises(NotFound):
        store.verify(digest)

    assert store.put(folder) == digest and store.contains(digest)
    assert store.uri(digest).startswith("az://models-a/") and model_store_of(store.uri(digest)) == store
    # MLflow reads Azure Blob as wasbs://container@account...; the store is found from that form too.
    source = store.source(digest)
    assert source == f"wasbs://models-a@{AZURITE_ACCOUNT}.blob.core.windows.net/{tmp_path.name}/sha256/" + (
        digest.removeprefix("sha256:")
    )
    assert model_store_of(source) == store
    local = store.verify(digest)
    assert digest_tree(local) == digest and (local / "sub" / "model.bin").read_bytes() == weights
    # A folder that is not there is not a model of no files.
    with pytest.raises(NotFound, match="does not exist"):
        store.put(tmp_path / "missing")


def test_a_changed_blob_is_refused_when_downloaded(blob: Any, tmp_path: Path) -> None:
    store = open_model_store(blob.container("models-a") + f"/{tmp_path.name}")
    digest = store.put(model_folder(tmp_path / "m", b"original"))
    store.fs.pipe_file(f"{store.uri(digest)}/sub/model.bin", b"tampered")
    with pytest.raises(IntegrityViolation):
        store.verify(digest)
    assert not store.cache.contains(digest)


def test_copies_within_one_account_pass_no_bytes_through_loopline(blob: Any, tmp_path: Path) -> None:
    here = open_model_store(blob.container("models-a") + f"/{tmp_path.name}")
    there = open_model_store(blob.container("models-b") + f"/{tmp_path.name}")
    digest = here.put(model_folder(tmp_path / "m", uuid.uuid4().bytes))  # not in the machine's cache
    assert there.copy_from(here, digest) is True
    assert not here.cache.contains(digest), "the files went through this machine"
    assert there.contains(digest) and not there.copy_from(here, digest)
    assert here.copy_from(here, digest) is False
    assert digest_tree(there.verify(digest)) == digest


def test_a_folder_store_and_an_object_store_copy_both_ways(blob: Any, tmp_path: Path) -> None:
    folder_store = FolderModelStore(str(tmp_path / "local"))
    objects = open_model_store(blob.container("models-a") + f"/{tmp_path.name}")
    digest = folder_store.put(model_folder(tmp_path / "m"))
    assert objects.copy_from(folder_store, digest)
    back = FolderModelStore(str(tmp_path / "back"))
    assert back.copy_from(objects, digest) and back.contains(digest)
