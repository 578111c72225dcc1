"""Requests of language models and agents, as MLflow's scoring server takes them.

A JSON object holding ``messages`` (a chat model or agent: ``ChatModel``, ``ChatAgent``, LangChain's),
``prompt`` (a completion) or ``input`` (a ``ResponsesAgent``, or embeddings) is no table: MLflow's server
hands it to the model as it came, its fields the model declares as params split off as params, and writes
the model's answer as it is, with no ``predictions`` around it. loopline does the same on
``/invocations``.

Such a model waits on other services (an LLM's API, a vector store) for seconds at a time, so it answers on
a pool of threads beside the event loop: other requests, health checks and the routing table's follower go
on meanwhile, and that many agents' calls wait at once.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from loopline.domain import LLM_KEYS
from loopline.errors import RequestRejected
from loopline.serving.requests import bad, kind_of
from loopline.serving.schema import InputSchema

__all__ = ["THREADS", "llm_failure", "llm_input", "llm_threads", "no_traces"]

THREADS = 32
"""Requests of language models one serving process answers at once (each mostly waits on the network)."""

_SHOWN = 8  # field names shown in a message


def llm_threads() -> ThreadPoolExecutor:
    """The pool a serving process answers language models' requests on."""
    return ThreadPoolExecutor(max_workers=THREADS, thread_name_prefix="loopline-llm")


def no_traces() -> None:
    """Turn MLflow's tracing off in this process (a server's, a sandbox's), where MLflow is loaded: a chat
    model's or agent's predict traces each call, and with no tracking store set MLflow writes the traces
    into ``mlflow.db`` in the working folder (a server's: the project's), making that database, seconds
    long, at the first request."""
    if "mlflow" in sys.modules:
        import mlflow.tracing

        mlflow.tracing.disable()


def _fields(names: Iterable[str]) -> str:
    shown = [f"'{name[:60]}'" for name in list(names)[:_SHOWN]]
    return ", ".join(shown) or "none"


def llm_input(
    schema: InputSchema,
    params: Iterable[str],
    document: Mapping[str, Any],
    *,
    takes_documents: bool,
    strict: bool = False,
) -> tuple[dict[str, Any], dict[str, Any] | None]:
    """The request ``document`` as the model takes it: its data and its params (the fields the model
    declares as params), as MLflow splits them; refused where the model takes no such request (a table's
    model, a tensor's) or its signature names fields the request lacks (or, ``strict``, does not name
    fields it has)."""
    given = [key for key in LLM_KEYS if key in document]
    if not takes_documents or schema.tensor is not None:
        raise bad(
            "BAD_INPUT",
            f"'{given[0]}' is a language model's request; this model takes a table: send its rows as "
            '{"dataframe_split": {"columns": [...], "data": [...]}}',
        )
    declared = frozenset(params)
    data = {key: value for key, value in document.items() if key not in declared}
    chosen = {key: value for key, value in document.items() if key in declared}
    columns = schema.columns
    if columns is not None:  # a signature of named fields: the request must fit it
        names = {column.name for column in columns}
        if not names & set(given):
            raise bad(
                "BAD_INPUT",
                f"the model takes a request with {_fields(c.name for c in columns if c.required)} "
                f"(its signature's required fields), not '{given[0]}'",
            )
        missing = [column.name for column in columns if column.required and column.name not in data]
        if missing:
            raise bad("MISSING_FIELD", f"the request has no {_fields(missing)}, which the model requires")
        for column in columns:
            if column.name in data and (wanted := _kind_wanted(column.type, data[column.name])) is not None:
                raise bad(
                    "WRONG_TYPE",
                    f"field '{column.name[:100]}' must be {wanted} (the model's signature: "
                    f"{column.type[:100]}), not {kind_of(data[column.name])}",
                )
        unknown = sorted(key for key in data if key not in names)
        if strict and unknown:
            raise bad(
                "BAD_INPUT",
                f"unknown field '{str(unknown[0])[:100]}' in the request; the model takes "
                f"{_fields(sorted(names | declared))}",
            )
    return data, chosen or None


_KINDS: tuple[tuple[str, type | tuple[type, ...], str], ...] = (
    ("array(", list, "a list"),
    ("{", dict, "an object"),
    ("map(", dict, "an object"),
    ("string", str, "a string"),
    ("boolean", bool, "a boolean"),
    ("long", int, "an integer"),
    ("integer", int, "an integer"),
    ("double", (int, float), "a number"),
    ("float", (int, float), "a number"),
)


def _kind_wanted(spec: str, value: Any) -> str | None:
    """What a field of the signature's type ``spec`` must be, where ``value`` is not that (None: it is, or
    the type takes anything, or is one this does not know)."""
    if value is None:
        return None  # a missing optional field; MLflow tells a required one
    for prefix, kinds, said in _KINDS:
        if spec == prefix or (prefix.endswith(("(", "{")) and spec.startswith(prefix)):
            bad_bool = isinstance(value, bool) and kinds is not bool
            return said if bad_bool or not isinstance(value, kinds) else None
    return None


def _location(parts: Iterable[Any]) -> str:
    """A pydantic error's location as the request's field path (``input.0.content``), without the names of
    the validators a union tried."""
    shown = [str(part) for part in parts if isinstance(part, int) or str(part).isidentifier()]
    return ".".join(shown)[:100] or "the request"


def llm_failure(deployment: str, exc: Exception, log: Callable[..., None]) -> RequestRejected:
    """What to answer when a model failed on a language model's request: 400 where the request does not
    fit the model's own request type or signature (naming the fields, never their values), else 500 with
    the cause logged."""
    errors = getattr(exc, "errors", None)
    if type(exc).__name__ == "ValidationError" and callable(errors):  # pydantic: the model's request type
        try:
            found = list(
                dict.fromkeys(
                    f"{_location(error.get('loc', ()))}: {str(error.get('msg'))[:100]}"
                    for error in errors(include_input=False)
                )
            )[:3]
        except Exception:  # an errors() of another shape: say less
            found = []
        detail = f" ({'; '.join(found)})" if found else ""
        return RequestRejected(400, "SCHEMA_MISMATCH", f"the model does not accept the request{detail}")
    if (
        type(exc).__name__ == "MlflowException"
        and getattr(exc, "error_code", "") == "INVALID_PARAMETER_VALUE"
    ):
        # MLflow's check of the request against the signature; its message repeats the request, this not
        return RequestRejected(
            400, "SCHEMA_MISMATCH", "the request does not fit the model's signature (its fields' types)"
        )
    log("deployment %s: the model failed on a language model's request", deployment, exc_info=exc)
    return RequestRejected(
        500, "MODEL_ERROR", f"deployment '{deployment}' failed on the request ({type(exc).__name__})"
    )
