"""How the workflows fit a repository that already trains (``init --existing``), without its dry run."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml

from loopline.repo_install import POETRY_INSTALL
from loopline.repo_setup import TOOLS, workflow_setup
from loopline.workflows.files import DvcFetch, WorkflowSetup, relative_to, workflow_files, workflow_layout
from tests.helpers import actionlint, add_submodule, dvc, git


def checkouts(root: Path, workflow: str) -> dict[str, dict[str, object]]:
    """The ``with:`` of each job's checkout step in ``workflow``, by job."""
    jobs = yaml.safe_load((root / ".github" / "workflows" / workflow).read_text())["jobs"]
    return {
        name: next(
            s.get("with") or {} for s in job["steps"] if s.get("uses", "").startswith("actions/checkout")
        )
        for name, job in jobs.items()
    }


def empty_repository(tmp_path: Path, name: str = "churn") -> Path:
    """A new git repository, with nothing in it."""
    root = tmp_path / name
    root.mkdir()
    git(root, "init", "--quiet", "--initial-branch=main")
    return root


def data_repository(tmp_path: Path) -> Path:
    """A git repository with a requirements file and a data folder, nothing committed."""
    root = empty_repository(tmp_path, "repo")
    (root / "requirements.txt").write_text("scikit-learn\n")
    (root / "data").mkdir()
    return root


def write_workflows(root: Path, setup: WorkflowSetup) -> None:
    """The workflow files ``setup`` makes, written into ``root``."""
    for path, content in workflow_files(workflow_layout(root, "repo"), setup).items():
        target = root / relative_to(root, path)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(content)


def test_a_model_requirement_with_a_local_version_label_is_written_as_an_index_has_it(tmp_path: Path) -> None:
    # MLflow keeps torch's +cpu where it finds torch imported while it loads a model: PyPI has no such file
    root = empty_repository(tmp_path)
    logged = [
        "scikit-learn==1.9.1",
        "torch==2.13.0+cpu",
        'jax[cuda]==0.4.30+cuda12 ; python_version >= "3.10"',
    ]
    _setup, files, _notes = workflow_setup(root, logged, TOOLS, "python train.py")
    written = files["requirements.txt"].decode().splitlines()
    assert {"scikit-learn==1.9.1", "torch==2.13.0", 'jax[cuda]==0.4.30 ; python_version >= "3.10"'} <= set(
        written
    )
    assert not [line for line in written if "+" in line]


def test_files_kept_in_git_lfs_are_fetched_by_the_checkouts_that_train_or_test(tmp_path: Path) -> None:
    root = data_repository(tmp_path)
    (root / "data" / ".gitattributes").write_text("*.csv filter=lfs diff=lfs merge=lfs -text\n")
    setup, _files, notes = workflow_setup(root, [], TOOLS, "python train.py")
    assert setup.lfs
    assert any(note.startswith("the repository keeps files in Git LFS (.gitattributes)") for note in notes)
    write_workflows(root, setup)
    assert actionlint(root) == ""
    # the training's checkout keeps its whole history; the jobs that only read loopline.yaml fetch no LFS
    assert checkouts(root, "inner-loop.yml") == {"gate": {}, "inner-loop": {"fetch-depth": 0, "lfs": True}}
    assert checkouts(root, "python-ci.yml") == {"gate": {}, "lint-and-test": {"lfs": True}}
    assert all(
        "lfs" not in step
        for name in ("outer-loop-test.yml", "outer-loop-prod.yml", "model-rollback.yml")
        for step in checkouts(root, name).values()
    )
    # a repository without LFS: no change
    (root / "data" / ".gitattributes").write_text("*.csv text eol=lf\n")
    assert not workflow_setup(root, [], TOOLS, "python train.py")[0].lfs


POETRY = """\
[tool.poetry]
name = "churn"
version = "0.1.0"
description = ""
authors = ["Data Science <ds@example.com>"]
{mode}
[tool.poetry.dependencies]
python = "^3.11"
scikit-learn = "^1.5"

[tool.poetry.dev-dependencies]
pytest = "^8"

[build-system]
requires = ["poetry-core>=1.0.0"]
build-backend = "poetry.core.masonry.api"
"""


def test_a_project_poetry_locks_is_installed_at_its_locked_versions_with_the_groups_poetry_installs(
    tmp_path: Path,
) -> None:
    root = empty_repository(tmp_path)
    # an application (package-mode = false): its dependencies and its dev group, not the optional docs group
    locked = Path(__file__).parent / "projects" / "poetry"  # `poetry lock` of scikit-learn, pandas, pytest
    for name in ("pyproject.toml", "poetry.lock"):
        (root / name).write_text((locked / name).read_text())
    setup, files, notes = workflow_setup(root, ["scikit-learn==1.5.2"], TOOLS, "python train.py")
    assert files == {}
    assert setup.install == POETRY_INSTALL.format(groups=" --with dev") + " loopline ruff"  # pytest is dev's
    assert notes[-1] == (
        "poetry.lock: the workflows install the versions it locks (poetry export) of the project's "
        "dependencies and its dev group, as poetry install would"
    )
    write_workflows(root, setup)
    assert actionlint(root) == ""
    # What the step's export writes, run here as the job runs it (Poetry reads the lock, offline).
    export = setup.install.split(" && ")[1]
    path = f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"
    env = {**os.environ, "PATH": path, "RUNNER_TEMP": str(tmp_path)}
    subprocess.run(["bash", "-c", export], cwd=root, env=env, check=True, capture_output=True)
    pinned = {
        line.split("==")[0]: line.split("==")[1].split(" ;")[0]
        for line in (tmp_path / "requirements.txt").read_text().splitlines()
    }
    lock = (root / "poetry.lock").read_text()
    for name in ("scikit-learn", "pandas", "pytest"):
        assert pinned[name] == lock.split(f'name = "{name}"\nversion = "', 1)[1].split('"', 1)[0], name
    assert "mkdocs" not in pinned

    # a package of Poetry 1's making: its dev-dependencies are the dev group, and pip installs the package
    (root / "pyproject.toml").write_text(POETRY.format(mode=""))
    setup, files, notes = workflow_setup(root, [], TOOLS, "python train.py")
    assert setup.install == POETRY_INSTALL.format(groups=" --with dev") + " . loopline ruff"
    assert notes[-1].endswith("as poetry install would, and the package itself")
    # Poetry 2's standard tables alone ([project], [dependency-groups]): the same
    (root / "pyproject.toml").write_text(
        '[project]\nname = "churn"\nversion = "0.1.0"\ndependencies = ["scikit-learn>=1.5"]\n'
        '[dependency-groups]\ndev = ["pytest>=8"]\n'
        '[build-system]\nrequires = ["poetry-core>=2.0.0"]\nbuild-backend = "poetry.core.masonry.api"\n'
    )
    assert workflow_setup(root, [], TOOLS, "python train.py")[0].install == (
        POETRY_INSTALL.format(groups=" --with dev") + " . loopline ruff"
    )
    # no lock: a package is installed with its ranges; an application gets a requirements file written
    (root / "pyproject.toml").write_text(POETRY.format(mode=""))
    (root / "poetry.lock").unlink()
    setup, files, notes = workflow_setup(root, [], TOOLS, "python train.py")
    assert setup.install == "pip install . loopline pytest ruff" and files == {}  # pip: no dev group
    (root / "pyproject.toml").write_text(POETRY.format(mode="package-mode = false\n"))
    setup, files, notes = workflow_setup(root, ["scikit-learn==1.5.2"], TOOLS, "python train.py")
    assert setup.install.startswith("pip install -r requirements.txt")
    assert "scikit-learn==1.5.2" in files["requirements.txt"].decode().splitlines()
    assert notes[-1].startswith("the project is not a package (Poetry's package-mode = false)")


def test_a_training_in_a_src_layout_package_has_the_package_installed_beside_its_requirements(
    tmp_path: Path,
) -> None:
    root = empty_repository(tmp_path)
    (root / "requirements.txt").write_text("scikit-learn\nmlflow\n")
    (root / "src" / "churnkit").mkdir(parents=True)
    (root / "src" / "churnkit" / "__init__.py").write_text("")
    (root / "src" / "churnkit" / "train.py").write_text("from churnkit import features\n")
    (root / "train.py").write_text("import mlflow\n")
    backend = '[build-system]\nrequires = ["setuptools>=68"]\nbuild-backend = "setuptools.build_meta"\n'
    (root / "pyproject.toml").write_text('[project]\nname = "churnkit"\nversion = "1.0"\n\n' + backend)
    for command in ("python -m churnkit.train", "python src/churnkit/train.py"):
        install = workflow_setup(root, [], TOOLS, command)[0].install
        assert install == "pip install -r requirements.txt . loopline pytest ruff", command
        write_workflows(root, workflow_setup(root, [], TOOLS, command)[0])
        assert actionlint(root) == ""
    # a training outside the package, or a repository that is no package, installs its requirements alone
    assert workflow_setup(root, [], TOOLS, "python train.py")[0].install.startswith(
        "pip install -r requirements.txt loopline"
    )
    (root / "pyproject.toml").write_text('[project]\nname = "churnkit"\nversion = "1.0"\n')
    install = workflow_setup(root, [], TOOLS, "python -m churnkit.train")[0].install
    assert install == "pip install -r requirements.txt loopline pytest ruff"
    # a package of setuptools' older kind, a setup.py and no [build-system], is installed as well
    (root / "pyproject.toml").unlink()
    (root / "setup.py").write_text(
        "from setuptools import find_packages, setup\n\n"
        "setup(name='churnkit', packages=find_packages('src'), package_dir={'': 'src'})\n"
    )
    install = workflow_setup(root, [], TOOLS, "python -m churnkit.train")[0].install
    assert install == "pip install -r requirements.txt . loopline pytest ruff"


def conda_notes(root: Path) -> list[str]:
    """What ``init --existing`` says of the repository's conda environment file."""
    return [note for note in workflow_setup(root, [], TOOLS, "python t.py")[2] if "conda" in note]


def test_a_conda_environment_file_is_named_with_what_of_it_the_workflows_do_not_install(
    tmp_path: Path,
) -> None:
    root = empty_repository(tmp_path)
    (root / "environment.yml").write_text(
        "name: churn\nchannels: [conda-forge]\ndependencies:\n  - python=3.11\n  - pip\n"
        "  - conda-forge::scikit-learn=1.5\n  - pandas>=2.0\n  - matplotlib\n"
        "  - pip:\n      - -r requirements-dev.txt\n      - lightgbm==4.3.0\n      - mlflow[extras]>=3\n"
    )
    setup, files, notes = workflow_setup(root, ["scikit-learn==1.5.2", "mlflow==3.1.0"], TOOLS, "python t.py")
    assert setup.install.startswith("pip install -r requirements.txt")
    written = [line for line in files["requirements.txt"].decode().splitlines() if not line.startswith("#")]
    assert written == ["scikit-learn==1.5.2", "mlflow==3.1.0", *TOOLS]
    assert notes[-1] == (
        "environment.yml (a conda environment) is not read: the workflows install requirements.txt with pip "
        "on GitHub's Python; of the packages it lists, pandas, matplotlib, lightgbm are not in "
        "requirements.txt (add those the jobs need)"
    )
    # a file that is not the repository's (a link out of it), or far larger than a page of YAML, is not read
    (tmp_path / "elsewhere.yml").write_text((root / "environment.yml").read_text())
    (root / "environment.yml").unlink()
    (root / "environment.yml").symlink_to(tmp_path / "elsewhere.yml")
    assert not conda_notes(root)
    (root / "environment.yml").unlink()
    (root / "environment.yml").write_text("dependencies: [numpy]\n" + "#" * (1 << 20))
    assert not conda_notes(root)
    (root / "environment.yml").write_text("dependencies: [numpy]\n")
    assert conda_notes(root)
    # a repository that names its own requirements is not told of its conda file
    (root / "requirements.txt").write_text("pandas\n")
    assert not conda_notes(root)


def install_step_and_after(root: Path, workflow: str, job: str) -> list[dict[str, Any]]:
    steps = yaml.safe_load((root / ".github" / "workflows" / workflow).read_text())["jobs"][job]["steps"]
    install = next(i for i, step in enumerate(steps) if step.get("name") == "Install the project")
    return steps[install : install + 2]


def test_data_kept_with_dvc_is_pulled_by_the_jobs_that_train_or_test(tmp_path: Path) -> None:
    root = data_repository(tmp_path)
    (root / "data" / "train.csv").write_text("x,label\n1,0\n2,1\n")
    # DVC's folder in a folder above the repository is not the repository's
    (tmp_path / ".dvc").mkdir()
    (tmp_path / ".dvc" / "config").write_text(
        "[core]\n    remote = up\n['remote \"up\"']\n    url = s3://x/y\n"
    )
    setup, _files, notes = workflow_setup(root, [], TOOLS, "python train.py")
    assert setup.dvc is None and not any("DVC" in note for note in notes), notes
    dvc(root, "init", "--quiet")
    dvc(root, "remote", "add", "--default", "storage", str(tmp_path / "dvc-storage"))
    dvc(root, "add", "--quiet", "data/train.csv")
    dvc(root, "push", "--quiet")
    git(root, "add", "-A")
    git(root, "-c", "user.name=T", "-c", "user.email=t@example.com", "commit", "--quiet", "-m", "data")
    # a remote in a folder of this machine: no runner reaches it, and the note says what to do
    setup, _files, notes = workflow_setup(root, [], TOOLS, "python train.py")
    assert setup.dvc is None
    assert any("in remote storage, a folder of this machine" in note for note in notes), notes

    # on S3: the jobs that train or test pull after installing, with the credentials from secrets
    dvc(root, "remote", "modify", "storage", "url", "s3://ml-data/churn")
    setup, _files, notes = workflow_setup(root, [], TOOLS, "python train.py")
    assert setup.dvc is not None and setup.dvc.package == "dvc[s3]"
    assert any(
        note.startswith("the repository keeps data with DVC (remote storage, s3://ml-data/churn)")
        and note.endswith("add the repository secrets AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY")
        for note in notes
    ), notes
    write_workflows(root, setup)
    assert actionlint(root) == ""
    for workflow, job in (("inner-loop.yml", "inner-loop"), ("python-ci.yml", "lint-and-test")):
        _install, pull = install_step_and_after(root, workflow, job)
        assert pull["name"] == "Fetch the data DVC keeps", workflow
        assert pull["run"] == "pip install 'dvc[s3]' && dvc pull --allow-missing"
        assert pull["env"] == {
            "AWS_ACCESS_KEY_ID": "${{ secrets.AWS_ACCESS_KEY_ID }}",
            "AWS_SECRET_ACCESS_KEY": "${{ secrets.AWS_SECRET_ACCESS_KEY }}",
        }
    assert "dvc pull" not in (root / ".github" / "workflows" / "outer-loop-prod.yml").read_text()

    # A pipeline's stage run and committed without a `dvc push`: its outputs are in no remote.
    (root / "dvc.yaml").write_text(
        "stages:\n  prepare:\n    cmd: mkdir -p data/prepared && cp data/train.csv data/prepared/\n"
        "    deps: [data/train.csv]\n    outs: [data/prepared]\n"
    )
    dvc(root, "repro", "--quiet")
    git(root, "add", "dvc.yaml", "dvc.lock", "data/.gitignore")  # the remote as committed: this machine's
    git(root, "-c", "user.name=T", "-c", "user.email=t@example.com", "commit", "--quiet", "-m", "stage")
    # What the step runs, in a fresh checkout as a runner has it (of the commit, whose remote is one this
    # machine reaches): the data the commit names is there afterwards, the unpushed outputs left for the
    # training's `dvc repro` to make.
    reachable = WorkflowSetup(dvc=DvcFetch("dvc"))
    step = yaml.safe_load(
        workflow_files(workflow_layout(root, "repo"), reachable)[root / ".github/workflows/inner-loop.yml"]
    )["jobs"]["inner-loop"]["steps"]
    command = next(s["run"] for s in step if s.get("name") == "Fetch the data DVC keeps")
    checkout = tmp_path / "checkout"
    git(tmp_path, "clone", "--quiet", str(root), str(checkout))
    assert not (checkout / "data" / "train.csv").exists()
    path = f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"
    subprocess.run(["bash", "-c", command], cwd=checkout, check=True, env={**os.environ, "PATH": path})
    assert (checkout / "data" / "train.csv").read_text() == "x,label\n1,0\n2,1\n"
    assert not (checkout / "data" / "prepared").exists()


def test_the_commands_a_package_installs_are_read_from_its_pyproject(tmp_path: Path) -> None:
    from loopline.repo_setup import console_scripts

    build = '[build-system]\nrequires = ["setuptools"]\nbuild-backend = "setuptools.build_meta"\n'
    (tmp_path / "pyproject.toml").write_text(
        build + '[project]\nname = "churn"\nversion = "1"\n[project.scripts]\n'
        'churn-train = "churn.train:main"\nchurn-serve = "churn.cli:app.run [server]"\n'
        '[tool.poetry.scripts]\nchurn-eval = { reference = "churn.evaluate:main", type = "console" }\n'
        'churn-file = { reference = "bin/run.sh", type = "file" }\nchurn-train = "old.train:main"\n'
    )
    assert console_scripts(tmp_path) == {
        "churn-train": "churn.train:main",  # [project.scripts] over Poetry's
        "churn-serve": "churn.cli:app.run",
        "churn-eval": "churn.evaluate:main",
    }
    # a project pip cannot install installs no command
    (tmp_path / "pyproject.toml").write_text('[project.scripts]\nchurn-train = "churn.train:main"\n')
    assert console_scripts(tmp_path) == {}


def lint_step(root: Path) -> str:
    """What python-ci's lint step runs."""
    jobs = yaml.safe_load((root / ".github" / "workflows" / "python-ci.yml").read_text())["jobs"]
    return next(step["run"] for step in jobs["lint-and-test"]["steps"] if step.get("id") == "lint")


def test_python_ci_lints_a_repository_without_ruff_settings_only_for_errors_that_stop_the_code(
    tmp_path: Path,
) -> None:
    root = data_repository(tmp_path)
    # written as scripts are: an import left over from an experiment
    (root / "train.py").write_text("import os\nimport mlflow\n\nmlflow.log_metric('accuracy', 1.0)\n")
    setup, _files, notes = workflow_setup(root, [], TOOLS, "python train.py")
    assert any(
        note.startswith("the repository configures no ruff, so python-ci lints only") for note in notes
    )
    write_workflows(root, setup)
    assert actionlint(root) == ""
    lint = lint_step(root)
    assert lint == "python -m ruff check --select E9,F63,F7,F82 ."

    def lints(command: str) -> int:
        argv = [sys.executable, *command.split()[1:]]
        return subprocess.run(argv, cwd=root, capture_output=True, check=False).returncode

    assert lints(lint) == 0 and lints("python -m ruff check .") == 1  # the unused import: style, not an error
    (root / "train.py").write_text("import mlflow\n\nmlflow.log_metric('accuracy', acurracy)\n")
    assert lints(lint) == 1  # an undefined name stops the code

    # settings of its own, at the top or in the repository above the project: lint as they say
    (root / "pyproject.toml").write_text("[tool.ruff]\nline-length = 100\n")
    assert workflow_setup(root, [], TOOLS, "python train.py")[0].lint == "python -m ruff check ."
    (root / "pyproject.toml").unlink()
    (root / "ruff.toml").write_text("line-length = 100\n")
    (root / "ml").mkdir()
    assert workflow_setup(root / "ml", [], TOOLS, "python train.py")[0].lint == "python -m ruff check ."


def test_a_project_in_a_folder_of_a_larger_repository_is_installed_as_the_repository_says(
    tmp_path: Path,
) -> None:
    # a repository of several models, installed from its top: the workflows run in the model's folder
    top = empty_repository(tmp_path, "models")
    project = top / "models" / "churn"
    project.mkdir(parents=True)
    (project / "train.py").write_text("import mlflow\n")
    (top / "requirements.txt").write_text("scikit-learn\nmlflow\npytest\n")
    (top / ".python-version").write_text("3.12\n")
    setup, files, notes = workflow_setup(project, ["scikit-learn==1.5.2"], TOOLS, "python train.py")
    assert files == {} and not any("has no requirements.txt" in note for note in notes), notes
    assert setup.install == "pip install -r ../../requirements.txt loopline ruff"  # pytest it lists
    assert (project / "../../requirements.txt").is_file()
    assert setup.python == "3.12"
    write_workflows(project, setup)
    assert actionlint(top) == ""
    # the project's own pyproject.toml lists what it needs beside them (no package of its own): both go in
    (project / "pyproject.toml").write_text(
        '[project]\nname = "churn"\nversion = "0"\ndependencies = ["lightgbm>=4.0", "scikit-learn"]\n'
    )
    setup = workflow_setup(project, [], TOOLS, "python train.py")[0]
    assert setup.install == "pip install -r ../../requirements.txt 'lightgbm>=4.0' loopline ruff"
    write_workflows(project, setup)
    assert actionlint(top) == ""
    (project / "pyproject.toml").unlink()
    # the project's own requirements file, the nearer, is its own
    (project / "requirements.txt").write_text("scikit-learn\n")
    assert workflow_setup(project, [], TOOLS, "python train.py")[0].install == (
        "pip install -r requirements.txt loopline pytest ruff"
    )
    (project / "requirements.txt").unlink()
    # the repository a package pip installs; a requirements file above the repository is not its own
    (top / "requirements.txt").rename(tmp_path / "requirements.txt")
    backend = '[build-system]\nrequires = ["setuptools>=68"]\nbuild-backend = "setuptools.build_meta"\n'
    (top / "pyproject.toml").write_text('[project]\nname = "models"\nversion = "1.0"\n\n' + backend)
    assert workflow_setup(project, [], TOOLS, "python train.py")[0].install == (
        "pip install ../.. loopline pytest ruff"
    )
    # Poetry's lock at the top: the export finds it from the model's folder, as the job runs it
    locked = Path(__file__).parent / "projects" / "poetry"
    for name in ("pyproject.toml", "poetry.lock"):
        (top / name).write_text((locked / name).read_text())
    setup, files, _notes = workflow_setup(project, [], TOOLS, "python train.py")
    assert files == {} and setup.install == POETRY_INSTALL.format(groups=" --with dev") + " loopline ruff"
    export = setup.install.split(" && ")[1]
    path = f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"
    env = {**os.environ, "PATH": path, "RUNNER_TEMP": str(tmp_path)}
    subprocess.run(["bash", "-c", export], cwd=project, env=env, check=True, capture_output=True)
    assert "scikit-learn==" in (tmp_path / "requirements.txt").read_text()


def test_the_checkouts_that_train_or_test_fetch_the_repository_s_submodules(tmp_path: Path) -> None:
    from loopline.workflows.update import setup_of

    library = empty_repository(tmp_path, "features")
    (library / "features.py").write_text("VERSION = 1\n")
    git(library, "add", "-A")
    git(library, "-c", "user.name=T", "-c", "user.email=t@example.com", "commit", "--quiet", "-m", "f")
    root = data_repository(tmp_path)
    add_submodule(root, "../features", "libs/features")
    setup, _files, notes = workflow_setup(root, [], TOOLS, "python train.py")
    assert setup.submodules
    assert any(
        note.startswith(
            "the repository has submodules (libs/features): the inner loop's training and Python CI's"
        )
        and note.endswith("needs a token that reads it, as the repository secret SUBMODULES_TOKEN")
        for note in notes
    ), notes
    write_workflows(root, setup)
    assert actionlint(root) == ""
    fetched = {"submodules": "recursive", "token": "${{ secrets.SUBMODULES_TOKEN || github.token }}"}
    assert checkouts(root, "inner-loop.yml") == {"gate": {}, "inner-loop": {"fetch-depth": 0, **fetched}}
    assert checkouts(root, "python-ci.yml") == {"gate": {}, "lint-and-test": fetched}
    assert all(
        "submodules" not in step
        for name in ("outer-loop-test.yml", "outer-loop-prod.yml", "model-rollback.yml")
        for step in checkouts(root, name).values()
    )
    # `workflow update` reads it back from a file loopline wrote
    assert setup_of((root / ".github" / "workflows" / "inner-loop.yml").read_text(), "main").submodules
    # a submodule from a folder of this machine is named: no runner reaches it
    git(root, "config", "--file", ".gitmodules", "submodule.libs/features.url", str(library))
    notes = workflow_setup(root, [], TOOLS, "python train.py")[2]
    assert any(
        note.endswith("(`git submodule set-url PATH URL`)") and "libs/features comes from" in note
        for note in notes
    )
    # a repository without submodules: no change
    (tmp_path / "plain").mkdir()
    assert not workflow_setup(data_repository(tmp_path / "plain"), [], TOOLS, "python train.py")[0].submodules


def test_data_a_command_names_as_a_value_is_named_as_ignored_data_too(tmp_path: Path) -> None:
    from loopline.repo_setup import ignored_data

    git(tmp_path, "init", "--quiet")
    (tmp_path / ".gitignore").write_text("data/\n")
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "train.csv").write_text("x\n1\n")
    (tmp_path / "train.py").write_text("import os\nimport pandas as pd\n\npd.read_csv(os.environ['DATA'])\n")
    # a variable set on the line, an option's value after =, an argument: each names the file
    for command in (
        "DATA=data/train.csv python train.py",
        "python train.py --data=data/train.csv",
        "python train.py --data data/train.csv",
    ):
        assert ignored_data(tmp_path, command) == ["data/train.csv"], command


def test_the_workflows_run_a_python_the_projects_pyproject_takes(tmp_path: Path) -> None:
    # pip refuses to install a project on a Python its requires-python leaves out: the workflows ran the
    # dry run's (this machine's) whatever the project said, and failed at their first step.
    here = sys.version_info.minor
    project = empty_repository(tmp_path)
    (project / "train.py").write_text("import mlflow\n")
    cases = {
        f'[project]\nname = "churn"\nversion = "0"\nrequires-python = ">=3.{here + 1}"\n': f"3.{here + 1}",
        f'[project]\nname = "churn"\nversion = "0"\nrequires-python = "<3.{here}, >=3.8"\n': f"3.{here - 1}",
        f'[tool.poetry.dependencies]\npython = "^3.{here + 2}"\n': f"3.{here + 2}",
        f'[tool.poetry.dependencies]\npython = "~3.{here - 1}"\n': f"3.{here - 1}",
    }
    for pyproject, python in cases.items():
        (project / "pyproject.toml").write_text(pyproject)
        setup, _, notes = workflow_setup(project, [], TOOLS, "python train.py")
        assert setup.python == python, pyproject
        said = "requires-python" if "requires-python" in pyproject else "Poetry python dependency"
        assert any(f"the workflows run Python {python}, as pyproject.toml's {said}" in n for n in notes), (
            notes
        )
        write_workflows(project, setup)
        assert f'python-version: "{python}"' in (project / ".github/workflows/inner-loop.yml").read_text()
    # One this Python satisfies, or none at all: the dry run's, without a note.
    for pyproject in (
        f'[project]\nrequires-python = ">=3.{here}"\n',
        '[project]\nname = "churn"\n',
        'tool = {poetry = "x"}\n',
    ):
        (project / "pyproject.toml").write_text(pyproject)
        setup, _, notes = workflow_setup(project, [], TOOLS, "python train.py")
        assert setup.python == f"3.{here}" and not any("workflows run Python" in n for n in notes), notes


def test_a_repository_whose_own_workflows_test_its_python_is_told_python_ci_does_too(tmp_path: Path) -> None:
    project = empty_repository(tmp_path)
    (project / "train.py").write_text("import mlflow\n")
    workflows = project / ".github" / "workflows"
    workflows.mkdir(parents=True)
    steps = "    steps:\n      - uses: actions/checkout@v4\n      - run: {}\n"
    (workflows / "ci.yml").write_text(
        "on:\n  pull_request:\njobs:\n  test:\n    runs-on: ubuntu-latest\n"
        + steps.format("pip install -r requirements.txt && python -m pytest -q")
        + "  lint:\n    runs-on: ubuntu-latest\n"
        + steps.format("ruff check .")
    )
    (workflows / "tox.yaml").write_text(
        "on: push\njobs:\n  t:\n    runs-on: x\n" + steps.format("tox -e py311")
    )
    # Not on pushes or pull requests, no test run, not YAML, or loopline's own: none of them.
    (workflows / "nightly.yml").write_text(
        "on:\n  schedule: [{cron: '0 3 * * *'}]\njobs:\n  t:\n" + steps.format("pytest")
    )
    (workflows / "release.yml").write_text(
        "on: [push]\njobs:\n  r:\n" + steps.format("pip install pytest-cov; make")
    )
    (workflows / "broken.yml").write_text("on: [push\n")
    (workflows / "odd.yml").write_text("on: [{push: 1}]\njobs: [1]\n")
    (workflows / "python-ci.yml").write_text("on: [pull_request]\njobs:\n  t:\n" + steps.format("pytest"))
    notes = workflow_setup(project, [], TOOLS, "python train.py")[2]
    told = [note for note in notes if "own workflows" in note]
    assert told == [
        "the repository's own workflows already test its Python on pushes or pull requests "
        "(.github/workflows/ci.yml: pytest, ruff; .github/workflows/tox.yaml: tox), as python-ci.yml does: "
        "each pull request would run its tests twice; keep one of them (loopline needs python-ci.yml for "
        "nothing else)"
    ]
    for path in workflows.iterdir():
        if path.name != "nightly.yml":
            path.unlink()
    assert not any(
        "own workflows" in note for note in workflow_setup(project, [], TOOLS, "python train.py")[2]
    )
