"""What the monitor reads from the database: a cheap tick and a full reconciliation.

Cost model (docs/design.md, "Monitoring"): a tick is a fixed handful of catalog and statistics
lookups by name plus one pass over the (normally empty) failures table, so its cost does not
grow with the number of users. The full reconciliation is scan's one-pass census, a full join of
the two tables: O(auth rows + profile rows). Ticks catch drift and sync failures at once and new
ghosts early when the statistics hint at them; the full pass is the guarantee.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import psycopg

from ghostguard import catalog, fingerprint, queries, repair, scan, syncsql
from ghostguard.catalog import Shape, TriggerState
from ghostguard.config import Config
from ghostguard.scan import Counts


@dataclass(frozen=True)
class FunctionTiming:
    """The sync function's counters from pg_stat_user_functions, when track_functions allows."""

    track_functions: str
    calls: int | None = None
    total_ms: float | None = None

    @property
    def available(self) -> bool:
        return self.track_functions in ("pl", "all")

    @property
    def mean_ms(self) -> float | None:
        if not self.calls or self.total_ms is None:
            return None
        return self.total_ms / self.calls


@dataclass(frozen=True)
class Backfill:
    """The newest backfill audit row."""

    status: str
    records_affected: int | None
    started_at: float
    completed_at: float | None


@dataclass(frozen=True)
class Tick:
    """One cheap reading: the trigger's health and the counters that move with traffic."""

    at: float
    seconds: float
    triggers: list[TriggerState]
    drift: list[str]
    failures_unresolved: int | None  # None: the failures table does not exist
    failures_last_hour: int | None
    auth_inserts: int  # cumulative, from the statistics views
    profile_inserts: int
    profile_deletes: int
    timing: FunctionTiming
    backfill: Backfill | None = None
    expected_triggers: list[str] = field(default_factory=list)  # what apply installs here


@dataclass(frozen=True)
class Census:
    """One full reconciliation: ghosts by kind and the table counts, from one pass."""

    at: float
    seconds: float
    ghosts: dict[str, int]
    counts: Counts

    @property
    def ghost_total(self) -> int:
        return sum(self.ghosts.values())


def backfill_from_audit_row(row: tuple[Any, ...] | None) -> Backfill | None:
    """The state in a `queries.latest_audit` row of the backfill job."""
    if row is None:
        return None
    status, records, started, completed = row[:4]
    return Backfill(
        status, records, started.timestamp(), completed.timestamp() if completed else None
    )


def _newest(conn: psycopg.Connection, config: Config, job: str) -> tuple[Any, ...] | None:
    return conn.execute(queries.latest_audit(config, job)).fetchone()


def failure_counts(conn: psycopg.Connection, config: Config) -> tuple[int | None, int | None]:
    """(unresolved, recorded in the last hour); (None, None) when the table does not exist."""
    if not repair.failures_table_exists(conn, config):
        return None, None
    row = conn.execute(syncsql.failure_counts(config).statement).fetchone()
    return (int(row[0]), int(row[1])) if row else (0, 0)


def read_tick(conn: psycopg.Connection, config: Config, shape: Shape) -> Tick:
    """The cheap reading, in one read-only transaction."""
    started = time.perf_counter()
    with conn.transaction():
        conn.execute("SET TRANSACTION READ ONLY")
        triggers = catalog.triggers_on(conn, config.source)
        function = catalog.function_state(conn, config)
        audited = bool(catalog.table_columns(conn, config.audit))  # once for both audit rows
        installed = (
            fingerprint.from_audit_row(_newest(conn, config, fingerprint.INSTALL_JOB))
            if audited
            else None
        )
        backfill = (
            backfill_from_audit_row(_newest(conn, config, config.job_name)) if audited else None
        )
        unresolved, last_hour = failure_counts(conn, config)
        activity = conn.execute(queries.table_activity(config)).fetchone()
        timing = conn.execute(queries.function_timing(config)).fetchone()
    auth_inserts, profile_inserts, profile_deletes = (int(v) for v in activity or (0, 0, 0))
    track, calls, total = timing or ("none", None, None)
    return Tick(
        at=time.time(),
        seconds=time.perf_counter() - started,
        triggers=triggers,
        drift=scan.drift(config, shape, triggers, function, installed),
        failures_unresolved=unresolved,
        failures_last_hour=last_hour,
        auth_inserts=auth_inserts,
        profile_inserts=profile_inserts,
        profile_deletes=profile_deletes,
        timing=FunctionTiming(
            track,
            int(calls) if calls is not None else None,
            float(total) if total is not None else None,
        ),
        backfill=backfill,
        expected_triggers=syncsql.expected_triggers(config, shape),
    )


def read_census(conn: psycopg.Connection, config: Config, shape: Shape) -> Census:
    """The full reconciliation: scan's census in its read-only snapshot."""
    started = time.perf_counter()
    with scan.snapshot(conn):
        ghosts, counts = scan.census(conn, config, shape)
    return Census(
        at=time.time(),
        seconds=time.perf_counter() - started,
        ghosts=ghosts,
        counts=counts,
    )
