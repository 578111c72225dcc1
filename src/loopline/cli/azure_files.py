"""``--file``: the names (and model) an Azure ML endpoint or deployment file gives a ``create`` command,
online or batch, merged with what the command line says."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, TypeVar

from loopline.azureml_endpoints import DeploymentFile, EndpointFile
from loopline.cli.options import opt
from loopline.cli.output import Output
from loopline.domain import DeploymentInfo
from loopline.errors import UsageError

__all__ = ["AzureFileOption", "Deploying", "deployment_from_file", "endpoint_from_file", "note_deployed"]

AzureFileOption = Annotated[
    Path | None,
    opt(
        "--file",
        "-f",
        help="An Azure ML endpoint or deployment YAML file to take the names (and model) from.",
    ),
]

_T = TypeVar("_T")


def _same(given: _T | None, found: _T, what: str) -> _T:
    if given is not None and given != found:
        raise UsageError(f"{what} {given} differs from the file's {found}; give one of them")
    return found


def _unused(output: Output, unused: tuple[str, ...]) -> None:
    if unused:
        output.note(f"not used here (Azure ML's own settings): {', '.join(unused)}")


def endpoint_from_file(
    output: Output, file: Path, read: Callable[[Path], EndpointFile], name: str | None
) -> EndpointFile:
    """The endpoint ``file`` describes (read by ``read``), its name checked against ``name``; the keys it
    has that loopline does not use are noted."""
    described = read(file)
    _unused(output, described.unused)
    _same(name, described.name, "endpoint")
    return described


@dataclass(frozen=True)
class Deploying:
    """What a deployment ``create`` deploys: from its arguments, and its ``--file``'s where given."""

    endpoint: str | None
    name: str | None
    model: str | None
    version: int | None
    latest: bool  # the file's azureml:NAME@latest, with no version or commit given
    said_model: str | None = None  # the file's model, for the note of the version @latest became
    output_file: str | None = None  # a batch deployment's one CSV file of predictions


def deployment_from_file(
    output: Output,
    file: Path | None,
    read: Callable[[Path], DeploymentFile],
    given: Deploying,
    commit: str | None,
) -> Deploying:
    """``given`` (the command line's), with what ``file`` describes (read by ``read``) where it is given;
    a name or model that differs from the file's is refused."""
    if file is None:
        return given
    described: DeploymentFile = read(file)
    _unused(output, described.unused)
    version = given.version
    if described.version is not None and commit is None:
        version = _same(version, described.version, "version")
    return Deploying(
        _same(given.endpoint, described.endpoint, "endpoint"),
        _same(given.name, described.name, "deployment"),
        _same(given.model, described.model, "model") if described.model else given.model,
        version,
        (given.latest or described.latest) and version is None and commit is None,
        described.model,
        given.output_file or described.output_file,
    )


def note_deployed(output: Output, chosen: Deploying, deployed: DeploymentInfo | None, workspace: str) -> None:
    """Say which version the file's ``azureml:NAME@latest`` became, and warn where the model's
    requirements differ from the packages where it was deployed."""
    if deployed is None:
        return
    if chosen.latest:
        named = f"{chosen.said_model}@latest" if chosen.said_model else f"the newest {deployed.model}"
        output.note(f"{named} is version {deployed.version} in {workspace} ({deployed.git_commit[:7]})")
    if deployed.environment:
        from loopline.model_environment import warning

        output.warn(warning(f"{chosen.endpoint}/{deployed.name}", deployed.environment))
