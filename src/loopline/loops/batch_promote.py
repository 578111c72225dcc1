"""Moving a batch endpoint's default to another deployment, unless it would break what reads its output.

A batch job writes the answers to each input row into the predictions datastore, and what runs after it
(a report, a load into a warehouse, another team's job) reads those files by their columns and values. A
default moved to a model that answers in another form (``answer_form``: probabilities where a label was,
a column gone) or renames its labels (``answer_labels``) breaks them at the next job, with no error in
loopline. Both models score the same rows of training data (the reference rows monitoring keeps), each
in a sandbox as a batch job scores them, before the default moves.
"""

from __future__ import annotations

import json
from typing import Any

from loopline import audit
from loopline.answer_labels import changed_answers
from loopline.batch import service
from loopline.batch.service import DefaultChange
from loopline.domain import DeploymentInfo, pinned
from loopline.errors import LooplineError, Refused
from loopline.events import RefusedAttempt
from loopline.instance import Instance
from loopline.monitoring.reference import reference_rows
from loopline.storage.datastores import signature_columns

__all__ = ["output_change", "promote"]

_ROWS = 200


def promote(
    instance: Instance,
    endpoint: str,
    deployment: str,
    expected_current: str | None = None,
    workspace: str | None = None,
    reason: str | None = None,
    breaking_change: str | None = None,
) -> DefaultChange:
    """Make ``deployment`` the default of batch endpoint ``endpoint`` (``service.promote``), unless its
    answers would break what reads the default's predictions (``output_change``) and ``breaking_change``
    does not say why it goes ahead: Refused then (audited), nothing changed. The change and the reason are
    audited.
    A release's followers do not come here: the release compared the version's answers with the live
    one's."""
    info = service.get_batch_endpoint(instance, endpoint, workspace)
    new, current = info.deployment(deployment), info.deployment(None)
    change = None
    if new is not None and current is not None and current.name != new.name:
        change = output_change(instance, info.workspace, current, new)
        if change is not None and not breaking_change:
            message = (
                f"deployment {deployment} {change}: what reads batch endpoint {endpoint}'s predictions "
                "would read answers it does not know from its next job; once it is ready for them, promote "
                "it with --breaking-change REASON"
            )
            refused = RefusedAttempt(
                actor=instance.actor,
                workspace=info.workspace,
                **pinned(new),
                reason=message,
                details={"step": "batch promote", "endpoint": endpoint, "deployment": deployment},
            )
            audit.record(instance.db, refused)
            raise Refused(message)
        if expected_current is None:
            expected_current = current.name  # the answers compared were those of the default then
    details = {"breaking_change": {"change": change, "reason": breaking_change}} if change else None
    return service.promote(
        instance, endpoint, deployment, expected_current, info.workspace, reason, details=details
    )


def output_change(
    instance: Instance, workspace: str, current: DeploymentInfo, new: DeploymentInfo
) -> str | None:
    """How deployment ``new`` of a batch endpoint of ``workspace`` would answer otherwise than ``current``,
    its default, for what reads the predictions it writes (``answers a list of 2 numbers per row, where
    ...``); None where it would not, where neither model's training left reference rows, or where either
    does not score them."""
    if new.content_digest == current.content_digest:
        return None
    try:
        taken = signature_columns(instance.model_files(workspace, current.content_digest, current.source_uri))
    except LooplineError:  # the default's files are gone: it answers nothing to compare
        return None
    rows = reference_rows(instance, (current.content_digest, new.content_digest), taken, _ROWS)
    theirs = None if rows is None else _answers(instance, workspace, current, rows)
    ours = None if theirs is None else _answers(instance, workspace, new, rows)
    if theirs is None or ours is None:
        return None
    was = f"{current.name} (v{current.version}, {current.git_commit[:7]}), the default,"
    changed = changed_answers(theirs, ours, was, f"{len(rows)} rows of the training data")
    return None if changed is None else f"answers {changed}"


def _answers(instance: Instance, workspace: str, deployment: DeploymentInfo, rows: Any) -> list[Any] | None:
    """The answers of ``deployment``'s model to ``rows`` as a batch job writes them, one a row (a row of
    several columns as an object), in JSON's types; None where its files or the rows fail it."""
    from loopline.sandbox import SandboxedModel

    try:
        folder = instance.model_files(workspace, deployment.content_digest, deployment.source_uri)
        with SandboxedModel(folder, instance.settings.config.sandbox) as model:
            scored = model.score(rows)
    except LooplineError:
        return None
    if list(scored.columns) == ["prediction"]:
        return list(json.loads(scored["prediction"].to_json(orient="values")))
    return list(json.loads(scored.to_json(orient="records")))
