"""The read-only truth about a database: ghosts by kind, orphan profiles, trigger and function state."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from typing import Any

import psycopg

from ghostguard import catalog, queries
from ghostguard.catalog import FunctionState, Shape, TriggerState
from ghostguard.config import Config

SAMPLE_SIZE = 10


@dataclass(frozen=True)
class Counts:
    auth_users: int
    profiles: int
    soft_deleted_profiles: int
    orphan_profiles: int


@dataclass(frozen=True)
class ScanReport:
    source: str
    target: str
    counts: Counts
    ghosts: dict[str, int]
    sample_ghost_ids: list[str]
    trigger: TriggerState | None
    trigger_calls_ours: bool
    other_triggers: list[TriggerState] = field(default_factory=list)
    function: FunctionState | None = None

    @property
    def ghost_total(self) -> int:
        return sum(self.ghosts.values())

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["ghost_total"] = self.ghost_total
        return data


@contextmanager
def snapshot(conn: psycopg.Connection) -> Iterator[None]:
    """A read-only repeatable-read transaction that never plans a nested-loop anti-join."""
    with conn.transaction():
        for setting in queries.read_snapshot():
            conn.execute(setting)
        yield


def count_ghosts(conn: psycopg.Connection, config: Config, shape: Shape) -> dict[str, int]:
    """Ghosts per kind, every kind present (0 when none)."""
    found: dict[str, int] = dict(conn.execute(queries.ghosts_by_kind(config, shape)).fetchall())
    return {kind: int(found.get(kind, 0)) for kind in queries.GHOST_KINDS}


def read_counts(conn: psycopg.Connection, config: Config, shape: Shape) -> Counts:
    row = conn.execute(queries.table_counts(config, shape)).fetchone()
    assert row is not None
    return Counts(*(int(v) for v in row))


def scan(conn: psycopg.Connection, config: Config, shape: Shape) -> ScanReport:
    """Everything scan reports, read in one repeatable-read snapshot so the numbers agree."""
    with snapshot(conn):
        ghosts = count_ghosts(conn, config, shape)
        counts = read_counts(conn, config, shape)
        sample = [r[0] for r in conn.execute(queries.sample_ghosts(config, SAMPLE_SIZE)).fetchall()]
        triggers = catalog.triggers_on(conn, config.source)
        function = catalog.function_state(conn, config)
    ours = catalog.our_trigger(triggers, config)
    return ScanReport(
        source=config.source.display,
        target=config.target.display,
        counts=counts,
        ghosts=ghosts,
        sample_ghost_ids=sample,
        trigger=ours,
        trigger_calls_ours=bool(ours and ours.calls(config)),
        other_triggers=[t for t in triggers if t is not ours],
        function=function,
    )
