"""Moving the datastores at once: a laptop's inbox and predictions folders to the team's object store."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

import loopline
from loopline.errors import IntegrityViolation, Refused, UsageError
from tests.conftest import ProjectFactory
from tests.helpers import cli


def _blob_files(azurite: Any, container: str, prefix: str) -> dict[str, bytes]:
    from azure.storage.blob import ContainerClient

    client = ContainerClient.from_connection_string(azurite.connection_string, container)
    return {
        blob.name.removeprefix(prefix + "/"): client.download_blob(blob.name).readall()
        for blob in client.list_blobs(name_starts_with=prefix + "/")
    }


def test_the_datastores_move_to_the_object_store_and_their_data_assets_read_from_there(
    trained_project: ProjectFactory,
    azurite: Any,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
) -> None:
    project = trained_project("simple")
    laptop = project / ".loopline" / "datastores"
    heldout = loopline.register_data("heldout", "inbox://heldout.csv", project=project)[0]
    rows = tmp_path / "rows"
    (rows / "2026").mkdir(parents=True)
    pd.read_csv(laptop / "inbox" / "heldout.csv").to_parquet(rows / "2026" / "part-0.parquet")
    folder = loopline.upload_data("scoring", rows, project=project)[0]
    loopline.create_batch_endpoint("scorer", "dev", project=project)
    loopline.create_batch_deployment("scorer", "blue", version=1, project=project)
    before = loopline.batch_invoke("scorer", "scoring", project=project)
    assert before.status == "succeeded"

    monkeypatch.setenv("AZURE_STORAGE_CONNECTION_STRING", azurite.connection_string)
    tag = project.parent.name.lower().replace("_", "-")
    inbox, predictions = f"{azurite.container('inbox')}/{tag}", f"{azurite.container('predictions')}/{tag}"
    moved = cli(
        capsys,
        "migrate-datastores",
        "--inbox",
        inbox,
        "--predictions",
        predictions,
        "-C",
        str(project),
        "--json",
    )
    assert moved.exit_code == 0, moved.stderr
    report = moved.json()
    on_laptop = {
        name: sorted(p for p in (laptop / name).rglob("*") if p.is_file() and not p.name.startswith("."))
        for name in ("inbox", "predictions")
    }
    assert report["files"] == report["copied"] == {name: len(files) for name, files in on_laptop.items()}
    assert report["assets"] == 2 and report["targets"] == {"inbox": inbox, "predictions": predictions}
    assert _blob_files(azurite, "inbox", tag) == {
        p.relative_to(laptop / "inbox").as_posix(): p.read_bytes() for p in on_laptop["inbox"]
    }
    assert loopline.history(project, kind="datastores-migrated")

    # Again: nothing more to copy.
    again = cli(capsys, "migrate-datastores", "--inbox", inbox, "-C", str(project), "--json")
    assert again.exit_code == 0 and again.json()["copied"] == {"inbox": 0}, again.stderr

    # The laptop's folders gone, the assets read from the object store, and jobs write there.
    monkeypatch.setenv("LOOPLINE_DATASTORES__INBOX__URL", inbox)
    monkeypatch.setenv("LOOPLINE_DATASTORES__PREDICTIONS__URL", predictions)
    shutil.move(laptop, project.parent / "laptop-datastores")
    after = loopline.batch_invoke("scorer", "scoring:1", project=project)
    assert after.status == "succeeded" and after.rows == before.rows
    written = _blob_files(azurite, "predictions", tag)
    assert any(name.startswith(f"scorer/{before.id}/part-") for name in written)  # the earlier job's output
    assert any(name.startswith(f"scorer/{after.id}/part-") for name in written)
    assert [(a.name, a.version, a.digest) for a in loopline.list_data(project=project)] == [
        (heldout.name, 1, heldout.digest),
        (folder.name, 1, folder.digest),
    ]


def test_a_move_that_would_overwrite_other_bytes_or_finds_an_asset_changed_is_refused(
    new_project: ProjectFactory, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    project = new_project("simple")
    loopline.register_data("heldout", "inbox://heldout.csv", project=project)
    inbox = project / ".loopline" / "datastores" / "inbox"
    target = tmp_path / "team-inbox"
    target.mkdir()
    (target / "heldout.csv").write_text("someone else's rows\n")
    refused = cli(capsys, "migrate-datastores", "--inbox", str(target), "-C", str(project))
    assert refused.exit_code == 1 and "holds other bytes than inbox://heldout.csv" in refused.stderr
    assert (target / "heldout.csv").read_text() == "someone else's rows\n"
    assert not loopline.history(project, kind="datastores-migrated")

    # The asset's bytes changed in the inbox since it was registered: copied, but not taken for it.
    (target / "heldout.csv").unlink()
    (inbox / "heldout.csv").write_text((inbox / "heldout.csv").read_text() + "1,2,3\n")
    with pytest.raises(
        IntegrityViolation, match=r"data asset heldout:1 \(inbox://heldout.csv\) is not whole"
    ):
        loopline.migrate_datastores(inbox=str(target), project=project)
    assert not loopline.history(project, kind="datastores-migrated")

    with pytest.raises(UsageError, match="name a datastore to move"):
        loopline.migrate_datastores(project=project)
    with pytest.raises(UsageError, match=r"is at .* already"):
        loopline.migrate_datastores(inbox=str(inbox), project=project)


def test_a_move_waits_for_a_running_batch_job(new_project: ProjectFactory) -> None:
    from sqlalchemy import insert

    from loopline.domain import utcnow
    from loopline.instance import Instance
    from loopline.state.schema import batch_jobs

    project = new_project("simple")
    with Instance.open(project).db.write() as writer:  # a job another host runs now, beating
        writer.execute(
            insert(batch_jobs).values(
                id="j1", endpoint="scorer", deployment="blue", model="proj-classifier", version=1,
                git_commit="a" * 40, content_digest="sha256:" + "0" * 64,
                input_asset="rows", input_version=1, input_digest="sha256:" + "0" * 64, chunk_rows=10,
                status="running", chunks_done=0, rows=0, output="predictions://scorer/j1",
                started_at=utcnow(), actor="ci", workspace="dev", host="elsewhere", pid=1,
                heartbeat_at=utcnow(),
            )
        )  # fmt: skip
    with pytest.raises(Refused, match="batch job j1 is running"):
        loopline.migrate_datastores(predictions=str(project.parent / "elsewhere"), project=project)
