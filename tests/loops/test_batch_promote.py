"""Moving a batch endpoint's default: a deployment whose answers what reads the predictions would not."""

from __future__ import annotations

import pytest

import loopline
from loopline.errors import EXIT_REFUSED
from tests.conftest import ProjectFactory
from tests.helpers import batch_scorer_answering_otherwise, cli_process

pytestmark = pytest.mark.slow


def test_a_deployment_answering_in_another_form_becomes_the_default_only_saying_why(
    trained_project: ProjectFactory,
) -> None:
    project = trained_project("simple")
    a = batch_scorer_answering_otherwise(project)  # blue (v1) answers a label, green (v2) probabilities

    refused = cli_process("batch", "promote", "scorer", "green", cwd=project)
    assert refused.exit_code == EXIT_REFUSED and "Traceback" not in refused.stderr
    assert refused.stderr.splitlines()[-1] == (
        f"error: deployment green answers a list of 2 numbers per row, where blue (v1, {a[:7]}), the "
        "default, answers a number per row: what reads batch endpoint scorer's predictions would read "
        "answers it does not know from its next job; once it is ready for them, promote it with "
        "--breaking-change REASON"
    )
    assert loopline.get_batch_endpoint("scorer", project=project).default == "blue"
    assert loopline.history(project, kind="batch-promoted") == []
    attempt = loopline.history(project, kind="refused")[-1].event
    assert attempt.details["step"] == "batch promote" and attempt.version == 2
    assert attempt.reason == refused.stderr.splitlines()[-1].removeprefix("error: ")

    why = "the nightly report reads probabilities from today"
    promoted = loopline.batch_promote("scorer", "green", breaking_change=why, project=project)
    assert promoted.changed and loopline.get_batch_endpoint("scorer", project=project).default == "green"
    event = loopline.history(project, kind="batch-promoted")[-1].event
    assert event.details["breaking_change"] == {
        "change": f"answers a list of 2 numbers per row, where blue (v1, {a[:7]}), the default, answers a "
        "number per row",
        "reason": why,
    }
    # back to what the readers had before, without a question; a deployment of the same files, neither
    assert loopline.batch_rollback("scorer", project=project).default == "blue"
    loopline.create_batch_deployment("scorer", "teal", version=1, project=project)
    assert loopline.batch_promote("scorer", "teal", project=project).changed
    assert loopline.history(project, kind="batch-promoted")[-1].event.details == {}
