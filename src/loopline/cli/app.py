"""The Typer application: the root command and its global options."""

from __future__ import annotations

from typing import Annotated

import typer

from loopline import __version__

app = typer.Typer(
    name="loopline",
    help="Move models from a commit to production and back: workspaces, a shared registry, workflows.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"loopline {__version__}")
        raise typer.Exit()


@app.callback()
def root(
    traceback: Annotated[
        bool, typer.Option("--traceback", help="Show the full traceback of an unexpected error.")
    ] = False,
    version: Annotated[
        bool,
        typer.Option(
            "--version", help="Print loopline's version and exit.", callback=_version, is_eager=True
        ),
    ] = False,
    directory: Annotated[
        str | None,
        typer.Option(
            "-C",
            metavar="PATH",
            help="Run as if loopline was started in PATH (before the command, as git -C; repeated, each "
            "relative to the one before).",
        ),
    ] = None,
) -> None:
    """loopline: isolated dev/test/prod workspaces, a shared registry, and the workflows between them."""
