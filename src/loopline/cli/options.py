"""Options shared by many commands, defined once."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer


def opt(*flags: str, help: str, **settings: Any) -> Any:
    """An option whose default is not shown: absent, the command (or loopline.yaml) decides."""
    return typer.Option(*flags, help=help, show_default=False, **settings)


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
PortOption = Annotated[int, typer.Option("--port", help="Port to listen on.")]
EndpointWorkspaceOption = Annotated[
    str | None,
    opt(
        "--workspace",
        "-w",
        help="The endpoint's workspace (dev, test or prod), where several have an endpoint of that name.",
    ),
]
WorkspaceOption = Annotated[str, typer.Option("--workspace", "-w", help="The workspace (dev, test or prod).")]
VersionOption = Annotated[int | None, opt("--version", "-v", help="The model version.")]
VersionCommitOption = Annotated[
    str | None,
    opt("--commit", help="The version made from this commit (a prefix of 7+)."),
]
