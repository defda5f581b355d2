"""The monitor's cheap reads: table statistics and the sync function's timing."""

from __future__ import annotations

from psycopg import sql

from ghostguard.config import Config


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
