"""Datastores and data assets on local folders and on Azure Blob (Azurite)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

import loopline
from loopline.errors import IntegrityViolation, InvalidData, NotFound, UsageError
from loopline.storage.datastores import Datastore, read_table, split_reference
from tests.conftest import ProjectFactory
from tests.helpers import cli


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


def test_data_assets_are_versioned_by_content(
    new_project: ProjectFactory, capsys: pytest.CaptureFixture[str]
) -> None:
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
    # a file's path where an asset's name goes (`batch invoke --input data/new.csv`): upload it first
    for path in ("data/inbox/heldout.csv", "exports/scores.parquet"):
        with pytest.raises(NotFound) as named:
            loopline.get_data(path, project=project)
        assert named.value.message == (
            f"no data asset is named '{path}', which is a file's path: make the file a data asset "
            f"(`loopline data upload NAME {path}`) and give its NAME"
        )
    # a datastore's path there: register it first (the command shell-quoted, the name from the file's)
    for where, name in (("inbox://heldout.csv", "heldout"), ("'inbox://new rows/'", "new-rows")):
        shown = cli(capsys, "batch", "invoke", "scorer", "--input", where.strip("'"), "-C", str(project))
        assert shown.exit_code == 2 and shown.stderr == (
            f"error: '{where.strip(chr(39))}' is a datastore path, not a data asset: make it one "
            f"(`loopline data register {name} --path {where}`) and give its name\n"
        )


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


def test_a_file_or_folder_of_this_machine_is_uploaded_into_the_inbox_and_pinned(
    new_project: ProjectFactory, tmp_path: Path
) -> None:
    from loopline.data import verified_files
    from loopline.instance import Instance

    project = new_project("simple")
    inbox = project / ".loopline" / "datastores" / "inbox"
    scoring = tmp_path / "new.csv"
    scoring.write_text("x,y\n1,2\n3,4\n")
    first, created = loopline.upload_data("scoring", scoring, project=project)
    folder = first.digest.removeprefix("sha256:")[:16]  # the path names the content
    assert created and first.version == 1 and first.reference == f"inbox://scoring/{folder}/new.csv"
    assert (inbox / "scoring" / folder / "new.csv").read_text() == "x,y\n1,2\n3,4\n"
    again, created = loopline.upload_data("scoring", scoring, project=project)
    assert not created and again == first
    scoring.write_text("x,y\n1,2\n3,5\n")
    second, created = loopline.upload_data("scoring", scoring, project=project)
    assert created and second.version == 2 and second.path != first.path
    assert verified_files(Instance.open(project), first) == [first.path]  # version 1's bytes stay as pinned

    monthly = tmp_path / "monthly"
    (monthly / "2026" / ".cache").mkdir(parents=True)
    (monthly / "2026" / "a.csv").write_text("x,y\n1,2\n")
    (monthly / "b.csv").write_text("x,y\n5,6\n")
    (monthly / ".DS_Store").write_text("not data")
    (monthly / "2026" / ".cache" / "c.csv").write_text("x,y\n7,8\n")
    asset, created = loopline.upload_data("monthly", monthly, project=project)
    assert created and [m["path"] for m in asset.manifest] == ["2026/a.csv", "b.csv"]
    assert asset.reference == f"inbox://monthly/{asset.digest.removeprefix('sha256:')[:16]}"


def test_an_upload_cut_short_is_finished_by_the_next_and_other_bytes_at_its_path_are_copied_over(
    new_project: ProjectFactory, tmp_path: Path
) -> None:
    import hashlib

    from loopline.storage.digest import manifest_digest

    def versions() -> list[tuple[str, int]]:
        return [(a.name, a.version) for a in loopline.list_data(project=project)]

    project = new_project("simple")
    inbox = project / ".loopline" / "datastores" / "inbox"
    monthly = tmp_path / "monthly"
    monthly.mkdir()
    (monthly / "a.csv").write_text("x,y\n1,2\n")
    (monthly / "b.csv").write_text("x,y\n3,4\n")
    asset, _ = loopline.upload_data("monthly", monthly, project=project)
    copied = inbox / asset.path
    # As a crash between the two files leaves it: the next upload copies what is missing.
    (copied / "b.csv").unlink()
    again, created = loopline.upload_data("monthly", monthly, project=project)
    assert not created and again.version == 1 and (copied / "b.csv").read_text() == "x,y\n3,4\n"
    # Other bytes already at the path of the next upload's content (a file being written when it was
    # copied, or changed there since): copied over, and the files pinned are the ones read here.
    (monthly / "c.csv").write_text("x,y\n5,6\n")
    files = [
        {"path": p.name, "sha256": hashlib.sha256(p.read_bytes()).hexdigest()} for p in monthly.iterdir()
    ]
    target = inbox / "monthly" / manifest_digest(files).removeprefix("sha256:")[:16]
    target.mkdir()
    (target / "c.csv").write_text("x,y\n5,7\n")
    second, created = loopline.upload_data("monthly", monthly, project=project)
    assert created and second.version == 2 and (target / "c.csv").read_text() == "x,y\n5,6\n"
    # A pinned file changed in the inbox: found by what reads it, and mended by uploading it again.
    from loopline.data import verified_files
    from loopline.instance import Instance

    (copied / "a.csv").write_text("x,y\n9,9\n")
    with pytest.raises(IntegrityViolation, match="changed since it was registered"):
        verified_files(Instance.open(project), asset)
    (monthly / "c.csv").unlink()  # the files of version 1 again
    mended, created = loopline.upload_data("monthly", monthly, project=project)
    assert mended.path == asset.path and verified_files(Instance.open(project), asset) == [
        f"{asset.path}/a.csv",
        f"{asset.path}/b.csv",
    ]
    assert versions() == [("monthly", 1), ("monthly", 2), ("monthly", 3)]


def test_an_upload_of_nothing_or_under_a_bad_name_is_refused_before_a_byte_is_copied(
    new_project: ProjectFactory, tmp_path: Path
) -> None:
    project = new_project("simple")
    inbox = project / ".loopline" / "datastores" / "inbox"
    before = sorted(p.name for p in inbox.iterdir())
    (tmp_path / "empty").mkdir()
    (tmp_path / "a.csv").write_text("x\n1\n")
    with pytest.raises(UsageError, match=r"missing\.csv is not a file or folder on this machine"):
        loopline.upload_data("scoring", tmp_path / "missing.csv", project=project)
    with pytest.raises(UsageError, match="empty holds no files to upload"):
        loopline.upload_data("scoring", tmp_path / "empty", project=project)
    with pytest.raises(UsageError, match="must be letters, digits"):
        loopline.upload_data("../up", tmp_path / "a.csv", project=project)
    assert sorted(p.name for p in inbox.iterdir()) == before
    with pytest.raises(UsageError, match=r"`loopline data upload NAME PATH` copies a file or folder"):
        loopline.register_data("scoring", str(tmp_path / "a.csv"), project=project)


def test_the_cli_uploads_and_says_where_the_files_went(
    new_project: ProjectFactory, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import json

    from tests.helpers import cli

    project = new_project("simple")
    (tmp_path / "new.csv").write_text("x,y\n1,2\n")
    done = cli(capsys, "data", "upload", "scoring", str(tmp_path / "new.csv"), "-C", str(project), "--json")
    assert done.exit_code == 0, done.stderr
    said = json.loads(done.stdout)
    assert said["created"] and said["version"] == 1 and said["path"].startswith("inbox://scoring/")
    again = cli(capsys, "data", "upload", "scoring", str(tmp_path / "new.csv"), "-C", str(project))
    assert again.exit_code == 0 and "scoring:1 already holds these files" in again.stdout
    missing = cli(capsys, "data", "upload", "scoring", str(tmp_path / "old.csv"), "-C", str(project))
    assert missing.exit_code == 2 and "old.csv is not a file or folder on this machine" in missing.stderr
    assert "Traceback" not in missing.stderr


def _signature(folder: Path, inputs: str, outputs: str) -> Path:
    """A model folder whose MLmodel has this signature, as MLflow writes it."""
    folder.mkdir()
    (folder / "MLmodel").write_text(f"signature:\n  inputs: '{inputs}'\n  outputs: '{outputs}'\n")
    return folder


def test_the_columns_read_as_text_are_the_model_s_texts_its_text_labels_and_kept_columns_it_does_not_take(
    tmp_path: Path,
) -> None:
    from loopline.storage.datastores import text_columns

    columns = '[{"type": "string", "name": "country"}, {"type": "long", "name": "visits"}]'
    classes = _signature(tmp_path / "classes", columns, '[{"type": "string"}]')
    assert text_columns(classes) == {"country"}
    assert text_columns(classes, "label") == {"country", "label"}  # it answers text: so are the labels
    # A kept column the model takes is read as the model takes it; one it does not, as written.
    assert text_columns(classes, kept=["visits", "account"]) == {"country", "account"}
    scores = _signature(tmp_path / "scores", columns, '[{"type": "double"}]')
    assert text_columns(scores, "label") == {"country"}
    tensor = '[{"type": "tensor", "tensor-spec": {"dtype": "float64", "shape": [-1, 4]}}]'
    array = _signature(tmp_path / "array", tensor, '[{"type": "long"}]')
    assert text_columns(array, kept=["account"]) == set()  # fitted on an array: it takes every column
    (tmp_path / "none").mkdir()
    assert text_columns(tmp_path / "none", "label", ["account"]) == set()  # no MLmodel: read as pandas does


def test_the_columns_of_dates_and_times_are_those_the_signature_types_so(tmp_path: Path) -> None:
    from loopline.storage.datastores import date_columns

    columns = '[{"type": "datetime", "name": "at"}, {"type": "string", "name": "store"}]'
    assert date_columns(_signature(tmp_path / "visits", columns, '[{"type": "long"}]')) == {"at"}
    (tmp_path / "none").mkdir()
    assert date_columns(tmp_path / "none") == set()


def test_a_csv_whose_row_has_more_fields_than_its_header_is_refused_not_shifted(tmp_path: Path) -> None:
    # pandas would read the first row's extra field as an index column, shifting every value a column
    path = tmp_path / "reviews.csv"
    path.write_text("review,stars\nloved it, really,5\nboring,1\n")
    told = (
        "reviews.csv is not a valid CSV table: a row has more fields than its header names; quote each "
        'field that holds the separator ("loved it, really")'
    )
    with pytest.raises(InvalidData) as whole:
        read_table(path)
    assert whole.value.message == told
    store = Datastore("inbox", str(tmp_path))
    with pytest.raises(InvalidData) as chunked:
        list(store.frames("reviews.csv", rows=1))
    assert chunked.value.message == "inbox://" + told
    path.write_text('review,stars\n"loved it, really",5\nboring,1\n')
    assert read_table(path).to_dict("list") == {"review": ["loved it, really", "boring"], "stars": [5, 1]}


def test_the_first_rows_of_a_table_are_read_as_text_or_typed_keeping_the_model_s_texts(
    tmp_path: Path,
) -> None:
    import pandas as pd

    from loopline.storage.datastores import first_rows

    frame = pd.DataFrame({"country": ["NA", "FR", "DE"], "n": [1, 2, 3]})  # NA: Namibia
    frame.to_csv(tmp_path / "rows.csv", index=False)
    frame.to_parquet(tmp_path / "rows.parquet")
    as_text = first_rows(tmp_path / "rows.csv", 2)
    assert as_text["n"].tolist() == ["1", "2"] and as_text["country"].tolist()[1:] == ["FR"]
    typed = first_rows(tmp_path / "rows.csv", 2, {"country"})
    assert typed.to_dict("list") == {"country": ["NA", "FR"], "n": [1, 2]}
    assert pd.isna(first_rows(tmp_path / "rows.csv", 2, set())["country"][0])  # pandas' missing marker
    assert first_rows(tmp_path / "rows.parquet", 2).to_dict("list") == {"country": ["NA", "FR"], "n": [1, 2]}
    frame.head(0).to_parquet(tmp_path / "empty.parquet")
    assert list(first_rows(tmp_path / "empty.parquet", 2).columns) == ["country", "n"]
    assert first_rows(tmp_path / "gone.csv", 2) is None
    (tmp_path / "broken.parquet").write_bytes(b"not parquet")
    assert first_rows(tmp_path / "broken.parquet", 2) is None
