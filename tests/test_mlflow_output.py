"""MLflow's output in a process loopline runs in: no progress bars of loopline's downloads."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from mlflow import MlflowClient

from loopline.mlflow_output import no_progress_bars

BAR = "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR"


@pytest.fixture
def run_with_file(tmp_path: Path) -> tuple[MlflowClient, str]:
    """A real MLflow store with one run that logged one file."""
    client = MlflowClient(f"sqlite:///{tmp_path / 'mlflow.db'}")
    experiment = client.create_experiment("e", artifact_location=(tmp_path / "artifacts").as_uri())
    run = client.create_run(experiment)
    (tmp_path / "reference.csv").write_text("a\n1\n")
    client.log_artifact(run.info.run_id, str(tmp_path / "reference.csv"))
    return client, run.info.run_id


def _download(client: MlflowClient, run_id: str, tmp_path: Path, capfd: pytest.CaptureFixture[str]) -> str:
    capfd.readouterr()
    client.download_artifacts(run_id, "reference.csv", str(tmp_path / f"to-{len(list(tmp_path.iterdir()))}"))
    return capfd.readouterr().err


def test_loopline_s_downloads_draw_no_progress_bar_and_the_caller_s_own_still_do(
    run_with_file: tuple[MlflowClient, str],
    tmp_path: Path,
    capfd: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv(BAR, raising=False)
    client, run_id = run_with_file
    assert "Downloading artifacts" in _download(client, run_id, tmp_path, capfd)  # MLflow's default
    with no_progress_bars(), no_progress_bars():  # nested, as one loopline call inside another
        assert _download(client, run_id, tmp_path, capfd) == ""
    assert BAR not in os.environ  # the caller's process as it was
    assert "Downloading artifacts" in _download(client, run_id, tmp_path, capfd)


def test_a_caller_who_asked_for_progress_bars_keeps_them(
    run_with_file: tuple[MlflowClient, str],
    tmp_path: Path,
    capfd: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv(BAR, "true")
    client, run_id = run_with_file
    with no_progress_bars():
        assert "Downloading artifacts" in _download(client, run_id, tmp_path, capfd)
    assert os.environ[BAR] == "true"
