"""Scripts run by the inner loop: as Python runs them, with MLflow kept on the workspace."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = """\
import json, multiprocessing, os, sys

import mlflow
from mlflow.tracking import set_registry_uri


def square(x):
    return x * x


if __name__ == "__main__":
    mlflow.set_tracking_uri("http://127.0.0.1:9")  # the script's own tracking server
    set_registry_uri("sqlite:///elsewhere.db")
    with multiprocessing.get_context("spawn").Pool(1) as pool:  # children import this file again
        squares = pool.map(square, [2, 3])
    print(json.dumps({
        "argv": sys.argv, "file": __file__, "path0": sys.path[0], "squares": squares,
        "tracking": mlflow.get_tracking_uri(), "registry": mlflow.get_registry_uri(),
    }))
    sys.exit(3)
"""


def run(script: Path, cwd: Path, **env: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")}
    return subprocess.run(
        [sys.executable, "-m", "loopline.run_script", str(script), "--epochs", "3"],
        cwd=cwd,
        env={**clean, **env},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_a_script_runs_as_python_runs_it_with_mlflow_kept_on_the_workspace(tmp_path: Path) -> None:
    import json

    (tmp_path / "src").mkdir()
    script = tmp_path / "src" / "train.py"
    script.write_text(SCRIPT)
    workspace = f"sqlite:///{tmp_path / 'dev.db'}"
    done = run(script, tmp_path, MLFLOW_TRACKING_URI=workspace, MLFLOW_REGISTRY_URI=workspace)
    assert done.returncode == 3, done.stderr  # its own exit code
    said = json.loads(done.stdout)
    assert said["argv"] == [str(script), "--epochs", "3"] and said["file"] == str(script)
    assert said["path0"] == str(script.parent) and said["squares"] == [4, 9]
    assert said["tracking"] == workspace and said["registry"] == workspace
    assert "loopline: mlflow.set_tracking_uri('http://127.0.0.1:9') ignored" in done.stderr
    assert "loopline: mlflow.set_registry_uri('sqlite:///elsewhere.db') ignored" in done.stderr


ENVIRONMENT_SCRIPT = """\
import os

os.environ["MLFLOW_TRACKING_URI"] = "sqlite:///elsewhere.db"  # as tutorials set it, before importing MLflow

import mlflow

with mlflow.start_run() as run:
    mlflow.log_metric("rmse", 0.5)
print(run.info.run_id)
"""


def test_a_script_that_sets_the_tracking_uri_in_its_environment_still_logs_to_the_workspace(
    tmp_path: Path,
) -> None:
    from mlflow import MlflowClient

    script = tmp_path / "train.py"
    script.write_text(ENVIRONMENT_SCRIPT)
    workspace = f"sqlite:///{tmp_path / 'dev.db'}"
    done = run(script, tmp_path, MLFLOW_TRACKING_URI=workspace, LOOPLINE_WORKSPACE="dev")
    assert done.returncode == 0, done.stderr
    run_id = done.stdout.split()[-1]
    assert MlflowClient(workspace).get_run(run_id).data.metrics == {"rmse": 0.5}
    assert not (tmp_path / "elsewhere.db").exists()
    assert (
        "loopline: os.environ['MLFLOW_TRACKING_URI'] = 'sqlite:///elsewhere.db' ignored: this training logs "
        "to the dev workspace"
    ) in done.stderr


def test_outside_loopline_the_script_keeps_its_own_tracking_uri(tmp_path: Path) -> None:
    import json

    script = tmp_path / "train.py"
    script.write_text(SCRIPT)
    done = run(script, tmp_path)
    assert done.returncode == 3, done.stderr
    said = json.loads(done.stdout)
    assert said["tracking"] == "http://127.0.0.1:9" and "ignored" not in done.stderr


def test_a_notebook_gets_a_kernel_of_its_own_only_while_it_runs(tmp_path: Path) -> None:
    import json

    from loopline.run_script import command_argv, command_environment

    argv = command_argv(["python", "-m", "papermill", "train.ipynb", os.devnull, "--kernel", "python3"])
    with command_environment(argv, {"JUPYTER_PATH": str(tmp_path)}) as env:
        ours, theirs = env["JUPYTER_PATH"].split(os.pathsep)
        spec = json.loads(Path(ours, "kernels", "python3", "kernel.json").read_text())
        assert spec["argv"][:3] == [sys.executable, "-m", "ipykernel_launcher"]
        assert "start_training()" in spec["argv"][-1]
    assert theirs == str(tmp_path) and not Path(ours).exists()
    with command_environment(command_argv(["python", "train.py"]), {"A": "1"}) as env:
        assert env == {"A": "1"}  # a script is kept on the workspace by run_script itself


def test_a_module_runs_as_python_m_runs_it_with_mlflow_kept_on_the_workspace(tmp_path: Path) -> None:
    import json

    from loopline.run_script import command_argv

    package = tmp_path / "churn"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "helpers.py").write_text("def square(x):\n    return x * x\n")
    # a module of a package: its relative import and the spawned children need it run as one
    module = SCRIPT.replace("def square(x):\n    return x * x\n", "from .helpers import square\n")
    (package / "train.py").write_text(module)
    argv = command_argv(["python", "-m", "churn.train", "--epochs", "3"])
    assert argv[:4] == [sys.executable, "-m", "loopline.run_script", "-m"]
    workspace = f"sqlite:///{tmp_path / 'dev.db'}"
    clean = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")}
    env = {**clean, "MLFLOW_TRACKING_URI": workspace, "MLFLOW_REGISTRY_URI": workspace}
    done = subprocess.run(argv, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 3, done.stderr
    said = json.loads(done.stdout)
    assert said["argv"] == [str(package / "train.py"), "--epochs", "3"] and said["squares"] == [4, 9]
    assert said["path0"] == str(tmp_path) and said["file"] == str(package / "train.py")
    assert said["tracking"] == workspace and said["registry"] == workspace
    assert "loopline: mlflow.set_tracking_uri('http://127.0.0.1:9') ignored" in done.stderr
    # the runners of notebooks and pipelines run as they are
    assert command_argv(["python", "-m", "papermill", "nb.ipynb", "-"])[1:3] == ["-m", "papermill"]
    assert command_argv(["python", "-m", "loopline.azureml_pipeline"])[1:3] == [
        "-m",
        "loopline.azureml_pipeline",
    ]


def test_a_command_that_is_not_one_python_run_finds_loopline_s_python_first_on_path(tmp_path: Path) -> None:
    # `make train`, `bash train.sh`, a DVC stage: the `python` they call runs a script or a module of the
    # repository kept on the workspace, with loopline's packages; anything else runs as Python runs it.
    import json

    from loopline.run_script import command_argv, command_environment

    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "train.py").write_text(SCRIPT)
    (tmp_path / "fit").mkdir()
    (tmp_path / "fit" / "__init__.py").write_text("")
    (tmp_path / "fit" / "train.py").write_text(SCRIPT)
    workspace = f"sqlite:///{tmp_path / 'dev.db'}"
    clean = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")}
    given = {**clean, "MLFLOW_TRACKING_URI": workspace, "MLFLOW_REGISTRY_URI": workspace}
    argv = command_argv(["bash", "train.sh"])
    assert argv == ["bash", "train.sh"]
    with command_environment(argv, given) as env:
        shims = Path(env["PATH"].split(os.pathsep)[0])

        def shell(line: str) -> subprocess.CompletedProcess[str]:
            return subprocess.run(
                ["bash", "-c", line], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120
            )

        major, minor = sys.version_info[:2]
        for line in ("python src/train.py --epochs 3", f"python{major}.{minor} -u src/train.py --epochs 3"):
            done = shell(line)
            assert done.returncode == 3, done.stderr
            said = json.loads(done.stdout)
            assert said["argv"] == ["src/train.py", "--epochs", "3"] and said["squares"] == [4, 9]
            assert said["path0"] == str(tmp_path / "src") and said["tracking"] == workspace
            assert "loopline: mlflow.set_tracking_uri('http://127.0.0.1:9') ignored" in done.stderr
        done = shell("python3 -m fit.train --epochs 3")
        assert done.returncode == 3, done.stderr
        said = json.loads(done.stdout)
        assert said["path0"] == str(tmp_path) and said["registry"] == workspace
        assert "loopline: mlflow.set_registry_uri('sqlite:///elsewhere.db') ignored" in done.stderr
        # Python's own uses are Python's: no script, a module of the installation (json.tool, pip)
        done = shell("python -c 'import sys; print(sys.executable, sys.argv)'")
        assert done.stdout.split() == [sys.executable, "['-c']"], done.stderr
        done = shell("echo '{\"a\": 1}' | python -m json.tool --compact")
        assert done.returncode == 0 and done.stdout.strip() == '{"a":1}', done.stderr
    assert not shims.exists()
    with command_environment(command_argv(["python", "src/train.py"]), given) as env:
        assert env == given  # loopline runs that one itself


def test_a_command_the_user_s_package_installs_calls_its_function_with_mlflow_kept(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # `churn-train = "churn.fit:main"` in pyproject.toml: the command calls main() as its console script
    # does, through this module; commands of installed tools run as they are.
    import json

    from loopline.run_script import command_argv
    from tests.helpers import installed

    package = tmp_path / "repo" / "src" / "churn"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text("")
    body = SCRIPT.replace('if __name__ == "__main__":', "def main():")
    (package / "fit.py").write_text(body.replace("sys.exit(3)", "return 3"))
    site = tmp_path / "site"
    site.mkdir()
    installed(site, package, {"churn-train": "churn.fit:main"})
    monkeypatch.syspath_prepend(str(site))
    argv = command_argv(["churn-train", "--epochs", "3"])
    entry = ["--entry", "churn-train", "churn.fit:main"]
    assert argv == [sys.executable, "-m", "loopline.run_script", *entry, "--epochs", "3"]
    workspace = f"sqlite:///{tmp_path / 'dev.db'}"
    clean = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")}
    env = {
        **clean,
        "PYTHONPATH": str(site),
        "MLFLOW_TRACKING_URI": workspace,
        "MLFLOW_REGISTRY_URI": workspace,
    }
    done = subprocess.run(argv, cwd=tmp_path / "repo", env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 3, done.stderr  # what main() returned, as its console script exits
    said = json.loads(done.stdout)
    assert said["argv"] == ["churn-train", "--epochs", "3"] and said["squares"] == [4, 9]
    assert said["tracking"] == workspace and said["path0"] == str(Path(sys.executable).parent)
    assert "loopline: mlflow.set_tracking_uri('http://127.0.0.1:9') ignored" in done.stderr
    assert command_argv(["pip", "list"]) == ["pip", "list"]  # an installed tool's command
    assert command_argv(["make", "train"]) == ["make", "train"]


READS_NATIVELY = """\
import pandas as pd
import pyarrow.dataset as ds
import pyarrow.parquet as pq

pd.DataFrame({"x": [1, 2], "y": [0, 1]}).to_parquet("made.parquet")  # written first: not one it reads
frame = pd.read_parquet("data/train.parquet")
table = pq.read_table(["data/more.parquet"])
parquet = pq.ParquetFile("data/train.parquet")
assert isinstance(parquet, pq.ParquetFile) and parquet.metadata.num_rows == 2
rows = ds.dataset("data/folder", format="parquet").to_table().num_rows
again = pd.read_parquet("made.parquet")
print(len(frame) + table.num_rows + rows + len(again))
"""


def test_the_files_a_training_reads_through_pyarrow_are_noted_as_those_it_opens(tmp_path: Path) -> None:
    import pandas as pd

    (tmp_path / "data" / "folder").mkdir(parents=True)
    frame = pd.DataFrame({"x": [1, 2], "y": [0, 1]})
    for name in ("train.parquet", "more.parquet", "folder/part-0.parquet"):
        frame.to_parquet(tmp_path / "data" / name)
    script = tmp_path / "train.py"
    script.write_text(READS_NATIVELY)
    log = tmp_path / "opened.log"
    done = run(script, tmp_path, LOOPLINE_OPENED_LOG=str(log))
    assert done.returncode == 0 and done.stdout.split() == ["8"], done.stderr
    noted = dict(reversed(line.split(" ", 1)) for line in log.read_text().splitlines())
    data = tmp_path / "data"
    for path in (data / "train.parquet", data / "more.parquet", data / "folder", script):
        assert noted.get(str(path)) == "r", (path, noted)
    assert noted[str(tmp_path / "made.parquet")] == "w"  # pandas opens it in Python to write it


READS_WITH_POLARS = """\
import polars as pl

frame = pl.read_csv("data/train.csv")
parts = pl.scan_parquet("data/parts/*.parquet").collect()
frame.write_parquet("made.parquet")  # written first: not one it reads
frame.lazy().sink_csv("sunk.csv")
again = pl.read_parquet("made.parquet")
print(len(frame) + len(parts) + len(again))
"""


def test_the_files_a_training_reads_through_polars_are_noted_globs_as_the_files_they_match(
    tmp_path: Path,
) -> None:
    import polars as pl

    (tmp_path / "data" / "parts").mkdir(parents=True)
    frame = pl.DataFrame({"x": [1, 2], "churned": [0, 1]})
    frame.write_csv(tmp_path / "data" / "train.csv")
    for part in ("part-0.parquet", "part-1.parquet"):
        frame.write_parquet(tmp_path / "data" / "parts" / part)
    script = tmp_path / "train.py"
    script.write_text(READS_WITH_POLARS)
    log = tmp_path / "opened.log"
    done = run(script, tmp_path, LOOPLINE_OPENED_LOG=str(log))
    assert done.returncode == 0 and done.stdout.split() == ["8"], done.stderr
    noted = dict(reversed(line.split(" ", 1)) for line in log.read_text().splitlines())
    data = tmp_path / "data"
    for path in (data / "train.csv", data / "parts" / "part-0.parquet", data / "parts" / "part-1.parquet"):
        assert noted.get(str(path)) == "r", (path, noted)
    assert noted[str(tmp_path / "made.parquet")] == "w" and noted[str(tmp_path / "sunk.csv")] == "w"
