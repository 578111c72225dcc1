"""Whether a release would break the live deployment's clients: what they send, what they read.

A client of an endpoint sends the rows the live model takes and reads the answers it gives. A new version
that refuses those rows (a required column added, a type changed) or answers in another form
(``answer_form``) breaks every client when traffic moves, while the server sees only 4xx answers or none
at all, which no canary watch counts; one that renames the labels it answers (``answer_labels``) breaks
them without a sign either. All are tried through the endpoint before any traffic moves: the live model's
smoke-test request is sent to the new deployment, the new one's to the live deployment, and rows of the
training data (the reference rows monitoring keeps) to both.
"""

from __future__ import annotations

from dataclasses import dataclass

from loopline.answer_form import answer_change
from loopline.answer_labels import label_change
from loopline.domain import DeploymentInfo
from loopline.endpoints.client import EndpointClient, InvokeResult, predict_rows
from loopline.errors import LooplineError
from loopline.instance import Instance
from loopline.loops.outer import PROD, Smoked
from loopline.monitoring.reference import reference_rows
from loopline.smoke import smoke_request
from loopline.storage.datastores import signature_columns

__all__ = ["Breaking", "breaking_change"]


@dataclass(frozen=True)
class Breaking:
    """How a new deployment would break the live one's clients, in words, and what they would see."""

    change: str
    clients: str  # "would be refused", "would read answers of another form", "would read labels ..."


def breaking_change(
    instance: Instance,
    client: EndpointClient,
    endpoint: str,
    new: DeploymentInfo,
    live: DeploymentInfo,
    smoked: Smoked | None,
) -> Breaking | None:
    """How deployment ``new`` of prod's ``endpoint`` (whose smoke test answered ``smoked``; None where it
    had nothing to send) would break the clients of ``live``, the deployment taking the most traffic; None
    where they would not notice."""
    was = f"v{live.version} ({live.git_commit[:7]}), live on endpoint {endpoint},"
    try:
        client.wait_ready(endpoint, live.name)
        folder = instance.model_files(PROD, live.content_digest, live.source_uri)
        theirs = smoke_request(instance, folder)
    except LooplineError:  # the live model does not load, or its files are gone: it answers no client now
        return None
    if theirs is not None:
        sent = client.score(endpoint, theirs.payload, deployment=live.name, route=theirs.route)
        taken = client.score(endpoint, theirs.payload, deployment=new.name, route=theirs.route)
        if sent.ok and not taken.ok:
            refused = taken.status < 500  # else the model failed on rows the live one answers
            return Breaking(
                f"{'refuses' if refused else 'fails on'} the request {was} answers ({theirs.source}): "
                f"{taken.status} {_message(taken)}",
                "would be refused" if refused else "would get errors",
            )
    if smoked is not None:
        before = client.score(endpoint, smoked.payload, deployment=live.name, route=smoked.route)
        # where the live model does not take these rows, there is no answer to compare
        change = answer_change(before.body, smoked.answer, was) if before.ok else None
        if change is not None:
            return Breaking(f"answers {change}", "would read answers of another form")
    renamed = _renamed_labels(instance, client, endpoint, (live, new), signature_columns(folder), was)
    return None if renamed is None else Breaking(f"answers {renamed}", "would read labels they do not know")


_REFERENCE_ROWS = 200


def _renamed_labels(
    instance: Instance,
    client: EndpointClient,
    endpoint: str,
    deployments: tuple[DeploymentInfo, DeploymentInfo],
    columns: list[str],
    was: str,
) -> str | None:
    """How the second of ``deployments`` renames the labels the first (the live one, taking ``columns``)
    answers to rows of the training data (``answer_labels``); None where it does not, or where either
    model's training left no reference rows, or either does not answer them."""
    live, new = deployments
    frame = reference_rows(instance, (live.content_digest, new.content_digest), columns, _REFERENCE_ROWS)
    if frame is None:
        return None
    try:
        theirs = predict_rows(client, endpoint, live.name, frame)
        ours = predict_rows(client, endpoint, new.name, frame)
    except LooplineError:  # rows one of them does not take: nothing to compare
        return None
    return label_change(theirs, ours, was, f"{len(frame)} rows of the training data")


def _message(result: InvokeResult) -> str:
    body = result.body
    said = body.get("message") if isinstance(body, dict) else body
    return str(said)[:300]
