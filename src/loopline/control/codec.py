"""Arguments and results of SDK functions as JSON, both ways, from the functions' own annotations.

The server and the remote client share this module, so a remote call returns the same dataclasses as
a local one. Parameters that only make sense in the calling process (``project``, ``reporter``, and a
few per function) are not sent.
"""

from __future__ import annotations

import inspect
import typing
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from typing import Any

from pydantic import TypeAdapter, ValidationError

from loopline.errors import UsageError

__all__ = ["LOCAL_ONLY", "Signature", "signature"]

LOCAL_ONLY = frozenset({"project", "reporter"})
"""Parameters that stay in the calling process."""

_PER_FUNCTION: dict[str, frozenset[str]] = {
    # A policy file is the server's configuration, not the caller's choice of a path on the server.
    "policy_evaluate": frozenset({"policy"}),
}


@dataclass(frozen=True)
class Signature:
    """One SDK function's remote parameters and result, with their JSON adapters."""

    name: str
    parameters: dict[str, TypeAdapter[Any]]
    required: frozenset[str]
    result: TypeAdapter[Any]
    doc: str

    def encode_arguments(self, arguments: dict[str, Any]) -> dict[str, Any]:
        """The call's arguments as JSON-ready values (local-only ones dropped)."""
        return {
            name: self.parameters[name].dump_python(value, mode="json")
            for name, value in arguments.items()
            if name in self.parameters
        }

    def decode_arguments(self, body: Any) -> dict[str, Any]:
        """A request body as keyword arguments; a usage error names an unknown, missing or wrong one."""
        if not isinstance(body, dict):
            raise UsageError(f"the body of {self.name} must be a JSON object of its arguments")
        unknown = sorted(set(body) - set(self.parameters))
        if unknown:
            takes = ", ".join(self.parameters) or "none"
            raise UsageError(f"{self.name} has no argument {', '.join(unknown)}; it takes {takes}")
        missing = sorted(self.required - set(body))
        if missing:
            raise UsageError(f"{self.name} needs the argument {', '.join(missing)}")
        decoded = {}
        for name, value in body.items():
            try:
                decoded[name] = self.parameters[name].validate_python(value)
            except ValidationError as exc:
                problem = exc.errors()[0]["msg"]
                raise UsageError(f"argument {name} of {self.name} is not valid: {problem}") from None
        return decoded

    def encode_result(self, value: Any) -> Any:
        """A result as JSON-ready data."""
        return self.result.dump_python(value, mode="json")

    def decode_result(self, data: Any) -> Any:
        """JSON data as the function's own result type."""
        return self.result.validate_python(data)


@cache
def _namespace() -> dict[str, Any]:
    from loopline.api import annotation_namespace

    return annotation_namespace()


@cache
def signature(function: Callable[..., Any]) -> Signature:
    """The remote signature of an SDK function."""
    hints = typing.get_type_hints(function, globalns=_namespace())
    skipped = LOCAL_ONLY | _PER_FUNCTION.get(function.__name__, frozenset())
    parameters: dict[str, TypeAdapter[Any]] = {}
    required: set[str] = set()
    for name, parameter in inspect.signature(function).parameters.items():
        if name in skipped:
            continue
        parameters[name] = TypeAdapter(hints[name])
        if parameter.default is inspect.Parameter.empty:
            required.add(name)
    return Signature(
        name=function.__name__,
        parameters=parameters,
        required=frozenset(required),
        result=TypeAdapter(hints["return"]),
        doc=(inspect.getdoc(function) or "").splitlines()[0] if inspect.getdoc(function) else "",
    )
