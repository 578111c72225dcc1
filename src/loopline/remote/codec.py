"""Arguments and results of SDK operations as JSON, both ways, from the functions' own annotations.

The server and the remote client share this module, so a remote call returns the same dataclasses as
a local one. Parameters that only make sense in the calling process (``project``, ``reporter``, and those
the operation table names) are not sent. The SDK imports its result types only for type checkers (so
that a quick command loads few modules); their names are resolved here from those same imports.
"""

from __future__ import annotations

import ast
import importlib
import inspect
import sys
import typing
from dataclasses import dataclass
from functools import cache
from typing import TYPE_CHECKING, Any

from pydantic import TypeAdapter, ValidationError

from loopline.errors import UsageError, shorten

if TYPE_CHECKING:
    from loopline.operations import Operation

__all__ = ["LOCAL_ONLY", "Signature", "signature"]

LOCAL_ONLY = frozenset({"project", "reporter"})
"""Parameters that stay in the calling process."""


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
            named = ", ".join(shorten(name, 40) for name in unknown[:3])
            named += " ..." if len(unknown) > 3 else ""
            raise UsageError(f"{self.name} has no argument {named}; it takes {takes}")
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
def _namespace(module_name: str) -> dict[str, Any]:
    """The module's globals, with the names it imports only for type checkers (its ``if TYPE_CHECKING:``
    block, read from its source) imported for real."""
    module = sys.modules.get(module_name) or importlib.import_module(module_name)
    names = dict(vars(module))
    tree = ast.parse(inspect.getsource(module))
    for node in tree.body:
        if isinstance(node, ast.If) and getattr(node.test, "id", None) == "TYPE_CHECKING":
            for statement in node.body:
                if isinstance(statement, ast.ImportFrom) and statement.module:
                    imported = importlib.import_module(statement.module)
                    for alias in statement.names:
                        names[alias.asname or alias.name] = getattr(imported, alias.name)
    return names


@cache
def signature(op: Operation) -> Signature:
    """The remote signature of an operation."""
    function = op.function
    hints = typing.get_type_hints(function, globalns=_namespace(function.__module__))
    skipped = LOCAL_ONLY | op.local
    parameters: dict[str, TypeAdapter[Any]] = {}
    required: set[str] = set()
    for name, parameter in inspect.signature(function).parameters.items():
        if name in skipped:
            continue
        parameters[name] = TypeAdapter(hints[name])
        if parameter.default is inspect.Parameter.empty:
            required.add(name)
    return Signature(
        name=op.name,
        parameters=parameters,
        required=frozenset(required),
        result=TypeAdapter(hints["return"]),
        doc=(inspect.getdoc(function) or "").splitlines()[0] if inspect.getdoc(function) else "",
    )
