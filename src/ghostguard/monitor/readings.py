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

from ghostguard import audit as audit_log
from ghostguard import catalog
from ghostguard.catalog import Shape, TriggerState
from ghostguard.checks import census, sync_state, trigger_time
from ghostguard.checks.census import Counts
from ghostguard.checks.sync_state import SyncState
from ghostguard.checks.trigger_time import TriggerTime
from ghostguard.config import Config
from ghostguard.monitor import queries as monitor_queries
from ghostguard.sync import drift as sync_drift
from ghostguard.sync import ensure
from ghostguard.sync import failures as sync_failures
from ghostguard.sync import triggers as sync_triggers


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
    expected_triggers: list[str] = field(default_factory=list[str])  # what apply installs here
    healed_on_read: int | None = None  # profiles ensure_profile() created (None: no audit log)


@dataclass(frozen=True)
class Census:
    """One full reconciliation: ghosts by kind and the table counts, from one pass."""

    at: float
    seconds: float
    ghosts: dict[str, int]
    counts: Counts
    # The sync trigger on a synthetic signup (EXPLAIN ANALYZE, rolled back): timing that needs
    # no track_functions. None: not a Supabase auth table.
    trigger: TriggerTime | None = None

    @property
    def ghost_total(self) -> int:
        return sum(self.ghosts.values())


def backfill_from_audit_row(row: tuple[Any, ...] | None) -> Backfill | None:
    """The state in a `audit_log.latest_audit` row of the backfill job."""
    if row is None:
        return None
    status, records, started, completed = row[:4]
    return Backfill(
        status, records, started.timestamp(), completed.timestamp() if completed else None
    )


def _newest(conn: psycopg.Connection, config: Config, job: str) -> tuple[Any, ...] | None:
    return conn.execute(audit_log.latest_audit(config, job)).fetchone()


def failure_counts(conn: psycopg.Connection, config: Config) -> tuple[int | None, int | None]:
    """(unresolved, recorded in the last hour); (None, None) when the table does not exist."""
    if not sync_failures.failures_table_exists(conn, config):
        return None, None
    row = conn.execute(sync_failures.failure_counts(config).statement).fetchone()
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
            sync_drift.from_audit_row(_newest(conn, config, sync_drift.INSTALL_JOB))
            if audited
            else None
        )
        backfill = (
            backfill_from_audit_row(_newest(conn, config, config.job_name)) if audited else None
        )
        unresolved, last_hour = failure_counts(conn, config)
        healed = conn.execute(ensure.healed_count(config)).fetchone() if audited else None
        activity = conn.execute(monitor_queries.table_activity(config)).fetchone()
        timing = conn.execute(monitor_queries.function_timing(config)).fetchone()
    auth_inserts, profile_inserts, profile_deletes = (int(v) for v in activity or (0, 0, 0))
    track, calls, total = timing or ("none", None, None)
    return Tick(
        at=time.time(),
        seconds=time.perf_counter() - started,
        triggers=triggers,
        drift=sync_state.drift(SyncState(triggers, function, installed), config, shape),
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
        expected_triggers=sync_triggers.expected_triggers(config, shape),
        healed_on_read=int(healed[0]) if healed else None,
    )


def read_census(conn: psycopg.Connection, config: Config, shape: Shape) -> Census:
    """The full reconciliation: scan's census in its read-only snapshot, then the trigger's time
    on a synthetic signup (rolled back)."""
    started = time.perf_counter()
    with census.snapshot(conn):
        ghosts, counts = census.read_census(conn, config, shape)
    seconds = time.perf_counter() - started
    return Census(
        at=time.time(),
        seconds=seconds,
        ghosts=ghosts,
        counts=counts,
        trigger=trigger_time.measure(conn, config),
    )
