"""Ranking candidate runs: `loopline compare`, and the inner loop registering the best run of a training."""

from __future__ import annotations

import math

import pytest
import yaml

import loopline
from loopline.errors import ConfigError
from tests.conftest import ProjectFactory
from tests.helpers import cli, commit_all, git, use_script

pytestmark = pytest.mark.slow

RANKING = {
    "primary": {"metric": "log_loss", "direction": "minimize"},
    "secondary": {"accuracy": {"direction": "maximize", "weight": 0.5}},
    "constraints": {"inverse_c": {"max": 100}},  # the most regularised candidate is not eligible
}


def test_the_inner_loop_registers_the_best_run_and_compare_shows_why(
    new_project: ProjectFactory, capsys: pytest.CaptureFixture[str]
) -> None:
    project = new_project("experimentation", "ranked")
    (project / "ranking.yaml").write_text(yaml.safe_dump(RANKING))
    use_script(project, "candidates.py", {"accuracy": {"min": 0.8}}, select="best")
    result = loopline.inner_loop(project)
    head = git(project, "rev-parse", "HEAD")

    shown = cli(capsys, "compare", "--commit", head[:7], "-C", str(project), "--json")
    assert shown.exit_code == 0, shown.stderr
    runs = shown.json()["runs"]
    assert len(runs) == 3 and all(r["git_commit"] == head for r in runs)
    eligible = [r for r in runs if r["eligible"]]
    assert [r["rank"] for r in eligible] == [1, 2]
    rejected = [r for r in runs if not r["eligible"]]
    assert len(rejected) == 1 and rejected[0]["metrics"]["inverse_c"] == 1000
    assert rejected[0]["reasons"] == ["inverse_c = 1000 (needs <= 100)"]
    # The score: log loss and accuracy scaled 0..1 between the two eligible runs, weighted 1 and 0.5.
    losses = [r["metrics"]["log_loss"] for r in eligible]
    accuracies = [r["metrics"]["accuracy"] for r in eligible]
    for r in eligible:
        loss = (
            1.0
            if max(losses) == min(losses)
            else (max(losses) - r["metrics"]["log_loss"]) / (max(losses) - min(losses))
        )
        accuracy = (
            1.0
            if max(accuracies) == min(accuracies)
            else (r["metrics"]["accuracy"] - min(accuracies)) / (max(accuracies) - min(accuracies))
        )
        assert math.isclose(r["score"], (loss + 0.5 * accuracy) / 1.5, abs_tol=1e-6)
    assert eligible[0]["score"] >= eligible[1]["score"]
    # The version the inner loop registered is the first one's model.
    assert result.run_id == eligible[0]["run_id"] == result.dev.run_id

    table = cli(capsys, "compare", "-C", str(project), "--last", "3")
    assert table.exit_code == 0 and all(r["run_id"][:8] in table.stdout for r in runs)
    assert "(needs" in table.stdout  # why the third is not eligible (wrapped in a narrow terminal)

    # With no eligible run, the inner loop registers nothing and says why each run is out.
    (project / "ranking.yaml").write_text(
        yaml.safe_dump({**RANKING, "constraints": {"accuracy": {"min": 0.999}}})
    )
    commit_all(project, "A stricter ranking")
    with pytest.raises(
        ConfigError, match=r"ranking.yaml: none of the 3 runs that logged 'model' is eligible"
    ):
        loopline.inner_loop(project)
    assert [m.version for m in loopline.status(project).models if m.workspace == "dev"] == [1]

    # A malformed ranking file: one line naming what to fix, a configuration error's exit code.
    (project / "ranking.yaml").write_text("primary: {metric: auc, direction: up}")
    broken = cli(capsys, "compare", "-C", str(project))
    assert broken.exit_code == 2, broken.stderr
    assert "primary.direction must be maximize or minimize, not 'up'" in broken.stderr
    assert "Traceback" not in broken.stderr


def test_checkpoints_logged_each_epoch_register_the_best_by_their_own_metrics(
    new_project: ProjectFactory,
) -> None:
    project = new_project("experimentation", "epochs")
    (project / "ranking.yaml").write_text(
        yaml.safe_dump({"primary": {"metric": "test_accuracy", "direction": "maximize"}})
    )
    use_script(project, "checkpoints.py", {"test_accuracy": {"min": 0.8}})
    config = yaml.safe_load((project / "loopline.yaml").read_text())
    del config["model"]["artifact_path"]
    (project / "loopline.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    commit_all(project, "No artifact path")
    with pytest.raises(ConfigError) as told:
        loopline.inner_loop(project)
    assert (
        "the training logged models named 'sgd-0', 'sgd-1', 'sgd-2', 'sgd-3'; set model.artifact_path to "
        "the one to register, or to 'sgd-*' with model.select: best to register the checkpoint your ranking "
        "file puts first"
    ) in told.value.message
    # As told: the checkpoint of the best accuracy, not the last epoch's (which learned inverted labels).
    use_script(project, "checkpoints.py", {"test_accuracy": {"min": 0.8}}, artifact_path="sgd-*")
    config = yaml.safe_load((project / "loopline.yaml").read_text())
    config["model"]["select"] = "best"
    (project / "loopline.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    commit_all(project, "The best checkpoint")
    result = loopline.inner_loop(project)
    from mlflow.sklearn import load_model
    from sklearn.datasets import load_breast_cancer
    from sklearn.model_selection import train_test_split

    from tests.helpers import mlflow_client

    client = mlflow_client(project, "dev")
    history = {m.step: m.value for m in client.get_metric_history(str(result.run_id), "test_accuracy")}
    best = max(history, key=lambda step: history[step])
    assert len(history) == 4 and best in (0, 1) and history[3] < 0.5, history
    X, y = load_breast_cancer(return_X_y=True, as_frame=True)
    X.columns = [c.replace(" ", "_") for c in X.columns]
    _, X_val, _, y_val = train_test_split(X, y, random_state=3, stratify=y)
    assert load_model(result.dev.source_uri).score(X_val, y_val) == history[best]  # that epoch's model
    assert client.get_run(str(result.run_id)).data.metrics["test_accuracy"] == history[3]  # the run: the last
    assert result.gate is not None
    assert [c.value for c in result.gate.checks if c.metric == "test_accuracy"] == [history[best]]
