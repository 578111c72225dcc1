"""Training inputs: the data assets a training reads, copied verified, named in its command and its runs."""

from __future__ import annotations

import json
import os
import re
import shlex
import time
from pathlib import Path

import pandas as pd
import pytest
from mlflow import MlflowClient
from sklearn.datasets import load_breast_cancer

import loopline
from loopline.config import load_config
from loopline.errors import ConfigError, NotFound
from loopline.inputs import INPUTS_TAG, fill_inputs
from tests.helpers import commit_all, edit_yaml, git

pytestmark = pytest.mark.slow

TRAIN = """\
import argparse, json, os
import mlflow
import pandas as pd
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score

parser = argparse.ArgumentParser()
parser.add_argument("--data", required=True)
args = parser.parse_args()
frame = pd.read_csv(args.data)
X, y = frame.drop(columns=["label"]), frame["label"]
print("rows", len(frame), "inputs", json.loads(os.environ["LOOPLINE_INPUTS"]))
with mlflow.start_run():
    model = LogisticRegression(max_iter=3000).fit(X, y)
    mlflow.log_metric("accuracy", accuracy_score(y, model.predict(X)))
    mlflow.sklearn.log_model(model, name="model", input_example=X.head(2))
"""


def project_reading(tmp_path: Path) -> Path:
    """A repository whose training reads the CSV it is given; its data lives in a data asset, not in git."""
    project = tmp_path / "credit"
    project.mkdir()
    (project / "train.py").write_text(TRAIN)
    (project / "gate.yaml").write_text("metrics:\n  accuracy: {min: 0.5}\n")
    (project / ".gitignore").write_text(".loopline/\n")
    (project / "loopline.yaml").write_text(
        "project: credit\ntier: simple\nmodel:\n  name: credit-model\ntraining:\n"
        "  command: python train.py --data {inputs.train}\n  inputs:\n    train: rows\n"
    )
    git(project, "init", "--quiet")
    commit_all(project, "Training that reads its data from an input")
    loopline.up(project)
    return project


def rows(tmp_path: Path, count: int) -> Path:
    x, y = load_breast_cancer(return_X_y=True, as_frame=True)
    x.columns = [c.replace(" ", "_") for c in x.columns]
    path = tmp_path / f"rows-{count}" / "train.csv"
    path.parent.mkdir()
    x.assign(label=y).head(count).to_csv(path, index=False)
    return path


def trained_on(project: Path, version: int) -> dict[str, str]:
    """The inputs the dev version's run records: its tag, and the same as MLflow datasets of the run."""
    model = next(m for m in loopline.status(project).models if (m.workspace, m.version) == ("dev", version))
    location = load_config(project).store("dev")
    run = MlflowClient(location.tracking_uri).get_run(model.run_id)
    recorded = json.loads(run.data.tags[INPUTS_TAG])
    assets = [item for item in run.inputs.dataset_inputs if item.dataset.source_type == "loopline-data-asset"]
    datasets = {
        next(t.value for t in item.tags if t.key == "loopline.input"): json.loads(item.dataset.source)
        for item in assets
    }
    assert {name: f"{d['asset']} {d['digest']}" for name, d in datasets.items()} == recorded
    assert len(assets) == len(recorded)  # each once
    assert all({t.key: t.value for t in item.tags}["mlflow.data.context"] == "training" for item in assets)
    return recorded


def test_a_training_reads_the_data_asset_version_it_names_and_its_runs_say_which(tmp_path: Path) -> None:
    project = project_reading(tmp_path)
    with pytest.raises(NotFound) as missing:  # before any training: nothing runs, nothing is registered
        loopline.inner_loop(project)
    assert missing.value.message == (
        "training.inputs.train names rows: no data asset rows; upload the data (`loopline data upload rows "
        "PATH`) or name another version"
    )
    assert loopline.status(project).models == ()
    first, _ = loopline.upload_data("rows", rows(tmp_path, 400), project=project)
    second, _ = loopline.upload_data("rows", rows(tmp_path, 500), project=project)
    loopline.inner_loop(project)  # the newest version
    assert trained_on(project, 1) == {"train": f"rows:2 {second.digest}"}
    copy = project / ".loopline" / "inputs" / "rows-2" / "train.csv"
    assert len(pd.read_csv(copy)) == 500
    log = next((project / ".loopline" / "logs").glob("train-*.log")).read_text()
    assert f"rows 500 inputs {{'train': '{copy}'}}" in log
    # a pinned version stays what it is
    edit_yaml(
        project / "loopline.yaml",
        training={"command": "python train.py --data {inputs.train}", "inputs": {"train": "rows:1"}},
    )
    commit_all(project, "Pin the first rows")
    loopline.inner_loop(project)
    assert trained_on(project, 2) == {"train": f"rows:1 {first.digest}"}


def test_a_newer_version_of_an_input_trains_the_next_commit_and_the_same_commit_says_how(
    tmp_path: Path,
) -> None:
    project = project_reading(tmp_path)
    training = {"command": "python train.py --data {inputs.train}", "inputs": {"train": "rows"}}
    edit_yaml(project / "loopline.yaml", training={**training, "paths": [".", "!*.md"]})
    commit_all(project, "Only the training makes the model")
    loopline.upload_data("rows", rows(tmp_path, 400), project=project)
    loopline.inner_loop(project)
    newer, _ = loopline.upload_data("rows", rows(tmp_path, 500), project=project)
    same = loopline.inner_loop(project)  # the same commit: one model, and what to do to train on rows:2
    assert (same.created, same.dev.version) == (False, 1)
    assert same.message.endswith(
        "nothing to do; its input train was rows:1 and is rows:2 now: a commit trains once, so pin the "
        "newer version in training.inputs (train: rows:2) and commit to train on it"
    )
    # a commit that changed nothing in training.paths, whose ancestor's model read rows:1, trains on rows:2
    (project / "README.md").write_text("# credit\n")
    commit_all(project, "Documentation")
    retrained = loopline.inner_loop(project)
    assert (retrained.created, retrained.dev.version) == (True, 2)
    assert trained_on(project, 2) == {"train": f"rows:2 {newer.digest}"}
    (project / "NOTES.md").write_text("notes\n")
    commit_all(project, "More documentation")
    assert loopline.inner_loop(project).registry.version == 2  # the data has not changed since: taken


def test_a_command_naming_an_input_it_does_not_have_is_refused(tmp_path: Path) -> None:
    project = project_reading(tmp_path)
    loopline.upload_data("rows", rows(tmp_path, 300), project=project)
    edit_yaml(
        project / "loopline.yaml",
        training={"command": "python train.py --data {inputs.test}", "inputs": {"train": "rows"}},
    )
    commit_all(project, "A typo")
    with pytest.raises(
        ConfigError, match=r"names \{inputs.test\}, which is not in training.inputs \(train\)"
    ):
        loopline.inner_loop(project)
    assert loopline.status(project).models == ()
    edit_yaml(project / "loopline.yaml", training={"inputs": {"train-set": "rows"}})
    with pytest.raises(
        ConfigError, match=re.escape("training.inputs name 'train-set' must be letters, digits")
    ):
        load_config(project)


@pytest.mark.parametrize(
    ("command", "word"),
    [
        ("python t.py --data {inputs.train}", "/data sets/train.csv"),
        ("python t.py --data '{inputs.train}'", "/data sets/train.csv"),  # as shlex.join writes it
        ('python t.py --data "{inputs.train}"', "/data sets/train.csv"),
        ("python t.py --data={inputs.train}", "--data=/data sets/train.csv"),
        ("python t.py '--data={inputs.train}'", "--data=/data sets/train.csv"),
    ],
)
def test_a_path_with_spaces_reaches_the_training_as_one_word_however_the_command_quotes_it(
    command: str, word: str
) -> None:
    assert shlex.split(fill_inputs(command, {"train": Path("/data sets/train.csv")})) == [
        "python",
        "t.py",
        *(["--data"] if word.startswith("/") else []),
        word,
    ]
    assert fill_inputs("python  t.py  'a b'", {}) == "python  t.py  'a b'"  # no input: left as written


def test_a_sweep_command_keeps_its_inputs_for_the_training_to_fill_in() -> None:
    from loopline.config.sections import SweepConfig
    from loopline.loops.trial_values import trial_command

    config = SweepConfig(
        command="python train.py --C {C} --data {inputs.train}", parameters={"C": {"low": 0.1, "high": 1}}
    )
    assert (
        trial_command(config, "python train.py", {"C": 0.5}, {})
        == "python train.py --C 0.5 --data {inputs.train}"
    )


def test_trials_that_copy_an_input_at_once_all_read_a_whole_copy(tmp_path: Path) -> None:
    # a parallel sweep's trials each prepare their inputs; the first copy to land is the one all read
    from concurrent.futures import ThreadPoolExecutor

    from loopline.inputs import prepare
    from loopline.instance import Instance
    from loopline.progress import NullReporter

    project = project_reading(tmp_path)
    asset, _ = loopline.upload_data("rows", rows(tmp_path, 300), project=project)
    instance = Instance.open(project)
    # Copies of earlier versions: one no training read for 8 days goes, as does a copy cut short then;
    # one read yesterday stays.
    copies = project / ".loopline" / "inputs"
    week_ago = time.time() - 8 * 86_400
    for name, when in (
        ("rows-0", week_ago),
        ("other-3", time.time() - 86_400),
        ("rows-0.1a2b.partial", week_ago),
    ):
        (copies / name).mkdir(parents=True)
        if not name.endswith(".partial"):
            (copies / name / ".loopline-digest").write_text("sha256:old")
            os.utime(copies / name / ".loopline-digest", (when, when))
        os.utime(copies / name, (when, when))
    with ThreadPoolExecutor(4) as pool:
        found = list(pool.map(lambda _: prepare(instance, NullReporter()), range(4)))
    paths = {items[0].path for items in found}
    assert paths == {project / ".loopline" / "inputs" / "rows-1" / "train.csv"}
    assert len(pd.read_csv(next(iter(paths)))) == 300
    assert sorted(p.name for p in copies.iterdir()) == ["other-3", "rows-1"]  # no leftovers, nothing stale
    assert (project / ".loopline" / "inputs" / "rows-1" / ".loopline-digest").read_text() == asset.digest
