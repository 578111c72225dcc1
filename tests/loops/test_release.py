"""Releasing to prod: a version whose answers a client of the live one would not read."""

from __future__ import annotations

from pathlib import Path

import pytest

import loopline
from loopline.errors import EXIT_REFUSED, Refused
from tests.helpers import cli, commit_answering_probabilities, commit_with_a_derived_column, model_version

pytestmark = pytest.mark.slow


def live_commit(project: Path) -> str:
    info = loopline.get_endpoint("proj", project=project)
    return next(d.git_commit for d in info.deployments if d.traffic == 100)


def test_a_version_answering_in_another_form_is_refused_unless_the_release_says_why(
    a_live_b_registered: tuple[Path, str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    project, _, b = a_live_b_registered
    loopline.outer_loop_prod(project, commit=b)  # labels where labels were: no question asked
    assert live_commit(project) == b
    c = commit_answering_probabilities(project)  # a list of two probabilities a row

    refused = cli(capsys, "-C", str(project), "outer-loop", "prod", "--commit", c)
    assert refused.exit_code == EXIT_REFUSED
    said = refused.stderr.strip().splitlines()[-1]
    assert said.startswith("error: ") and "Traceback" not in refused.stderr
    assert (
        f"answers a list of 2 numbers per row, where v2 ({b[:7]}), live on endpoint proj, answers a number"
        in refused.stderr
    )
    assert "--breaking-change REASON" in refused.stderr
    assert live_commit(project) == b  # no request was answered otherwise
    refusal = loopline.history(project, kind="refused")[-1].event
    assert refusal.git_commit == c and "another form" in (refusal.reason or "")

    # As the release workflow is run by hand with the input that says why
    why = "breaking_change=the app reads probabilities from 2.4"
    ran = cli(
        capsys,
        "workflow",
        "run",
        "outer-loop-prod",
        "-C",
        str(project),
        "--input",
        f"commit={c}",
        "--input",
        why,
    )
    assert ran.exit_code == 0, ran.stderr
    assert live_commit(project) == c
    event = loopline.history(project, kind="released")[-1].event
    assert event.details["breaking_change"] == {
        "change": f"answers a list of 2 numbers per row, where v2 ({b[:7]}), live on endpoint proj, answers "
        "a number per row",
        "reason": "the app reads probabilities from 2.4",
    }
    # Back to labels: the rollback returns clients to what they read before, without a question
    loopline.rollback(project, commit=b)
    assert live_commit(project) == b
    with pytest.raises(Refused, match="answers a list of 2 numbers per row"):
        loopline.outer_loop_prod(project, commit=c)


def test_a_version_refusing_the_requests_the_live_one_takes_is_refused_unless_the_release_says_why(
    a_live_b_registered: tuple[Path, str, str],
) -> None:
    """A column the model requires that clients do not send: every request a 400, which no canary counts."""
    project, a, _ = a_live_b_registered
    c = commit_with_a_derived_column(project)
    with pytest.raises(Refused) as refused:
        loopline.outer_loop_prod(project, commit=c)
    said = refused.value.message
    assert (
        f"refuses the request v1 ({a[:7]}), live on endpoint proj, answers (the model's input example): 400"
        in said
    )
    assert "radius_ratio" in said and "its clients would be refused once traffic moves" in said
    assert live_commit(project) == a
    loopline.outer_loop_prod(project, commit=c, breaking_change="the app sends radius_ratio from 3.0 on")
    assert live_commit(project) == c


def test_a_live_model_that_no_longer_loads_does_not_stop_the_release_that_replaces_it(
    a_live_b_registered: tuple[Path, str, str],
) -> None:
    """Its clients get nothing from it now: there is nothing of theirs to keep working."""
    project, _, b = a_live_b_registered
    folder = Path(model_version(project, 1, workspace="prod").source_uri.removeprefix("file://"))
    weights = next(p for p in folder.iterdir() if p.suffix in {".skops", ".pkl"})
    weights.chmod(0o644)
    weights.write_bytes(weights.read_bytes() + b"\0")  # its digest no longer matches: it does not load
    released = loopline.outer_loop_prod(project, commit=b)
    assert released.changed and live_commit(project) == b


def test_loopline_s_own_requests_count_in_the_metrics_and_not_in_what_a_canary_watches(
    a_live_b_registered: tuple[Path, str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A release's smoke test and its checks before traffic moves reach the new deployment through the
    server; with no client sending, each step of its canary watched no request (it said 2 before)."""
    import re

    import httpx

    from tests.servers import Server, free_port

    project, _a, b = a_live_b_registered
    port = free_port()
    monkeypatch.setenv("LOOPLINE_WORKSPACES__PROD__ENDPOINTS_URL", f"http://127.0.0.1:{port}")
    with Server(project, "prod", port=port) as server:
        released = loopline.outer_loop_prod(project, canary=[10, 100], watch=1)
        assert [(s["percent"], s["requests"]) for s in released.steps] == [(10, 0), (100, 0)]
        metrics = httpx.get(f"{server.url}/metrics", timeout=30).text
    counted = re.findall(
        rf'loopline_requests_total{{[^}}]*deployment="{released.deployment}"[^}}]*}} (\S+)', metrics
    )
    assert released.deployment.endswith(b[:7]) and sum(float(n) for n in counted) >= 1, metrics[:2000]
