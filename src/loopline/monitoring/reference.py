"""Storing a model's reference profile when it is registered, by content digest."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

from sqlalchemy import insert, select

from loopline.domain import utcnow
from loopline.instance import Instance
from loopline.monitoring.profile import build_profile
from loopline.state.schema import reference_profiles

__all__ = ["load_reference", "store_reference"]


def store_reference(instance: Instance, run_id: str, digest: str, model: str) -> bool:
    """Profile the training features the run logged (``monitoring.reference_artifact``); False if none."""
    import pandas as pd

    artifact = instance.settings.config.monitoring.reference_artifact
    client = instance.store("dev").client
    with tempfile.TemporaryDirectory() as scratch:
        try:
            path = client.download_artifacts(run_id, artifact, scratch)
        except Exception:  # the run logged no reference data: monitoring will say so
            return False
        frame = pd.read_parquet(path) if Path(path).suffix == ".parquet" else pd.read_csv(path)
    profile = build_profile(frame)
    with instance.db.write() as connection:
        if (
            connection.execute(
                select(reference_profiles.c.content_digest).where(
                    reference_profiles.c.content_digest == digest
                )
            ).first()
            is None
        ):
            connection.execute(
                insert(reference_profiles).values(
                    content_digest=digest, model=model, profile=profile, created_at=utcnow()
                )
            )
    return True


def load_reference(instance: Instance, digest: str) -> dict[str, Any] | None:
    """The reference profile of the model files ``digest``, if one was stored."""
    with instance.db.read() as connection:
        value = connection.execute(
            select(reference_profiles.c.profile).where(reference_profiles.c.content_digest == digest)
        ).scalar()
    return dict(value) if value else None
