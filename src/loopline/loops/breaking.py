"""Whether a release would break the live deployment's clients: what they send, what they read.

A client of an endpoint sends the rows the live model takes and reads the answers it gives. A new version
that refuses those rows (a required column added, a type changed) or answers in another form
(``answer_form``) breaks every client when traffic moves, while the server sees only 4xx answers or none
at all, which no canary watch counts. Both are tried through the endpoint before any traffic moves: the
live model's smoke-test request is sent to the new deployment, and the new one's to the live deployment.
"""

from __future__ import annotations

from dataclasses import dataclass

from loopline.answer_form import answer_change
from loopline.domain import DeploymentInfo
from loopline.endpoints.client import EndpointClient, InvokeResult
from loopline.errors import LooplineError
from loopline.instance import Instance
from loopline.loops.outer import PROD, Smoked
from loopline.smoke import smoke_request

__all__ = ["Breaking", "breaking_change"]


@dataclass(frozen=True)
class Breaking:
    """How a new deployment would break the live one's clients, in words, and what they would see."""

    change: str
    clients: str  # "would be refused", "would read answers of another form"


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
        theirs = smoke_request(instance, instance.model_files(PROD, live.content_digest, live.source_uri))
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
    if smoked is None:
        return None
    before = client.score(endpoint, smoked.payload, deployment=live.name, route=smoked.route)
    if not before.ok:  # the live model does not take these rows: there is no answer to compare
        return None
    change = answer_change(before.body, smoked.answer, was)
    if change is None:
        return None
    return Breaking(f"answers {change}", "would read answers of another form")


def _message(result: InvokeResult) -> str:
    body = result.body
    said = body.get("message") if isinstance(body, dict) else body
    return str(said)[:300]
