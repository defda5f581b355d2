"""Read-only queries behind scan and verify, composed with psycopg.sql like every other statement.

Cost notes (see docs/design.md): ghosts by kind, profile and orphan counts come from one full join
of the two tables on their keys (hash or merge: each table read once); the ghost sample is a
merge anti-join that stops after a few rows, run only when there are ghosts. Never NOT IN, which
degrades to a nested loop on NULL-able keys.
"""

from __future__ import annotations

from collections.abc import Generator
from contextlib import contextmanager
from dataclasses import dataclass

import psycopg
from psycopg import sql

from ghostguard import kinds
from ghostguard.catalog import Shape
from ghostguard.config import Config
from ghostguard.sqlparts import ghost_condition


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


def census_query(config: Config, shape: Shape) -> sql.Composed:
    """Ghosts by kind and the table counts in one pass: a full join of the two tables on their keys.

    Rows come grouped by kind: NULL for auth rows with a profile and for orphan profiles (profiles
    with no auth row), one row per kind of ghost. Every column is a count within the group, so the
    totals are the column sums. One hash or merge join reads each table once; the kind is computed
    for ghost rows only.
    """
    skey, tkey = sql.Identifier(config.source.key), sql.Identifier(config.target.key)
    soft = sql.Identifier(shape.target_soft_delete) if shape.target_soft_delete else None
    profiles_table = sql.Identifier(config.target.schema, config.target.table)
    profiles: sql.Composable
    rows: sql.Composable
    soft_deleted: sql.Composable
    orphans: sql.Composable
    if shape.key_unique:
        profiles, rows = profiles_table, sql.SQL("count(pu.{})").format(tkey)
        soft_deleted = sql.SQL("count(pu.{})").format(soft) if soft else sql.SQL("0::bigint")
        orphans = sql.SQL("count(*) FILTER (WHERE au.{} IS NULL)").format(skey)
    else:
        # Several profiles may link to one user: one row per linked user, or users would be
        # counted once per profile.
        profiles = sql.SQL(
            "(SELECT {tkey}, count(*) AS ghostguard_rows, count({soft}) AS ghostguard_deleted "
            "FROM {table} GROUP BY {tkey})"
        ).format(tkey=tkey, soft=soft or sql.SQL("NULL"), table=profiles_table)
        rows = sql.SQL("coalesce(sum(pu.ghostguard_rows), 0)::bigint")
        soft_deleted = sql.SQL("coalesce(sum(pu.ghostguard_deleted), 0)::bigint")
        orphans = sql.SQL(
            "coalesce(sum(pu.ghostguard_rows) FILTER (WHERE au.{} IS NULL), 0)::bigint"
        ).format(skey)
    return sql.SQL(
        "SELECT CASE WHEN pu.{tkey} IS NULL THEN {kind} END AS kind,\n"
        "       count(au.{skey}) AS auth_users,\n"
        "       {rows} AS profiles,\n"
        "       {soft_deleted} AS soft_deleted_profiles,\n"
        "       {orphans} AS orphan_profiles\n"
        "FROM {source} au FULL JOIN {profiles} pu ON pu.{tkey} = au.{skey}\n"
        "GROUP BY 1"
    ).format(
        kind=kinds.user_kind(shape.kind_columns, soft_deleted=True),
        skey=skey,
        tkey=tkey,
        rows=rows,
        soft_deleted=soft_deleted,
        orphans=orphans,
        source=sql.Identifier(config.source.schema, config.source.table),
        profiles=profiles,
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


@dataclass(frozen=True)
class Counts:
    auth_users: int
    profiles: int
    soft_deleted_profiles: int
    orphan_profiles: int


@contextmanager
def snapshot(conn: psycopg.Connection) -> Generator[None, None, None]:
    """A read-only repeatable-read transaction that never plans a nested-loop anti-join."""
    with conn.transaction():
        for setting in read_snapshot():
            conn.execute(setting)
        yield


def read_census(
    conn: psycopg.Connection, config: Config, shape: Shape
) -> tuple[dict[str, int], Counts]:
    """Ghosts per kind (every kind present, 0 when none) and the table counts, in one pass."""
    ghosts: dict[str, int] = dict.fromkeys(kinds.GHOST_KINDS, 0)
    totals = [0, 0, 0, 0]
    for kind, *counts in conn.execute(census_query(config, shape)).fetchall():
        totals = [t + int(c) for t, c in zip(totals, counts, strict=True)]
        if kind is not None:
            ghosts[kind] = int(counts[0])
    return ghosts, Counts(*totals)
