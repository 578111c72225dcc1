"""Helpers the tests share: git, project edits, and running the CLI in-process or as a real process."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import pytest
import yaml


@dataclass
class Steps:
    """A reporter that keeps what it is told."""

    seen: list[str] = field(default_factory=list)

    def step(self, message: str) -> None:
        self.seen.append(message)

    def output(self, line: str) -> None:
        self.seen.append(line)


def tree(root: Path, files: dict[str, str]) -> Path:
    """``files`` (path: text) written under ``root``, folders made; ``root``."""
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    return root


def installed(site: Path, package: Path, scripts: dict[str, str]) -> None:
    """``package`` installed into ``site`` as ``pip install -e`` installs it: importable, with its
    ``console_scripts`` entry points in the distribution's metadata."""
    (site / package.name).symlink_to(package)
    info = site / f"{package.name}-0.1.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {package.name}\nVersion: 0.1\n")
    lines = "".join(f"{name} = {target}\n" for name, target in scripts.items())
    (info / "entry_points.txt").write_text(f"[console_scripts]\n{lines}")


def git(path: Path, *args: str) -> str:
    """Run git in ``path``; fail the test when it fails."""
    done = subprocess.run(["git", *args], cwd=path, capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def add_submodule(project: Path, source: Path | str, path: str) -> None:
    """Add the repository at ``source`` (a folder of this machine, or a path relative to the project's
    remote) as a submodule of ``project`` at ``path``, not committed."""
    git(project, "-c", "protocol.file.allow=always", "submodule", "add", "--quiet", str(source), path)


def actionlint(project: Path) -> str:
    """actionlint's findings on the workflow files of the repository at ``project`` ("" when none)."""
    done = subprocess.run(
        [str(Path(sys.executable).with_name("actionlint")), "-no-color"],
        cwd=project,
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode in (0, 1), done.stderr
    return done.stdout


def commit_all(path: Path, message: str) -> str:
    """Commit every change in ``path``; return the new commit's SHA."""
    git(path, "add", "-A")
    git(path, "commit", "--quiet", "--allow-empty", "-m", message)
    return git(path, "rev-parse", "HEAD")


def company_repository(tmp_path: Path) -> Path:
    """A larger repository (a services folder, committed) for a project made in a folder of it."""
    top = tmp_path / "company"
    (top / "services").mkdir(parents=True)
    (top / "services" / "app.py").write_text("print('api')\n")
    git(top, "init", "--quiet")
    commit_all(top, "Our services")
    return top


def edit_yaml(path: Path, **changes: Any) -> None:
    """Set top-level keys of a YAML file."""
    data = yaml.safe_load(path.read_text()) or {}
    data.update(changes)
    path.write_text(yaml.safe_dump(data, sort_keys=False))


TRAINING_SCRIPTS = Path(__file__).parent / "training_scripts"


def use_script(
    project: Path, script: str, gate: dict[str, dict[str, float]], *, source: str | None = None, **model: str
) -> None:
    """Make ``script`` the project's training entry point (from the test tree, or ``source``), and commit."""
    (project / script).write_text(source if source is not None else (TRAINING_SCRIPTS / script).read_text())
    config = yaml.safe_load((project / "loopline.yaml").read_text())
    config["training"]["command"] = f"python {script}"
    config["model"].update(model)
    config["gate"]["file"] = "gate-user.yaml"
    (project / "loopline.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    (project / "gate-user.yaml").write_text(yaml.safe_dump({"metrics": gate}))
    commit_all(project, f"Train with {script}")


def set_gate(project: Path, metric: str, **bounds: float) -> None:
    """Replace one metric's bounds in the project's gate file."""
    path = project / "gate.yaml"
    data = yaml.safe_load(path.read_text())
    data["metrics"][metric] = bounds
    path.write_text(yaml.safe_dump(data, sort_keys=False))


@dataclass
class CliResult:
    """The outcome of one CLI invocation."""

    exit_code: int
    stdout: str
    stderr: str

    def json(self) -> Any:
        """stdout parsed as JSON (which must be all of it)."""
        import json

        return json.loads(self.stdout)


def cli(capsys: pytest.CaptureFixture[str], *args: str) -> CliResult:
    """Run the CLI in this process, as `loopline ARGS...` would."""
    from loopline.cli import main

    capsys.readouterr()
    code = main(list(args))
    captured = capsys.readouterr()
    return CliResult(code, captured.out, captured.err)


def cli_process(
    *args: str, cwd: Path | None = None, env: dict[str, str] | None = None, timeout: float = 300
) -> CliResult:
    """Run the real `loopline` console script in a child process."""
    script = Path(sys.executable).with_name("loopline")
    done = subprocess.run(
        [str(script), *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, **(env or {})},
        check=False,
    )
    return CliResult(done.returncode, done.stdout, done.stderr)


def model_version(project: Path, version: int, name: str = "proj-classifier", workspace: str = "dev") -> Any:
    """A version from `loopline status`."""
    import loopline

    return next(
        m
        for m in loopline.status(project).models
        if (m.workspace, m.name, m.version) == (workspace, name, version)
    )


def input_example(project: Path, version: int = 1) -> tuple[list[str], list[list[float]]]:
    """The columns and rows of the sample model's input example."""
    import json

    folder = Path(model_version(project, version).source_uri.removeprefix("file://"))
    example = json.loads((folder / "input_example.json").read_text())
    return example["columns"], example["data"]


def system_key(project: Path, endpoint: str = "proj", workspace: str = "prod") -> str:
    """loopline's own scoring key of an endpoint (what its smoke tests and validation use)."""
    from loopline.endpoints import keys, service
    from loopline.instance import Instance

    return keys.system_key(service.system_secret(Instance.open(project)), workspace, endpoint)


def heldout_request(project: Path, rows: int = 1, start: int = 0) -> bytes:
    """A scoring request (Azure ML style) with ``rows`` rows of the sample's held-out data from ``start`` on
    (wrapping around at the end)."""
    import json

    import pandas as pd

    heldout = pd.read_csv(project / "data" / "inbox" / "heldout.csv").drop(columns=["label"])
    data = heldout.iloc[[(start + i) % len(heldout) for i in range(rows)]].to_numpy().tolist()
    return json.dumps({"input_data": {"columns": list(heldout.columns), "data": data}}).encode()


_interrupt_armed: list[bool] = []


def _interrupt_in_fork_callback() -> None:
    if _interrupt_armed:
        _interrupt_armed.clear()
        os.kill(os.getpid(), signal.SIGINT)


os.register_at_fork(after_in_parent=_interrupt_in_fork_callback)


@contextlib.contextmanager
def ctrl_c_at_next_fork() -> Iterator[None]:
    """Send this process SIGINT while Python runs its after-fork callbacks in the parent, at the next fork:
    the moment where an exception raised by the signal handler is swallowed. Fails if no fork happened."""
    _interrupt_armed.append(True)
    try:
        yield
    finally:
        fired = not _interrupt_armed
        _interrupt_armed.clear()
    assert fired, "no child was started"


@contextlib.contextmanager
def mlflow_pointed_at(project: Path, workspace: str) -> Iterator[None]:
    """This process's MLflow (fluent API) on one of the project's stores, reset to its defaults after."""
    import mlflow

    from loopline.config import load_config

    location = load_config(project).store(workspace)
    mlflow.set_tracking_uri(location.tracking_uri)
    mlflow.set_registry_uri(location.registry_uri)
    try:
        yield
    finally:
        mlflow.set_tracking_uri(None)  # type: ignore[arg-type]  # None: back to the environment's default
        mlflow.set_registry_uri(None)  # type: ignore[arg-type]


def mlflow_client(project: Path, workspace: str) -> Any:
    """A stock MLflow client on one of the project's stores."""
    from mlflow import MlflowClient

    from loopline.config import load_config

    location = load_config(project).store(workspace)
    return MlflowClient(tracking_uri=location.tracking_uri, registry_uri=location.registry_uri)


LINEAR = (
    '    model = make_pipeline(\n        StandardScaler(), LogisticRegression(C=float(params["C"]), '
    'max_iter=int(params["max_iter"]))\n    )'
)


def with_model(
    project: Path, estimator: str, imported: str, trusted: tuple[str, ...] = ("sklearn.tree._tree.Tree",)
) -> None:
    """Make the sample's training script fit ``estimator`` instead of its logistic regression (not
    committed); ``trusted`` are the types skops must be told to load."""
    script = project / "train.py"
    text = script.read_text()
    assert LINEAR in text, "the sample's training script changed: update this test"
    text = text.replace(LINEAR, f"    model = {estimator}").replace(
        "from sklearn.linear_model import LogisticRegression", imported
    )
    # MLflow saves scikit-learn models with skops, which loads tree nodes only when told they are trusted
    text = text.replace(
        "input_example=x_valid.head(3),",
        f"input_example=x_valid.head(3),\n            skops_trusted_types={list(trusted)!r},",
    )
    script.write_text(text)


def wait_for_samples(project: Path, endpoint: str, count: int, since: float, workspace: str = "prod") -> None:
    """Wait until the serving processes have written ``count`` monitoring samples of ``endpoint`` taken
    since ``since`` (seconds since the epoch): they write about once a second, later on a busy machine."""
    import time

    from sqlalchemy import func, select

    from loopline.instance import Instance
    from loopline.state.schema import monitor_samples

    db = Instance.open(project).db
    statement = select(func.count()).where(
        monitor_samples.c.workspace == workspace,
        monitor_samples.c.endpoint == endpoint,
        monitor_samples.c.at >= since,
    )
    deadline = time.monotonic() + 30
    while True:
        with db.read() as connection:
            written = connection.execute(statement).scalar_one()
        if written >= count:
            return
        assert time.monotonic() < deadline, f"only {written} of {count} samples were written"
        time.sleep(0.2)


T = TypeVar("T")


def wait_until(condition: Callable[[], T], timeout: float, what: str, every: float = 0.1) -> T:
    """Call ``condition`` until it returns something true and return that; after ``timeout`` seconds the
    test fails with ``what`` (what never happened)."""
    import time

    deadline = time.monotonic() + timeout
    while not (value := condition()):
        assert time.monotonic() < deadline, what
        time.sleep(every)
    return value


def dvc(root: Path, *args: str) -> None:
    """DVC's command line (the test extra installs it) in ``root``, with this Python's tools first on the
    ``PATH`` its stages' commands run with."""
    bin_dir = str(Path(sys.executable).parent)
    env = {**os.environ, "PATH": os.pathsep.join([bin_dir, os.environ.get("PATH", "")])}
    done = subprocess.run(
        [str(Path(bin_dir, "dvc")), *args], cwd=root, env=env, capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stdout + done.stderr


def kill_sweep_in_its_second_trial(project: Path, env: dict[str, str] | None = None) -> None:
    """Run ``loopline sweep`` in ``project`` and kill it, with its training, while its second trial
    trains (a sweep of three trials or more)."""
    child = subprocess.Popen(
        [sys.executable, "-m", "loopline", "sweep"], cwd=project, stderr=subprocess.PIPE, text=True,
        start_new_session=True, env={**os.environ, **(env or {})},
    )  # fmt: skip
    assert child.stderr is not None
    seen = []
    for line in child.stderr:
        seen.append(line)
        if "trial 1 (2 of 3)" in line:
            break
    else:
        pytest.fail("".join(seen))
    for line in child.stderr:
        if line.startswith("› training"):
            break
    os.killpg(child.pid, signal.SIGKILL)
    child.wait()


def commit_with_a_derived_column(project: Path) -> str:
    """Commit, and register, the sample's model taking a column more (``radius_ratio``), one the clients of
    its earlier versions do not send."""
    import loopline

    train = project / "train.py"
    named = '    labels = labels.rename("label")\n'
    derived = '    features["radius_ratio"] = features["mean_radius"] / features["worst_radius"]\n'
    train.write_text(train.read_text().replace(named, derived + named))
    commit = commit_all(project, "A derived feature")
    loopline.inner_loop(project)
    return commit


def commit_answering_probabilities(project: Path) -> str:
    """Commit, and register, the sample's model logged to answer its ``predict_proba``: a list of two
    probabilities a row where its earlier versions answered a label."""
    import loopline

    train = project / "train.py"
    logged = 'name="model",'
    train.write_text(train.read_text().replace(logged, logged + ' pyfunc_predict_fn="predict_proba",'))
    commit = commit_all(project, "Answer probabilities")
    loopline.inner_loop(project)
    return commit


def batch_scorer_answering_otherwise(project: Path) -> str:
    """Batch endpoint ``scorer`` in dev scoring with ``blue`` (v1, a label a row, the first commit, which is
    returned), beside ``green`` (v2, a list of two probabilities a row)."""
    import loopline

    first = git(project, "rev-parse", "HEAD")
    loopline.create_batch_endpoint("scorer", "dev", project=project)
    loopline.create_batch_deployment("scorer", "blue", version=1, project=project)
    commit_answering_probabilities(project)
    loopline.create_batch_deployment("scorer", "green", version=2, project=project)
    return first
