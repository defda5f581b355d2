"""Keep the Supabase CLI's migration history in step when ghostguard itself applies or rolls back.

When the database has `supabase_migrations.schema_migrations`, apply and rollback record the
migrations they stand for (version, name, statements) the way `supabase db push` does, with the
versions of the local files (written into the migrations directory when it exists and they are
missing), so `supabase migration list` shows local and remote in agreement and `db push` does not
run them again. Each record goes in the transaction that did the work it records.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import psycopg
from psycopg import sql

from ghostguard import catalog
from ghostguard.config import TableRef
from ghostguard.sqlparts import Step, ident
from ghostguard.supabase import migrations
from ghostguard.supabase.migrations import Migration, Versioned

TABLE = TableRef("supabase_migrations", "schema_migrations")
RECORDED_COLUMNS = ("version", "name", "statements")


@dataclass(frozen=True)
class HistoryPlan:
    versioned: list[Versioned]
    steps: dict[str, Step] = field(default_factory=dict[str, Step])  # migration name -> its record
    written: list[Path] = field(default_factory=list[Path])

    def step(self, name: str) -> list[Step]:
        return [self.steps[name]] if name in self.steps else []


def _record(columns: list[str], v: Versioned) -> Step:
    values = {
        "version": sql.Literal(v.version),
        "name": sql.Literal(v.migration.name),
        "statements": sql.Literal(list(v.migration.statements)),
    }
    return Step(
        f"record migration {v.version}_{v.migration.name} in {TABLE.display}, as the Supabase CLI does",
        sql.SQL("INSERT INTO {} ({}) VALUES ({}) ON CONFLICT (version) DO NOTHING").format(
            ident(TABLE.schema, TABLE.table),
            sql.SQL(", ").join(map(ident, columns)),
            sql.SQL(", ").join(values[c] for c in columns),
        ),
    )


def plan(
    conn: psycopg.Connection, directory: Path, files: list[Migration], write: bool = True
) -> HistoryPlan | None:
    """None when the database keeps no Supabase migration history. With `write`, local files that
    are missing are written to `directory` when it exists (never for a dry run)."""
    present = catalog.table_columns(conn, TABLE)
    if not present or "version" not in present:
        return None
    columns = [c for c in RECORDED_COLUMNS if c in present]
    versioned = migrations.assign_versions(directory, files)
    written = (
        migrations.write_versioned(directory, versioned).written
        if write and directory.is_dir()
        else []
    )
    return HistoryPlan(
        versioned, {v.migration.name: _record(columns, v) for v in versioned}, written
    )
