"""Orphan profiles: profile rows whose auth user no longer exists. Reported, and on request marked
deleted (deleted_at); never removed, since the app may still reference them."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import psycopg
from psycopg import sql

from ghostguard.catalog import Shape
from ghostguard.checks.census import snapshot
from ghostguard.config import Config
from ghostguard.errors import Refused
from ghostguard.locks import exclusive_run
from ghostguard.runner import database_errors
from ghostguard.sqlparts import Step, ident, source, target
from ghostguard.sync.mapping import touch_updated_at

SAMPLE_SIZE = 10


@dataclass(frozen=True)
class OrphanReport:
    orphans: int
    unmarked: int  # not yet marked deleted (all of them when there is no soft-delete column)
    sample: list[str]
    marked_now: int = 0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def find(conn: psycopg.Connection, config: Config, shape: Shape) -> OrphanReport:
    with snapshot(conn):
        row = conn.execute(orphans_query(config, shape, SAMPLE_SIZE)).fetchone()
    assert row is not None
    return OrphanReport(int(row[0]), int(row[1]), list(row[2] or []))


def mark_deleted(conn: psycopg.Connection, config: Config, shape: Shape) -> OrphanReport:
    """Set deleted_at on every unmarked orphan, in one short transaction under lock_timeout."""
    if not shape.target_soft_delete:
        raise Refused(
            f"{config.target.display} has no {config.soft_delete_column or 'soft-delete'} column "
            "to mark orphans with: add one (or set target.soft_delete_column); nothing was changed"
        )
    with exclusive_run(conn, config, "orphans"):
        with database_errors("orphans: marking deleted"), conn.transaction():
            conn.execute("SET LOCAL enable_nestloop = off")  # a hash anti-join, whatever the stats
            marked = conn.execute(mark_orphans_deleted(config, shape).statement).rowcount
    after = find(conn, config, shape)
    return OrphanReport(after.orphans, after.unmarked, after.sample, marked)


def orphans_query(config: Config, shape: Shape, limit: int) -> sql.Composed:
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


def mark_orphans_deleted(config: Config, shape: Shape) -> Step:
    """Profiles whose auth row is gone get deleted_at; nothing is ever removed."""
    assert shape.target_soft_delete, "marking orphans needs the profile's soft-delete column"
    soft = ident(shape.target_soft_delete)
    return Step(
        "orphans: mark profiles whose auth user no longer exists as deleted",
        sql.SQL(
            "UPDATE {target} pu SET {soft} = now(){touch}\n"
            "WHERE pu.{soft} IS NULL\n"
            "  AND NOT EXISTS (SELECT 1 FROM {source} au WHERE au.{skey} = pu.{tkey})"
        ).format(
            target=target(config),
            soft=soft,
            touch=touch_updated_at(shape),
            source=source(config),
            skey=ident(config.source.key),
            tkey=ident(config.target.key),
        ),
    )
