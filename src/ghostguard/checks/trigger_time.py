"""The sync trigger's own time, measured without `track_functions` (which `postgres` cannot turn on
on hosted Supabase, so pg_stat_user_functions stays empty there).

One synthetic signup, the Auth server's INSERT exactly (as its role when we may become it, else
with its search_path), under EXPLAIN ANALYZE inside a transaction that is always rolled back:
PostgreSQL reports each trigger's own time. Nothing is left: no auth row, no profile, no audit or
identity row (the INSERT alone runs), and auth.users has no sequence. Like any rolled-back
insert it does add one to the tables' inserted and dead tuple counters (n_tup_ins, n_dead_tup),
never to their live rows.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import asdict, dataclass
from typing import Any, LiteralString

import psycopg

from ghostguard.checks.probe import AUTH_COLUMNS
from ghostguard.config import Config
from ghostguard.runner import primary_message
from ghostguard.supabase import authserver

_EXPLAIN: LiteralString = "EXPLAIN (ANALYZE, FORMAT JSON) "


@dataclass(frozen=True)
class TriggerTime:
    trigger_ms: float | None  # the sync trigger's own time; None when it did not fire
    insert_ms: float  # the whole INSERT as the server timed it (trigger included)
    measured_in_ms: float  # what the measurement cost, round trips included
    triggers: dict[str, float]  # every trigger that fired: name -> ms
    detail: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


# Publish this backend's counters now (the rolled-back insert's), not up to seconds later: the
# monitor subtracts its measurements from the insert counters it reads, and must see the insert
# it subtracts (pg_stat_force_next_flush: PostgreSQL 15+; skipped where it does not exist).
_FLUSH_STATISTICS: LiteralString = (
    "DO $flush$ BEGIN IF pg_catalog.to_regprocedure('pg_catalog.pg_stat_force_next_flush()') "
    "IS NOT NULL THEN PERFORM pg_catalog.pg_stat_force_next_flush(); END IF; END $flush$"
)


def _ready(conn: psycopg.Connection, config: Config) -> tuple[bool, bool]:
    """(the source has the Auth server's columns, we may act as the Auth server), in one read."""
    row = conn.execute(
        "SELECT (SELECT count(*) FROM pg_catalog.pg_attribute WHERE attrelid = "
        "pg_catalog.to_regclass(%s) AND attnum > 0 AND NOT attisdropped AND attname = ANY (%s)), "
        "EXISTS (SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = %s) "
        "AND pg_catalog.pg_has_role(current_user, %s, 'MEMBER')",
        (
            f"{config.source.schema}.{config.source.table}",
            sorted(AUTH_COLUMNS),
            authserver.AUTH_ROLE,
            authserver.AUTH_ROLE,
        ),
    ).fetchone()
    return bool(row and row[0] == len(AUTH_COLUMNS)), bool(row and row[1])


def _explain(conn: psycopg.Connection, as_auth: bool, row: dict[str, Any]) -> dict[str, Any]:
    """The synthetic signup under EXPLAIN ANALYZE in a rolled-back transaction, then the
    statistics flush: one pipeline, one round trip."""
    role = authserver.AUTH_ROLE if as_auth else None
    with conn.pipeline():
        with conn.transaction(force_rollback=True):
            conn.execute(
                "SELECT pg_catalog.set_config('search_path', 'auth', true), "
                "CASE WHEN %s::text IS NULL THEN '' "
                "ELSE pg_catalog.set_config('role', %s, true) END",
                (role, role),
            )
            cursor = conn.execute(_EXPLAIN + authserver.INSERT_USER, row)
        conn.execute(_FLUSH_STATISTICS)
    found = cursor.fetchone()
    return found[0][0] if found else {}


def measure(conn: psycopg.Connection, config: Config) -> TriggerTime | None:
    """One rolled-back synthetic signup under EXPLAIN ANALYZE (autocommit connection); None when
    the source is not Supabase's auth.users."""
    if config.source.display != "auth.users":
        return None
    applicable, as_auth = _ready(conn, config)
    if not applicable:
        return None
    user = authserver.email_user(f"ghostguard-timing-{uuid.uuid4().hex[:12]}@probe.invalid")
    row = authserver.user_row(user, {"provider": "email"})
    started = time.perf_counter()
    try:
        try:
            plan = _explain(conn, as_auth, row)
        except psycopg.errors.InsufficientPrivilege:
            as_auth = False  # a member without the SET option (PostgreSQL 16+)
            plan = _explain(conn, as_auth, row)
    except psycopg.Error as exc:  # the signup itself fails: verify's probe says why, too
        spent = (time.perf_counter() - started) * 1000
        return TriggerTime(
            None, 0.0, spent, {}, f"not measured: a synthetic signup failed: {primary_message(exc)}"
        )
    spent = (time.perf_counter() - started) * 1000
    fired = {str(t["Trigger Name"]): float(t["Time"]) for t in plan.get("Triggers", [])}
    ours = fired.get(config.trigger_name)
    ran_as = authserver.AUTH_ROLE if as_auth else "postgres with search_path = auth"
    detail = (
        f"{config.trigger_name}: {ours:.3f} ms on a synthetic signup (EXPLAIN ANALYZE as "
        f"{ran_as}, rolled back)"
        if ours is not None
        else f"{config.trigger_name} did not fire on a synthetic signup"
    )
    return TriggerTime(ours, float(plan.get("Execution Time", 0.0)), spent, fired, detail)
