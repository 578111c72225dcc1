"""A canary whose model fails on real input is rolled back by itself while clients keep being served."""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

import loopline
from loopline.errors import Refused
from tests.conftest import StagedProject
from tests.helpers import (
    cli_process,
    commit_all,
    commit_with_a_derived_column,
    git,
    input_example,
)
from tests.servers import Load, Server, free_port

pytestmark = [pytest.mark.slow, pytest.mark.timing]

# The sample's pipeline wrapped so that it raises on any row with mean_radius above 15: about a third of
# real input, and none of the input example's rows (so it passes the smoke test).
BROKEN = """
class Brittle(mlflow.pyfunc.PythonModel):
    def __init__(self, model):
        self.model = model

    def predict(self, context, model_input, params=None):
        if (model_input["mean_radius"] > 15).any():
            raise ValueError("cannot score large tumours")
        return self.model.predict(model_input)


def log_brittle(model, x_valid):
    example = x_valid[x_valid["mean_radius"] <= 15].head(3)
    mlflow.pyfunc.log_model(name="model", python_model=Brittle(model), input_example=example,
                            signature=infer_signature(x_valid, model.predict(x_valid)),
                            pip_requirements=[f"scikit-learn=={sklearn.__version__}"])
"""


def brittle_commit(project: Path) -> str:
    """Commit and register a model that fails on about a third of real rows (not on its example)."""
    train = project / "train.py"
    source = train.read_text()
    source = source.replace("def main() -> None:", BROKEN.strip() + "\n\n\ndef main() -> None:")
    start = source.index("        mlflow.sklearn.log_model(")
    end = source.index("        print(", start)
    train.write_text(source[:start] + "        log_brittle(model, x_valid)\n" + source[end:])
    bad = commit_all(project, "A model that fails on real input")
    loopline.inner_loop(project)
    return bad


def good_live_bad_registered(staged_project: StagedProject) -> tuple[Path, str, str]:
    """A project whose good commit is live in prod and whose brittle commit is registered (made once)."""

    def build(project: Path) -> None:
        loopline.outer_loop_prod(project)
        brittle_commit(project)

    project = staged_project("good-live-brittle-registered", build)
    return project, git(project, "rev-parse", "HEAD~1"), git(project, "rev-parse", "HEAD")


def real_load(project: Path, server: Server) -> list[Load]:
    """Two clients of the prod endpoint: one sends a row every model answers, one a row that breaks the
    brittle model."""
    import pandas as pd

    columns, _ = input_example(project)
    heldout = pd.read_csv(project / "data" / "inbox" / "heldout.csv").drop(columns=["label"])
    rows = heldout[columns].to_numpy().tolist()
    big = [r for r in rows if r[0] > 15][:1]
    bodies = [
        json.dumps({"input_data": {"columns": columns, "data": data}}).encode() for data in (rows[:1], big)
    ]
    # a client's key: loopline's own requests (its system key) are not what a canary's watch judges
    key = loopline.endpoint_keys("proj", regenerate="secondary", project=project).regenerated["secondary"]
    return [Load([f"{server.url}/endpoints/proj/score"], b, [key]) for b in bodies]


@contextmanager
def real_clients(project: Path, server: Server) -> Iterator[list[Load]]:
    """``real_load``'s clients sending until the block ends."""
    loads = real_load(project, server)
    threads = [load.run() for load in loads]
    try:
        yield loads
    finally:
        for load in loads:
            load.stop.set()
        for thread in threads:
            thread.join(timeout=30)


def test_a_failing_canary_is_rolled_back_by_itself(
    staged_project: StagedProject, monkeypatch: pytest.MonkeyPatch
) -> None:
    port = free_port()
    monkeypatch.setenv("LOOPLINE_WORKSPACES__PROD__ENDPOINTS_URL", f"http://127.0.0.1:{port}")
    project, good, bad = good_live_bad_registered(staged_project)
    with Server(project, "prod", port=port) as server, real_clients(project, server) as loads:
        time.sleep(1.0)
        said = r"fails on the request v1 \(\w+\), live on endpoint proj, answers .*: 500 .*would get errors"
        with pytest.raises(Refused, match=said):  # on the live model's example: before any traffic moves
            loopline.outer_loop_prod(project, canary=[10, 100], watch=20)
        with pytest.raises(Refused, match=r"canary breach at 10%: error rate"):
            # told it is fine: the canary still watches
            loopline.outer_loop_prod(project, canary=[10, 100], watch=20, breaking_change="a hotfix")
        time.sleep(1.0)
    info = loopline.get_endpoint("proj", project=project)
    assert {d.git_commit: d.traffic for d in info.deployments} == {good: 100, bad: 0}
    rolled = loopline.history(project, kind="rolled-back")[-1].event
    assert (
        rolled.outcome == "automatic" and rolled.git_commit == good and "error rate" in (rolled.reason or "")
    )
    answers = [a for load in loads for a in load.answers]
    by_deployment = Counter((status, deployment) for _, status, deployment, _ in answers)
    errors = sum(count for (status, _), count in by_deployment.items() if status != 200)
    on_canary = sum(count for (_, deployment), count in by_deployment.items() if deployment.endswith(bad[:7]))
    print(f"\n{len(answers)} requests; {dict(by_deployment)}")
    assert errors > 0, "the canary should have failed some real requests"
    assert errors <= on_canary, "only requests sent to the canary may fail"
    assert on_canary < 0.25 * len(answers)


def test_a_breach_in_the_watch_of_a_release_continued_after_a_crash_returns_to_where_it_began(
    staged_project: StagedProject, monkeypatch: pytest.MonkeyPatch
) -> None:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    monkeypatch.setenv("LOOPLINE_WORKSPACES__PROD__ENDPOINTS_URL", url)
    project, good, bad = good_live_bad_registered(staged_project)
    with Server(project, "prod", port=port) as server, real_clients(project, server):
        # Killed one second into watching the 10% step, before that step could be judged.
        crashed = cli_process(
            "outer-loop",
            "prod",
            "--canary",
            "10,100",
            "--watch",
            "20",
            "--breaking-change",
            "a hotfix",
            cwd=project,
            env={"LOOPLINE_FAILPOINT": "release-watch-10", "LOOPLINE_WORKSPACES__PROD__ENDPOINTS_URL": url},
        )
        assert crashed.exit_code == 137, crashed.stderr
        traffic = {
            d.git_commit: d.traffic for d in loopline.get_endpoint("proj", project=project).deployments
        }
        assert traffic == {good: 90, bad: 10}
        with pytest.raises(Refused, match=r"canary breach at 10%: error rate .* back where it was"):
            loopline.outer_loop_prod(project)
    traffic = {d.git_commit: d.traffic for d in loopline.get_endpoint("proj", project=project).deployments}
    assert traffic == {good: 100, bad: 0}
    alias = loopline.status(project).models
    assert [m.git_commit for m in alias if m.workspace == "prod" and "production" in m.aliases] == [good]
    rolled = loopline.history(project, kind="rolled-back")[-1].event
    assert rolled.outcome == "automatic" and rolled.details["traffic"] == {f"v1-{good[:7]}": 100}
    # The breach ended that release: the next run starts a new one, from its first step.
    assert [r.git_commit for r in loopline.releases(project=project)] == [good]


def test_a_canary_refusing_requests_the_live_model_takes_is_rolled_back_by_itself(
    staged_project: StagedProject, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Told the clients are ready for a required column when they are not: every request the canary gets
    is a 400, which the server counts as no error; the rise in refusals over the live model's is."""
    port = free_port()
    monkeypatch.setenv("LOOPLINE_WORKSPACES__PROD__ENDPOINTS_URL", f"http://127.0.0.1:{port}")

    def build(project: Path) -> None:
        loopline.outer_loop_prod(project)
        commit_with_a_derived_column(project)

    project = staged_project("good-live-derived-registered", build)
    good, derived = git(project, "rev-parse", "HEAD~1"), git(project, "rev-parse", "HEAD")
    with Server(project, "prod", port=port) as server, real_clients(project, server):
        time.sleep(1.0)
        with pytest.raises(
            Refused,
            # every client request it got: loopline's own smoke test, which it answered, is not one
            match=r"canary breach at 10%: 100.0% of requests refused \(4xx\) where 0.0% were before",
        ):
            loopline.outer_loop_prod(
                project, canary=[10, 100], watch=20, breaking_change="the app sends radius_ratio"
            )
    info = loopline.get_endpoint("proj", project=project)
    assert {d.git_commit: d.traffic for d in info.deployments} == {good: 100, derived: 0}
    rolled = loopline.history(project, kind="rolled-back")[-1].event
    assert rolled.outcome == "automatic" and "release.max_rejected_rise" in (rolled.reason or "")
