"""An empty MLflow SQLite store: a copy of one migrated once per MLflow version, not migrated again."""

from __future__ import annotations

import os
import shutil
import sqlite3
import tempfile
import threading
import uuid
from pathlib import Path

from loopline.mlflow_output import quiet_mlflow
from loopline.storage.fs import cache_dir

__all__ = ["copy_template", "template_path"]

_template_lock = threading.Lock()


def template_path() -> Path:
    from importlib.metadata import version

    return cache_dir() / f"mlflow-{version('mlflow')}-sqlite-template.db"


def _build_template(target: Path) -> None:
    """Migrate a fresh SQLite MLflow database once; later stores copy it instead of migrating again."""
    quiet_mlflow()
    from mlflow.store.tracking.sqlalchemy_store import SqlAlchemyStore

    with tempfile.TemporaryDirectory() as scratch:
        path = Path(scratch) / "template.db"
        store = SqlAlchemyStore(f"sqlite:///{path}", str(Path(scratch) / "artifacts"))  # type: ignore[no-untyped-call]
        store.engine.dispose()
        staged = target.with_name(f".{target.name}.{uuid.uuid4().hex}")
        shutil.copyfile(path, staged)
        os.replace(staged, target)


def copy_template(path: Path, default_artifacts: str) -> None:
    """Create an empty MLflow SQLite store at ``path`` from the migrated template, its default
    experiment's artifacts at the URI ``default_artifacts``."""
    template = template_path()
    with _template_lock:
        if not template.exists() or os.environ.get("LOOPLINE_NO_TEMPLATE"):
            _build_template(template)
    path.parent.mkdir(parents=True, exist_ok=True)
    staged = path.with_name(f".{path.name}.{uuid.uuid4().hex}")
    shutil.copyfile(template, staged)
    # The template's default experiment points at a scratch folder; point it at this workspace.
    with sqlite3.connect(staged) as connection:
        connection.execute(
            "UPDATE experiments SET artifact_location = ? WHERE experiment_id = 0",
            (default_artifacts,),
        )
    connection.close()
    os.replace(staged, path)
