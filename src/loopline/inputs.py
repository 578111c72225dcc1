"""The data assets a training reads (``training.inputs``), copied where the training can read them.

Before a training starts, each input's data asset version (its newest, or the one named) is checked
against its registered digest and copied, once per version, to ``.loopline/inputs/ASSET-VERSION/`` (a
copy no training read for a week goes); the command gets its path for ``{inputs.NAME}``, the environment
``LOOPLINE_INPUTS`` (``{"NAME": path}``), and the training's runs the versions and digests they were
trained on (``loopline.training_inputs``).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import shlex
import shutil
import time
import uuid
from collections.abc import Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any, Protocol

from loopline.config import STATE_DIR
from loopline.data import DataAsset, get_asset, parse_asset, verified_files
from loopline.errors import ConfigError, IntegrityViolation, InvalidData, NotFound, UsageError
from loopline.instance import Instance
from loopline.progress import Reporter
from loopline.run_record import DATA_ASSET_SOURCE
from loopline.shell_line import substitute

__all__ = [
    "DIGEST_MARK",
    "INPUTS_TAG",
    "AssetSource",
    "TrainingInput",
    "claimed_inputs",
    "fill_inputs",
    "input_environment",
    "input_notes",
    "input_tags",
    "local_copies",
    "log_datasets",
    "named_inputs",
    "prepare",
]

INPUTS_TAG = "loopline.training_inputs"
_PLACEHOLDER = re.compile(r"\{inputs\.([A-Za-z_][A-Za-z0-9_]*)\}")
DIGEST_MARK = ".loopline-digest"  # in a copy's folder: the digest of the version it holds, whole


@dataclass(frozen=True)
class TrainingInput:
    """One input of a training: the data asset version it is, and where its copy is."""

    name: str
    asset: str  # NAME:VERSION
    digest: str
    path: Path  # the file, for an asset of one file; else the folder
    reference: str = ""  # where the asset lives: inbox://...


class AssetSource(Protocol):
    """Where a training's data asset versions and their files come from: loopline's database and the
    datastores of this machine, or a control plane (for a caller that reaches neither)."""

    def find(self, name: str, version: int | None) -> DataAsset:
        """The version (default: the newest) of data asset ``name``."""

    def files(self, asset: DataAsset) -> list[dict[str, Any]]:
        """The entries of ``asset``'s manifest to copy (its ``file``, ``path`` and ``sha256``)."""

    def chunks(self, asset: DataAsset, entry: dict[str, Any]) -> AbstractContextManager[Iterator[bytes]]:
        """The bytes of one file of ``asset``, a chunk at a time."""


@dataclass(frozen=True)
class _Here:
    """The data assets of this instance: its database, and its datastores with this machine's access."""

    instance: Instance

    def find(self, name: str, version: int | None) -> DataAsset:
        return get_asset(self.instance, name, version)

    def files(self, asset: DataAsset) -> list[dict[str, Any]]:
        verified = set(verified_files(self.instance, asset, tables=False))  # the whole asset, as registered
        return [entry for entry in asset.manifest if entry["file"] in verified]

    @contextlib.contextmanager
    def chunks(self, asset: DataAsset, entry: dict[str, Any]) -> Iterator[Iterator[bytes]]:
        with self.instance.datastore(asset.datastore).open(entry["file"]) as handle:
            yield iter(partial(handle.read, 1 << 20), b"")


def prepare(instance: Instance, report: Reporter, source: AssetSource | None = None) -> list[TrainingInput]:
    """Each of ``training.inputs``, verified and copied (once per version) under ``.loopline/inputs/``;
    ``source`` gives the versions and their files (default: this instance's database and datastores)."""
    assets = source or _Here(instance)
    found: list[TrainingInput] = []
    for name, reference in instance.settings.config.training.inputs.items():
        asset_name, version = parse_asset(reference)
        try:
            asset = assets.find(asset_name, version)
        except NotFound as missing:
            raise NotFound(
                f"training.inputs.{name} names {reference}: {missing.message.split(';')[0]}; upload the data "
                f"(`loopline data upload {asset_name} PATH`) or name another version"
            ) from None
        folder = instance.root / STATE_DIR / "inputs" / f"{asset.name}-{asset.version}"
        with contextlib.suppress(OSError):  # used now: kept from eviction (marked before it is looked at)
            os.utime(folder / DIGEST_MARK)
        if not _copied(folder, asset.digest):
            report.step(
                f"copying data asset {asset.name}:{asset.version} ({asset.reference}) for input {name}"
            )
            _copy(assets, asset, folder)
        path = folder / asset.manifest[0]["path"] if asset.single_file else folder
        found.append(
            TrainingInput(name, f"{asset.name}:{asset.version}", asset.digest, path, asset.reference)
        )
    if found:
        evict_unused(instance.root / STATE_DIR / "inputs")
    return found


UNUSED_DAYS = 7
"""A copy no training has read for this long goes; the datastore keeps the asset's files."""


def evict_unused(folder: Path, days: float = UNUSED_DAYS) -> list[str]:
    """Remove the copies under ``folder`` that no training read in ``days`` (and copies cut short that
    long ago); the names removed. Each training marks the copies it reads as it starts."""
    cutoff = time.time() - days * 86_400
    removed = []
    for copy in sorted(folder.iterdir()) if folder.is_dir() else []:
        mark = copy / DIGEST_MARK if not copy.name.endswith(".partial") else copy
        try:
            unused = copy.is_dir() and mark.stat().st_mtime < cutoff
        except OSError:  # no mark: a copy being made, or one another process removes
            continue
        if unused:
            shutil.rmtree(copy, ignore_errors=True)
            removed.append(copy.name)
    return removed


def _copy(assets: AssetSource, asset: DataAsset, folder: Path) -> None:
    """The asset's files into ``folder`` as a whole, each checked against the digest it was registered
    with as it is copied: a copy cut short, or of other bytes, is never taken for one."""
    staged = folder.with_name(f"{folder.name}.{uuid.uuid4().hex[:8]}.partial")
    try:
        for entry in assets.files(asset):
            target = (staged / entry["path"]).resolve()
            if not target.is_relative_to(staged.resolve()):  # an object store's key may hold ".." segments
                raise InvalidData(
                    f"data asset {asset.name}:{asset.version} holds a file named {entry['path'][:100]!r}, "
                    "which leads out of its folder; rename it in the datastore and register the asset again"
                )
            target.parent.mkdir(parents=True, exist_ok=True)
            digest = hashlib.sha256()
            with assets.chunks(asset, entry) as chunks, target.open("wb") as sink:
                for chunk in chunks:
                    digest.update(chunk)
                    sink.write(chunk)
            if digest.hexdigest() != entry["sha256"]:
                raise IntegrityViolation(
                    f"data asset {asset.name}:{asset.version} ({asset.reference}) changed since it was "
                    f"registered (its file {entry['path'][:100]!r} holds other bytes); register it again to "
                    "make a new version"
                )
    except BaseException:
        shutil.rmtree(staged, ignore_errors=True)
        raise
    (staged / DIGEST_MARK).write_text(asset.digest)
    if not _copied(folder, asset.digest):  # a stale or cut-short copy goes; a whole one (made meanwhile by
        shutil.rmtree(folder, ignore_errors=True)  # another trial of a sweep) is what its training reads
    try:
        staged.rename(folder)
    except OSError:  # another trial's copy got there first: it holds the same verified bytes
        shutil.rmtree(staged, ignore_errors=True)
        if not _copied(folder, asset.digest):
            raise


def _copied(folder: Path, digest: str) -> bool:
    mark = folder / DIGEST_MARK
    return mark.is_file() and mark.read_text() == digest


def named_inputs(command: str) -> list[str]:
    """The inputs ``command`` names as ``{inputs.NAME}``, in order, each once."""
    return list(dict.fromkeys(_PLACEHOLDER.findall(command)))


def fill_inputs(command: str, paths: dict[str, Path]) -> str:
    """``command`` with each ``{inputs.NAME}`` replaced by ``paths[NAME]``, quoted as its place needs (a
    placeholder in quotes, or in ``--data={inputs.x}``, takes a path with spaces whole; the rest of a line of
    shell syntax, ``&&`` and ``NAME={inputs.x}`` alike, stays as written)."""

    def path(match: re.Match[str]) -> str:
        if match[1] not in paths:
            raise ConfigError(
                f"the training command names {{inputs.{match[1]}}}, which is not in training.inputs "
                f"({', '.join(paths) or 'none'}); add it there as {match[1]}: ASSET"
            )
        return str(paths[match[1]])

    return substitute(command, _PLACEHOLDER, path)


def local_copies(command: str, given: dict[str, str], origins: dict[str, str]) -> dict[str, Path]:
    """The local copy given (``--input NAME=PATH``) for each input ``command`` names, for a run outside
    loopline's data assets (``init --existing``'s dry run); ``origins`` says where an input comes from."""
    named = named_inputs(command)
    for name in given:
        if name not in named:
            raise UsageError(
                f"--input {name} names an input the training does not read (it reads "
                f"{', '.join(named) or 'none'}: {{inputs.NAME}} in its command)"
            )
    copies = {}
    for name in named:
        if name not in given:
            origin = f" ({origins[name]})" if name in origins else ""
            raise UsageError(
                f"the training reads input {name}{origin}, which init cannot fetch: give a local copy of its "
                f"data for the one run init makes: --input {name}=PATH"
            )
        path = Path(given[name]).expanduser().resolve()
        if not path.exists():
            raise UsageError(f"--input {name}={given[name]}: {path} does not exist; give a file or folder")
        copies[name] = path
    return copies


def input_notes(
    root: Path, assets: dict[str, str], copies: dict[str, Path], azure: dict[str, str]
) -> list[str]:
    """What ``init --existing`` says of each input it read a local copy of: the data asset a training
    reads it from (``assets``), and how to upload that copy; ``azure``: where Azure ML read an input."""

    def shown(path: Path) -> str:
        return shlex.quote(path.relative_to(root).as_posix() if path.is_relative_to(root) else str(path))

    return [
        f"the training reads data asset {asset} as {{inputs.{name}}}"
        + (f" (Azure ML's {azure[name]})" if name in azure else "")
        + f": after `loopline up`, upload the copy init read (`loopline data upload {asset} "
        f"{shown(copies[name])}`); each training reads its newest version, verified"
        for name, asset in assets.items()
    ]


def input_environment(paths: dict[str, Path]) -> dict[str, str]:
    """``LOOPLINE_INPUTS``: each input's path, as JSON."""
    return {"LOOPLINE_INPUTS": json.dumps({name: str(path) for name, path in paths.items()})} if paths else {}


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
                source_type=DATA_ASSET_SOURCE,
                source=json.dumps({"asset": item.asset, "uri": item.reference, "digest": item.digest}),
            ),
            [InputTag("mlflow.data.context", "training"), InputTag("loopline.input", item.name)],
        )
        for item in inputs
    ]
    for run_id in run_ids:
        client.log_inputs(run_id, datasets=datasets)


def claimed_inputs(instance: Instance, tags: dict[str, str]) -> list[TrainingInput]:
    """The inputs a run's ``loopline.training_inputs`` tag names (a run trained elsewhere and uploaded),
    each checked against this instance's data asset versions: a version it does not hold, or other bytes
    than its own, is refused (an upload cannot claim data it was not trained on)."""
    if INPUTS_TAG not in tags:
        return []
    try:
        claims = json.loads(tags[INPUTS_TAG])
        named = {str(name): str(value).split(" ", 1) for name, value in dict(claims).items()}
    except (ValueError, TypeError):
        raise InvalidData(f"the run's {INPUTS_TAG} tag is not JSON of NAME: 'ASSET:VERSION DIGEST'") from None
    found = []
    for name, (reference, *digest) in named.items():
        try:
            asset = get_asset(instance, *parse_asset(reference))
        except (NotFound, UsageError):
            asset = None
        if asset is None or digest != [asset.digest] or ":" not in reference:
            raise InvalidData(
                f"the run says input {name[:60]} was {' '.join([reference, *digest])[:120]}, which is not a "
                "data asset version of this instance; train on the instance's data assets (training.inputs)"
            )
        found.append(TrainingInput(name, reference, asset.digest, Path(), asset.reference))
    return found


def input_tags(inputs: list[TrainingInput]) -> dict[str, str]:
    """The run tag naming what the training read: ``{"NAME": "ASSET:VERSION sha256:..."}``."""
    if not inputs:
        return {}
    return {INPUTS_TAG: json.dumps({item.name: f"{item.asset} {item.digest}" for item in inputs})}
