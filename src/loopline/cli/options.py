"""Options shared by many commands, defined once."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

ProjectOption = Annotated[
    Path | None,
    typer.Option(
        "--project",
        "-C",
        help="The project folder (default: the current folder or the nearest above it "
        "holding loopline.yaml; or LOOPLINE_PROJECT).",
        show_default=False,
    ),
]
JsonOption = Annotated[
    bool, typer.Option("--json", help="Print one JSON document on stdout and nothing else there.")
]
ModelOption = Annotated[
    str | None,
    typer.Option(
        "--model",
        "-m",
        help="The registered model name (default: model.name in loopline.yaml).",
        show_default=False,
    ),
]
HostOption = Annotated[str, typer.Option("--host", help="Address to listen on.")]
PortOption = Annotated[int, typer.Option("--port", help="Port to listen on.")]
EndpointWorkspaceOption = Annotated[
    str | None,
    typer.Option(
        "--workspace",
        "-w",
        help="The endpoint's workspace (dev, test or prod), where several have an endpoint of that name.",
        show_default=False,
    ),
]
WorkspaceOption = Annotated[str, typer.Option("--workspace", "-w", help="The workspace (dev, test or prod).")]
VersionOption = Annotated[
    int | None, typer.Option("--version", "-v", help="The model version.", show_default=False)
]
VersionCommitOption = Annotated[
    str | None,
    typer.Option("--commit", help="The version made from this commit (a prefix of 7+).", show_default=False),
]
