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
    target,
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
                "  constraint_name text,\n"
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
            "the constraint a write broke and where (the app's own trigger on the profile table?), "
            "added to a failures table that predates them",
            sql.SQL(
                "ALTER TABLE {} ADD COLUMN IF NOT EXISTS constraint_name text,\n"
                "  ADD COLUMN IF NOT EXISTS context text"
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


def record_failure(
    config: Config, key: sql.Composable, operation: str, once: bool = False
) -> sql.Composed:
    """PL/pgSQL for an EXCEPTION handler: record what failed (or at least log it). `once`: not
    again while the user has an unresolved failure of this operation (a backfill run again meets
    the same bad row). The block declares v_state, v_message, v_detail, v_constraint and
    v_context text."""
    guard = (
        sql.SQL(
            "\n  WHERE NOT EXISTS (SELECT 1 FROM {failures} f WHERE f.user_id = {key}::text\n"
            "                    AND f.operation = {op} AND f.resolved_at IS NULL)"
        ).format(failures=failures(config), key=key, op=sql.Literal(operation))
        if once
        else sql.SQL("")
    )
    return sql.SQL(
        "GET STACKED DIAGNOSTICS v_state = RETURNED_SQLSTATE, v_message = MESSAGE_TEXT,\n"
        "                       v_detail = PG_EXCEPTION_DETAIL, v_constraint = CONSTRAINT_NAME,\n"
        "                       v_context = PG_EXCEPTION_CONTEXT;\n"
        "BEGIN\n"
        "  INSERT INTO {failures} (user_id, operation, sqlstate, constraint_name, message, detail,\n"
        "                          context)\n"
        "  SELECT {key}::text, {op}, v_state, NULLIF(v_constraint, ''), v_message, NULLIF(v_detail, ''),\n"
        "         NULLIF(v_context, ''){guard};\n"
        "EXCEPTION WHEN OTHERS THEN\n"
        "  RAISE WARNING 'ghostguard: % profile sync for % failed (%: %) and could not be recorded: %',\n"
        "    {op}, {key}, v_state, v_message, SQLERRM;\n"
        "END;"
    ).format(failures=failures(config), key=key, op=sql.Literal(operation), guard=guard)


def failure_of_user(config: Config) -> Step:
    """Params: user. The newest recorded failure of one user: sqlstate, constraint, message,
    context (where it was raised: PG_EXCEPTION_CONTEXT)."""
    return Step(
        "the newest profile sync failure of a user",
        sql.SQL(
            "SELECT sqlstate, constraint_name, message, context FROM {} WHERE user_id = %(user)s "
            "ORDER BY id DESC LIMIT 1"
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


# Key types a failure row's text key is cast back to (so a lookup uses the key's index).
KEY_TYPES = {name: sql.SQL(name) for name in ("uuid", "text", "bigint", "integer")}


def key_from_text(shape: Shape, text: sql.Composable) -> sql.Composable | None:
    """`text` (a key kept as text) cast back to the auth key's type, or None for another type
    (compare as text then: no index, still correct)."""
    key_type = KEY_TYPES.get(shape.source_key_type)
    return None if key_type is None else sql.SQL("CAST({} AS {})").format(text, key_type)


def resolve_profiled(config: Config, shape: Shape, resolution: str) -> Step:
    """Unresolved INSERT failures (the trigger's, the backfill's) of users who have a profile
    now: resolved, saying who made it."""
    key = ident(config.target.key)
    cast = key_from_text(shape, sql.SQL("f.user_id"))
    match = (
        sql.SQL("p.{} = {}").format(key, cast)
        if cast is not None
        else sql.SQL("p.{}::text = f.user_id").format(key)
    )
    return Step(
        "resolve the recorded failures of users who have a profile now",
        sql.SQL(
            "UPDATE {failures} f SET resolved_at = now(), resolution = {resolution}, "
            "attempts = f.attempts + 1\n"
            "WHERE f.resolved_at IS NULL AND f.operation IN ('INSERT', 'backfill')\n"
            "  AND EXISTS (SELECT 1 FROM {target} p WHERE {match})"
        ).format(
            failures=failures(config),
            resolution=sql.Literal(resolution),
            target=target(config),
            match=match,
        ),
    )


def failures_table_exists(conn: psycopg.Connection, config: Config) -> bool:
    return bool(catalog.table_columns(conn, config.failures))


def unresolved(conn: psycopg.Connection, config: Config) -> int | None:
    """Unresolved failures, or None when the failures table does not exist (not installed)."""
    if not failures_table_exists(conn, config):
        return None
    row = conn.execute(unresolved_count(config).statement).fetchone()
    return int(row[0]) if row else 0


def summary(config: Config, operation: str) -> Step:
    """Unresolved failures of an operation by constraint (else SQLSTATE), most first, with the
    first three users of each."""
    return Step(
        f"unresolved {operation} failures by constraint",
        sql.SQL(
            "SELECT coalesce(constraint_name, 'SQLSTATE ' || sqlstate, 'unknown'), count(*),\n"
            "       (array_agg(user_id ORDER BY id))[1:3]\n"
            "FROM {} WHERE operation = {} AND resolved_at IS NULL\n"
            "GROUP BY 1 ORDER BY 2 DESC, 1"
        ).format(failures(config), sql.Literal(operation)),
    )
