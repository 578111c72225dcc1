"""MLflow Projects: the training command an MLproject file gives."""

from __future__ import annotations

from pathlib import Path

import pytest

from loopline.errors import UsageError
from loopline.mlproject import find_project_command

MLPROJECT = """\
name: wine-quality
python_env: python_env.yaml
entry_points:
  main:
    parameters:
      alpha: {type: float, default: 0.5}
      l1_ratio: {type: float, default: 0.1}
      data: {type: path, default: data/wine quality.csv}
    command: >-
      python train.py --alpha {alpha}
      --l1-ratio {l1_ratio} --data {data}
  evaluate:
    parameters:
      run: string
    command: "python evaluate.py {run}"
"""


def test_the_main_entry_point_is_filled_in_with_its_defaults_as_mlflow_run_does(tmp_path: Path) -> None:
    (tmp_path / "MLproject").write_text(MLPROJECT)
    found = find_project_command(tmp_path)
    assert found is not None and found.environment == "python_env"
    assert found.command == "python train.py --alpha 0.5 --l1-ratio 0.1 --data 'data/wine quality.csv'"
    (tmp_path / "MLproject").unlink()
    assert find_project_command(tmp_path) is None


def test_a_parameter_without_a_default_or_no_main_entry_point_is_refused_naming_it(tmp_path: Path) -> None:
    (tmp_path / "MLproject").write_text(MLPROJECT.replace("{type: float, default: 0.5}", "float"))
    with pytest.raises(UsageError, match="parameter alpha of entry point 'main' has no default"):
        find_project_command(tmp_path)
    (tmp_path / "MLproject").write_text("name: x\nentry_points:\n  train:\n    command: python t.py\n")
    with pytest.raises(UsageError, match="has no entry point 'main' with a command; name the training"):
        find_project_command(tmp_path)
    (tmp_path / "MLproject").write_text("entry_points: [\n")
    with pytest.raises(UsageError, match="cannot be read as YAML"):
        find_project_command(tmp_path)
