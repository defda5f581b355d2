"""The guide's idempotent, audited backfill: every missing profile, ON CONFLICT DO NOTHING."""

from __future__ import annotations

import psycopg

from ghostguard import catalog, statements
from ghostguard.catalog import Shape
from ghostguard.config import Config
from ghostguard.errors import DatabaseError, Refused
from ghostguard.locks import exclusive_run
from ghostguard.runner import database_errors, primary_message


def run_backfill(conn: psycopg.Connection, config: Config, shape: Shape) -> int:
    """Open the audit row (committed: visible as running), fill and close it atomically, return the count.

    On failure the profile inserts roll back and the audit row is closed as failed with the error.
    """
    start, run = statements.backfill_plan(config, shape)
    with database_errors("backfill: opening the audit row"), conn.transaction():
        conn.execute(start.statement)
    try:
        with conn.transaction():
            row = conn.execute(run.statement).fetchone()
    except psycopg.Error as exc:
        message = primary_message(exc)
        if not conn.broken:
            with database_errors("backfill: recording the failure"), conn.transaction():
                conn.execute(statements.backfill_failed(config, message).statement)
        raise DatabaseError(
            f"backfill failed (audit row marked failed): {message}", exc.sqlstate
        ) from None
    if row is None:
        raise DatabaseError("backfill: the audit row it opened was not found; nothing was recorded")
    return int(row[0])


def require_audit_table(conn: psycopg.Connection, config: Config) -> None:
    """The backfill records itself in the audit table, which `apply` creates."""
    if not catalog.table_columns(conn, config.audit):
        raise Refused(f"{config.audit.display} does not exist: run `ghostguard apply` first")


def backfill(conn: psycopg.Connection, config: Config, shape: Shape) -> int:
    """A standalone backfill: one run at a time (advisory lock), audited."""
    require_audit_table(conn, config)
    with exclusive_run(conn, config, "backfill"):
        return run_backfill(conn, config, shape)
