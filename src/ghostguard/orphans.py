"""Orphan profiles: profile rows whose auth user no longer exists. Reported, and on request marked
deleted (deleted_at); never removed, since the app may still reference them."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import psycopg

from ghostguard import queries, syncsql
from ghostguard.catalog import Shape
from ghostguard.config import Config
from ghostguard.errors import Refused
from ghostguard.locks import exclusive_run
from ghostguard.runner import database_errors
from ghostguard.scan import snapshot

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
        row = conn.execute(queries.orphans(config, shape, SAMPLE_SIZE)).fetchone()
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
            marked = conn.execute(syncsql.mark_orphans_deleted(config, shape).statement).rowcount
    after = find(conn, config, shape)
    return OrphanReport(after.orphans, after.unmarked, after.sample, marked)
