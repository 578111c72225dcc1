"""Reading a DVC repository's files: the stage that runs a training script, and the paths DVC keeps."""

from __future__ import annotations

from pathlib import Path

from loopline.dvc_repo import kept_by_dvc, stage_running
from tests.helpers import tree

PIPELINE = """\
stages:
  featurize:
    foreach: [a, b]
    do:
      cmd: python src/train.py ${item}
  prepare:
    cmd:
    - mkdir -p data/prepared
    - python src/prepare.py data/raw.csv data/prepared
    outs:
    - data/prepared
  train:
    wdir: src
    cmd: python ./train.py ../data/prepared
    outs:
    - ../models/model.pkl:
        cache: false
    metrics:
    - ../metrics.json
  train_later:
    cmd: python src/train.py data/prepared
"""


def test_the_stage_that_runs_a_script_is_found_from_its_working_directory(tmp_path: Path) -> None:
    tree(tmp_path, {"dvc.yaml": PIPELINE})
    assert stage_running(tmp_path, "src/prepare.py") == "prepare"  # one line of a list of commands
    # from the stage's wdir, and the first stage in the file's order; a foreach template is no stage
    assert stage_running(tmp_path, "src/train.py") == "train"
    assert stage_running(tmp_path, "train.py") is None
    assert stage_running(tmp_path, "src/prepare") is None  # a whole path, not a part of one


def test_no_pipeline_or_one_dvc_cannot_read_has_no_stage(tmp_path: Path) -> None:
    assert stage_running(tmp_path, "train.py") is None
    tree(tmp_path, {"dvc.yaml": "stages: [unclosed"})
    assert stage_running(tmp_path, "train.py") is None
    tree(tmp_path, {"dvc.yaml": "stages:\n  train: python train.py\n"})
    assert stage_running(tmp_path, "train.py") is None


def test_the_paths_dvc_keeps_are_its_files_and_the_stages_outputs(tmp_path: Path) -> None:
    tree(tmp_path, {"dvc.yaml": PIPELINE, "data/raw.csv.dvc": "outs:\n- path: raw.csv\n", "images.dvc": ""})
    paths = [
        "data/raw.csv",
        "data/prepared/",
        "data/prepared/train.csv",
        "models/model.pkl",
        "metrics.json",
        "images/cat.png",
        "data/other.csv",
        "models/other.pkl",
    ]
    assert kept_by_dvc(tmp_path, paths) == set(paths[:6])
