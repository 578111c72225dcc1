"""Shared fixtures: an isolated HOME and environment per test, real git, real projects."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

import loopline
from tests.helpers import commit_all, edit_yaml, git

# Set by scripts/test for its two pytest runs, so the second (the tests that run alone) takes the
# projects the first made (read here: the environment of each test is cleaned before it runs).
_SHARED = os.environ.get("TEST_TEMPLATE_CACHE")


def _shared_root(factory: pytest.TempPathFactory) -> Path:
    """Where this run's processes keep what they make once for all: the folder ``scripts/test`` names,
    else the run's temporary folder (shared by pytest-xdist's workers)."""
    if _SHARED:
        return Path(_SHARED)
    base = factory.getbasetemp()
    return base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base


def shared_once(factory: pytest.TempPathFactory, key: str, name: str, build: Callable[[Path], None]) -> Path:
    """``<root>/<key>/<name>``, made by ``build`` in the first process of the run that asks for it; the
    others wait for it (a file lock) and use it as it is (tests copy it, never change it)."""
    import fcntl
    import shutil

    root = _shared_root(factory) / "templates"
    root.mkdir(parents=True, exist_ok=True)
    folder = root / key / name
    with (root / f"{key}.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (root / f"{key}.done").exists():
            shutil.rmtree(root / key, ignore_errors=True)
            folder.parent.mkdir(parents=True)
            build(folder)
            (root / f"{key}.done").touch()
    return folder


# Modules whose module-scoped fixture is costly (a project with a running server, a browser): pytest-xdist
# sends all their tests to one process instead of letting each process build the fixture (with its mark
# `xdist_group` would do this, but that mark takes no effect with this pytest). Every other test goes
# wherever a process is free, as with `--dist load`.
_TOGETHER = frozenset(
    {
        "tests/serving/test_mlflow_compat.py",
        "tests/serving/test_server.py",
        "tests/serving/test_fuzz.py",
        "tests/ui/test_dashboard.py",
    }
)


def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> Any:
    """Load scheduling, with the modules of ``_TOGETHER`` as one unit of work each."""
    if config.getvalue("dist") != "load":
        return None
    from xdist.scheduler import LoadScopeScheduling

    class Scheduling(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            module = nodeid.split("::", 1)[0]
            return module if module in _TOGETHER else nodeid

    return Scheduling(config, log)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The tests marked ``long`` first: started last, one of them keeps a worker busy after the others end."""
    items.sort(key=lambda item: item.get_closest_marker("long") is None)


@pytest.fixture(scope="session")
def cache_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One machine-wide cache for the run, so the migrated MLflow template is built once."""
    folder = _shared_root(tmp_path_factory) / "loopline-cache"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@pytest.fixture(autouse=True)
def isolated_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, cache_dir: Path) -> Iterator[None]:
    """A private HOME and git identity, no stray LOOPLINE_/MLFLOW_/GITHUB_ variables or RUNNER_ENVIRONMENT,
    cwd in tmp_path."""
    home = tmp_path / "home"
    home.mkdir()
    gitconfig = home / ".gitconfig"
    gitconfig.write_text(
        "[user]\n\tname = Test User\n\temail = tester@example.com\n[init]\n\tdefaultBranch = main\n"
    )
    for name in list(os.environ):
        if name.startswith(("LOOPLINE_", "MLFLOW_", "GITHUB_")) or name == "RUNNER_ENVIRONMENT":
            monkeypatch.delenv(name)
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", str(gitconfig))
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")
    monkeypatch.setenv("LOOPLINE_CACHE_DIR", str(cache_dir))
    monkeypatch.chdir(tmp_path)
    yield


ProjectFactory = Callable[..., Path]


@pytest.fixture
def new_project(tmp_path: Path, tmp_path_factory: pytest.TempPathFactory) -> ProjectFactory:
    """Make a sample project: init (tier), first commit, and `up`.

    ``loopline init`` writes the same files for the same tier and name every time (its held-out data come
    from a fixed seed), and takes seconds to write them: each (tier, name) is initialised once per test
    run and copied after that, then made a repository as `init` would.
    """

    def make(tier: str = "simple", name: str = "proj", *, commit: bool = True, up: bool = True) -> Path:
        import shutil

        path = tmp_path / name
        template = shared_once(
            tmp_path_factory,
            f"initialised-{tier}-{name}",
            name,
            lambda at: loopline.init(at, tier, git=False),
        )
        shutil.copytree(template, path)
        git(path, "init", "--quiet", "--initial-branch=main")
        if commit:
            commit_all(path, "Sample project")
        if up:
            loopline.up(path)
        return path

    return make


FAILING_TRAIN = '''\
"""A model that raises on negative input: for tests of how serving treats a failing model."""

import mlflow
import pandas as pd
from mlflow.models import infer_signature


class Fragile(mlflow.pyfunc.PythonModel):
    def predict(self, context, model_input, params=None):
        if (model_input["x"] < 0).any():
            raise ValueError("negative input")
        return model_input["x"] * 2


example = pd.DataFrame({"x": [1.0, 2.0], "name": ["a", "b"], "count": [1, 2]})
with mlflow.start_run():
    mlflow.log_metrics({"accuracy": 1.0, "roc_auc": 1.0, "log_loss": 0.0})
    mlflow.pyfunc.log_model(name="model", python_model=Fragile(), input_example=example,
                            signature=infer_signature(example, example["x"] * 2), pip_requirements=["mlflow"])
'''


@pytest.fixture(scope="session")
def served_project(tmp_path_factory: pytest.TempPathFactory, cache_dir: Path) -> Iterator[Path]:
    """A simple-tier project with `proj-classifier` v1 (C=1.0), v2 (C=0.5), and `fragile` v1."""
    root = tmp_path_factory.mktemp("served")
    home = root / "home"
    home.mkdir()
    (home / ".gitconfig").write_text("[user]\n\tname = Test User\n\temail = tester@example.com\n")
    saved = dict(os.environ)
    os.environ.update(
        {
            "HOME": str(home),
            "GIT_CONFIG_GLOBAL": str(home / ".gitconfig"),
            "GIT_CONFIG_NOSYSTEM": "1",
            "LOOPLINE_CACHE_DIR": str(cache_dir),
        }
    )
    try:

        def build(project: Path) -> None:
            clone_project(_trained_template("simple", "proj", tmp_path_factory), project)
            edit_yaml(project / "params.yaml", C=0.5)
            commit_all(project, "Less regularisation")
            loopline.inner_loop(project)
            (project / "fragile.py").write_text(FAILING_TRAIN)
            config = (project / "loopline.yaml").read_text()
            (project / "loopline.yaml").write_text(
                config.replace("command: python train.py", "command: python fragile.py")
            )
            commit_all(project, "A fragile model")
            loopline.inner_loop(project, model="fragile")
            (project / "loopline.yaml").write_text(config)
            commit_all(project, "Back to the sample")

        # Made once for the run; each process serves its own copy (its tests add endpoints to it).
        project = clone_project(shared_once(tmp_path_factory, "served", "proj", build), root / "proj")
        yield project
    finally:
        os.environ.clear()
        os.environ.update(saved)


@pytest.fixture(scope="session")
def azurite(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """A real Azure Blob emulator for the session."""
    from tests.servers import Azurite

    emulator = Azurite(tmp_path_factory.mktemp("azurite"))
    yield emulator
    emulator.stop()


def clone_project(template: Path, target: Path) -> Path:
    """Copy a provisioned project and point every absolute path in its SQLite stores at the copy.

    The copy holds the same commits, the same MLflow runs and versions and the same model files as the
    template, so tests that need a trained model start from one instead of training again.
    """
    import shutil
    import sqlite3

    shutil.copytree(template, target, symlinks=True)
    old, new = str(template), str(target)
    databases = [
        target / ".loopline" / "state.db",
        *(target / ".loopline" / "workspaces").glob("*/mlflow.db"),
    ]
    for database in databases:
        connection = sqlite3.connect(database)
        tables = [row[0] for row in connection.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
        # The audit log keeps the template's paths: rewriting them would break its hash chain.
        for table in (t for t in tables if t not in {"events", "audit_head"}):
            for column in connection.execute(f'PRAGMA table_info("{table}")').fetchall():
                kind = str(column[2]).upper()
                if kind.startswith(("VARCHAR", "TEXT", "JSON")):
                    connection.execute(
                        f'UPDATE "{table}" SET "{column[1]}" = replace("{column[1]}", ?, ?) '
                        f'WHERE "{column[1]}" LIKE ?',
                        (old, new, f"%{old}%"),
                    )
        connection.commit()
        connection.close()
    return target


def _trained_template(tier: str, name: str, factory: pytest.TempPathFactory) -> Path:
    """The run's project of ``tier`` whose first commit went through the inner loop, made once."""

    def build(template: Path) -> None:
        loopline.init(template, tier)
        commit_all(template, "Sample project")
        loopline.up(template)
        loopline.inner_loop(template)

    return shared_once(factory, f"trained-{tier}-{name}", name, build)


@pytest.fixture
def trained_project(tmp_path: Path, tmp_path_factory: pytest.TempPathFactory) -> ProjectFactory:
    """A project of a tier whose first commit went through the inner loop (dev v1, registry v1).

    The first request of a tier trains for real; later ones copy that project.
    """

    def make(tier: str = "simple", name: str = "proj") -> Path:
        return clone_project(_trained_template(tier, name, tmp_path_factory), tmp_path / name)

    return make


StagedProject = Callable[[str, Callable[[Path], None]], Path]


@pytest.fixture
def staged_project(tmp_path: Path, tmp_path_factory: pytest.TempPathFactory) -> StagedProject:
    """A simple-tier trained project taken further by ``build`` (named ``key``): built once per run, then
    copied, for tests that start from the same story (a release, a second commit trained, ...)."""

    def make(key: str, build: Callable[[Path], None]) -> Path:
        def stage(template: Path) -> None:
            clone_project(_trained_template("simple", "proj", tmp_path_factory), template)
            build(template)

        return clone_project(shared_once(tmp_path_factory, f"staged-{key}", "proj", stage), tmp_path / "proj")

    return make


def release_then_train(project: Path) -> None:
    """Commit A released to prod; a second commit (C=0.4) through the inner loop."""
    loopline.outer_loop_prod(project)
    edit_yaml(project / "params.yaml", C=0.4)
    commit_all(project, "Second model")
    loopline.inner_loop(project)


@pytest.fixture
def a_live_b_registered(staged_project: StagedProject) -> tuple[Path, str, str]:
    """A simple-tier project with commit A live in prod and commit B registered: (project, A, B)."""
    project = staged_project("released-then-trained", release_then_train)
    return project, git(project, "rev-parse", "HEAD~1"), git(project, "rev-parse", "HEAD")


@pytest.fixture(scope="session")
def postgres() -> Iterator[Any]:
    """A real PostgreSQL cluster for the session; each test takes fresh databases with ``url()``."""
    from tests.servers import Postgres

    server = Postgres()
    yield server
    server.stop()


@pytest.fixture
def on_postgres(postgres: Any, monkeypatch: pytest.MonkeyPatch) -> Any:
    """Point loopline's state and every workspace's MLflow store at fresh PostgreSQL databases."""
    tag = f"t{os.getpid()}_{postgres.url().rsplit('/', 1)[1]}"
    monkeypatch.setenv("LOOPLINE_STATE__URL", postgres.url(f"{tag}_state"))
    for workspace in ("dev", "test", "prod", "shared"):
        uri = postgres.url(f"{tag}_{workspace}").replace("+psycopg", "")
        monkeypatch.setenv(f"LOOPLINE_WORKSPACES__{workspace.upper()}__TRACKING_URI", uri)
        monkeypatch.setenv(f"LOOPLINE_WORKSPACES__{workspace.upper()}__REGISTRY_URI", uri)
    return postgres


@pytest.fixture
def on_azurite(azurite: Any, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> str:
    """Put model files, MLflow artifacts and both datastores in the Azure Blob emulator; the models' URL."""
    from tests.servers import AZURITE_ACCOUNT

    monkeypatch.setenv("AZURE_STORAGE_CONNECTION_STRING", azurite.connection_string)
    tag = f"{os.getpid()}-{tmp_path.name}".lower().replace("_", "-")
    models = f"{azurite.container('models')}/{tag}"
    azurite.container("artifacts")
    for workspace in ("dev", "test", "prod", "shared"):
        prefix = f"LOOPLINE_WORKSPACES__{workspace.upper()}__"
        monkeypatch.setenv(prefix + "MODEL_STORE", models)
        monkeypatch.setenv(
            prefix + "ARTIFACT_LOCATION",
            f"wasbs://artifacts@{AZURITE_ACCOUNT}.blob.core.windows.net/{tag}/{workspace}",
        )
    for datastore in ("inbox", "predictions"):
        monkeypatch.setenv(
            f"LOOPLINE_DATASTORES__{datastore.upper()}__URL", f"{azurite.container(datastore)}/{tag}"
        )
    return models
