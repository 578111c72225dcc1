"""Releasing to prod: a version whose answers a client of the live one would not read."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

import loopline
from loopline.errors import EXIT_REFUSED, Refused
from tests.conftest import ProjectFactory
from tests.helpers import (
    cli,
    commit_all,
    commit_answering_probabilities,
    commit_with_a_derived_column,
    edit_yaml,
    model_version,
)

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


def commit_classes_named(project: Path, names: dict[int, str], scratch: Path) -> str:
    """Commit, and register, the sample's model fitted on its classes named ``names`` (in the order of the
    numbers: the training measures the second's probability), and upload the
    held-out rows labelled so as the data asset validation.data names: the data relabelled upstream."""
    import pandas as pd

    train = project / "train.py"
    text = train.read_text()
    start = text.index("    return model.fit(features, labels")
    end = text.index("\n", start) + 1
    train.write_text(text[:start] + f"    return model.fit(features, labels.map({names!r}))\n" + text[end:])
    heldout = pd.read_csv(project / "data" / "inbox" / "heldout.csv")
    heldout["label"] = heldout["label"].map(names)
    heldout.to_csv(scratch / "heldout.csv", index=False)
    loopline.upload_data("heldout", scratch / "heldout.csv", project=project)
    config = project / "loopline.yaml"
    edit_yaml(config, validation={**yaml.safe_load(config.read_text())["validation"], "data": "heldout"})
    commit = commit_all(project, f"Classes named {', '.join(names.values())}")
    loopline.inner_loop(project)
    return commit


def test_a_version_renaming_its_labels_is_told_by_outer_loop_test_and_refused_unless_the_release_says_why(
    trained_project: ProjectFactory, tmp_path: Path
) -> None:
    """Labels spelt another way keep the answers' form: clients comparing them with their own would take
    every row for another class, with no error anywhere."""
    project = trained_project("full")
    b = commit_classes_named(project, {0: "cancer", 1: "healthy"}, tmp_path)
    assert loopline.outer_loop_test(project).passed
    loopline.outer_loop_prod(project)
    assert live_commit(project) == b
    c = commit_classes_named(project, {0: "Cancer", 1: "Healthy"}, tmp_path)
    tested = loopline.outer_loop_test(project)
    assert tested.passed, tested.report_markdown  # as accurate on the held-out rows, relabelled as well
    told = tested.report["answers"]
    assert told is not None and told.startswith(
        f'"Healthy" where the champion v2 ({b[:7]}) answers "healthy" (on '
    )
    assert ' held-out rows), "Cancer" where it answers "cancer" (on ' in told
    assert f"Answers: {told}; its clients would not read them as they read the champion's" in (
        tested.report_markdown
    )

    with pytest.raises(Refused) as refused:
        loopline.outer_loop_prod(project)
    said = refused.value.message
    assert said.startswith(
        f'proj-classifier v3 ({c[:7]}; v2 in prod) answers "Healthy" where v1 ({b[:7]}), live on endpoint '
        'proj, answers "healthy" (on '
    )
    assert ' of 200 rows of the training data), "Cancer" where it answers "cancer" (on ' in said
    assert "its clients would read labels they do not know" in said
    assert "--breaking-change REASON" in said and live_commit(project) == b
    released = loopline.outer_loop_prod(project, breaking_change="the app reads the new names from 3.1")
    assert released.changed and live_commit(project) == c
    event = loopline.history(project, kind="released")[-1].event
    assert event.details["breaking_change"]["change"].startswith('answers "Healthy" where v1')


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
