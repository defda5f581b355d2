"""A signup never waits on ghostguard, whatever holds the profile table: the preflight and apply
take the profile table's lock first without waiting, and the installed sync bounds its own waits."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from conftest import Database, run, scalar
from ghostguard.supabase import authserver
from ghostguard.supabase.authserver import AuthServer

# A migration tool holding the profile table: what a non-concurrent CREATE INDEX and an ALTER TABLE
# hold until their transaction ends.
HOLDS = {
    "create_index": "CREATE INDEX users_email_idx ON public.users (email)",
    "alter_table": "ALTER TABLE public.users ADD COLUMN nickname text",
}


@pytest.fixture(params=sorted(HOLDS))
def migration(request: pytest.FixtureRequest, database: Database) -> Iterator[psycopg.Connection]:
    """A session inside an open transaction that holds the profile table, as the app's owner."""
    with psycopg.connect(database.url, application_name="migration-tool") as holder:
        holder.execute(HOLDS[request.param])
        yield holder
        holder.rollback()


def signing_up(database: Database, until: threading.Event, errors: list[str]) -> threading.Thread:
    """Signups as the Auth server makes them, each allowed 5 s, until `until` is set."""

    def loop() -> None:
        with psycopg.connect(database.auth_url, autocommit=True) as c:
            c.execute("SET statement_timeout = '5s'")
            writer = AuthServer(c)
            n = 0
            while not until.is_set() and n < 500:
                try:
                    writer.signup(authserver.email_user(f"live{n}@example.com"))
                except psycopg.Error as exc:
                    errors.append(f"{type(exc).__name__}: {exc}")
                n += 1

    thread = threading.Thread(target=loop)
    thread.start()
    return thread


def test_check_names_the_migration_and_no_signup_waits(
    database: Database, migration: psycopg.Connection
) -> None:
    done, errors = threading.Event(), []
    signups = signing_up(database, done, errors)
    try:
        result = run("check", db=database)
    finally:
        done.set()
        signups.join()
    assert errors == []
    assert result.exit_code == 2, result.output
    pid = migration.info.backend_pid
    line = result.stderr.strip()
    assert "\n" not in line
    assert line.startswith(
        "error: check: public.users or auth.users is locked by another session; "
    )
    assert f"in the way: pid {pid} (application migration-tool, role postgres, " in line
    assert "no signup waited on ghostguard" in line


def test_apply_refuses_without_holding_auth_users(
    database: Database, migration: psycopg.Connection, conn: psycopg.Connection, tmp_path: Path
) -> None:
    cfg = tmp_path / "ghostguard.toml"
    cfg.write_text("[trigger]\nlock_timeout = '100ms'\n")
    done, errors = threading.Event(), []
    signups = signing_up(database, done, errors)
    try:
        result = run("apply", "--yes", "--config", str(cfg), db=database)
    finally:
        done.set()
        signups.join()
    assert errors == []
    assert result.exit_code == 2, result.output
    assert f"pid {migration.info.backend_pid} (application migration-tool" in result.stderr
    assert (
        scalar(conn, "SELECT count(*) FROM pg_trigger WHERE tgname = 'on_auth_user_created'") == 0
    )
    assert scalar(conn, "SELECT to_regclass('public.cleanup_audit_log')") is None


def test_the_installed_sync_records_instead_of_waiting(
    database: Database, auth: AuthServer, conn: psycopg.Connection, tmp_path: Path
) -> None:
    assert run("apply", "--yes", db=database).exit_code == 0
    with psycopg.connect(database.url, application_name="migration-tool") as holder:
        holder.execute(HOLDS["alter_table"])
        auth.conn.execute("SET statement_timeout = '5s'")  # waiting behind it would fail the test
        user_id = auth.signup(authserver.email_user("during@example.com", full_name="During"))
        cfg = tmp_path / "ghostguard.toml"
        cfg.write_text("[trigger]\nlock_timeout = '100ms'\n")
        early = run("repair", "--yes", "--config", str(cfg), db=database)
        holder.rollback()
    # repair while the migration still holds the table: stops at once, naming it, keeps the record
    assert early.exit_code == 2, early.output
    assert early.stderr.startswith(
        "error: repair: gave up waiting for a lock after 0 of 1 users repaired; in the way: pid "
    )
    assert "application migration-tool" in early.stderr
    assert scalar(conn, "SELECT count(*) FROM auth.users WHERE id = %s", user_id) == 1
    assert scalar(conn, "SELECT count(*) FROM public.users WHERE id = %s", user_id) == 0
    failure = conn.execute(
        "SELECT operation, sqlstate FROM public.profile_sync_failures WHERE user_id = %s",
        (str(user_id),),
    ).fetchall()
    assert failure == [("INSERT", "55P03")]
    assert run("scan", db=database).exit_code == 1  # the ghost and its failure are visible
    repaired = run("repair", "--yes", db=database)
    assert repaired.exit_code == 0, repaired.output
    assert scalar(conn, "SELECT full_name FROM public.users WHERE id = %s", user_id) == "During"
    assert scalar(
        conn,
        "SELECT resolved_at IS NOT NULL FROM public.profile_sync_failures WHERE user_id = %s",
        str(user_id),
    )


@pytest.mark.parametrize(
    ("value", "complaint"),
    [
        ('"0"', "out of range"),
        ('"1s -c statement_timeout=1"', "is not a duration"),
        ('"1 second"', "is not a duration"),
        ('"2h"', "is not a duration"),
        ('"61s"', "out of range"),
        ("true", "is not a duration"),
    ],
)
def test_lock_timeouts_are_durations_within_bounds(
    database: Database, conn: psycopg.Connection, tmp_path: Path, value: str, complaint: str
) -> None:
    cfg = tmp_path / "ghostguard.toml"
    cfg.write_text(f"[trigger]\nlock_timeout = {value}\n")
    result = run("apply", "--yes", "--config", str(cfg), db=database)
    assert result.exit_code == 2
    assert result.stderr.startswith(f"error: {cfg}: trigger.lock_timeout = ")
    assert complaint in result.stderr and "from 1ms to 60s" in result.stderr
    assert "--db-url" not in result.stderr and len(result.stderr.strip().splitlines()) == 1
    assert scalar(conn, "SELECT to_regclass('public.cleanup_audit_log')") is None


def test_signup_lock_timeout_is_bounded_and_reaches_the_function(
    database: Database, conn: psycopg.Connection, tmp_path: Path
) -> None:
    cfg = tmp_path / "ghostguard.toml"
    cfg.write_text("[trigger]\nsignup_lock_timeout = '10s'\n")
    refused = run("apply", "--yes", "--config", str(cfg), db=database)
    assert refused.exit_code == 2
    assert "trigger.signup_lock_timeout = '10s' is out of range" in refused.stderr
    assert "from 10ms to 5s" in refused.stderr
    cfg.write_text("[trigger]\nsignup_lock_timeout = '0.5s'\n")
    assert run("apply", "--yes", "--config", str(cfg), db=database).exit_code == 0
    config = scalar(conn, "SELECT proconfig FROM pg_proc WHERE proname = 'handle_new_user'")
    assert "lock_timeout=500ms" in config  # type: ignore[operator]
