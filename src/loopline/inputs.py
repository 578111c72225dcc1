"""The data assets a training reads (``training.inputs``), copied where the training can read them.

Before a training starts, each input's data asset version (its newest, or the one named) is checked
against its registered digest and copied, once per version, to ``.loopline/inputs/ASSET-VERSION/``; the
command gets its path for ``{inputs.NAME}``, the environment ``LOOPLINE_INPUTS`` (``{"NAME": path}``),
and the training's runs the versions and digests they were trained on (``loopline.training_inputs``).
"""

from __future__ import annotations

import json
import re
import shlex
import shutil
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from loopline.config import STATE_DIR
from loopline.data import DataAsset, get_asset, parse_asset, verified_files
from loopline.errors import ConfigError, InvalidData, NotFound
from loopline.instance import Instance
from loopline.progress import Reporter

__all__ = [
    "INPUTS_TAG",
    "FindAsset",
    "TrainingInput",
    "command_with_inputs",
    "input_environment",
    "input_tags",
    "log_datasets",
    "prepare",
]

INPUTS_TAG = "loopline.training_inputs"
_PLACEHOLDER = re.compile(r"\{inputs\.([A-Za-z_][A-Za-z0-9_]*)\}")
_MARK = ".loopline-digest"


@dataclass(frozen=True)
class TrainingInput:
    """One input of a training: the data asset version it is, and where its copy is."""

    name: str
    asset: str  # NAME:VERSION
    digest: str
    path: Path  # the file, for an asset of one file; else the folder
    reference: str = ""  # where the asset lives: inbox://...


FindAsset = Callable[[str, int | None], DataAsset]
"""How a data asset version is looked up: in loopline's database, or through a control plane."""


def prepare(instance: Instance, report: Reporter, find: FindAsset | None = None) -> list[TrainingInput]:
    """Each of ``training.inputs``, verified and copied (once per version) under ``.loopline/inputs/``;
    ``find`` looks the versions up (default: in this instance's database)."""
    found = []
    for name, reference in instance.settings.config.training.inputs.items():
        asset_name, version = parse_asset(reference)
        try:
            asset = (find or (lambda n, v: get_asset(instance, n, v)))(asset_name, version)
        except NotFound as missing:
            raise NotFound(
                f"training.inputs.{name} names {reference}: {missing.message.split(';')[0]}; upload the data "
                f"(`loopline data upload {asset_name} PATH`) or name another version"
            ) from None
        folder = instance.root / STATE_DIR / "inputs" / f"{asset.name}-{asset.version}"
        if not _copied(folder, asset.digest):
            report.step(
                f"copying data asset {asset.name}:{asset.version} ({asset.reference}) for input {name}"
            )
            _copy(instance, asset, folder)
        path = folder / asset.manifest[0]["path"] if asset.single_file else folder
        found.append(
            TrainingInput(name, f"{asset.name}:{asset.version}", asset.digest, path, asset.reference)
        )
    return found


def _copy(instance: Instance, asset: DataAsset, folder: Path) -> None:
    """The asset's files, verified, into ``folder`` as a whole: a copy cut short is never taken for one."""
    store = instance.datastore(asset.datastore)
    files = verified_files(instance, asset, tables=False)
    staged = folder.with_name(f"{folder.name}.{uuid.uuid4().hex[:8]}.partial")
    by_file = {entry["file"]: entry["path"] for entry in asset.manifest}
    for file in files:
        target = (staged / by_file[file]).resolve()
        if not target.is_relative_to(staged.resolve()):  # an object store's key may hold ".." segments
            shutil.rmtree(staged, ignore_errors=True)
            raise InvalidData(
                f"data asset {asset.name}:{asset.version} holds a file named {by_file[file][:100]!r}, which "
                "leads out of its folder; rename it in the datastore and register the asset again"
            )
        target.parent.mkdir(parents=True, exist_ok=True)
        with store.open(file) as source, target.open("wb") as sink:
            shutil.copyfileobj(source, sink, 1 << 20)
    (staged / _MARK).write_text(asset.digest)
    if not _copied(folder, asset.digest):  # a stale or cut-short copy goes; a whole one (made meanwhile by
        shutil.rmtree(folder, ignore_errors=True)  # another trial of a sweep) is what its training reads
    try:
        staged.rename(folder)
    except OSError:  # another trial's copy got there first: it holds the same verified bytes
        shutil.rmtree(staged, ignore_errors=True)
        if not _copied(folder, asset.digest):
            raise


def _copied(folder: Path, digest: str) -> bool:
    mark = folder / _MARK
    return mark.is_file() and mark.read_text() == digest


def command_with_inputs(command: str, inputs: list[TrainingInput]) -> str:
    """``command`` with each ``{inputs.NAME}`` replaced by that input's path (quoted for a shell)."""
    paths = {item.name: item.path for item in inputs}

    def path(match: re.Match[str]) -> str:
        if match[1] not in paths:
            raise ConfigError(
                f"the training command names {{inputs.{match[1]}}}, which is not in training.inputs "
                f"({', '.join(paths) or 'none'}); add it there as {match[1]}: ASSET"
            )
        return shlex.quote(str(paths[match[1]]))

    return _PLACEHOLDER.sub(path, command)


def input_environment(inputs: list[TrainingInput]) -> dict[str, str]:
    """``LOOPLINE_INPUTS``: each input's path, as JSON."""
    return {"LOOPLINE_INPUTS": json.dumps({item.name: str(item.path) for item in inputs})} if inputs else {}


def log_datasets(client: Any, run_ids: list[str], inputs: list[TrainingInput]) -> None:
    """Each input as an MLflow dataset of the runs (context ``training``), as ``mlflow.log_input`` records
    one: MLflow's UI and ``run.inputs`` show which asset version each run read."""
    if not inputs:
        return
    from mlflow.entities import Dataset, DatasetInput, InputTag

    datasets = [
        DatasetInput(
            Dataset(
                name=item.asset.split(":")[0],
                digest=item.digest.removeprefix("sha256:")[:36],
                source_type="loopline-data-asset",
                source=json.dumps({"asset": item.asset, "uri": item.reference, "digest": item.digest}),
            ),
            [InputTag("mlflow.data.context", "training"), InputTag("loopline.input", item.name)],
        )
        for item in inputs
    ]
    for run_id in run_ids:
        client.log_inputs(run_id, datasets=datasets)


def input_tags(inputs: list[TrainingInput]) -> dict[str, str]:
    """The run tag naming what the training read: ``{"NAME": "ASSET:VERSION sha256:..."}``."""
    if not inputs:
        return {}
    return {INPUTS_TAG: json.dumps({item.name: f"{item.asset} {item.digest}" for item in inputs})}
