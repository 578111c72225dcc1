"""Options shared by many commands, defined once."""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Annotated, Any, get_type_hints

import typer
from rich.console import Console

from loopline.cli.output import Output
from loopline.errors import UsageError


def opt(*flags: str, help: str, **settings: Any) -> Any:
    """An option whose default is not shown: absent, the command (or loopline.yaml) decides."""
    return typer.Option(*flags, help=help, show_default=False, **settings)


def key_values(given: list[str] | None, refusal: str, *, empty: bool = True) -> dict[str, str]:
    """Repeated ``KEY=VALUE`` option values, by key; one without ``=`` or a key (or, unless ``empty``,
    a value) is refused with ``refusal``, in which ``{item}`` is the value given."""
    pairs: dict[str, str] = {}
    for item in given or []:
        key, sep, value = item.partition("=")
        if not sep or not key or not (value or empty):
            raise UsageError(refusal.format(item=item))
        pairs[key] = value
    return pairs


ProjectOption = Annotated[
    Path | None,
    opt(
        "--project",
        "-C",
        help="The project folder (default: the current folder or the nearest above it "
        "holding loopline.yaml; or LOOPLINE_PROJECT).",
    ),
]
JsonOption = Annotated[
    bool, typer.Option("--json", help="Print one JSON document on stdout and nothing else there.")
]
ModelOption = Annotated[
    str | None,
    opt("--model", "-m", help="The registered model name (default: model.name in loopline.yaml)."),
]
HostOption = Annotated[str, typer.Option("--host", help="Address to listen on.")]
PortOption = Annotated[int, typer.Option("--port", help="Port to listen on.", min=1, max=65535)]
EndpointWorkspaceOption = Annotated[
    str | None,
    opt(
        "--workspace",
        "-w",
        help="The endpoint's workspace (dev, test or prod), where several have an endpoint of that name.",
    ),
]
WorkspaceOption = Annotated[str, typer.Option("--workspace", "-w", help="The workspace (dev, test or prod).")]
ComputeOption = Annotated[
    str | None,
    opt(
        "--compute",
        help="Where it runs: local, or a Ray target in loopline.yaml (default: compute.default).",
    ),
]
VersionOption = Annotated[int | None, opt("--version", "-v", help="The model version.")]
LatestOption = Annotated[
    bool,
    opt(
        "--latest",
        help="The newest version of the model in the endpoint's workspace (Azure ML's azureml:NAME@latest).",
    ),
]
VersionCommitOption = Annotated[
    str | None,
    opt(
        "--commit",
        help="The version made from this commit (a SHA prefix of 7+, or a git ref: HEAD~1, a tag); a commit"
        " without one that changed none of"
        " training.paths since an ancestor with one takes that one's.",
    ),
]


@dataclass
class Call:
    """What every command is given besides its own options: the project (``--project``) and whether it
    answers in JSON (``--json``), with the output that follows from that."""

    project: Path | None
    json: bool

    @cached_property
    def output(self) -> Output:
        """Where the command writes its answer, its progress and its GitHub Actions outputs."""
        return Output(self.json)

    def emit(self, data: Mapping[str, Any], human: Callable[[Console], None]) -> None:
        """The answer: ``data`` as JSON with ``--json``, else what ``human`` prints."""
        self.output.emit(data, human)


Command = Callable[..., None]


def command(group: typer.Typer, *names: str, **settings: Any) -> Callable[[Command], Command]:
    """Register a command on ``group`` whose function takes a :class:`Call` first: the options that every
    command has (``--project``, ``--json``) are declared here, once, and reach it there."""

    def register(function: Command) -> Command:
        hints = get_type_hints(function, include_extras=True)
        own = list(inspect.signature(function).parameters.values())[1:]  # the first is the Call
        shared = [
            inspect.Parameter(
                "project", inspect.Parameter.KEYWORD_ONLY, default=None, annotation=ProjectOption
            ),
            inspect.Parameter("json", inspect.Parameter.KEYWORD_ONLY, default=False, annotation=JsonOption),
        ]
        parameters = [p.replace(annotation=hints[p.name]) for p in own] + shared

        @functools.wraps(function)
        def run(*args: Any, project: Path | None = None, json: bool = False, **kwargs: Any) -> None:
            function(Call(project, json), *args, **kwargs)

        run.__signature__ = inspect.Signature(parameters, return_annotation=None)  # type: ignore[attr-defined]
        run.__annotations__ = {p.name: p.annotation for p in parameters}
        if function.__doc__ and "short_help" not in settings:
            # a listing shows the first paragraph with the docstring's line breaks kept: one line instead
            first = inspect.cleandoc(function.__doc__).split("\n\n")[0]
            group.command(*names, **settings, short_help=" ".join(first.split()))(run)
        else:
            group.command(*names, **settings)(run)
        return function

    return register
