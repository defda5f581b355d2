"""Read-only queries behind scan and verify, composed with psycopg.sql like every other statement.

Cost notes (see docs/design.md): ghosts by kind, profile and orphan counts come from one full join
of the two tables on their keys (hash or merge: each table read once); the ghost sample is a
merge anti-join that stops after a few rows, run only when there are ghosts. Never NOT IN, which
degrades to a nested loop on NULL-able keys.
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


def census(config: Config, shape: Shape) -> sql.Composed:
    """Ghosts by kind and the table counts in one pass: a full join of the two tables on their keys.

    Rows come grouped by kind: NULL for auth rows with a profile and for orphan profiles (profiles
    with no auth row), one row per kind of ghost. Every column is a count within the group, so the
    totals are the column sums. One hash or merge join reads each table once; the kind is computed
    for ghost rows only.
    """
    soft = shape.target_soft_delete
    soft_deleted = (
        sql.SQL("count(*) FILTER (WHERE pu.{} IS NOT NULL)").format(sql.Identifier(soft))
        if soft
        else sql.SQL("0::bigint")
    )
    skey, tkey = sql.Identifier(config.source.key), sql.Identifier(config.target.key)
    return sql.SQL(
        "SELECT CASE WHEN pu.{tkey} IS NULL THEN {kind} END AS kind,\n"
        "       count(au.{skey}) AS auth_users,\n"
        "       count(pu.{tkey}) AS profiles,\n"
        "       {soft_deleted} AS soft_deleted_profiles,\n"
        "       count(*) FILTER (WHERE au.{skey} IS NULL) AS orphan_profiles\n"
        "FROM {source} au FULL JOIN {target} pu ON pu.{tkey} = au.{skey}\n"
        "GROUP BY 1"
    ).format(
        kind=_kind_expression(shape),
        skey=skey,
        tkey=tkey,
        soft_deleted=soft_deleted,
        source=sql.Identifier(config.source.schema, config.source.table),
        target=sql.Identifier(config.target.schema, config.target.table),
    )


def sample_ghosts(config: Config, limit: int) -> sql.Composed:
    """The first ghost keys in key order: a merge anti-join over both primary keys stops early."""
    return sql.SQL(
        "SELECT au.{key}::text FROM {source} au WHERE {ghost} ORDER BY au.{key} LIMIT {n}"
    ).format(
        key=sql.Identifier(config.source.key),
        source=sql.Identifier(config.source.schema, config.source.table),
        ghost=ghost_condition(config),
        n=sql.Literal(limit),
    )


def orphans(config: Config, shape: Shape, limit: int) -> sql.Composed:
    """Orphan profiles (no auth row): how many, how many not yet marked deleted, the first keys."""
    soft = shape.target_soft_delete
    unmarked = (
        sql.SQL("count(*) FILTER (WHERE o.{} IS NULL)").format(sql.Identifier(soft))
        if soft
        else sql.SQL("count(*)")
    )
    return sql.SQL(
        "SELECT count(*), {unmarked},\n"
        "       (array_agg(o.{tkey}::text ORDER BY o.{tkey}))[1:{n}]\n"
        "FROM {target} o\n"
        "WHERE NOT EXISTS (SELECT 1 FROM {source} au WHERE au.{skey} = o.{tkey})"
    ).format(
        unmarked=unmarked,
        tkey=sql.Identifier(config.target.key),
        n=sql.Literal(limit),
        target=sql.Identifier(config.target.schema, config.target.table),
        source=sql.Identifier(config.source.schema, config.source.table),
        skey=sql.Identifier(config.source.key),
    )


def latest_audit(config: Config, job: str) -> sql.Composed:
    return sql.SQL(
        "SELECT status, records_affected, started_at, completed_at, error_message, details\n"
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


def table_activity(config: Config) -> sql.Composed:
    """Rows inserted and deleted in the auth and profile tables, from the statistics views.

    A lookup by name in pg_stat_user_tables: no table is read. The counters are cumulative since the
    statistics were last reset and lag a backend's writes by up to a few seconds (PostgreSQL
    flushes them when a session goes idle), which is fine for a rate and a hint.
    """
    return sql.SQL(
        "SELECT coalesce(sum(n_tup_ins) FILTER (WHERE schemaname = {ss} AND relname = {st}), 0),\n"
        "       coalesce(sum(n_tup_ins) FILTER (WHERE schemaname = {ts} AND relname = {tt}), 0),\n"
        "       coalesce(sum(n_tup_del) FILTER (WHERE schemaname = {ts} AND relname = {tt}), 0)\n"
        "FROM pg_catalog.pg_stat_user_tables\n"
        "WHERE (schemaname, relname) IN (({ss}, {st}), ({ts}, {tt}))"
    ).format(
        ss=sql.Literal(config.source.schema),
        st=sql.Literal(config.source.table),
        ts=sql.Literal(config.target.schema),
        tt=sql.Literal(config.target.table),
    )


def function_timing(config: Config) -> sql.Composed:
    """track_functions and the sync function's calls and total time (ms) since statistics began.

    pg_stat_user_functions has the row only when track_functions is 'pl' or 'all' and the function
    has been called since; otherwise the counts are NULL.
    """
    return sql.SQL(
        "SELECT pg_catalog.current_setting('track_functions'), f.calls, f.total_time\n"
        "FROM (SELECT 1) one LEFT JOIN pg_catalog.pg_stat_user_functions f\n"
        "  ON f.schemaname = {schema} AND f.funcname = {name}"
    ).format(schema=sql.Literal(config.function_schema), name=sql.Literal(config.function_name))
