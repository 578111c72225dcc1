"""How long-running SDK calls tell a front end what they are doing, without printing themselves."""

from __future__ import annotations

from typing import Protocol

__all__ = ["NullReporter", "Reporter"]


class Reporter(Protocol):
    """Receives progress from the SDK; the CLI and UI implement it, the SDK never prints."""

    def step(self, message: str) -> None:
        """A step started or finished."""

    def output(self, line: str) -> None:
        """A line of a child process's output (training, a workflow step)."""


class NullReporter:
    """Discards everything."""

    def step(self, message: str) -> None:
        """Ignore a step."""

    def output(self, line: str) -> None:
        """Ignore a line."""
