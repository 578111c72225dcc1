"""Datastores and data assets on local folders and on Azure Blob (Azurite)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

import loopline
from loopline.errors import IntegrityViolation, NotFound, UsageError
from loopline.storage.datastores import Datastore, split_reference
from tests.conftest import ProjectFactory


def test_references_name_a_datastore() -> None:
    assert split_reference("inbox://a/b.csv") == ("inbox", "a/b.csv")
    with pytest.raises(UsageError, match="not a datastore path"):
        split_reference("s3://bucket/x")


def test_a_folder_digest_covers_every_file_and_changes_with_a_byte(tmp_path: Path) -> None:
    (tmp_path / "data" / "part").mkdir(parents=True)
    (tmp_path / "data" / "a.csv").write_text("x\n1\n")
    (tmp_path / "data" / "part" / "b.csv").write_text("x\n2\n")
    store = Datastore("inbox", str(tmp_path))
    digest, manifest = store.digest("data")
    assert [m["path"] for m in manifest] == ["a.csv", "part/b.csv"]
    (tmp_path / "data" / "part" / "b.csv").write_text("x\n3\n")
    assert store.digest("data")[0] != digest
    with pytest.raises(NotFound):
        store.digest("nothing-here")


def test_data_assets_are_versioned_by_content(new_project: ProjectFactory) -> None:
    project = new_project("simple")
    first, created = loopline.register_data("heldout", "inbox://heldout.csv", project=project)
    assert created and first.version == 1 and first.digest.startswith("sha256:")
    again, created = loopline.register_data("heldout", "inbox://heldout.csv", project=project)
    assert not created and again.version == 1
    inbox = project / ".loopline" / "datastores" / "inbox" / "heldout.csv"
    inbox.write_text(inbox.read_text() + inbox.read_text().splitlines()[1] + "\n")
    second, created = loopline.register_data("heldout", "inbox://heldout.csv", project=project)
    assert created and second.version == 2
    assert [a.version for a in loopline.list_data("heldout", project=project)] == [1, 2]
    assert loopline.get_data("heldout", project=project).version == 2
    with pytest.raises(NotFound, match=r"^data asset heldout has no version 3; its versions are 1 to 2$"):
        loopline.get_data("heldout", 3, project=project)
    with pytest.raises(NotFound, match=r"^no data asset unheard; `loopline data register unheard"):
        loopline.get_data("unheard", 1, project=project)


def test_reading_an_asset_whose_bytes_changed_is_refused(new_project: ProjectFactory) -> None:
    from loopline.data import verified_files
    from loopline.instance import Instance

    project = new_project("simple")
    asset, _ = loopline.register_data("heldout", "inbox://heldout.csv", project=project)
    instance = Instance.open(project)
    assert verified_files(instance, asset) == ["heldout.csv"]
    inbox = project / ".loopline" / "datastores" / "inbox" / "heldout.csv"
    inbox.write_text(inbox.read_text().replace("1", "2", 1))
    with pytest.raises(IntegrityViolation, match=r"heldout:1 .* changed since it was registered"):
        verified_files(instance, asset)


def test_an_azure_blob_datastore_on_azurite(azurite: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AZURE_STORAGE_CONNECTION_STRING", azurite.connection_string)
    store = Datastore("inbox", azurite.container("inbox-unit") + "/root")
    store.write_atomic("folder/a.csv", b"x\n1\n")
    store.write_atomic("folder/b.csv", b"x\n2\n")
    assert store.files("folder") == ["folder/a.csv", "folder/b.csv"]
    digest, _ = store.digest("folder")
    store.write_atomic("folder/b.csv", b"x\n3\n")
    assert store.digest("folder")[0] != digest
    with store.open("folder/a.csv") as handle:
        assert handle.read() == b"x\n1\n"
