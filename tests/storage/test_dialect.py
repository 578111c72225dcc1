"""CSV files separated by ';' (as UCI publishes its wine quality data, as Excel writes them in much of Europe,
often with a decimal comma) are read as the training reads them: by init, validation, batch jobs and the
endpoints."""

from __future__ import annotations

import gzip
from pathlib import Path

import httpx
import numpy as np
import pandas as pd
import pytest
import yaml
from sklearn.metrics import r2_score

import loopline
from loopline.storage.datastores import Datastore, read_table
from loopline.storage.dialect import dialect
from tests.helpers import TRAINING_SCRIPTS, commit_all, edit_yaml, git, mlflow_pointed_at, system_key
from tests.servers import Server, free_port

COLUMNS = ["fixed acidity", "volatile acidity", "citric acid", "residual sugar", "alcohol"]


def _wines(count: int, seed: int) -> pd.DataFrame:
    """Wines whose quality follows their alcohol and volatile acidity, as in the UCI data."""
    rng = np.random.default_rng(seed)
    wines = pd.DataFrame({name: rng.normal(5, 2, count).round(3) for name in COLUMNS})
    noise = rng.normal(0, 0.3, count)
    quality = 3 + (wines["alcohol"] - 5) * 0.6 - (wines["volatile acidity"] - 5) * 0.3 + noise
    wines["quality"] = quality.round().clip(3, 8).astype(int)
    return wines


def _as_excel_in_germany(frame: pd.DataFrame) -> str:
    """``frame`` as a CSV file of ';' and decimal commas."""
    return frame.to_csv(sep=";", decimal=",", index=False)


def test_the_separator_and_decimal_are_read_off_the_first_lines() -> None:
    assert dialect("a,b;c\n1,2;3\n", ",") == {}  # commas split the header: a comma file, as ever
    assert dialect("review\nloved it; really\n", ",") == {}  # one column, whatever its texts hold
    assert dialect("a;b\n1.5;2\n", ",") == {"sep": ";"}
    assert dialect("a;b\n1,5;2\n", ",", whole=True) == {"sep": ";", "decimal": ","}
    assert dialect("a;b\n1,5;2\n3,25;1.5\n", ",", whole=True) == {
        "sep": ";"
    }  # a point too: not a decimal comma
    assert dialect("a;b\n1;2\n1,5;2", ",") == {"sep": ";"}  # the cut last line tells nothing
    assert dialect('"x";"y"\n"1,5";"a"\n', ",", whole=True) == {"sep": ";", "decimal": ","}
    assert dialect("a|b|c\n1|2|3\n", ",") == {"sep": "|"}
    assert dialect("a\tb\n1\t2\n", ",") == {"sep": "\t"}
    assert dialect("a\tb\n1\t2\n", "\t") == {}  # a .tsv file: tabs are its separator already


@pytest.mark.parametrize("name", ["wines.csv", "wines.csv.gz"])
def test_a_file_of_semicolons_and_decimal_commas_reads_as_pandas_reads_it_told_both(
    tmp_path: Path, name: str
) -> None:
    wines = _wines(50, seed=1)
    wines["region"] = ["Mosel, Saar", "NA"] * 25  # a text holding a comma, and Namibia's code
    text = _as_excel_in_germany(wines).encode()
    (tmp_path / name).write_bytes(gzip.compress(text) if name.endswith(".gz") else text)
    told = pd.read_csv(tmp_path / name, sep=";", decimal=",", keep_default_na=False)
    pd.testing.assert_frame_equal(read_table(tmp_path / name, texts={"region"}), told)
    store = Datastore("inbox", str(tmp_path))
    pd.testing.assert_frame_equal(store.frame(name, texts={"region"}), told)
    chunks = list(store.frames(name, rows=20))
    assert [len(c) for c in chunks] == [20, 20, 10]
    assert pd.concat(chunks, ignore_index=True)["alcohol"].tolist() == told["alcohol"].tolist()


def test_a_comma_file_whose_texts_hold_semicolons_stays_a_comma_file(tmp_path: Path) -> None:
    reviews = pd.DataFrame({"review": ["good; really", "bad;"], "stars": [4.5, 1.0]})
    reviews.to_csv(tmp_path / "reviews.csv", index=False)
    pd.testing.assert_frame_equal(read_table(tmp_path / "reviews.csv"), reviews)


def _wine_repository(path: Path) -> Path:
    """A repository training MLflow's wine quality example on a file of ';' as UCI publishes it."""
    path.mkdir()
    git(path, "init", "--quiet", "--initial-branch", "main")
    (path / "train.py").write_text((TRAINING_SCRIPTS / "wine_quality.py").read_text())
    (path / "data").mkdir()
    _wines(400, seed=0).to_csv(path / "data" / "winequality-red.csv", sep=";", index=False)
    commit_all(path, "The wine quality example")
    return path


def test_mlflow_s_wine_quality_example_goes_from_init_to_its_endpoints_on_files_of_semicolons(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    project = _wine_repository(tmp_path / "wine")
    loopline.init_existing(project, tier="full")
    # The label is the column of the training's table the model does not take: read with commas, the
    # table was one column, and init could not tell it.
    validation = yaml.safe_load((project / "loopline.yaml").read_text())["validation"]
    assert validation["label"] == "quality"
    edit_yaml(project / "loopline.yaml", validation={**validation, "thresholds": {"r2": {"min": 0.3}}})
    loopline.up(project)
    commit_all(project, "Set up loopline")
    registered = loopline.inner_loop(project)

    # Held-out wines as a German spreadsheet exports them: validated as the rows they are.
    heldout = _wines(120, seed=2)
    (tmp_path / "heldout.csv").write_text(_as_excel_in_germany(heldout))
    loopline.upload_data("heldout", tmp_path / "heldout.csv", project=project)
    tested = loopline.outer_loop_test(project)
    assert tested.passed, tested.report_markdown
    assert tested.report["data"]["rows"] == 120
    import mlflow

    with mlflow_pointed_at(project, "dev"):
        model = mlflow.pyfunc.load_model(f"models:/wine-model/{registered.dev.version}")
    own = model.predict(heldout[COLUMNS])
    assert tested.report["metrics"]["r2"] == pytest.approx(r2_score(heldout["quality"], own), abs=1e-9)

    # A batch job on such a file answers what the model answers.
    (tmp_path / "score.csv").write_text(_as_excel_in_germany(heldout[COLUMNS]))
    loopline.upload_data("scoring", tmp_path / "score.csv", project=project)
    loopline.create_batch_endpoint("cellar", "test", project=project)
    loopline.create_batch_deployment("cellar", "blue", workspace="test", version=1, project=project)
    job = loopline.batch_invoke("cellar", "scoring", workspace="test", project=project)
    written = pd.read_parquet(next((project / ".loopline" / "datastores" / "predictions").rglob("part-*")))
    assert job.rows == 120
    np.testing.assert_allclose(written["prediction"].to_numpy(), np.ravel(own), rtol=0, atol=1e-9)

    # So does the endpoint, to a CSV body of the same.
    port = free_port()
    monkeypatch.setenv("LOOPLINE_WORKSPACES__TEST__ENDPOINTS_URL", f"http://127.0.0.1:{port}")
    with Server(project, workspace="test", port=port) as server:
        answer = httpx.post(
            f"{server.url}/endpoints/wine-test/invocations",
            content=_as_excel_in_germany(heldout[COLUMNS][:3]).encode(),
            headers={
                "authorization": f"Bearer {system_key(project, 'wine-test', 'test')}",
                "content-type": "text/csv",
            },
            timeout=30,
        )
    assert answer.status_code == 200, answer.text
    np.testing.assert_allclose(answer.json()["predictions"], np.ravel(own)[:3], rtol=0, atol=1e-9)
