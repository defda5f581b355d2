"""Read-only queries behind scan and verify, composed with psycopg.sql like every other statement.

Cost notes (see docs/design.md): ghost and orphan counts are anti-joins (NOT EXISTS) that use the
primary keys of both tables, one pass over the auth table; never NOT IN, which degrades to a
nested loop on NULL-able keys.
"""

from __future__ import annotations

from psycopg import sql

from ghostguard.catalog import Shape
from ghostguard.config import Config
from ghostguard.statements import ghost_condition

GHOST_KINDS = ("email", "phone", "anonymous", "sso", "soft_deleted", "other")

# Checked in this order: a soft-deleted anonymous user counts once, as soft_deleted.
_KIND_RULES = (
    ("deleted_at", "soft_deleted", sql.SQL("au.deleted_at IS NOT NULL")),
    ("is_anonymous", "anonymous", sql.SQL("au.is_anonymous")),
    ("is_sso_user", "sso", sql.SQL("au.is_sso_user")),
    ("email", "email", sql.SQL("au.email IS NOT NULL")),
    ("phone", "phone", sql.SQL("au.phone IS NOT NULL")),
)


def read_snapshot() -> list[sql.SQL]:
    """Start a consistent read-only snapshot that never plans a nested-loop anti-join.

    With stale statistics (a profile table just filled by a backfill, not yet analyzed) the planner
    picks a nested loop over a sequential scan for NOT EXISTS: quadratic. Hash and merge anti-joins
    are linear whatever the statistics say.
    """
    return [
        sql.SQL("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY"),
        sql.SQL("SET LOCAL enable_nestloop = off"),
    ]


def _kind_expression(shape: Shape) -> sql.Composable:
    whens = [
        sql.SQL("WHEN {} THEN {}").format(condition, sql.Literal(kind))
        for column, kind, condition in _KIND_RULES
        if column in shape.kind_columns
    ]
    if not whens:
        return sql.Literal("other")
    return sql.SQL("CASE {} ELSE 'other' END").format(sql.SQL(" ").join(whens))


def ghosts_by_kind(config: Config, shape: Shape) -> sql.Composed:
    """One anti-join pass: (kind, count) for every auth row without a profile."""
    return sql.SQL(
        "SELECT {kind} AS kind, count(*) FROM {source} au WHERE {ghost} GROUP BY 1"
    ).format(
        kind=_kind_expression(shape),
        source=sql.Identifier(config.source.schema, config.source.table),
        ghost=ghost_condition(config),
    )


def sample_ghosts(config: Config, limit: int) -> sql.Composed:
    return sql.SQL(
        "SELECT au.{key}::text FROM {source} au WHERE {ghost} ORDER BY au.{key} LIMIT {n}"
    ).format(
        key=sql.Identifier(config.source.key),
        source=sql.Identifier(config.source.schema, config.source.table),
        ghost=ghost_condition(config),
        n=sql.Literal(limit),
    )


def table_counts(config: Config, shape: Shape) -> sql.Composed:
    """auth rows, profile rows, soft-deleted profiles and orphan profiles (profile with no auth row)."""
    soft = shape.target_soft_delete
    soft_deleted = (
        sql.SQL("count(*) FILTER (WHERE pu.{} IS NOT NULL)").format(sql.Identifier(soft))
        if soft
        else sql.SQL("0::bigint")
    )
    return sql.SQL(
        "SELECT (SELECT count(*) FROM {source}) AS auth_users,\n"
        "       count(*) AS profiles,\n"
        "       {soft_deleted} AS soft_deleted_profiles,\n"
        "       count(*) FILTER (WHERE NOT EXISTS (\n"
        "         SELECT 1 FROM {source} au WHERE au.{skey} = pu.{tkey})) AS orphan_profiles\n"
        "FROM {target} pu"
    ).format(
        source=sql.Identifier(config.source.schema, config.source.table),
        target=sql.Identifier(config.target.schema, config.target.table),
        soft_deleted=soft_deleted,
        skey=sql.Identifier(config.source.key),
        tkey=sql.Identifier(config.target.key),
    )


def latest_audit(config: Config, job: str) -> sql.Composed:
    return sql.SQL(
        "SELECT status, records_affected, started_at, completed_at, error_message\n"
        "FROM {audit} WHERE job_name = {job} ORDER BY started_at DESC LIMIT 1"
    ).format(audit=sql.Identifier(config.audit.schema, config.audit.table), job=sql.Literal(job))


def estimated_rows(config: Config) -> sql.Composed:
    """The planner's row estimate for the source table (free, good enough for progress and ETA);
    an exact count only when the table was never analyzed (reltuples = -1)."""
    return sql.SQL(
        "SELECT CASE WHEN c.reltuples < 0 THEN (SELECT count(*) FROM {source}) "
        "ELSE c.reltuples::bigint END FROM pg_catalog.pg_class c "
        "JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = {schema} AND c.relname = {name}"
    ).format(
        source=sql.Identifier(config.source.schema, config.source.table),
        schema=sql.Literal(config.source.schema),
        name=sql.Literal(config.source.table),
    )
