"""The distributions a training imports, for the requirements init --existing writes."""

from __future__ import annotations

import json
from importlib.metadata import version
from pathlib import Path

from loopline.requirements import training_file, training_requirements


def pinned(*names: str) -> list[str]:
    return [f"{name}=={version(name)}" for name in names]


def test_a_script_and_the_repositorys_modules_it_imports_name_what_to_install(tmp_path: Path) -> None:
    (tmp_path / "src" / "churn").mkdir(parents=True)
    (tmp_path / "train.py").write_text(
        "import os, json\nimport httpx\nimport features\nfrom churn import loading\nfrom . import nothing\n"
    )
    (tmp_path / "features.py").write_text("import numpy as np\nimport yaml\n")
    (tmp_path / "src" / "churn" / "__init__.py").write_text("")
    (tmp_path / "src" / "churn" / "loading.py").write_text(
        "from rich.console import Console\nimport loopline\n"
    )
    (tmp_path / "unused.py").write_text("import pyarrow\n")  # not imported by the training
    expected = sorted(pinned("httpx", "numpy", "PyYAML", "rich"))
    assert sorted(training_requirements(tmp_path, "python train.py --epochs 3")) == expected
    (tmp_path / "src" / "churn" / "train.py").write_text("import churn.loading\nimport mlflow\n")
    assert sorted(training_requirements(tmp_path, "python -m src.churn.train")) == sorted(
        pinned("mlflow", "rich")  # mlflow, not mlflow-skinny, which provides the same name
    )
    # the same module as an installed package's (`pip install -e .` of a src layout) runs it
    assert training_requirements(tmp_path, "python -m churn.train") == sorted(pinned("mlflow", "rich"))
    assert training_requirements(tmp_path, "make train") == []
    assert training_requirements(tmp_path, "python missing.py") == []


def test_a_notebook_names_what_its_code_cells_import_past_its_magics(tmp_path: Path) -> None:
    cells = [
        {"cell_type": "markdown", "source": ["import pandas  # not code"]},
        {"cell_type": "code", "source": ["%pip install scipy\n", "import scipy.stats\n", "!ls data\n"]},
        {"cell_type": "code", "source": "from sklearn.linear_model import Ridge"},
    ]
    (tmp_path / "nb").mkdir()
    (tmp_path / "nb" / "train.ipynb").write_text(json.dumps({"cells": cells, "nbformat": 4}))
    command = "python -m papermill nb/train.ipynb /dev/null --cwd nb --log-output"
    assert sorted(training_requirements(tmp_path, command)) == sorted(pinned("scipy", "scikit-learn"))


def test_a_line_of_several_python_steps_names_what_each_imports_and_the_one_importing_mlflow_trains(
    tmp_path: Path,
) -> None:
    (tmp_path / "prepare.py").write_text("import pyarrow\n")
    (tmp_path / "train.py").write_text("import mlflow\nimport httpx\n")
    (tmp_path / "report.py").write_text("import rich\n")
    command = (
        "mkdir -p out && python prepare.py out && DEBUG=1 python train.py --data out && python report.py"
    )
    assert training_requirements(tmp_path, command) == sorted(pinned("httpx", "mlflow", "pyarrow", "rich"))
    assert training_file(tmp_path, command) == tmp_path / "train.py"
    # none of them imports MLflow (a package of the repository's logs): the last step
    assert training_file(tmp_path, "python prepare.py && python report.py") == tmp_path / "report.py"
    assert training_file(tmp_path, "make data && python prepare.py") == tmp_path / "prepare.py"
    # run from its own folder
    (tmp_path / "training").mkdir()
    (tmp_path / "training" / "fit.py").write_text("import mlflow\nimport pyarrow\n")
    assert training_file(tmp_path, "cd training && python fit.py") == tmp_path / "training" / "fit.py"
    assert training_requirements(tmp_path, "cd training && python fit.py") == sorted(
        pinned("mlflow", "pyarrow")
    )
