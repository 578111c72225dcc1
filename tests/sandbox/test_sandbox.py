"""Model code in the sandbox: no secret, no loopline file, no other process, no network; failures answer."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import mlflow
import numpy as np
import pandas as pd
import pytest
from mlflow.models import ModelSignature, infer_signature
from mlflow.types import ColSpec, Schema
from pydantic import ValidationError

from loopline.config import SandboxConfig
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


def _pyfunc(folder: Path, body: str, answers: str = "model_input['x'] * 2") -> Path:
    """A pyfunc model of one optional column ``x``, with ``body`` in its class, answering ``answers``."""
    code = folder.parent / f"{folder.name}.py"
    code.write_text(
        "import os, sys, time\nimport mlflow\n\n"
        "class Model(mlflow.pyfunc.PythonModel):\n"
        f"{body}\n"
        "    def predict(self, context, model_input, params=None):\n"
        "        print('chatty model: predicting')\n"
        f"        return {answers}\n\n"
        "mlflow.models.set_model(Model())\n"
    )
    # With a signature and no input example, saving does not run the model here.
    signature = ModelSignature(inputs=Schema([ColSpec("double", "x", required=False)]))
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


FORGES_ITS_ANSWERS = """    def load_context(self, context):
        import pyarrow as pa
        import loopline.sandbox.frames as frames

        def forged(frame, path):
            # a valid table file whose text column's offsets then claim a gigabyte of its 8 bytes
            table = pa.table({'prediction': pa.array(['abcdefgh'] * len(frame))})
            with pa.OSFile(str(path), 'wb') as sink, pa.ipc.new_file(sink, table.schema) as writer:
                writer.write_table(table)
            data = path.read_bytes()
            good = (0).to_bytes(4, 'little') + (8).to_bytes(4, 'little') + b'abcdefgh'
            assert data.count(good) == 1
            path.write_bytes(data.replace(good, good[:4] + (1 << 30).to_bytes(4, 'little') + good[8:]))

        frames.write_frame = forged"""


def test_answers_forged_by_model_code_are_refused_and_the_parent_goes_on(tmp_path: Path) -> None:
    # Read as they are, such answers crash the reading process (a segmentation fault in pandas' copy).
    forger = _pyfunc(tmp_path / "forger", FORGES_ITS_ANSWERS)
    with SandboxedModel(forger) as model, pytest.raises(ModelFailed) as refused:
        model.score(pd.DataFrame({"x": [1.0]}))
    assert refused.value.message.startswith("the model's answers are not a readable table: ")
    assert "binary offsets" in refused.value.message and "\n" not in refused.value.message

    honest = _pyfunc(tmp_path / "honest", "    def load_context(self, context):\n        pass")
    with SandboxedModel(honest) as model:
        assert model.score(pd.DataFrame({"x": [1.0, 2.5]}))["prediction"].tolist() == [2.0, 5.0]


def test_a_model_that_answers_fewer_rows_than_it_was_given_is_refused(tmp_path: Path) -> None:
    # As a model that drops the rows it cannot score would: its answers would land on the wrong rows.
    dropping = _pyfunc(tmp_path / "dropping", "    pass", answers="model_input['x'].dropna() * 2")
    with SandboxedModel(dropping) as model:
        assert model.score(pd.DataFrame({"x": [1.0, 2.5]}))["prediction"].tolist() == [2.0, 5.0]
        with pytest.raises(ModelFailed) as refused:
            model.score(pd.DataFrame({"x": [1.0, None, 3.0]}))
    assert refused.value.message.startswith("the model answered 2 rows for 3 rows of input; it must answer")
    assert refused.value.message.endswith("(a model that drops rows, nulls say, cannot score a table)")


def test_a_forecast_answering_a_value_a_step_is_told_to_be_scored_through_its_endpoint(
    tmp_path: Path,
) -> None:
    # As statsmodels' models answer: one row naming a horizon in, a value for each of its steps out.
    horizon = _pyfunc(tmp_path / "horizon", "    pass", answers="[float(s) for s in range(12)]")
    with SandboxedModel(horizon) as model, pytest.raises(ModelFailed) as refused:
        model.score(ROW)
    assert refused.value.message == (
        "the model answered 12 rows for 1 rows of input; it must answer each row it is given, in order (a "
        "model that answers several values a row, as a forecast answers each step of its horizon, is "
        "scored through its endpoint)"
    )


def test_a_model_fitted_on_an_array_scores_a_table_of_whole_numbers_as_its_endpoint_does(
    tmp_path: Path,
) -> None:
    # A CSV of whole numbers reads as integer columns, which MLflow's check of a float tensor refuses.
    from sklearn.linear_model import LinearRegression

    matrix = np.array([[1.0, 2.0, 3.0], [2.0, 3.0, 4.0], [3.0, 5.0, 6.0], [4.0, 4.0, 4.0]])
    fitted = LinearRegression().fit(matrix, [1.0, 2.0, 3.0, 4.0])
    signature = infer_signature(matrix, fitted.predict(matrix))
    mlflow.sklearn.save_model(fitted, tmp_path / "m", signature=signature, pip_requirements=["scikit-learn"])
    whole = pd.DataFrame({"0": [1, 4], "1": [2, 4], "2": [3, 4]})
    with SandboxedModel(tmp_path / "m") as model:
        answers = model.score(whole)["prediction"].to_numpy()
        np.testing.assert_allclose(answers, fitted.predict(whole.to_numpy(dtype=float)), rtol=1e-12)
        with pytest.raises(ModelFailed, match=r"^column '1': the model takes float64 values only$"):
            model.score(pd.DataFrame({"0": [1.0], "1": ["high"], "2": [3.0]}))


def test_a_model_answering_several_values_a_row_gets_a_list_a_row(tmp_path: Path) -> None:
    # A classifier logged with pyfunc_predict_fn="predict_proba" answers a probability per class.
    from sklearn.linear_model import LogisticRegression

    rows = pd.DataFrame({"a": [1.0, 2.0, 3.0, 4.0, 5.0, 6.0], "b": [2.0, 3.0, 4.0, 1.0, 0.0, 1.0]})
    fitted = LogisticRegression().fit(rows, [0, 0, 1, 1, 2, 2])
    mlflow.sklearn.save_model(
        fitted,
        tmp_path / "m",
        signature=infer_signature(rows, fitted.predict_proba(rows)),
        pip_requirements=["scikit-learn"],
        pyfunc_predict_fn="predict_proba",
    )
    with SandboxedModel(tmp_path / "m") as model:
        answers = model.score(rows.head(4))
    assert list(answers.columns) == ["prediction"]
    assert np.allclose(
        np.stack(answers["prediction"].to_numpy()), fitted.predict_proba(rows.head(4)), atol=1e-12
    )


@pytest.mark.parametrize(
    "written",
    ["'x' * (3 << 20)", "'not an answer\\n'", "'[1, 2]\\n'", "'{\"ok\": true\\n'"],
    ids=["endless-line", "text", "not-an-object", "cut-short"],
)
def test_model_code_writing_on_the_answer_channel_is_stopped_with_a_one_line_reason(
    tmp_path: Path, written: str
) -> None:
    # Model code shares the child's process, so it can reach the channel the child answers on.
    body = (
        "    def load_context(self, context):\n"
        f"        channel = sys.modules['__main__']._ANSWERS\n"
        f"        channel.write({written})\n"
        "        channel.flush()"
    )
    writer = _pyfunc(tmp_path / "writer", body)
    with SandboxedModel(writer) as model:
        with pytest.raises(ModelFailed) as refused:
            model.score(pd.DataFrame({"x": [1.0]}))
        assert refused.value.message.startswith("the model's process wrote something other than loopline's")
        assert model._sandbox is not None and model._sandbox.process.poll() is not None  # stopped


def test_answers_too_large_to_be_answers_are_not_read(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import loopline.sandbox

    monkeypatch.setattr(loopline.sandbox, "ANSWERS_FLOOR", 64 << 10)  # 256 MiB would take a while to write
    many = "model_input['x'].map(lambda v: 'x' * (1 << 20))"  # a megabyte of text a row
    verbose = _pyfunc(tmp_path / "verbose", "    pass", answers=many)
    with SandboxedModel(verbose) as model, pytest.raises(ModelFailed) as refused:
        model.score(pd.DataFrame({"x": [1.0]}))
    assert refused.value.message.startswith(
        "the model's answers are 1.0 MiB for 0.0 MiB of rows, over the 0.1 MiB"
    )


def test_a_model_that_raises_is_logged_with_its_own_frames_not_loopline_s(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    failing = _pyfunc(tmp_path / "failing", "    pass", answers="model_input['x'] / model_input['y']")
    with SandboxedModel(failing) as model, pytest.raises(ModelFailed) as refused:
        model.score(ROW)
    assert refused.value.message == "KeyError: 'y'"
    logged = "\n".join(r.getMessage() for r in caplog.records if "failed in its sandbox" in r.getMessage())
    assert "failing.py" in logged and "in predict" in logged and "KeyError: 'y'" in logged, logged
    assert "loopline/sandbox" not in logged and "loopline/serving" not in logged, logged


def test_a_model_using_joblib_logs_only_its_own_failure(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # joblib (scikit-learn's) cannot share memory between processes in the sandbox and runs in one, as a
    # model's n_jobs=-1 then does: that is no warning in the model's log ("Permission denied").
    failing = _pyfunc(
        tmp_path / "forest",
        "    def load_context(self, context):\n        import joblib",
        answers="model_input['x'] / model_input['y']",
    )
    with SandboxedModel(failing) as model, pytest.raises(ModelFailed):
        model.score(ROW)
    logged = "\n".join(r.getMessage() for r in caplog.records if "failed in its sandbox" in r.getMessage())
    assert "KeyError: 'y'" in logged and "serial mode" not in logged and "Permission denied" not in logged, (
        logged
    )


def test_what_a_failing_model_printed_is_logged_as_text_not_as_terminal_or_ci_commands(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # A release job shows this log: model code must not clear its terminal or command its GitHub run.
    noisy = _pyfunc(
        tmp_path / "noisy",
        "    def load_context(self, context):\n"
        "        print('\\x1b[2J\\x1b]52;c;Y3VybA==\\x07', file=sys.stderr)\n"
        "        print('::add-mask::loopline\\n  ::stop-commands::x\\n##[set-output name=released;]true', "
        "file=sys.stderr)",
        answers="model_input['x'] / model_input['y']",
    )
    with SandboxedModel(noisy) as model, pytest.raises(ModelFailed):
        model.score(ROW)
    logged = "\n".join(r.getMessage() for r in caplog.records if "failed in its sandbox" in r.getMessage())
    assert "KeyError: 'y'" in logged and "\\x1b[2J\\x1b]52;c;Y3VybA==\\x07" in logged, logged
    assert "\x1b" not in logged and "\x07" not in logged
    assert not [line for line in logged.splitlines() if line.lstrip().startswith("::") or "##[" in line]
    assert "::add-mask::loopline" in logged.replace("\u200b", "")  # shown as it was printed


def test_a_project_gives_model_code_the_variables_and_the_port_it_names_and_nothing_else(
    tmp_path: Path, targets: dict[str, object], listener: socket.socket
) -> None:
    # An agent's key to its LLM's API, and the API's port: sandbox.environment and sandbox.connect_ports
    model = probe_model(tmp_path / "model", targets)
    port = int(str(targets["port"]))
    with Sandbox([model], allowed=SandboxConfig(environment=["PGPASSWORD"], connect_ports=[port])) as sandbox:
        found = findings(sandbox.score(model, ROW))
    assert found.pop("environment") == "allowed: PGPASSWORD"  # not LOOPLINE_TOKEN, not AWS_SECRET_ACCESS_KEY
    assert found.pop("connect").startswith("allowed") and _connected(listener)
    assert all(result.startswith("denied") for result in found.values()), found
    another = SandboxConfig(connect_ports=[port + 1 if port < 65535 else port - 1])
    with Sandbox([model], allowed=another) as sandbox:
        found = findings(sandbox.score(model, ROW))
    assert (found["connect"], found["environment"]) == ("denied: PermissionError", "denied: LookupError")
    assert not _connected(listener)


@pytest.mark.parametrize(
    ("given", "said"),
    [
        ({"environment": ["LOOPLINE_TOKEN"]}, "loopline's or MLflow's own setting"),
        ({"environment": ["MLFLOW_TRACKING_PASSWORD"]}, "loopline's or MLflow's own setting"),
        ({"environment": ["OPENAI API KEY"]}, "no environment variable's name"),
        ({"connect_ports": [0]}, "no TCP port"),
    ],
)
def test_loopline_s_own_credentials_are_never_given_to_model_code(
    given: dict[str, list[Any]], said: str
) -> None:
    with pytest.raises(ValidationError, match=said):
        SandboxConfig(**given)
