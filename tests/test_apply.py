"""apply: the guide's deployment, in its order, as the non-owner `postgres`, safely re-runnable."""

from __future__ import annotations

import json
import re
import threading
from pathlib import Path

import psycopg

from conftest import Database, ghost_count, make_ghosts, run, scalar
from ghostguard.supabase import authserver
from ghostguard.supabase.authserver import AuthServer


def _audit(conn: psycopg.Connection) -> list[tuple[object, ...]]:
    return conn.execute(
        "SELECT job_name, status, records_affected, error_message FROM public.cleanup_audit_log "
        "ORDER BY started_at, completed_at NULLS LAST"
    ).fetchall()


def test_dry_run_prints_the_sql_and_changes_nothing(
    database: Database, auth: AuthServer, conn: psycopg.Connection
) -> None:
    make_ghosts(auth, conn)
    result = run("apply", "--dry-run", db=database)
    assert result.exit_code == 0
    sql_text = result.stdout
    assert 'CREATE OR REPLACE FUNCTION "public"."handle_new_user"()' in sql_text
    assert "SET search_path = ''" in sql_text and "SECURITY DEFINER" in sql_text
    assert 'CREATE OR REPLACE TRIGGER "on_auth_user_created"' in sql_text
    assert 'ON CONFLICT ("id") DO NOTHING' in sql_text and "SET lock_timeout = '1s'" in sql_text
    assert scalar(conn, "SELECT count(*) FROM pg_proc WHERE proname = 'handle_new_user'") == 0
    assert scalar(conn, "SELECT to_regclass('public.cleanup_audit_log')") is None
    assert scalar(conn, "SELECT count(*) FROM public.users") == 0


def test_without_yes_and_without_a_terminal_it_refuses(
    database: Database, auth: AuthServer, conn: psycopg.Connection
) -> None:
    make_ghosts(auth, conn)
    result = run("apply", db=database)
    assert result.exit_code == 3
    assert result.stderr.startswith(
        "refused: Install on_auth_user_created on auth.users and backfill public.users"
    )
    assert result.stderr.strip().endswith(
        "needs confirmation and there is no terminal to ask on: pass --yes"
    )
    assert (
        scalar(conn, "SELECT count(*) FROM pg_trigger WHERE tgname = 'on_auth_user_created'") == 0
    )
    assert scalar(conn, "SELECT count(*) FROM public.users") == 0


def test_apply_installs_backfills_audits_and_verifies(
    database: Database, auth: AuthServer, conn: psycopg.Connection
) -> None:
    ids = make_ghosts(auth, conn)
    result = run("apply", "--yes", "--json", db=database)
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert (data["ghosts_before"], data["backfilled"], data["verify"]["passed"]) == (8, 8, True)
    assert _audit(conn) == [
        ("record_ghost_count", "success", 8, None),
        ("install_user_sync", "success", None, None),
        ("backfill_ghost_users", "success", 8, None),
    ]
    trigger = conn.execute(
        "SELECT tgenabled, tgrelid::regclass::text, tgfoid::regprocedure::text FROM pg_trigger "
        "WHERE tgname = 'on_auth_user_created'"
    ).fetchone()
    assert trigger == ("O", "auth.users", "handle_new_user()")
    fn = conn.execute(
        "SELECT prosecdef, proconfig, pg_get_userbyid(proowner) FROM pg_proc "
        "WHERE proname = 'handle_new_user'"
    ).fetchone()
    assert fn == (
        True,
        ['search_path=""', "work_mem=32MB", "lock_timeout=200ms"],
        "postgres",
    )
    for role in ("anon", "authenticated", "service_role"):
        assert (
            scalar(
                conn,
                f"SELECT has_function_privilege('{role}', 'public.handle_new_user()', 'EXECUTE')",
            )
            is False
        )
        assert (
            scalar(
                conn, f"SELECT has_table_privilege('{role}', 'public.cleanup_audit_log', 'SELECT')"
            )
            is False
        )
    assert (
        scalar(
            conn,
            "SELECT relrowsecurity FROM pg_class WHERE oid = 'public.cleanup_audit_log'::regclass",
        )
        is True
    )
    profiles = {
        r[0]: r[1:]
        for r in conn.execute(
            "SELECT id, email, full_name, avatar_url, deleted_at IS NOT NULL FROM public.users"
        ).fetchall()
    }
    assert profiles[ids["email"]] == ("ada@example.com", "Ada Lovelace", None, False)
    assert profiles[ids["google"]] == (
        "grace@gmail.example",
        "Grace Hopper",
        "https://pic/g.png",
        False,
    )
    assert profiles[ids["github"]] == (
        "linus@example.com",
        "torvalds",  # GitHub sends no name, only the login (user_name)
        "https://avatars/l.png",
        False,
    )
    assert profiles[ids["phone"]] == (None, None, None, False)
    # the Auth server replaced the email with a hash on soft delete: never copied
    assert profiles[ids["soft_deleted"]] == (None, None, None, True)
    created = conn.execute(
        "SELECT bool_and(pu.created_at = au.created_at) FROM public.users pu "
        "JOIN auth.users au USING (id)"
    ).fetchone()
    assert created == (True,)


def test_every_signup_kind_gets_a_profile_after_apply(
    database: Database, auth: AuthServer, conn: psycopg.Connection
) -> None:
    assert run("apply", "--yes", db=database).exit_code == 0
    ids = make_ghosts(auth, conn)
    ids["admin"] = auth.admin_create(
        authserver.email_user("boss@example.com"), {"roles": ["staff"]}
    )
    have = {row[0] for row in conn.execute("SELECT id FROM public.users").fetchall()}
    assert set(ids.values()) <= have
    assert (
        scalar(conn, "SELECT full_name FROM public.users WHERE id = %s", ids["google"])
        == "Grace Hopper"
    )
    assert ghost_count(conn) == 0


def test_apply_twice_is_a_no_op_the_second_time(
    database: Database, auth: AuthServer, conn: psycopg.Connection
) -> None:
    make_ghosts(auth, conn)
    assert run("apply", "--yes", db=database).exit_code == 0
    second = run("apply", "--yes", "--json", db=database)
    assert second.exit_code == 0
    assert (
        json.loads(second.stdout)["ghosts_before"],
        json.loads(second.stdout)["backfilled"],
    ) == (0, 0)
    assert (
        scalar(conn, "SELECT count(*) FROM pg_trigger WHERE tgname = 'on_auth_user_created'") == 1
    )
    assert scalar(conn, "SELECT count(*) FROM public.users") == 8
    assert [r[:3] for r in _audit(conn)][-3:] == [
        ("record_ghost_count", "success", 0),
        ("install_user_sync", "success", None),
        ("backfill_ghost_users", "success", 0),
    ]


def test_rows_breaking_a_constraint_do_not_stop_apply_and_are_named(
    database: Database, auth: AuthServer, conn: psycopg.Connection
) -> None:
    """One bad row once aborted the whole backfill (zero profiles); now the others get theirs."""
    make_ghosts(auth, conn)
    conn.execute("ALTER TABLE public.users ADD CONSTRAINT needs_email CHECK (email IS NOT NULL)")
    # The preflight sees that this project's phone, anonymous and Apple users would get no profile.
    refused = run("apply", "--yes", db=database)
    assert refused.exit_code == 3
    assert refused.stderr.startswith(
        "refused: apply refused: signups this project has would get no profile (phone: needs_email: "
    )
    assert refused.stderr.rstrip().endswith(
        "--accept-failing phone,anonymous,apple,anonymous_conversion"
    )
    assert scalar(conn, "SELECT to_regprocedure('public.handle_new_user()') IS NULL") is True
    assert scalar(conn, "SELECT to_regclass('public.cleanup_audit_log') IS NULL") is True
    result = run(
        "apply",
        "--yes",
        "--accept-failing",
        "phone,anonymous,apple,anonymous_conversion",
        db=database,
    )
    assert result.exit_code == 1  # verify fails: those users are still ghosts
    assert "error" not in result.stderr  # stderr has only the progress line
    # phone, anonymous and Apple-without-email users have no email; a soft-deleted one's is hidden
    assert (
        "4 users could not get a profile; each is recorded once in public.profile_sync_failures:"
        in (result.stdout)
    )
    assert "needs_email: 4 users (e.g. " in result.stdout
    rows = _audit(conn)
    assert rows[-1][:3] == ("backfill_ghost_users", "partial", 4)
    assert scalar(conn, "SELECT count(*) FROM public.users") == 4
    assert (
        scalar(
            conn,
            "SELECT count(*) FROM public.profile_sync_failures "
            "WHERE operation = 'backfill' AND constraint_name = 'needs_email'",
        )
        == 4
    )
    conn.execute("ALTER TABLE public.users DROP CONSTRAINT needs_email")
    assert run("backfill", "--yes", db=database).exit_code == 0
    assert _audit(conn)[-1][:3] == ("backfill_ghost_users", "success", 4)


def test_a_lock_on_auth_users_times_out_retries_and_changes_nothing(
    database: Database, auth: AuthServer, conn: psycopg.Connection, tmp_path: Path
) -> None:
    cfg = tmp_path / "ghostguard.toml"
    cfg.write_text("[trigger]\nlock_timeout = '200ms'\n")
    with psycopg.connect(database.auth_url) as owner:  # the Auth server's role owns auth.users
        owner.execute("LOCK TABLE auth.users IN ACCESS EXCLUSIVE MODE")
        result = run("apply", "--yes", "--config", str(cfg), db=database)
        holder = owner.info.backend_pid
        owner.rollback()
    assert result.exit_code == 2
    lines = result.stderr.strip().splitlines()
    assert lines[:3] == [
        f"apply: tables are locked by another session (LockNotAvailable); retry {n} in {d}s"
        for n, d in ((1, "0.5"), (2, "1.0"), (3, "2.0"))
    ]
    assert lines[3] == (
        "error: apply: could not lock public.users (without waiting) and auth.users (within "
        "lock_timeout 200ms) in 4 attempts; in the way: "
        f"pid {holder} (role supabase_auth_admin, holds AccessExclusiveLock on auth.users; its activity is "
        "hidden from this role: grant pg_read_all_stats to postgres to see it); nothing was changed, "
        "run again when that transaction ends"
    )
    assert scalar(conn, "SELECT count(*) FROM pg_proc WHERE proname = 'handle_new_user'") == 0
    assert scalar(conn, "SELECT to_regclass('public.cleanup_audit_log')") is None
    assert run("apply", "--yes", "--config", str(cfg), db=database).exit_code == 0


def test_with_pg_read_all_stats_the_blocker_is_named_with_its_age_and_query(
    database: Database, admin: psycopg.Connection, tmp_path: Path
) -> None:
    cfg = tmp_path / "ghostguard.toml"
    cfg.write_text("[trigger]\nlock_timeout = '100ms'\n")
    admin.execute("GRANT pg_read_all_stats TO postgres")
    try:
        with psycopg.connect(database.auth_url) as owner:
            owner.execute("LOCK TABLE auth.users IN ACCESS EXCLUSIVE MODE")
            result = run("apply", "--yes", "--config", str(cfg), db=database)
            owner.rollback()
    finally:
        admin.execute("REVOKE pg_read_all_stats FROM postgres")
    assert result.exit_code == 2
    assert re.search(
        r"in the way: pid \d+ \(application \?, role supabase_auth_admin, idle in transaction, "
        r"transaction open \d+:\d\d:\d\d, query started \d{4}-\d\d-\d\d \d\d:\d\d:\d\d \w+, "
        r"holds AccessExclusiveLock on auth.users, query 'LOCK TABLE auth.users IN ACCESS EXCLUSIVE MODE'\)",
        result.stderr,
    ), result.stderr


def test_a_second_concurrent_run_is_refused_naming_the_holder(
    database: Database, conn: psycopg.Connection
) -> None:
    from ghostguard.config import Config
    from ghostguard.locks import LOCK_CLASS, lock_key

    with psycopg.connect(
        database.url, autocommit=True, application_name="other-ghostguard"
    ) as holder:
        holder.execute("SELECT pg_advisory_lock(%s, %s)", (LOCK_CLASS, lock_key(Config())))
        result = run("apply", "--yes", db=database)
        pid = holder.info.backend_pid
    assert result.exit_code == 3
    assert result.stderr.startswith(
        f"refused: apply refused: another ghostguard run holds the lock (pid {pid}, "
        "role postgres, application other-ghostguard"
    )
    assert scalar(conn, "SELECT count(*) FROM pg_proc WHERE proname = 'handle_new_user'") == 0


def test_signups_during_apply_are_neither_lost_nor_duplicated(
    database: Database, auth: AuthServer, conn: psycopg.Connection
) -> None:
    auth.signup_many(authserver.email_user(f"before{i}@example.com") for i in range(300))
    stop = threading.Event()

    def keep_signing_up() -> None:
        with psycopg.connect(database.auth_url, autocommit=True) as c:
            writer = AuthServer(c)
            n = 0
            while not stop.is_set() and n < 2000:
                writer.signup(authserver.email_user(f"during{n}@example.com"))
                n += 1

    thread = threading.Thread(target=keep_signing_up)
    thread.start()
    try:
        result = run("apply", "--yes", db=database)
    finally:
        stop.set()
        thread.join()
    # CREATE TRIGGER waits for in-flight signups, so all pre-trigger rows are in the backfill's snapshot.
    assert result.exit_code == 0, result.output
    assert scalar(conn, "SELECT count(*) FROM auth.users") > 300
    assert ghost_count(conn) == 0
    assert scalar(conn, "SELECT count(*) FROM public.users") == scalar(
        conn, "SELECT count(*) FROM auth.users"
    )


def _on_a_terminal(args: list[str], answer: bytes) -> tuple[int, str]:
    """Run the real CLI with a pseudo-terminal as stdin and type `answer` at the prompt."""
    import os
    import pty
    import subprocess
    import sys

    leader, follower = pty.openpty()
    proc = subprocess.Popen(
        [sys.executable, "-m", "ghostguard", *args],
        stdin=follower,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    os.close(follower)
    os.write(leader, answer)
    out, err = proc.communicate(timeout=120)
    os.close(leader)
    return proc.returncode, (out + err).decode()


def test_on_a_terminal_apply_asks_and_respects_the_answer(
    database: Database, auth: AuthServer, conn: psycopg.Connection
) -> None:
    make_ghosts(auth, conn)
    code, output = _on_a_terminal(["apply", "--db-url", database.url], b"n\n")
    assert code == 3 and "refused: not confirmed: nothing was changed" in output
    assert scalar(conn, "SELECT count(*) FROM public.users") == 0
    code, output = _on_a_terminal(["apply", "--db-url", database.url], b"y\n")
    assert code == 0, output
    assert "backfilled profiles: 8" in output
    assert scalar(conn, "SELECT count(*) FROM public.users") == 8
