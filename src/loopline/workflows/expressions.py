"""GitHub Actions expressions (``${{ ... }}``): the subset loopline's workflow files and users' edits need.

Literals (strings in single quotes, numbers, true, false, null), contexts (``github.sha``,
``needs.gate.outputs.enabled``, ``inputs.commit``, ``steps.x.outputs.y``, ``env.X``, ``secrets.X``,
``vars.X``, with ``.name`` or ``['name']``), the operators ``! == != < <= > >= && ||`` and parentheses,
and the functions success, failure, always, cancelled, contains, startsWith, endsWith, format, toJSON
and fromJSON. As on GitHub, strings compare without regard to case and a missing property is null.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from loopline.errors import UsageError

__all__ = ["ExpressionError", "evaluate", "interpolate", "truthy"]

_TOKEN = re.compile(
    r"\s*(?:(?P<number>-?\d+(?:\.\d+)?)|(?P<string>'(?:[^']|'')*')|(?P<op>==|!=|<=|>=|&&|\|\||[!<>().,\[\]])"
    r"|(?P<name>[A-Za-z_][A-Za-z0-9_-]*))"
)
_PLACEHOLDER = re.compile(r"\$\{\{(.*?)\}\}", re.S)


class ExpressionError(UsageError):
    """An expression loopline cannot evaluate."""

    error_code = "BAD_EXPRESSION"


@dataclass(frozen=True)
class _Token:
    kind: str
    text: str


def _tokens(source: str) -> list[_Token]:
    position, found = 0, []
    source = source.strip()
    while position < len(source):
        match = _TOKEN.match(source, position)
        if match is None or match.end() == position:
            raise ExpressionError(f"cannot read the expression '{source}' at '{source[position:][:20]}'")
        kind = match.lastgroup or "op"
        found.append(_Token(kind, match.group(kind)))
        position = match.end()
    return found


def truthy(value: Any) -> bool:
    """GitHub's truthiness: false, 0, '' and null are false."""
    return value not in (None, False, 0, "") and value == value


def _equal(left: Any, right: Any) -> bool:
    if isinstance(left, str) and isinstance(right, str):
        return left.lower() == right.lower()
    if (isinstance(left, bool | int | float) and isinstance(right, str)) or (
        isinstance(right, bool | int | float) and isinstance(left, str)
    ):
        try:
            return float(left) == float(right)
        except ValueError:
            return False
    return bool(left == right)


def _text(value: Any) -> str:
    if value is None:
        return ""
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, dict | list):
        return json.dumps(value)
    return str(value)


def _format(template: str, *args: Any) -> str:
    def replace(match: re.Match[str]) -> str:
        index = int(match.group(1))
        return _text(args[index]) if index < len(args) else ""

    return re.sub(r"\{(\d+)\}", replace, str(template)).replace("{{", "{").replace("}}", "}")


class _Parser:
    def __init__(
        self, source: str, context: Mapping[str, Any], status: Mapping[str, Callable[[], bool]]
    ) -> None:
        self.source = source
        self.tokens = _tokens(source)
        self.position = 0
        self.context = context
        self.status = status

    def peek(self) -> _Token | None:
        return self.tokens[self.position] if self.position < len(self.tokens) else None

    def take(self, text: str | None = None) -> _Token:
        token = self.peek()
        if token is None or (text is not None and token.text != text):
            raise ExpressionError(f"in '{self.source}': expected {text or 'more'}")
        self.position += 1
        return token

    def parse(self) -> Any:
        value = self.disjunction()
        if self.peek() is not None:
            raise ExpressionError(f"in '{self.source}': unexpected '{self.peek().text}'")  # type: ignore[union-attr]
        return value

    def disjunction(self) -> Any:
        value = self.conjunction()
        while self.peek() and self.peek().text == "||":  # type: ignore[union-attr]
            self.take()
            right = self.conjunction()
            value = value if truthy(value) else right
        return value

    def conjunction(self) -> Any:
        value = self.comparison()
        while self.peek() and self.peek().text == "&&":  # type: ignore[union-attr]
            self.take()
            right = self.comparison()
            value = right if truthy(value) else value
        return value

    def comparison(self) -> Any:
        left = self.unary()
        token = self.peek()
        if token is None or token.text not in {"==", "!=", "<", "<=", ">", ">="}:
            return left
        self.take()
        right = self.unary()
        if token.text == "==":
            return _equal(left, right)
        if token.text == "!=":
            return not _equal(left, right)
        try:
            a, b = float(left), float(right)
        except (TypeError, ValueError):
            return False
        return {"<": a < b, "<=": a <= b, ">": a > b, ">=": a >= b}[token.text]

    def unary(self) -> Any:
        if self.peek() and self.peek().text == "!":  # type: ignore[union-attr]
            self.take()
            return not truthy(self.unary())
        return self.primary()

    def primary(self) -> Any:
        token = self.take()
        if token.text == "(":
            value = self.disjunction()
            self.take(")")
            return value
        if token.kind == "number":
            return float(token.text) if "." in token.text else int(token.text)
        if token.kind == "string":
            return token.text[1:-1].replace("''", "'")
        if token.kind != "name":
            raise ExpressionError(f"in '{self.source}': unexpected '{token.text}'")
        lowered = token.text.lower()
        if lowered in {"true", "false", "null"}:
            return {"true": True, "false": False, "null": None}[lowered]
        if self.peek() and self.peek().text == "(":  # type: ignore[union-attr]
            return self.call(token.text)
        return self.path(self.context.get(token.text))

    def path(self, value: Any) -> Any:
        while self.peek() and self.peek().text in {".", "["}:  # type: ignore[union-attr]
            if self.take().text == ".":
                key = self.take().text
            else:
                key = self.primary()
                self.take("]")
            value = value.get(str(key)) if isinstance(value, Mapping) else None
        return value

    def call(self, name: str) -> Any:
        self.take("(")
        args: list[Any] = []
        while self.peek() and self.peek().text != ")":  # type: ignore[union-attr]
            args.append(self.disjunction())
            if self.peek() and self.peek().text == ",":  # type: ignore[union-attr]
                self.take()
        self.take(")")
        lowered = name.lower()
        if lowered in self.status:
            return self.status[lowered]()
        functions: dict[str, Callable[..., Any]] = {
            "contains": lambda a, b: (
                (_text(b).lower() in _text(a).lower())
                if not isinstance(a, list)
                else any(_equal(item, b) for item in a)
            ),
            "startswith": lambda a, b: _text(a).lower().startswith(_text(b).lower()),
            "endswith": lambda a, b: _text(a).lower().endswith(_text(b).lower()),
            "format": _format,
            "tojson": lambda a: json.dumps(a),
            "fromjson": lambda a: json.loads(a),
        }
        if lowered not in functions:
            raise ExpressionError(f"in '{self.source}': the function {name}() is not supported")
        return functions[lowered](*args)


def evaluate(
    source: str, context: Mapping[str, Any], status: Mapping[str, Callable[[], bool]] | None = None
) -> Any:
    """The value of one expression (without the ``${{ }}``)."""
    body = source.strip()
    if body.startswith("${{") and body.endswith("}}"):
        body = body[3:-2]
    return _Parser(body, context, status or {}).parse()


def interpolate(
    text: str, context: Mapping[str, Any], status: Mapping[str, Callable[[], bool]] | None = None
) -> str:
    """``text`` with every ``${{ expression }}`` replaced by its value as text."""
    return _PLACEHOLDER.sub(lambda match: _text(evaluate(match.group(1), context, status)), text)
