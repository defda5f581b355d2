"""The sync trigger's time without track_functions (hosted Supabase does not let postgres turn it
on): an EXPLAIN ANALYZE of the Auth server's INSERT of a synthetic signup, rolled back, in verify
and at each full reconciliation of the monitor. It leaves no row and is never counted as a
signup."""

from __future__ import annotations

import json
import time

import psycopg

from conftest import Database, run, scalar
from monitoring import running_monitor, wait_for

TABLES = ("auth.users", "public.users", "auth.identities", "auth.audit_log_entries")


def _rows(conn: psycopg.Connection) -> list[object]:
    return [scalar(conn, f"SELECT count(*) FROM {t}") for t in TABLES]


def _live(conn: psycopg.Connection) -> list[tuple[object, ...]]:
    """Live rows and changes since the last analyze by the statistics (what a signup adds and
    what autovacuum acts on), after every backend flushed its own. PostgreSQL also counts the
    attempted insert of a rolled-back transaction in n_tup_ins and n_dead_tup, for any role and
    any write: those move by one per measurement and are not asserted here."""
    time.sleep(1.2)  # a backend's statistics reach the shared view within a second of idling
    conn.execute("SELECT pg_stat_clear_snapshot()")
    return [
        tuple(r)
        for r in conn.execute(
            "SELECT relname, n_live_tup, n_mod_since_analyze FROM pg_stat_user_tables "
            "WHERE relid IN ('auth.users'::regclass, 'public.users'::regclass) ORDER BY relid"
        )
    ]


def test_verify_times_the_trigger_with_track_functions_off_and_leaves_nothing(
    database: Database, conn: psycopg.Connection
) -> None:
    assert run("apply", "--yes", db=database).exit_code == 0
    assert scalar(conn, "SELECT current_setting('track_functions')") == "none"
    rows, live = _rows(conn), _live(conn)
    result = run("verify", "--json", db=database)
    assert result.exit_code == 0, result.output
    timing = json.loads(result.stdout)["trigger_time"]
    assert timing["trigger_ms"] > 0 and "on_auth_user_created" in timing["triggers"]
    assert timing["detail"].startswith("on_auth_user_created: ")
    assert "on a synthetic signup (EXPLAIN ANALYZE as " in timing["detail"]
    assert _rows(conn) == rows  # no auth row, no profile, no identity, no audit entry
    assert _live(conn) == live  # nothing the statistics count as a live row
    human = run("verify", db=database)
    assert "sync trigger time: on_auth_user_created: " in human.stdout


def test_the_monitor_shows_the_trigger_time_and_counts_no_signup_for_it(
    database: Database, conn: psycopg.Connection
) -> None:
    assert run("apply", "--yes", db=database).exit_code == 0
    with running_monitor(database.url, interval=0.2, full_every=0.3) as mon:
        wait_for(lambda: mon.metric("ghostguard_trigger_probe_seconds"), lambda v: bool(v))
        first = mon.metric("ghostguard_last_full_reconciliation_timestamp_seconds") or 0
        wait_for(  # a few more reconciliations, each measuring again
            lambda: mon.metric("ghostguard_last_full_reconciliation_timestamp_seconds") or 0,
            lambda v: v > first + 1.5,
        )
        assert mon.metric("ghostguard_signups_total") == 0
        probe = mon.status()["trigger_probe"]
        assert probe["trigger_ms"] > 0 and probe["detail"].startswith("on_auth_user_created: ")
        _, page = mon.get("/status")
        assert 'id="trigger-probe">on_auth_user_created: ' in page
    assert scalar(conn, "SELECT count(*) FROM auth.users") == 0
