"""What online and batch deployments share: the version a deployment takes, checked and recorded."""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

import httpx
import pytest

import loopline
from tests.conftest import ProjectFactory
from tests.helpers import Steps, cli, use_script, wait_until
from tests.servers import Dashboard, Server

# A data scientist's script that logs the model with the pins of the laptop it was trained on (as
# `pip_requirements="requirements.txt"` does), where this machine has other versions, or none.
PINNED_ON_A_LAPTOP = """\
import mlflow
from mlflow.models import infer_signature
from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression

X, y = load_iris(return_X_y=True, as_frame=True)
X.columns = ["sepal_length", "sepal_width", "petal_length", "petal_width"]
with mlflow.start_run():
    model = LogisticRegression(max_iter=500).fit(X, y)
    mlflow.log_metric("accuracy", model.score(X, y))
    mlflow.sklearn.log_model(
        model,
        name="model",
        signature=infer_signature(X, model.predict(X)),
        input_example=X.head(2),
        pip_requirements=["scikit-learn==1.5.2", "catboost==1.2.7", "pandas"],
    )
"""


def _here(package: str) -> str:
    """How a difference names what this machine has of ``package`` (a developer's may have it)."""
    try:
        return f"{version(package)} here"
    except PackageNotFoundError:
        return "not installed"


def test_a_model_logged_with_other_packages_than_here_is_deployed_with_a_warning_everywhere_it_shows(
    new_project: ProjectFactory, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    project = new_project("simple", commit=False)
    use_script(project, "laptop.py", {"accuracy": {"min": 0.5}}, source=PINNED_ON_A_LAPTOP, name="iris")
    differs = [
        f"scikit-learn==1.5.2 ({version('scikit-learn')} here)",
        f"catboost==1.2.7 ({_here('catboost')})",
    ]
    steps = Steps()
    loopline.inner_loop(project, reporter=steps)  # the model loads here, so it is registered, and said
    assert f"warning: the model was logged with {differs[0]}, {differs[1]}; a serving process" in " ".join(
        steps.seen
    )
    loopline.create_endpoint("iris", "dev", project=project)

    monkeypatch.setenv("GITHUB_ACTIONS", "true")  # as in outer-loop-prod's job: an annotation of the run too
    done = cli(capsys, "deployment", "create", "iris", "blue", "--version", "1", "--json", "-C", str(project))
    monkeypatch.delenv("GITHUB_ACTIONS")
    assert done.exit_code == 0, done.stderr
    blue = done.json()["deployments"][0]
    assert blue["environment"] == differs
    said = " ".join(done.stderr.split())
    assert (
        f"warning: deployment iris/blue: the model was logged with {differs[0]}, {differs[1]}; it may load "
        "or answer otherwise here" in said
    )
    annotation = f"::warning title=loopline::deployment iris/blue: the model was logged with {differs[0]}, "
    assert annotation in done.stderr.splitlines()[-1]
    deployed = [r for r in loopline.history(project, kind="deployed") if r.event.target == "iris/blue"]
    assert deployed[0].event.details["environment"] == differs
    # a batch deployment of the same model: its jobs load it here too
    loopline.create_batch_endpoint("iris-nightly", "dev", project=project)
    batch = cli(
        capsys,
        "batch-deployment",
        "create",
        "iris-nightly",
        "b1",
        "--version",
        "1",
        "--json",
        "-C",
        str(project),
    )
    assert batch.exit_code == 0, batch.stderr
    assert batch.json()["deployments"][0]["environment"] == differs
    assert "warning: deployment iris-nightly/b1: the model was logged with" in " ".join(batch.stderr.split())

    with Server(project, "dev") as server:
        server.wait_ready()
        assert httpx.get(f"{server.url}/readyz").json()["environment"] == {"iris": {"blue": differs}}

        def reported() -> list[dict[str, object]]:
            shown = cli(capsys, "deployment", "show", "iris", "blue", "--json", "-C", str(project))
            return shown.json()["serving"]

        serving = wait_until(reported, 30, "the serving process to report what it loaded")
        assert serving[0]["environment"] == differs
        human = cli(capsys, "deployment", "show", "iris", "blue", "-C", str(project))
        assert "the model was logged with scikit-learn==1.5.2" in " ".join(human.stdout.split())
        board = Dashboard(project)
        try:
            page = httpx.get(f"{board.url}/ui/endpoints").text
        finally:
            board.stop()
        warned = page.split('data-testid="environment-blue">', 1)[1].split("</div>", 1)[0]
        assert warned == f"the model was logged with {differs[0]}, {differs[1]}"
    log = " ".join(server.errors.read_text().split())
    assert f"the model was logged with {differs[0]}, {differs[1]}" in log
