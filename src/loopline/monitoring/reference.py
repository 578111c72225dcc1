"""Storing a model's reference profile when it is registered, by content digest."""

from __future__ import annotations

import hashlib
import tempfile
from collections.abc import Collection, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import insert, select

from loopline.domain import utcnow
from loopline.errors import InvalidData, UsageError
from loopline.instance import Instance
from loopline.monitoring.profile import PROFILE_FORM, build_profile
from loopline.state.schema import reference_profiles
from loopline.storage.datastores import read_table
from loopline.storage.digest import PREFIX

if TYPE_CHECKING:
    from loopline.data import DataAsset

__all__ = [
    "by_position",
    "data_reference",
    "load_reference",
    "positional",
    "reference_rows",
    "store_reference",
]


def store_reference(
    instance: Instance,
    run_id: str,
    digest: str,
    model: str,
    texts: Collection[str] = (),
    dates: Collection[str] = (),
) -> bool:
    """Profile the training features the run logged (``monitoring.reference_artifact``, its columns
    ``texts`` read as text: see ``csv_options``, its columns ``dates`` left unmeasured) and keep the
    profile under ``digest``; False if the run logged none. InvalidData, saying what to do, when the
    artifact is no table: called before the model is registered, so a version is never registered with a
    reference that monitoring cannot read."""
    artifact = instance.settings.config.monitoring.reference_artifact
    store = instance.store("dev")
    with tempfile.TemporaryDirectory() as scratch:
        try:
            path = store.run_artifact(run_id, artifact, Path(scratch))
        except Exception:  # the run logged no reference data: monitoring will say so
            return False
        try:
            frame = read_table(path, texts, named=f"the run's reference artifact '{artifact}'")
        except InvalidData as exc:
            raise InvalidData(
                f"{exc}; log the training features there as a Parquet or CSV table, or name another "
                "artifact in monitoring.reference_artifact"
            ) from None
    _keep(instance, digest, model, build_profile(frame, dates=dates))
    return True


def _keep(instance: Instance, key: str, label: str, profile: dict[str, Any]) -> None:
    """Store ``profile`` under ``key`` unless one is stored there already."""
    with instance.db.write() as connection:
        if (
            connection.execute(
                select(reference_profiles.c.content_digest).where(reference_profiles.c.content_digest == key)
            ).first()
            is None
        ):
            connection.execute(
                insert(reference_profiles).values(
                    content_digest=key, model=label, profile=profile, created_at=utcnow()
                )
            )


# Rows of a reference data asset read for its profile: deciles and shares settle long before this.
_REFERENCE_ROWS = 100_000


def data_reference(
    instance: Instance,
    asset: DataAsset,
    columns: list[str],
    texts: Collection[str] = (),
    dates: Collection[str] = (),
) -> dict[str, Any]:
    """The profile of data asset ``asset``'s first rows, on those of ``columns`` it has (of a CSV, the
    columns ``texts`` read as text; the columns ``dates`` left unmeasured). Made once from its verified
    bytes, then kept under a key of its digest and the columns, so a check reads no data."""
    import pandas as pd

    from loopline.data import partition_values, verified_files
    from loopline.storage.datastores import with_partitions

    named = f"{asset.digest}\n{','.join(sorted(columns))}\nform:{PROFILE_FORM}"
    if texts:  # read otherwise than without: kept apart
        named += f"\ntexts:{','.join(sorted(texts))}"
    if dates:
        named += f"\ndates:{','.join(sorted(dates))}"
    key = PREFIX + hashlib.sha256(named.encode()).hexdigest()
    if (kept := load_reference(instance, key)) is not None:
        return kept
    store = instance.datastore(asset.datastore)
    partitions = partition_values(asset)
    frames, rows = [], 0
    for frame in (
        with_partitions(part, partitions.get(file, {}), texts)
        for file in verified_files(instance, asset)
        for part in store.frames(file, 10_000, texts)
    ):
        frames.append(frame)
        rows += len(frame)
        if rows >= _REFERENCE_ROWS:
            break
    frame = pd.concat(frames, ignore_index=True).head(_REFERENCE_ROWS)
    wanted = set(columns)
    shared = [column for column in frame.columns if str(column) in wanted]
    if not shared and positional(columns) and len(frame.columns) == len(columns):
        shared = list(frame.columns)  # a model fitted on an array: the check takes them by position
    if not shared:
        what = (
            f"a model without column names (fitted on an array, or on a list of texts) receives its "
            f"{len(columns)} columns by position; name a data asset of exactly its {len(columns)} input "
            "features, in the model's order (a table's label column left out)"
            if positional(columns)
            else f"it receives ({', '.join(columns[:5])}); name a data asset of the model's input features"
        )
        raise UsageError(
            f"monitoring.reference_data {asset.name}:{asset.version} has none of the columns the endpoint "
            f"receives: {what}"
        )
    profile = build_profile(frame[shared], dates=dates)
    _keep(instance, key, f"data asset {asset.name}:{asset.version}", profile)
    return profile


def load_reference(instance: Instance, digest: str) -> dict[str, Any] | None:
    """The reference profile of the model files ``digest``, if one was stored."""
    with instance.db.read() as connection:
        value = connection.execute(
            select(reference_profiles.c.profile).where(reference_profiles.c.content_digest == digest)
        ).scalar()
    return dict(value) if value else None


def reference_rows(instance: Instance, digests: Sequence[str], columns: Sequence[str], limit: int) -> Any:
    """Up to ``limit`` reference rows (of the first of the model files ``digests`` whose profile holds
    some), as a DataFrame of ``columns`` where they hold them all (a model's signature), else of theirs;
    None where none holds any."""
    import pandas as pd

    for digest in digests:
        profile = load_reference(instance, digest)
        if profile and profile.get("sample_rows"):
            rows = pd.DataFrame(profile["sample_rows"][:limit], columns=profile["columns"])
            return rows[list(columns)] if columns and set(columns) <= set(rows.columns) else rows
    return None


def positional(columns: list[str]) -> bool:
    """Whether ``columns`` are the positions 0 to n-1: the columns of a model fitted on an array (a tensor
    signature), whose requests name none."""
    return bool(columns) and sorted(columns) == sorted(str(i) for i in range(len(columns)))


def by_position(profile: dict[str, Any], columns: list[str]) -> dict[str, Any]:
    """``profile`` with its columns named by their position, where the live rows' ``columns`` are positions
    and the profile has as many columns, none of them named so (training rows with their names, for a model
    fitted on their array); else ``profile`` itself."""
    names = list(profile["columns"])
    if not positional(columns) or len(names) != len(columns) or set(names) & set(columns):
        return profile
    renamed = {name: str(at) for at, name in enumerate(names)}
    features = {renamed.get(name, name): entry for name, entry in profile["features"].items()}
    return {**profile, "columns": [renamed[name] for name in names], "features": features}
