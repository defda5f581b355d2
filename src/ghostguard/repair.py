"""Retry the profile writes the trigger recorded as failed, once their cause is fixed.

The trigger never fails a signup; it records the failure instead (syncsql.py). `repair` syncs
each affected user from the auth row as it is now (create or update the profile, or mark it
deleted when the auth row is gone or soft-deleted) and marks that user's failures resolved. A
user whose retry fails again keeps the failures, with the new error and one more attempt.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import psycopg

from ghostguard import catalog, syncsql
from ghostguard.catalog import Shape
from ghostguard.config import Config
from ghostguard.locks import exclusive_run
from ghostguard.runner import database_errors, primary_message


@dataclass(frozen=True)
class StillFailing:
    user_id: str
    sqlstate: str | None
    message: str


@dataclass(frozen=True)
class RepairResult:
    users_repaired: int
    failures_resolved: int
    still_failing: list[StillFailing] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def failures_table_exists(conn: psycopg.Connection, config: Config) -> bool:
    return bool(catalog.table_columns(conn, config.failures))


def unresolved(conn: psycopg.Connection, config: Config) -> int | None:
    """Unresolved failures, or None when the failures table does not exist (not installed)."""
    if not failures_table_exists(conn, config):
        return None
    row = conn.execute(syncsql.unresolved_count(config).statement).fetchone()
    return int(row[0]) if row else 0


def repair(conn: psycopg.Connection, config: Config, shape: Shape) -> RepairResult:
    """Retry every user with unresolved failures, each in its own transaction (autocommit conn)."""
    if not failures_table_exists(conn, config):
        return RepairResult(0, 0)
    with exclusive_run(conn, config, "repair"):
        with database_errors("repair: reading the failures"):
            users = conn.execute(syncsql.unresolved_users(config).statement).fetchall()
        repaired = resolved = 0
        still: list[StillFailing] = []
        for user_id, count, _ in users:
            try:
                with conn.transaction():
                    resolution = _sync_user(conn, config, shape, user_id)
                    conn.execute(
                        syncsql.resolve_failures(config).statement,
                        {"user": user_id, "resolution": resolution},
                    )
            except psycopg.Error as exc:
                still.append(StillFailing(user_id, exc.sqlstate, primary_message(exc)))
                with database_errors("repair: recording a failed retry"), conn.transaction():
                    conn.execute(
                        syncsql.failed_again(config).statement,
                        {
                            "user": user_id,
                            "sqlstate": exc.sqlstate,
                            "message": primary_message(exc),
                        },
                    )
                continue
            repaired += 1
            resolved += int(count)
    return RepairResult(repaired, resolved, still)


def _sync_user(conn: psycopg.Connection, config: Config, shape: Shape, user_id: str) -> str:
    """Bring one user's profile in line with the auth row; returns what was done."""
    params = {"user": user_id}
    row = conn.execute(syncsql.auth_row_state(config, shape).statement, params).fetchone()
    if row is not None and not row[0]:
        conn.execute(syncsql.repair_upsert(config, shape).statement, params)
        return "repaired: profile synced from the auth row"
    if not shape.target_soft_delete:
        return "resolved: the auth row is deleted and the profile has no soft-delete column"
    conn.execute(syncsql.repair_mark_deleted(config, shape).statement, params)
    return "repaired: the auth user is deleted, profile marked deleted"
