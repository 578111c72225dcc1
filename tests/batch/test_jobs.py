"""Batch endpoints and jobs: chunks within a memory cap, exact output, resumable, on disk and on Azurite."""

from __future__ import annotations

import json
import os
from datetime import timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from sqlalchemy import update

import loopline
from loopline.batch import jobs
from loopline.domain import utcnow
from loopline.errors import IntegrityViolation, Refused
from loopline.instance import Instance
from loopline.state.schema import batch_jobs
from tests.conftest import ProjectFactory, StagedProject
from tests.helpers import TRAINING_SCRIPTS, cli_process, commit_all, edit_yaml

pytestmark = pytest.mark.slow

ROWS = 60_000


def big_csv(project: Path, folder: Path) -> Path:
    """A CSV of 60,000 rows (about 20 MB) drawn from the held-out set with noise."""
    heldout = pd.read_csv(project / "data" / "inbox" / "heldout.csv").drop(columns=["label"])
    rng = np.random.default_rng(0)
    rows = heldout.sample(n=ROWS, replace=True, random_state=0).reset_index(drop=True)
    rows = rows * rng.uniform(0.95, 1.05, size=rows.shape)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "scoring.csv"
    rows.to_csv(path, index=False)
    return path


def predictions(root: Path) -> pd.DataFrame:
    parts = sorted(root.glob("part-*.parquet"))
    return pd.concat([pd.read_parquet(p) for p in parts], ignore_index=True)


def expected(project: Path, data: Path) -> np.ndarray:
    import mlflow.sklearn

    model = next(m for m in loopline.status(project).models if m.workspace == "dev")
    frame = pd.read_csv(data)
    return mlflow.sklearn.load_model(model.source_uri).predict(frame.to_numpy())


def with_batch_scorer(project: Path) -> None:
    """A small memory cap for chunks, a data asset `big` and a batch endpoint `scorer` of dev v1."""
    edit_yaml(project / "loopline.yaml", batch={"chunk_rows": 50_000, "max_chunk_mb": 1})
    commit_all(project, "A small memory cap for batch chunks")
    big_csv(project, project / ".loopline" / "datastores" / "inbox" / "big")
    loopline.register_data("big", "inbox://big", project=project)
    loopline.create_batch_endpoint("scorer", "dev", project=project)
    loopline.create_batch_deployment("scorer", "blue", version=1, project=project)


@pytest.fixture
def scored_project(staged_project: StagedProject) -> Path:
    return staged_project("batch-scorer", with_batch_scorer)


def test_a_data_set_larger_than_the_memory_cap_is_scored_in_chunks_exactly(scored_project: Path) -> None:
    project = scored_project
    job = loopline.batch_invoke("scorer", "big", project=project)
    assert job.status == "succeeded" and job.rows == ROWS
    folder = project / ".loopline" / "datastores" / "predictions" / "scorer" / job.id
    lineage = json.loads((folder / "_lineage.json").read_text())
    data = project / ".loopline" / "datastores" / "inbox" / "big" / "scoring.csv"
    assert data.stat().st_size > 10 * 2**20  # ten times the cap of one chunk
    assert lineage["chunks"] == len(list(folder.glob("part-*.parquet"))) > 5
    assert lineage["peak_chunk_mb"] <= 1.2
    assert (lineage["rows"], lineage["git_commit"], lineage["input"]["asset"]) == (
        ROWS,
        job.git_commit,
        "big",
    )
    output = predictions(folder)
    assert output["row"].tolist() == list(range(ROWS))
    assert np.array_equal(output["prediction"].to_numpy(), expected(project, data))


def test_an_interrupted_job_resumes_to_the_same_output(scored_project: Path) -> None:
    project = scored_project
    crashed = cli_process(
        "batch",
        "invoke",
        "scorer",
        "--input",
        "big",
        cwd=project,
        env={"LOOPLINE_FAILPOINT": "batch-after-chunk"},
    )
    assert crashed.exit_code == 137
    job = loopline.batch_jobs("scorer", project=project)[0]
    folder = project / ".loopline" / "datastores" / "predictions" / "scorer" / job.id
    # the next command that sees the job knows its process is gone; nothing looks complete
    assert job.status == "failed" and not (folder / "_lineage.json").exists()
    assert job.error is not None and f"batch job resume {job.id}" in job.error
    assert len(list(folder.glob("part-*.parquet"))) == 1
    # a job whose process still runs is not run twice; one silent on another host fails after the horizon
    claim(project, job.id, host=jobs.HOST, pid=os.getpid(), heartbeat_at=utcnow())
    with pytest.raises(Refused, match=f"batch job {job.id} is still running"):
        loopline.batch_resume(job.id, project=project)
    claim(project, job.id, host="elsewhere", pid=1, heartbeat_at=utcnow() - timedelta(minutes=6))
    stale = loopline.batch_job(job.id, project=project)
    assert stale.status == "failed" and "pid 1 on elsewhere ended" in (stale.error or "")
    resumed = cli_process("batch", "job", "resume", job.id, "--json", cwd=project)
    assert resumed.exit_code == 0, resumed.stderr
    assert json.loads(resumed.stdout)["status"] == "succeeded"
    whole = loopline.batch_invoke("scorer", "big", project=project)
    other = project / ".loopline" / "datastores" / "predictions" / "scorer" / whole.id
    pd.testing.assert_frame_equal(predictions(folder), predictions(other))


def with_ids(project: Path) -> pd.DataFrame:
    """A data asset `ids` of two Parquet files whose rows carry a customer ID and a nullable region
    beside the features, as tables to score usually do."""
    rows = pd.read_csv(big_csv(project, project / ".loopline" / "datastores" / "inbox" / "plain"))[:20_000]
    rows.insert(0, "customer", [f"cust-{n:05d}" for n in range(len(rows))])
    rows["region"] = pd.array([None if n % 7 == 0 else n % 5 for n in range(len(rows))], dtype="Int64")
    folder = project / ".loopline" / "datastores" / "inbox" / "ids"
    folder.mkdir()
    rows[:12_000].to_parquet(folder / "a.parquet", index=False)
    rows[12_000:].to_parquet(folder / "b.parquet", index=False)
    loopline.register_data("ids", "inbox://ids", project=project)
    return rows


def test_kept_input_columns_stand_beside_the_answers_through_a_crash_and_a_resume(
    scored_project: Path,
) -> None:
    project = scored_project
    rows = with_ids(project)
    argv = ("batch", "invoke", "scorer", "--input", "ids", "--keep", "customer", "--keep", "region")
    crashed = cli_process(*argv, cwd=project, env={"LOOPLINE_FAILPOINT": "batch-after-chunk"})
    assert crashed.exit_code == 137
    job = loopline.batch_jobs("scorer", project=project)[0]
    assert job.keep == ("customer", "region")
    resumed = cli_process("batch", "job", "resume", job.id, "--json", cwd=project)
    assert resumed.exit_code == 0, resumed.stderr
    assert resumed.json()["keep"] == ["customer", "region"]
    folder = project / ".loopline" / "datastores" / "predictions" / "scorer" / job.id
    output = predictions(folder)
    assert output.columns.tolist() == ["row", "customer", "region", "prediction"]
    assert output["customer"].tolist() == rows["customer"].tolist()
    assert output["region"].dtype == "Int64" and output["region"].isna().sum() == rows["region"].isna().sum()
    features = rows.drop(columns=["customer", "region"])
    import mlflow.sklearn

    model = next(m for m in loopline.status(project).models if m.workspace == "dev")
    answers = mlflow.sklearn.load_model(model.source_uri).predict(features.to_numpy())
    assert np.array_equal(output["prediction"].to_numpy(), answers)
    lineage = json.loads((folder / "_lineage.json").read_text())
    assert lineage["kept_columns"] == ["customer", "region"]


def test_a_deployment_with_an_output_file_writes_the_job_s_predictions_as_one_csv_after_a_resume(
    scored_project: Path,
) -> None:
    project = scored_project
    rows = with_ids(project)
    loopline.create_batch_deployment(
        "scorer", "csv", version=1, output_file="predictions.csv", project=project
    )
    argv = ("batch", "invoke", "scorer", "--input", "ids", "--deployment", "csv", "--keep", "customer")
    crashed = cli_process(*argv, cwd=project, env={"LOOPLINE_FAILPOINT": "batch-after-chunk"})
    assert crashed.exit_code == 137
    job = loopline.batch_jobs("scorer", project=project)[0]
    folder = project / ".loopline" / "datastores" / "predictions" / "scorer" / job.id
    assert not (folder / "predictions.csv").exists()  # none of it before every part is there
    resumed = cli_process("batch", "job", "resume", job.id, cwd=project)
    assert resumed.exit_code == 0, resumed.stderr
    assert "predictions also in predictions.csv" in resumed.stderr
    written = pd.read_csv(folder / "predictions.csv")
    parts = predictions(folder)
    assert written.columns.tolist() == ["row", "customer", "prediction"] == parts.columns.tolist()
    assert written["row"].tolist() == list(range(len(rows)))
    assert written["customer"].tolist() == rows["customer"].tolist()
    assert np.array_equal(written["prediction"].to_numpy(), parts["prediction"].to_numpy())
    assert json.loads((folder / "_lineage.json").read_text())["output_file"] == "predictions.csv"
    shown = loopline.get_batch_endpoint("scorer", project=project).deployment("csv")
    assert shown is not None and shown.to_dict()["output_file"] == "predictions.csv"
    # the deployment without one writes the parts alone
    plain = loopline.batch_invoke("scorer", "ids", project=project)
    assert [p.name for p in (folder.parent / plain.id).iterdir() if not p.name.startswith("part-")] == [
        "_lineage.json"
    ]
    newest = cli_process("batch", "job", "list", "--limit", "1", "--json", cwd=project)
    assert [j["id"] for j in json.loads(newest.stdout)["jobs"]] == [plain.id]
    assert [j.id for j in loopline.batch_jobs("scorer", limit=5, project=project)] == [plain.id, job.id]


@pytest.mark.parametrize("name", ["../predictions.csv", "part-00001.csv", "scores.txt", "a b.csv"])
def test_an_output_file_that_is_no_plain_csv_name_of_the_job_s_folder_is_refused(
    scored_project: Path, name: str
) -> None:
    done = cli_process(
        "batch-deployment",
        "create",
        "scorer",
        "odd",
        "--version",
        "1",
        "--output-file",
        name,
        cwd=scored_project,
    )
    assert done.exit_code == 2 and "is not a CSV file name a job's folder can hold" in done.stderr
    assert loopline.get_batch_endpoint("scorer", project=scored_project).deployment("odd") is None


def test_a_list_an_answer_holds_is_a_json_cell() -> None:
    assert jobs._as_cell(np.array([0.25, 0.75])) == "[0.25, 0.75]"
    assert jobs._as_cell(["a", 1]) == '["a", 1]'
    assert jobs._as_cell("text") == "text" and jobs._as_cell(3) == 3


@pytest.mark.parametrize(
    ("keep", "message"),
    [
        (
            ["client"],
            "--keep names 'client', which is not a column of data asset ids:1 (its columns: customer, ",
        ),
        (["row"], "--keep names 'row' (the parts number their rows in a column of that name)"),
        (["customer", "customer"], "--keep names 'customer' twice; name each input column once, and not row"),
    ],
    ids=["unknown", "row", "twice"],
)
def test_columns_to_keep_that_cannot_be_kept_are_refused_before_a_job_starts(
    scored_project: Path, keep: list[str], message: str
) -> None:
    project = scored_project
    with_ids(project)
    before = len(loopline.batch_jobs("scorer", project=project))
    refused = cli_process(
        "batch", "invoke", "scorer", "--input", "ids", *(f"--keep={name}" for name in keep), cwd=project
    )
    assert refused.exit_code == 2 and refused.stderr.startswith(f"error: {message}"), refused.stderr
    assert "Traceback" not in refused.stderr
    assert len(loopline.batch_jobs("scorer", project=project)) == before


@pytest.mark.parametrize(
    ("hole", "message"),
    [
        (None, " is null, and the model requires a value there"),
        (np.inf, " is not a finite number"),
        ("1,234.5", ": expected a number, got text"),
    ],
    ids=["null", "infinity", "text"],
)
def test_a_bad_cell_in_a_column_the_model_requires_fails_the_job_naming_its_row(
    scored_project: Path, hole: float | str | None, message: str
) -> None:
    # Scored as they came, such rows got a class from a NaN, where the endpoint refuses the same row.
    project = scored_project
    data = big_csv(project, project / ".loopline" / "datastores" / "inbox" / "holes")
    rows = pd.read_csv(data)
    column = rows.columns[3]
    rows[column] = rows[column].astype(object)
    rows.loc[55_123, column] = hole
    rows.to_csv(data, index=False)
    loopline.register_data("holes", "inbox://holes", project=project)
    failed = cli_process("batch", "invoke", "scorer", "--input", "holes", cwd=project)
    assert failed.exit_code == 1
    assert failed.stderr.splitlines()[-1] == f"error: column '{column}' row 55,123{message}"
    job = loopline.batch_jobs("scorer", project=project)[0]
    assert job.status == "failed" and job.error == f"column '{column}' row 55,123{message}"
    folder = project / ".loopline" / "datastores" / "predictions" / "scorer" / job.id
    before = predictions(folder)["row"].tolist()  # the chunks before its own, for a resume once mended
    assert before == list(range(len(before))) and 50_000 < len(before) <= 55_123


def spark_folder(folder: Path, rows: pd.DataFrame) -> None:
    """``rows`` as Spark writes a table: part files, markers, checksums, and a failed attempt's leftovers."""
    (folder / "_temporary" / "0").mkdir(parents=True)
    size = -(-len(rows) // 3)
    for number, start in enumerate(range(0, len(rows), size)):
        name = f"part-{number:05d}-3f1c.c000.snappy.parquet"
        rows.iloc[start : start + size].to_parquet(folder / name, index=False)
        (folder / f".{name}.crc").write_bytes(b"crc")
    (folder / "_SUCCESS").write_bytes(b"")
    (folder / "_committed_4412").write_text('{"added": []}')
    (folder / "_temporary" / "0" / "part-00000.parquet").write_bytes(b"half a file")


@pytest.mark.parametrize("layout", ["spark folder", "csv.gz", "tsv.bz2", "PARQUET", "excel csv"])
def test_tables_as_tools_write_them_are_scored_and_their_markers_skipped(
    scored_project: Path, layout: str, tmp_path: Path
) -> None:
    project = scored_project
    inbox = project / ".loopline" / "datastores" / "inbox"
    rows = pd.read_csv(inbox / "big" / "scoring.csv").head(6_000)  # the format is the question, not the size
    data = tmp_path / "rows.csv"
    rows.to_csv(data, index=False)
    target = inbox / "tables" / layout.replace(" ", "-")
    target.parent.mkdir(exist_ok=True)
    if layout == "spark folder":
        target.mkdir()
        spark_folder(target, rows)
    elif layout == "excel csv":  # as Excel writes CSV where a comma is the decimal mark
        target = target.with_name("scoring.csv")
        rows.to_csv(target, index=False, sep=";", decimal=",")
    elif layout == "PARQUET":
        target = target.with_name("scoring.PARQUET")
        rows.to_parquet(target, index=False)
    else:
        target = target.with_name(f"scoring.{layout}")
        rows.to_csv(target, index=False, sep="\t" if layout.startswith("tsv") else ",")
    asset, _ = loopline.register_data("tables", f"inbox://tables/{target.name}", project=project)
    job = loopline.batch_invoke("scorer", "tables", project=project)
    assert job.status == "succeeded" and job.rows == len(rows)
    output = predictions(project / ".loopline" / "datastores" / "predictions" / "scorer" / job.id)
    assert output["row"].tolist() == list(range(len(rows)))
    assert np.array_equal(output["prediction"].to_numpy(), expected(project, data))
    if layout == "spark folder":  # the markers are pinned with the tables: changing one is noticed
        assert len(asset.manifest) == 6  # three parts, three markers (a hidden file is not listed)
        (target / "_SUCCESS").write_bytes(b"changed")
        with pytest.raises(IntegrityViolation, match="changed since it was registered"):
            loopline.batch_invoke("scorer", "tables", project=project)


@pytest.mark.parametrize(
    ("name", "write", "said"),
    [
        ("rows.jsonl", lambda rows, path: rows.to_json(path, orient="records", lines=True),
         "that the model needs: its first column reads '{\"mean_radius\":21.905...', which looks like JSON; "
         "batch jobs read CSV"),
        ("upper.csv", lambda rows, path: rows.rename(columns=str.upper).to_csv(path, index=False),
         "that the model needs: its column 'MEAN_RADIUS' is named otherwise; rename it 'mean_radius' in "
         "the file"),
        ("other.csv",
         lambda rows, path: rows.rename(columns=lambda c: c.replace("mean", "avg")).to_csv(path, index=False),
         "(its columns: avg_radius, avg_texture, avg_perimeter, avg_area, avg_smoothness, "
         "avg_compactness, avg_concavity, avg_concave_points, avg_symmetry, avg_fractal_dimension, "
         "radius_error, texture_error, ...); score files holding every column the model was fitted on (one "
         "the training computes included), or compute such a column in the model"),
    ],
)  # fmt: skip
def test_an_input_without_the_model_s_columns_fails_saying_what_its_header_holds(
    scored_project: Path, tmp_path: Path, name: str, write: Any, said: str
) -> None:
    project = scored_project
    rows = pd.read_csv(project / ".loopline" / "datastores" / "inbox" / "big" / "scoring.csv").head(50)
    write(rows, tmp_path / name)
    loopline.upload_data("odd", tmp_path / name, project=project)
    failed = cli_process("batch", "invoke", "scorer", "--input", "odd", cwd=project)
    assert failed.exit_code == 1
    message = failed.stderr.splitlines()[-1]
    assert message.startswith("error: ") and said in message, message
    assert ("the input has no column 'mean_radius' that the model needs" in message) != name.startswith(
        "decimal"
    )


def test_a_csv_that_excel_saved_in_windows_1252_is_told_how_to_save_it_as_utf_8(
    scored_project: Path, tmp_path: Path
) -> None:
    project = scored_project
    rows = pd.read_csv(project / ".loopline" / "datastores" / "inbox" / "big" / "scoring.csv").head(50)
    rows.assign(city="Orléans").to_csv(tmp_path / "excel.csv", index=False, encoding="cp1252")
    loopline.upload_data("excel", tmp_path / "excel.csv", project=project)
    failed = cli_process("batch", "invoke", "scorer", "--input", "excel", cwd=project)
    assert failed.exit_code == 1 and failed.stderr.count("\n") == 1, failed.stderr
    assert failed.stderr.endswith(
        "/excel.csv is not UTF-8 text: it holds byte 0xe9 ('é' in Windows-1252, as Excel's plain CSV writes "
        'it); save it as UTF-8 (Excel: "CSV UTF-8"; or `iconv -f WINDOWS-1252 -t UTF-8 FILE > NEW.csv`) and '
        "give that file\n"
    )


def test_an_excel_workbook_is_told_to_be_saved_as_a_table(scored_project: Path, tmp_path: Path) -> None:
    # a workbook that pandas and openpyxl wrote (tests/projects/scoring.xlsx): a ZIP archive of XML
    project = scored_project
    workbook = Path(__file__).parents[1] / "projects" / "scoring.xlsx"
    save = 'save its sheet as CSV (Excel: Save As "CSV UTF-8") or Parquet and give that file'
    for name, said in (
        ("scoring.xlsx", f"is a spreadsheet (a workbook, not a table of text), not read as rows: {save}"),
        (
            "scoring.csv",
            f"is a ZIP archive, not a table of text: for a workbook (an Excel file is one), {save}",
        ),
    ):
        (tmp_path / name).write_bytes(workbook.read_bytes())
        loopline.upload_data("sheet", tmp_path / name, project=project)
        failed = cli_process("batch", "invoke", "scorer", "--input", "sheet", cwd=project)
        assert failed.exit_code == 1 and failed.stderr.count("\n") == 1, failed.stderr
        assert f"/{name} {said}" in failed.stderr


def test_a_folder_of_markers_alone_is_refused_naming_the_asset(scored_project: Path) -> None:
    project = scored_project
    folder = project / ".loopline" / "datastores" / "inbox" / "done"
    folder.mkdir()
    (folder / "_SUCCESS").write_bytes(b"")
    loopline.register_data("done", "inbox://done", project=project)
    failed = cli_process("batch", "invoke", "scorer", "--input", "done", cwd=project)
    assert failed.exit_code == 1
    assert failed.stderr.splitlines()[-1] == (
        "error: data asset done:1 (inbox://done) holds no table files, only files whose names start with "
        "'_' or '.' (markers such as _SUCCESS); register the folder of the tables"
    )
    assert loopline.batch_jobs("scorer", project=project) == []


def claim(project: Path, job_id: str, **values: Any) -> None:
    """Make the job look running in the process ``values`` name."""
    with Instance.open(project).db.write() as connection:
        connection.execute(
            update(batch_jobs).where(batch_jobs.c.id == job_id).values(status="running", **values)
        )


def test_promote_refuses_a_stale_expectation_and_rollback_restores(scored_project: Path) -> None:
    project = scored_project
    loopline.create_batch_deployment("scorer", "green", version=1, project=project)
    with pytest.raises(
        Refused, match="the default of batch endpoint 'scorer' is blue, not green as expected"
    ):
        loopline.batch_promote("scorer", "green", expected_current="green", project=project)
    assert loopline.get_batch_endpoint("scorer", project=project).default == "blue"
    promoted = cli_process(
        "batch",
        "promote",
        "scorer",
        "green",
        "--expected-current",
        "blue",
        "--reason",
        "v1 again",
        "--json",
        cwd=project,
    )
    change = json.loads(promoted.stdout)
    assert change["changed"] and change["previous"] == "blue"
    event = loopline.history(project, kind="batch-promoted")[-1].event
    assert (event.target, event.reason) == ("batch:scorer/green", "v1 again")
    again = loopline.batch_promote("scorer", "green", expected_current="green", project=project)
    assert not again.changed
    assert loopline.batch_rollback("scorer", project=project).default == "blue"
    assert not loopline.batch_rollback("scorer", project=project).changed


def test_the_same_batch_flow_on_azure_blob(
    trained_project: ProjectFactory, azurite: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AZURE_STORAGE_CONNECTION_STRING", azurite.connection_string)
    inbox, predicted = azurite.container("inbox"), azurite.container("predictions")
    monkeypatch.setenv("LOOPLINE_DATASTORES__INBOX__URL", f"{inbox}/proj")
    monkeypatch.setenv("LOOPLINE_DATASTORES__PREDICTIONS__URL", f"{predicted}/proj")
    project = trained_project("simple")
    from loopline.storage.datastores import Datastore

    local = big_csv(project, project / "tmp")
    # Uploaded from this machine into the blob container, as a team member would.
    asset, _ = loopline.upload_data("big", local.parent, project=project)
    assert Datastore("inbox", f"{inbox}/proj").files(asset.path) == [f"{asset.path}/scoring.csv"]
    loopline.create_batch_endpoint("scorer", "dev", project=project)
    loopline.create_batch_deployment("scorer", "blue", version=1, output_file="scores.csv", project=project)
    job = loopline.batch_invoke("scorer", "big", project=project)
    assert job.rows == ROWS
    store = Datastore("predictions", f"{predicted}/proj")
    lineage = json.loads(store.open(f"scorer/{job.id}/_lineage.json").read())
    assert lineage["input"]["digest"] == asset.digest
    parts = [name for name in store.files(f"scorer/{job.id}") if name.endswith(".parquet")]
    frames = [pd.read_parquet(store.open(name)) for name in parts]
    output = pd.concat(frames, ignore_index=True)
    assert np.array_equal(output["prediction"].to_numpy(), expected(project, local))
    # the one CSV file beside the parts, put into the container whole
    written = pd.read_csv(store.open(f"scorer/{job.id}/scores.csv"))
    assert written["row"].tolist() == list(range(ROWS))
    assert np.array_equal(written["prediction"].to_numpy(), output["prediction"].to_numpy())


COUNTRIES = (TRAINING_SCRIPTS / "countries.py").read_text()


@pytest.mark.parametrize("layout", ["csv", "csv.gz"])
def test_a_text_that_pandas_takes_for_a_missing_value_is_scored_as_the_text_it_is(
    new_project: ProjectFactory, layout: str
) -> None:
    # Namibia's country code is NA, a marker of a missing value to pandas: read as null, every Namibian
    # row failed the job ("is null, and the model requires a value there"), where the endpoint scores it.
    from tests.helpers import use_script

    project = new_project("simple", commit=False)
    use_script(project, "countries.py", {"accuracy": {"min": 0.5}}, source=COUNTRIES)
    loopline.inner_loop(project)
    rows = pd.DataFrame({"country": ["NA", "DE", "NA", "ZA", "BW"] * 40, "visits": [1, 2, 3, 4, 5] * 40})
    # An account number kept beside the answers, to join them back by: its leading zeros, and an account
    # named NA, as written (read as numbers, 00042 came back as 42 and NA as a null).
    rows["account"] = [f"{n:05d}" for n in range(199)] + ["NA"]
    folder = project / ".loopline" / "datastores" / "inbox" / "customers"
    folder.mkdir(parents=True)
    rows.to_csv(folder / f"customers.{layout}", index=False)
    loopline.register_data("customers", "inbox://customers", project=project)
    loopline.create_batch_endpoint("scorer", "dev", project=project)
    loopline.create_batch_deployment("scorer", "blue", version=1, project=project)
    job = loopline.batch_invoke("scorer", "customers", keep=["account"], project=project)
    assert job.status == "succeeded" and job.rows == 200
    scored = predictions(project / ".loopline" / "datastores" / "predictions" / "scorer" / job.id)
    assert scored["prediction"].tolist() == [1, 0, 1, 1, 0] * 40
    assert scored["account"].tolist() == rows["account"].tolist()


def test_dates_numbers_and_booleans_written_as_text_are_scored_as_the_endpoint_reads_them(
    new_project: ProjectFactory,
) -> None:
    # A model taking a datetime, an integer and a boolean column (its signature says so): a CSV file holds
    # text, which reached the model as text and failed the job ("Can only use .dt accessor"), or answered
    # wrongly without a word ("yes" is not False), where the endpoint reads or refuses them.
    from tests.helpers import use_script

    project = new_project("simple", commit=False)
    use_script(project, "visits_by_hour.py", {"accuracy": {"min": 0.5}})
    loopline.inner_loop(project)
    inbox = project / ".loopline" / "datastores" / "inbox"

    def refusal(name: str, rows: dict[str, list[Any]]) -> str:
        pd.DataFrame(rows).to_csv(inbox / f"{name}.csv", index=False)
        loopline.register_data(name, f"inbox://{name}.csv", project=project)
        with pytest.raises(Refused) as refused:
            loopline.batch_invoke("scorer", name, project=project)
        return str(refused.value)

    stamps = ["2026-04-01 10:00:00", "2026-04-01T20:00:00", "04/02/2026 11:30"]  # the last: not ISO 8601
    # Booleans as spreadsheets and programs write them (True, FALSE, 0, 1).
    holidays = ["FALSE", "0", "True", "false", "1", "0"]
    pd.DataFrame({"at": stamps * 10, "staff": [3, 4, 5] * 10, "holiday": holidays * 5}).to_csv(
        inbox / "visits.csv", index=False
    )
    loopline.register_data("visits", "inbox://visits.csv", project=project)
    loopline.create_batch_endpoint("scorer", "dev", project=project)
    loopline.create_batch_deployment("scorer", "blue", version=1, project=project)
    job = loopline.batch_invoke("scorer", "visits", project=project)
    assert job.status == "succeeded" and job.rows == 30, job.error
    scored = predictions(project / ".loopline" / "datastores" / "predictions" / "scorer" / job.id)
    assert scored["prediction"].tolist() == [3, 0, 0, 3, 0, 5] * 5  # open from 9 to 18, not on holidays
    typo = (
        "column 'at' row 6: expected a date and time (ISO 8601: 2026-04-01T10:00:00), "
        "got '2026-04-31 10:00:00'"
    )
    assert refusal("typo", {"at": [*stamps[:2] * 3, "2026-04-31 10:00:00"], "staff": 1, "holiday": 0}) == typo
    failed = loopline.batch_jobs("scorer", project=project)[0]
    assert failed.status == "failed" and failed.error == typo
    # A number written as a word, in a model's table (not a matrix): named, where the model said only
    # what it could not convert.
    words = {"at": stamps[:2] * 2, "staff": [1, 2, "three", 4], "holiday": False}
    assert refusal("words", words) == "column 'staff' row 2: expected a number, got text"
    zones = {"at": ["2026-04-01T10:00:00Z", "2026-04-01T10:00:00+02:00"], "staff": [1, 1], "holiday": 0}
    assert refusal("zones", zones) == (
        "column 'at': its dates and times mix time zone offsets (UTC, UTC+02:00); write them all with one "
        "offset, or all without"
    )
    # A fraction in an integer column and a yes in a boolean one: refused as the endpoint refuses them.
    half = {"at": stamps * 2, "staff": [1, 2, 2.5, 1, 1, 1], "holiday": False}
    assert refusal("half", half) == "column 'staff' row 2: expected an integer, got a fraction"
    big = {"at": stamps, "staff": [1, 2**40, 1], "holiday": 0}  # the model's column has 32 bits
    assert refusal("big", big) == "column 'staff' row 1: expected an integer that fits in 32 bits"
    yes = {"at": stamps, "staff": [1, 1, 1], "holiday": ["no", "no", "yes"]}
    assert refusal("yes", yes) == "column 'holiday' row 0: expected true or false (or 1 or 0), got 'no'"


def test_numbers_in_a_parquet_column_the_model_takes_as_text_are_scored_as_their_text(
    new_project: ProjectFactory,
) -> None:
    # Countries by dialing code, which the model learnt as text ("264"); a warehouse's Parquet export holds
    # them as integers, which the model's encoder had never seen: every row scored as an unknown country,
    # without a word, where the endpoint gives a number sent for text as its text.
    from tests.helpers import use_script

    codes = {"NA": "264", "ZA": "27", "BW": "267", "DE": "49"}
    source = COUNTRIES.replace('["NA", "ZA", "BW", "DE"]', str(list(codes.values())))
    source = source.replace('c in ("NA", "ZA")', 'c in ("264", "27")')
    assert source.count("264") == 2, "tests/training_scripts/countries.py changed: update this test"
    project = new_project("simple", commit=False)
    use_script(project, "countries.py", {"accuracy": {"min": 0.9}}, source=source)
    loopline.inner_loop(project)
    inbox = project / ".loopline" / "datastores" / "inbox"
    rows = pd.DataFrame({"country": [264, 49, 264, 27, 267] * 40, "visits": [1, 2, 3, 4, 5] * 40})
    rows.to_parquet(inbox / "customers.parquet")
    # As pandas holds integers where a column has a null: fractions, 264.0 (which the endpoint reads 264).
    rows.assign(country=rows["country"].astype(float)).to_parquet(inbox / "floats.parquet")
    loopline.create_batch_endpoint("scorer", "dev", project=project)
    loopline.create_batch_deployment("scorer", "blue", version=1, project=project)
    for name in ("customers", "floats"):
        loopline.register_data(name, f"inbox://{name}.parquet", project=project)
        job = loopline.batch_invoke("scorer", name, project=project)
        assert job.status == "succeeded" and job.rows == 200, job.error
        scored = predictions(project / ".loopline" / "datastores" / "predictions" / "scorer" / job.id)
        assert scored["prediction"].tolist() == [1, 0, 1, 1, 0] * 40, name


def test_a_folder_written_partitioned_is_scored_with_the_columns_its_folders_name(
    new_project: ProjectFactory,
) -> None:
    # Spark and pandas' to_parquet(partition_cols=...) keep a partition column in the folders' names
    # (country=NA/part-0.parquet), not in the files: the model takes it as a feature all the same.
    from tests.helpers import use_script

    project = new_project("simple", commit=False)
    use_script(project, "countries.py", {"accuracy": {"min": 0.9}})
    loopline.inner_loop(project)
    rows = pd.DataFrame(
        {"country": ["NA", "DE", "ZA", "BW"] * 25, "visits": [1, 2, 3, 4] * 25, "year": [2024, 2025] * 50}
    )
    inbox = project / ".loopline" / "datastores" / "inbox"
    rows.to_parquet(inbox / "customers", partition_cols=["country", "year"])
    assert not any("country" in pd.read_parquet(f).columns for f in (inbox / "customers").rglob("*.parquet"))
    loopline.register_data("customers", "inbox://customers", project=project)
    loopline.create_batch_endpoint("scorer", "dev", project=project)
    loopline.create_batch_deployment("scorer", "blue", version=1, project=project)
    job = loopline.batch_invoke("scorer", "customers", keep=["country", "year"], project=project)
    assert job.status == "succeeded" and job.rows == 100, job.error
    scored = predictions(project / ".loopline" / "datastores" / "predictions" / "scorer" / job.id)
    # the rows pandas reads from the folder, Namibia's NA the text it is; a kept column not the model's
    # as written (the folder's text, as a CSV's), so a partition month=01 keeps its zero
    assert scored["prediction"].tolist() == [int(c in ("NA", "ZA")) for c in scored["country"]]
    assert sorted(scored["country"].unique()) == ["BW", "DE", "NA", "ZA"]
    assert set(scored["year"]) == {"2024", "2025"}
    whole = pd.read_parquet(inbox / "customers")
    assert sorted(zip(scored["country"], scored["year"], strict=True)) == sorted(
        zip(whole["country"].astype(str), whole["year"].astype(str), strict=True)
    )


def test_hive_partitions_are_read_from_folder_names_as_pyarrow_reads_them() -> None:
    from loopline.storage.datastores import hive_partitions

    found = hive_partitions(
        [
            "region=north/month=01/part-0.parquet",
            "region=south%2Feast/month=12/part-0.parquet",
            "region=__HIVE_DEFAULT_PARTITION__/month=3/part-0.parquet",
            "region=west/month=x1/part-0.parquet",  # one value not a number: the key holds text
            "plain/part-1.parquet",
            "part=2.parquet",  # a file named so is no folder
        ]
    )
    assert found == {  # 01 is a text's (a number is written 1): the month is text, as written
        "region=north/month=01/part-0.parquet": {"region": "north", "month": "01"},
        "region=south%2Feast/month=12/part-0.parquet": {"region": "south/east", "month": "12"},
        "region=__HIVE_DEFAULT_PARTITION__/month=3/part-0.parquet": {"region": None, "month": "3"},
        "region=west/month=x1/part-0.parquet": {"region": "west", "month": "x1"},
        "plain/part-1.parquet": {},
        "part=2.parquet": {},
    }
    assert hive_partitions(
        ["year=2024/a.csv", "year=-1/b.csv", "year=0/c.csv", "year=__HIVE_DEFAULT_PARTITION__/d.csv"]
    ) == {
        "year=2024/a.csv": {"year": 2024},
        "year=-1/b.csv": {"year": -1},
        "year=0/c.csv": {"year": 0},
        "year=__HIVE_DEFAULT_PARTITION__/d.csv": {"year": None},
    }
    # a folder Spark wrote by day and hour: 8,760 files
    many = [f"day={d}/hour={h}/part-0.parquet" for d in range(1, 366) for h in range(24)]
    assert hive_partitions(many)[many[-1]] == {"day": 365, "hour": 23}
