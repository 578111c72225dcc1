"""Everything the CLI prints: human tables, ``--json`` documents, and GitHub Actions outputs."""

from __future__ import annotations

import os
import sys
import uuid
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

import orjson
from rich.console import Console
from rich.markup import escape
from rich.text import Text

from loopline.errors import commandless, one_line, visible

__all__ = ["Output", "StepReporter", "shown", "traffic_share"]


def shown(text: str) -> str:
    """Text someone else wrote (a reason, an actor's name), ready for a console line: on one line, what
    does not print written as Python writes it (``\\n``, ``\\x1b``), markup escaped. A reason holding a
    newline then cannot make a line of its own: forge an event in ``loopline history``, or start a line
    with ``::`` that GitHub Actions would take for a workflow command."""
    return escape(one_line(text))


class SafeConsole(Console):
    """A rich console that never passes a control character of the text it is given to the terminal: a
    stored reason, a run's name or an error holding ``ESC [2J`` (clear the screen) or an OSC 52 sequence
    (set the clipboard) shows those characters instead of doing what they say. In GitHub Actions, no text
    it prints is a workflow command either: loopline writes its own (``::warning``) past the console."""

    def render_str(self, text: str, **options: Any) -> Text:
        text = visible(text)
        if os.environ.get("GITHUB_ACTIONS") == "true":
            text = commandless(text)
        return super().render_str(text, **options)


def traffic_share(percent: int, mirrored: int | None) -> str:
    """A deployment's share of live traffic, and of the mirrored copy where it takes one: ``0% (+20%
    mirrored)``."""
    return f"{percent}%" + (f" (+{mirrored}% mirrored)" if mirrored else "")


def _default(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    return str(value)


PIPED_WIDTH = 160
"""Columns when output goes to a pipe or a CI log (GitHub Actions' included) rather than a terminal:
there rich would take 80, and cut a table's names short (``churn-…``) where a log has the room."""


def _width(stream: Any) -> int | None:
    """The width to print at: the terminal's (or ``COLUMNS``), else :data:`PIPED_WIDTH`."""
    if os.environ.get("COLUMNS") or (hasattr(stream, "isatty") and stream.isatty()):
        return None
    return PIPED_WIDTH


class Output:
    """Writes a command's result as a human would read it, or as JSON, and to GitHub when in Actions."""

    def __init__(self, json_mode: bool) -> None:
        self.json_mode = json_mode
        self.out = SafeConsole(highlight=False, soft_wrap=False, width=_width(sys.stdout))
        self.err = SafeConsole(stderr=True, highlight=False, width=_width(sys.stderr))
        # A child process's lines (a training or validation script: the project's own code, run with the
        # step's environment) are shown as written, colours and workflow commands included.
        self.child = Console(stderr=True, highlight=False, width=_width(sys.stderr))

    def emit(self, data: Mapping[str, Any], human: Callable[[Console], None]) -> None:
        """Print ``data`` as JSON in ``--json`` mode, else call ``human`` with the console."""
        if self.json_mode:
            sys.stdout.buffer.write(orjson.dumps(data, default=_default, option=orjson.OPT_INDENT_2) + b"\n")
            sys.stdout.flush()
        else:
            human(self.out)

    def note(self, message: str) -> None:
        """A progress line on stderr (never on stdout, so ``--json`` stays clean)."""
        self.err.print(f"[dim]{escape(message)}[/dim]")

    def warn(self, message: str) -> None:
        """A warning on stderr: something done that may not do what the user expects (in GitHub Actions,
        also an annotation of the run, which GitHub reads from stderr too)."""
        self.err.print(f"[yellow]{escape(message)}[/yellow]")
        if os.environ.get("GITHUB_ACTIONS") == "true":
            said = message.removeprefix("warning: ")
            for raw, escaped in (("%", "%25"), ("\r", "%0D"), ("\n", "%0A")):  # the commands' escaping
                said = said.replace(raw, escaped)
            sys.stderr.write(f"::warning title=loopline::{said}\n")
            sys.stderr.flush()

    def github(self, outputs: Mapping[str, Any], summary: str | None = None) -> None:
        """Write step outputs to ``GITHUB_OUTPUT`` and a Markdown summary to ``GITHUB_STEP_SUMMARY``."""
        output_file = os.environ.get("GITHUB_OUTPUT")
        if output_file:
            with open(output_file, "a", encoding="utf-8") as handle:
                for key, value in outputs.items():
                    text = value if isinstance(value, str) else orjson.dumps(value, default=_default).decode()
                    if "\n" in text:
                        marker = f"ghadelimiter_{uuid.uuid4().hex}"
                        handle.write(f"{key}<<{marker}\n{text}\n{marker}\n")
                    else:
                        handle.write(f"{key}={text}\n")
        summary_file = os.environ.get("GITHUB_STEP_SUMMARY")
        if summary_file and summary:
            with open(summary_file, "a", encoding="utf-8") as handle:
                handle.write(summary.rstrip() + "\n\n")


class StepReporter:
    """Shows the SDK's progress on stderr."""

    def __init__(self, sink: Output, show_output: bool = True) -> None:
        self.sink = sink
        self.show_output = show_output

    def step(self, message: str) -> None:
        """Print a step (a warning as one)."""
        if message.startswith("warning: "):
            self.sink.warn(message)
            return
        self.sink.err.print(f"[cyan]›[/cyan] {escape(message)}")

    def output(self, line: str) -> None:
        """Print a child process's line, dimmed."""
        if self.show_output:
            self.sink.child.print(f"  [dim]{escape(line)}[/dim]")
