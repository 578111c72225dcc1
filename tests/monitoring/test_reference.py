"""The reference profile stored when a model is registered, from the training rows its run logged."""

from __future__ import annotations

import pytest

import loopline
from loopline.errors import EXIT_REFUSED
from loopline.instance import Instance
from loopline.monitoring.reference import load_reference
from tests.conftest import ProjectFactory
from tests.helpers import TRAINING_SCRIPTS, cli, edit_yaml, use_script

pytestmark = pytest.mark.slow

# The countries model, its run also logging its training rows as a CSV file, as many scripts do.
LOGS_ITS_ROWS = (
    (TRAINING_SCRIPTS / "countries.py")
    .read_text()
    .replace(
        "    mlflow.sklearn.log_model(",
        "    with tempfile.TemporaryDirectory() as scratch:\n"
        '        frame.to_csv(Path(scratch) / "reference.csv", index=False)\n'
        '        mlflow.log_artifact(str(Path(scratch) / "reference.csv"))\n'
        "    mlflow.sklearn.log_model(",
    )
    .replace("import random\n", "import random\nimport tempfile\nfrom pathlib import Path\n")
)


def test_a_csv_of_training_rows_keeps_a_text_that_pandas_reads_as_missing(
    new_project: ProjectFactory,
) -> None:
    project = new_project("simple", commit=False)
    edit_yaml(project / "loopline.yaml", monitoring={"reference_artifact": "reference.csv"})
    assert "log_artifact" in LOGS_ITS_ROWS, "tests/training_scripts/countries.py changed: update this test"
    use_script(project, "countries.py", {"accuracy": {"min": 0.5}}, source=LOGS_ITS_ROWS)
    result = loopline.inner_loop(project)
    profile = load_reference(Instance.open(project), result.dev.content_digest)
    assert profile is not None
    country = profile["features"]["country"]
    # Namibia (NA) is one of four countries drawn alike, not a missing value.
    assert country["missing_rate"] == 0.0, country
    assert set(country["categories"]) == {"NA", "ZA", "BW", "DE"}
    assert 0.15 < country["categories"]["NA"] < 0.35
    assert profile["features"]["visits"]["numeric"] is True  # a number column is still a number


# The countries model, its run logging its rows as CSV under the default Parquet name, as a slip would.
LOGS_TEXT_AS_PARQUET = LOGS_ITS_ROWS.replace(
    '(Path(scratch) / "reference.csv"', '(Path(scratch) / "reference_data.parquet"'
)


def test_a_reference_artifact_that_is_no_table_is_refused_before_anything_is_registered(
    new_project: ProjectFactory, capsys: pytest.CaptureFixture[str]
) -> None:
    project = new_project("simple", commit=False)
    assert LOGS_TEXT_AS_PARQUET.count("reference_data.parquet") == 2, "LOGS_ITS_ROWS changed: update this"
    use_script(project, "countries.py", {"accuracy": {"min": 0.5}}, source=LOGS_TEXT_AS_PARQUET)
    result = cli(capsys, "inner-loop", "--project", str(project))
    assert result.exit_code == EXIT_REFUSED, result.stderr
    lines = result.stderr.strip().splitlines()
    assert "Traceback" not in result.stderr
    assert any(
        "the run's reference artifact 'reference_data.parquet' is not a valid Parquet table" in line
        and "monitoring.reference_artifact" in line
        for line in lines
    ), result.stderr
    assert loopline.status(project).models == ()  # in no workspace, nor shared
