"""The profile sync failures table: where the trigger records a write it could not make."""

from __future__ import annotations

import psycopg
from psycopg import sql

from ghostguard import catalog
from ghostguard.catalog import Shape
from ghostguard.config import Config
from ghostguard.sqlparts import (
    Step,
    closed_to_api_roles,
    failures,
    ident,
)


def failures_table(config: Config, shape: Shape) -> list[Step]:
    """Where failed profile writes are recorded; closed to API roles like the audit log."""
    table = failures(config)
    return [
        Step(
            "profile sync failures: recorded by the trigger instead of failing a signup",
            sql.SQL(
                "CREATE TABLE IF NOT EXISTS {} (\n"
                "  id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,\n"
                "  user_id text NOT NULL,\n"
                "  operation text NOT NULL,\n"
                "  sqlstate text,\n"
                "  message text,\n"
                "  detail text,\n"
                "  occurred_at timestamptz NOT NULL DEFAULT now(),\n"
                "  attempts integer NOT NULL DEFAULT 0,\n"
                "  resolved_at timestamptz,\n"
                "  resolution text\n"
                ")"
            ).format(table),
        ),
        Step(
            "unresolved failures are looked up by user",
            sql.SQL(
                "CREATE INDEX IF NOT EXISTS {} ON {} (user_id) WHERE resolved_at IS NULL"
            ).format(ident(f"{config.failures.table}_unresolved"), table),
        ),
        *closed_to_api_roles(
            table, shape, "failure rows hold user ids and error texts: not for API roles"
        ),
    ]


def failure_of_user(config: Config) -> Step:
    """Params: user. The newest recorded failure of one user."""
    return Step(
        "the newest profile sync failure of a user",
        sql.SQL(
            "SELECT sqlstate, message FROM {} WHERE user_id = %(user)s ORDER BY id DESC LIMIT 1"
        ).format(failures(config)),
    )


def unresolved_count(config: Config) -> Step:
    return Step(
        "unresolved profile sync failures",
        sql.SQL("SELECT count(*) FROM {} WHERE resolved_at IS NULL").format(failures(config)),
    )


def failure_counts(config: Config) -> Step:
    """Unresolved failures and failures recorded in the last hour, in one pass over the table."""
    return Step(
        "profile sync failures: unresolved, and recorded in the last hour",
        sql.SQL(
            "SELECT count(*) FILTER (WHERE resolved_at IS NULL),\n"
            "       count(*) FILTER (WHERE occurred_at > now() - interval '1 hour')\n"
            "FROM {}"
        ).format(failures(config)),
    )


def failures_table_exists(conn: psycopg.Connection, config: Config) -> bool:
    return bool(catalog.table_columns(conn, config.failures))


def unresolved(conn: psycopg.Connection, config: Config) -> int | None:
    """Unresolved failures, or None when the failures table does not exist (not installed)."""
    if not failures_table_exists(conn, config):
        return None
    row = conn.execute(unresolved_count(config).statement).fetchone()
    return int(row[0]) if row else 0
