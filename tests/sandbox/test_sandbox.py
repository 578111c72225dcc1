"""Model code in the sandbox: no secret, no loopline file, no other process, no network; failures answer."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import mlflow
import pandas as pd
import pytest
from mlflow.models import ModelSignature
from mlflow.types import ColSpec, Schema

from loopline.errors import ModelFailed
from loopline.sandbox import Sandbox, SandboxedModel, check_model, landlock
from tests.sandbox.probe import findings, probe_model

ROW = pd.DataFrame({"x": [1.0]})


@pytest.fixture
def listener() -> Iterator[socket.socket]:
    """A TCP port on 127.0.0.1 that a model might try to reach (as it would a database or a metadata API)."""
    with socket.create_server(("127.0.0.1", 0)) as server:
        server.settimeout(0.2)
        yield server


@pytest.fixture
def targets(tmp_path: Path, listener: socket.socket, monkeypatch: pytest.MonkeyPatch) -> dict[str, object]:
    """A project with a database next to the model, and the credentials a control plane holds."""
    project = tmp_path / "project"
    (project / ".loopline").mkdir(parents=True)
    database = project / ".loopline" / "state.db"
    database.write_bytes(b"SQLite format 3\x00")
    monkeypatch.setenv("LOOPLINE_STATE_URL", f"sqlite:///{database}")
    monkeypatch.setenv("LOOPLINE_TOKEN", "ll_000000000000_secret")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "s3cr3t")
    monkeypatch.setenv("PGPASSWORD", "hunter2")
    return {
        "database": str(database),
        "project": str(project),
        "marker": str(project / "marker.txt"),
        "port": listener.getsockname()[1],
    }


def _connected(listener: socket.socket) -> bool:
    try:
        listener.accept()[0].close()
    except TimeoutError:
        return False
    return True


def test_the_probes_are_real_outside_the_sandbox(
    tmp_path: Path, targets: dict[str, object], listener: socket.socket
) -> None:
    # Loaded the ordinary way, in this process, the same model gets everything it tries.
    model = probe_model(tmp_path / "model", targets)
    found = findings(mlflow.pyfunc.load_model(str(model)).predict(ROW))
    assert all(result.startswith("allowed") for result in found.values()), found
    assert "AWS_SECRET_ACCESS_KEY" in found["environment"] and "LOOPLINE_TOKEN" in found["environment"]
    assert Path(str(targets["marker"])).read_text() == "model code ran here"
    assert _connected(listener)


def test_a_sandboxed_model_reaches_no_secret_no_file_no_process_and_no_network(
    tmp_path: Path, targets: dict[str, object], listener: socket.socket
) -> None:
    assert landlock.abi() >= 4, "this kernel has no Landlock network rules; the sandbox needs ABI 4 or newer"
    model = probe_model(tmp_path / "model", targets)
    with Sandbox([model]) as sandbox:
        assert sandbox.confinement.startswith("landlock")
        sandbox.check(model)
        found = findings(sandbox.score(model, ROW))
    assert found == {
        "environment": "denied: LookupError",
        "read database": "denied: PermissionError",
        "list project": "denied: PermissionError",
        "parent environment": "denied: PermissionError",
        "write marker": "denied: PermissionError",
        "connect": "denied: PermissionError",
    }
    assert not Path(str(targets["marker"])).exists()
    assert not _connected(listener)
    assert not sandbox.scratch.exists()  # its scratch folder goes with it


def _pyfunc(folder: Path, body: str) -> Path:
    code = folder.parent / f"{folder.name}.py"
    code.write_text(
        "import os, sys, time\nimport mlflow\n\n"
        "class Model(mlflow.pyfunc.PythonModel):\n"
        f"{body}\n"
        "    def predict(self, context, model_input, params=None):\n"
        "        print('chatty model: predicting')\n"
        "        return model_input['x'] * 2\n\n"
        "mlflow.models.set_model(Model())\n"
    )
    # With a signature and no input example, saving does not run the model here.
    signature = ModelSignature(inputs=Schema([ColSpec("double", "x")]))
    mlflow.pyfunc.save_model(
        str(folder), python_model=str(code), signature=signature, pip_requirements=["mlflow"]
    )
    return folder


def test_a_model_that_fails_to_load_is_refused_with_its_own_one_line_reason(tmp_path: Path) -> None:
    broken = _pyfunc(
        tmp_path / "broken",
        "    def load_context(self, context):\n        raise RuntimeError('weights missing\\nsecond line')",
    )
    with pytest.raises(ModelFailed) as refused:
        check_model(broken)
    assert refused.value.message == (
        "the model does not load and answer its input example: RuntimeError: weights missing"
    )
    assert str(tmp_path) not in refused.value.message


def test_a_model_that_prints_still_answers_and_one_that_exits_or_hangs_is_stopped(tmp_path: Path) -> None:
    chatty = _pyfunc(tmp_path / "chatty", "    def load_context(self, context):\n        print('hello')")
    with SandboxedModel(chatty) as model:
        assert model.score(pd.DataFrame({"x": [1.0, 2.5]}))["prediction"].tolist() == [2.0, 5.0]

    exits = _pyfunc(tmp_path / "exits", "    def load_context(self, context):\n        os._exit(3)")
    with pytest.raises(ModelFailed, match="the model's process ended"):
        check_model(exits)

    hangs = _pyfunc(tmp_path / "hangs", "    def load_context(self, context):\n        time.sleep(600)")
    with (
        Sandbox([hangs], timeout=5) as sandbox,
        pytest.raises(ModelFailed, match="the model's process ended"),
    ):
        sandbox.check(hangs)
