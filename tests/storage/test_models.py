"""The content-addressed model store and content digests."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest

from loopline.errors import IntegrityViolation
from loopline.storage.digest import digest_tree, manifest
from loopline.storage.models import ModelStore


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
    store = ModelStore(str(tmp_path / "store"))
    folder = model_folder(tmp_path / "m")
    digest = store.put(folder)
    assert store.put(folder) == digest
    assert store.contains(digest)
    assert store.uri(digest).startswith("file://")
    assert list((tmp_path / "store" / ".staging").iterdir()) == []
    assert digest_tree(store.path(digest)) == digest


def test_verify_refuses_files_changed_after_they_were_stored(tmp_path: Path) -> None:
    store = ModelStore(str(tmp_path / "store"))
    digest = store.put(model_folder(tmp_path / "m"))
    assert store.verify(digest) == store.path(digest)
    (store.path(digest) / "sub" / "model.bin").write_bytes(b"tampered")
    with pytest.raises(IntegrityViolation, match="do not match their content digest"):
        store.verify(digest)


def test_two_stores_on_one_folder_are_the_same_storage(tmp_path: Path) -> None:
    assert ModelStore(str(tmp_path / "s")) == ModelStore(f"file://{tmp_path}/s")
    assert ModelStore(str(tmp_path / "s")) != ModelStore(str(tmp_path / "t"))


def test_a_file_changed_in_place_is_caught_even_after_a_remembered_check(tmp_path: Path) -> None:
    store = ModelStore(str(tmp_path / "store"))
    digest = store.put(model_folder(tmp_path / "m"))
    store.verify(digest)
    weights = store.path(digest) / "sub" / "model.bin"
    before = weights.stat()
    weights.write_bytes(b"weightZ")  # same size
    os.utime(weights, ns=(before.st_atime_ns, before.st_mtime_ns))  # and the old modification time
    with pytest.raises(IntegrityViolation):
        store.verify(digest)


def test_an_added_file_is_caught(tmp_path: Path) -> None:
    store = ModelStore(str(tmp_path / "store"))
    digest = store.put(model_folder(tmp_path / "m"))
    (store.path(digest) / "extra.txt").write_text("surprise")
    with pytest.raises(IntegrityViolation):
        store.verify(digest)
