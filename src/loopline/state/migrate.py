"""Moving loopline's own database to another URL (SQLite to PostgreSQL, say) without losing history."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import Table, func, insert, select

from loopline.errors import Refused
from loopline.state import Database, reset_sequences
from loopline.state.schema import audit_head, metadata

__all__ = ["MigrationResult", "copy_state"]


@dataclass(frozen=True)
class MigrationResult:
    """What was copied where."""

    source: str
    target: str
    rows: dict[str, int]

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready mapping."""
        return {"source": self.source, "target": self.target, "rows": self.rows}


def _require_empty(target: Database, tables: list[Table]) -> None:
    with target.read() as connection:
        for table in tables:
            if (
                table.name != "audit_head"
                and connection.execute(select(func.count()).select_from(table)).scalar()
            ):
                raise Refused(
                    f"{target.redacted_url} already holds loopline data (table {table.name}); move the "
                    "state into an empty database"
                )


def copy_state(source: Database, target: Database) -> MigrationResult:
    """Copy every table, keys and order intact, into an empty database at the newest migration."""
    target.upgrade()
    tables = list(metadata.sorted_tables)
    _require_empty(target, tables)
    copied: dict[str, int] = {}
    with source.read() as reader, target.write() as writer:
        for table in tables:
            rows = [dict(row) for row in reader.execute(select(table)).mappings()]
            if table.name == "audit_head":
                writer.execute(audit_head.delete())
            if rows:
                writer.execute(insert(table), rows)
            copied[str(table.name)] = len(rows)
        if not target.is_sqlite:
            reset_sequences(writer, tables)
    return MigrationResult(source.redacted_url, target.redacted_url, copied)
