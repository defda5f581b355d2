"""Optional persistence of the monitor's history in a small table, so a restart keeps the charts.

Created on first use (RLS on, no policies, closed to API roles like every table ghostguard
creates), one row per tick, rows older than the history span pruned at each full
reconciliation: it stays at about a day of ticks.
"""

from __future__ import annotations

from datetime import UTC, datetime

import psycopg
from psycopg import sql

from ghostguard.catalog import Shape
from ghostguard.config import TableRef
from ghostguard.monitor.state import Sample
from ghostguard.runner import run_steps
from ghostguard.sqlparts import Step, closed_to_api_roles, ident


def create(ref: TableRef, shape: Shape) -> list[Step]:
    table = ident(ref.schema, ref.table)
    return [
        Step(
            "monitor history: one row per tick",
            sql.SQL(
                "CREATE TABLE IF NOT EXISTS {} (\n"
                "  id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,\n"
                "  at timestamptz NOT NULL,\n"
                "  ghosts bigint,\n"
                "  signups bigint NOT NULL,\n"
                "  failures bigint\n"
                ")"
            ).format(table),
        ),
        *closed_to_api_roles(table, shape, "monitor history is not for API roles"),
    ]


def ensure(conn: psycopg.Connection, ref: TableRef, shape: Shape) -> None:
    """Create the table if it is missing, in one transaction (under the session's lock_timeout)."""
    with conn.transaction():
        run_steps(conn, create(ref, shape))


def load(conn: psycopg.Connection, ref: TableRef, since: float) -> list[Sample]:
    rows = conn.execute(
        sql.SQL(
            "SELECT extract(epoch FROM at), ghosts, signups, failures FROM {} "
            "WHERE at >= %s ORDER BY at"
        ).format(ident(ref.schema, ref.table)),
        (datetime.fromtimestamp(since, UTC),),
    ).fetchall()
    return [
        Sample(float(at), ghosts, int(signups), failures) for at, ghosts, signups, failures in rows
    ]


def append(conn: psycopg.Connection, ref: TableRef, sample: Sample) -> None:
    conn.execute(
        sql.SQL("INSERT INTO {} (at, ghosts, signups, failures) VALUES (%s, %s, %s, %s)").format(
            ident(ref.schema, ref.table)
        ),
        (datetime.fromtimestamp(sample.at, UTC), sample.ghosts, sample.signups, sample.failures),
    )


def prune(conn: psycopg.Connection, ref: TableRef, before: float) -> None:
    conn.execute(
        sql.SQL("DELETE FROM {} WHERE at < %s").format(ident(ref.schema, ref.table)),
        (datetime.fromtimestamp(before, UTC),),
    )
