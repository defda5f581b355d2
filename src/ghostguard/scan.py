"""The read-only truth about a database: ghosts by kind, orphan profiles, trigger and function state."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from typing import Any

import psycopg

from ghostguard import catalog, fingerprint, queries, repair, syncsql
from ghostguard.catalog import FunctionState, Shape, TriggerState
from ghostguard.config import Config
from ghostguard.fingerprint import Fingerprint

SAMPLE_SIZE = 10


@dataclass(frozen=True)
class Counts:
    auth_users: int
    profiles: int
    soft_deleted_profiles: int
    orphan_profiles: int


@dataclass(frozen=True)
class BlockingKey:
    """A foreign key to the auth table that makes user deletes fail, and the SQL that fixes it."""

    name: str
    on_delete: str
    fix: str


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
    lifecycle_triggers: list[TriggerState] = field(default_factory=list)  # ours: update, delete
    sync_failures: int | None = None  # unresolved; None when the failures table does not exist
    blocking_foreign_keys: list[BlockingKey] = field(default_factory=list)
    drift: list[str] = field(default_factory=list)  # how the installed sync differs from apply's

    def problems(self) -> dict[str, bool]:
        """Each condition `scan --fail-on` can fail on, and whether it holds."""
        return {
            "ghosts": self.ghost_total > 0,
            "failures": bool(self.sync_failures),
            "drift": bool(self.drift),
            "blocking-fks": bool(self.blocking_foreign_keys),
        }

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


def census(conn: psycopg.Connection, config: Config, shape: Shape) -> tuple[dict[str, int], Counts]:
    """Ghosts per kind (every kind present, 0 when none) and the table counts, in one pass."""
    ghosts = dict.fromkeys(queries.GHOST_KINDS, 0)
    totals = [0, 0, 0, 0]
    for kind, *counts in conn.execute(queries.census(config, shape)).fetchall():
        totals = [t + int(c) for t, c in zip(totals, counts, strict=True)]
        if kind is not None:
            ghosts[kind] = int(counts[0])
    return ghosts, Counts(*totals)


def scan(conn: psycopg.Connection, config: Config, shape: Shape) -> ScanReport:
    """Everything scan reports, read in one repeatable-read snapshot so the numbers agree."""
    with snapshot(conn):
        ghosts, counts = census(conn, config, shape)
        sample = (
            [r[0] for r in conn.execute(queries.sample_ghosts(config, SAMPLE_SIZE)).fetchall()]
            if any(ghosts.values())
            else []
        )
        triggers = catalog.triggers_on(conn, config.source)
        function = catalog.function_state(conn, config)
        installed = installed_fingerprint(conn, config)
        failures = repair.unresolved(conn, config)
        blocking = [
            BlockingKey(fk.display, fk.on_delete, syncsql.fix_blocking_foreign_key(fk, config))
            for fk in catalog.foreign_keys_to(conn, config.source)
            if fk.blocks_deletes
        ]
    ours = catalog.our_trigger(triggers, config)
    lifecycle = [t for t in triggers if t.name in config.trigger_names[1:] and t.calls(config)]
    differences = drift(config, shape, triggers, function, installed)
    return ScanReport(
        source=config.source.display,
        target=config.target.display,
        counts=counts,
        ghosts=ghosts,
        sample_ghost_ids=sample,
        trigger=ours,
        trigger_calls_ours=bool(ours and ours.calls(config)),
        other_triggers=[t for t in triggers if t is not ours and t not in lifecycle],
        function=function,
        lifecycle_triggers=lifecycle,
        sync_failures=failures,
        blocking_foreign_keys=blocking,
        drift=differences,
    )


def drift(
    config: Config,
    shape: Shape,
    triggers: list[TriggerState],
    function: FunctionState | None,
    installed: Fingerprint | None,
) -> list[str]:
    """How the live function and triggers differ from what apply installs and from what it
    recorded when it did (empty: no drift)."""
    found: list[str] = []
    if function is None:
        found.append(f"function {config.function_display} is missing")
    else:
        if not function.security_definer:
            found.append(f"function {function.name} is not SECURITY DEFINER")
        if function.search_path is None:
            found.append(f"function {function.name} has no pinned search_path")
    by_name = {t.name: t for t in triggers}
    for name in syncsql.expected_triggers(config, shape):
        trigger = by_name.get(name)
        if trigger is None:
            found.append(f"trigger {name} on {config.source.display} is missing")
        elif not trigger.is_enabled:
            found.append(f"trigger {name} is disabled ({trigger.enabled})")
        elif not trigger.calls(config):
            found.append(f"trigger {name} calls {trigger.function}, not {config.function_display}")
    found += fingerprint.differences(installed, config, triggers, function)
    found += fingerprint.duplicates(config, triggers)
    return found


def installed_fingerprint(conn: psycopg.Connection, config: Config) -> Fingerprint | None:
    """The newest install fingerprint, or None (no audit table, or apply never ran)."""
    if not catalog.table_columns(conn, config.audit):
        return None
    row = conn.execute(queries.latest_audit(config, fingerprint.INSTALL_JOB)).fetchone()
    return fingerprint.from_audit_row(row)


def read_drift(conn: psycopg.Connection, config: Config, shape: Shape) -> list[str]:
    """Drift, read from the catalog and apply's record (for callers that need nothing else)."""
    return drift(
        config,
        shape,
        catalog.triggers_on(conn, config.source),
        catalog.function_state(conn, config),
        installed_fingerprint(conn, config),
    )
