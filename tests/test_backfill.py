"""Issue 3: the batched backfill under load, killed and resumed, blocked by locks, with progress."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import psycopg
import pytest
from click.testing import Result

from conftest import Database, ghost_count, run, scalar
from ghostguard.supabase import authserver
from ghostguard.supabase.authserver import AuthServer

# `n` email users in one statement, stored the way the Auth server stores them (set-based: one
# signup at a time took most of this file's run time).
LOAD_USERS = """
INSERT INTO auth.users (instance_id, id, aud, role, email, encrypted_password, email_confirmed_at,
  confirmation_token, recovery_token, email_change_token_new, email_change, phone_change,
  phone_change_token, email_change_token_current, reauthentication_token,
  raw_app_meta_data, raw_user_meta_data, created_at, updated_at)
SELECT '00000000-0000-0000-0000-000000000000', gen_random_uuid(), 'authenticated', 'authenticated',
  'u' || g || '@load.example', '', now(), '', '', '', '', '', '', '', '',
  '{"provider": "email", "providers": ["email"]}', jsonb_build_object('full_name', 'U ' || g),
  now(), now()
FROM generate_series(1, %s) g
"""


def _installed_with_ghosts(
    database: Database, auth: AuthServer, conn: psycopg.Connection, n: int
) -> list[uuid.UUID]:
    """The trigger installed, then `n` users whose profiles were deleted (ghosts the trigger cannot fix)."""
    assert run("apply", "--yes", db=database).exit_code == 0
    assert auth.conn.execute(LOAD_USERS, (n,)).rowcount == n
    assert scalar(conn, "SELECT count(*) FROM public.users") == n  # the trigger made them
    conn.execute("DELETE FROM public.users")
    return [r[0] for r in conn.execute("SELECT id FROM auth.users ORDER BY id").fetchall()]


def kill_mid_run(
    database: Database, conn: psycopg.Connection, far_enough: Callable[[], bool], *args: str
) -> None:
    """`ghostguard backfill` in a process of its own, slowed down, SIGKILLed once `far_enough`;
    returns when its backends are gone (an in-flight batch rolled back)."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "ghostguard", "backfill", "--yes", "--batch-size", "200"]
        + ["--max-rate", "2000", *args, "--db-url", database.url],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env={**os.environ, "DATABASE_URL": ""},
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not far_enough():
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    deadline = time.monotonic() + 30
    while scalar(
        conn,
        "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
        "AND application_name = 'ghostguard'",
    ):
        assert time.monotonic() < deadline, "the killed client's backend is still there after 30s"
        time.sleep(0.05)


def _audit(conn: psycopg.Connection) -> list[tuple[object, ...]]:
    return conn.execute(
        "SELECT id::text, status, records_affected, details ->> 'resumed_from', details ->> 'checkpoint' "
        "FROM public.cleanup_audit_log WHERE job_name = 'backfill_ghost_users' ORDER BY started_at"
    ).fetchall()


def test_batches_checkpoint_in_the_audit_row(
    database: Database, auth: AuthServer, conn: psycopg.Connection
) -> None:
    ids = _installed_with_ghosts(database, auth, conn, 1200)
    result = run("backfill", "--yes", "--json", "--batch-size", "500", db=database)
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert (data["inserted"], data["scanned"], data["batches"], data["retries"]) == (
        1200,
        1200,
        3,
        0,
    )
    assert ghost_count(conn) == 0
    last = _audit(conn)[-1]
    assert last[1:3] == ("success", 1200) and last[4] == str(ids[-1])
    details = scalar(conn, "SELECT details FROM public.cleanup_audit_log WHERE id = %s", last[0])
    assert details["batches"] == 3 and details["scanned"] == 1200  # type: ignore[index]
    # profile columns are mapped exactly as the trigger would
    row = conn.execute(
        "SELECT email, full_name FROM public.users WHERE id = %s", (ids[0],)
    ).fetchone()
    assert row is not None and row[0].endswith("@load.example") and row[1].startswith("U ")


def test_backfill_while_users_sign_up_and_sign_in(
    database: Database, auth: AuthServer, conn: psycopg.Connection
) -> None:
    ids = _installed_with_ghosts(database, auth, conn, 3000)
    stop = threading.Event()
    failures: list[BaseException] = []

    def signups() -> None:
        with psycopg.connect(database.auth_url, autocommit=True) as c:
            writer, n = AuthServer(c), 0
            while not stop.is_set() and n < 3000:
                writer.signup(authserver.email_user(f"live{n}@load.example"))
                n += 1

    def sign_ins() -> None:
        with psycopg.connect(database.auth_url, autocommit=True) as c:
            writer, n = AuthServer(c), 0
            while not stop.is_set() and n < 3000:
                writer.sign_in(ids[n % len(ids)])
                n += 1

    def guarded(work: object) -> None:
        try:
            work()  # type: ignore[operator]
        except BaseException as exc:  # noqa: BLE001 - collected and asserted below
            failures.append(exc)

    threads = [threading.Thread(target=guarded, args=(w,)) for w in (signups, sign_ins, sign_ins)]
    for t in threads:
        t.start()
    try:
        result = run("backfill", "--yes", "--batch-size", "200", db=database)
    finally:
        stop.set()
        for t in threads:
            t.join()
    assert failures == []
    assert result.exit_code == 0, result.output
    assert ghost_count(conn) == 0
    assert scalar(conn, "SELECT count(*) FROM public.users") == scalar(
        conn, "SELECT count(*) FROM auth.users"
    )
    assert scalar(conn, "SELECT count(*) FROM auth.users") > 3000


@pytest.mark.parametrize("jobs", [1, 2])
def test_sigkill_mid_run_then_the_next_run_resumes(
    database: Database, auth: AuthServer, conn: psycopg.Connection, jobs: int
) -> None:
    _installed_with_ghosts(database, auth, conn, 6000)

    def far_enough() -> bool:
        rows = _audit(conn)
        return bool(rows) and rows[-1][1] == "running" and int(rows[-1][2] or 0) >= 1000  # type: ignore[call-overload]

    kill_mid_run(database, conn, far_enough, "--jobs", str(jobs))
    killed = _audit(conn)[-1]
    done_before = scalar(conn, "SELECT count(*) FROM public.users")
    assert killed[1] == "running" and killed[2] == done_before and 1000 <= int(done_before) < 6000  # type: ignore[call-overload]

    left = scalar(conn, "SELECT count(*) FROM auth.users WHERE id > %s::uuid", killed[4])
    # Since the interruption, a user behind the checkpoint lost their profile: the sweep finds it.
    lost = scalar(
        conn, "SELECT id FROM public.users WHERE id <= %s::uuid ORDER BY id LIMIT 1", killed[4]
    )
    conn.execute("DELETE FROM public.users WHERE id = %s", (lost,))
    result = run(
        "backfill", "--yes", "--json", db=database, env={"GHOSTGUARD_PROGRESS_SECONDS": "0"}
    )
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["resumed_from"] == killed[0]
    assert data["inserted"] == 6000 - int(done_before) + 1  # type: ignore[call-overload]
    # Progress counts what is left after the checkpoint, not the whole table.
    first_line = result.stderr.splitlines()[0]
    assert f"/{left:,} auth rows scanned" in first_line, first_line
    # The main pass scans only after the checkpoint. One connection checkpoints exactly; with
    # two, windows finish out of order and at most the two in flight at the kill are redone.
    redone = data["scanned"] - (6000 - int(done_before))  # type: ignore[call-overload]
    assert redone == 0 if jobs == 1 else 0 <= redone <= 2 * 200
    # Then the sweep: every key up to the checkpoint it started from, once.
    assert data["swept"] == 6000 - int(left)  # type: ignore[call-overload]
    assert scalar(conn, "SELECT count(*) FROM public.users WHERE id = %s", lost) == 1
    rows = _audit(conn)
    assert [(r[1], r[2]) for r in rows[-2:]] == [
        ("interrupted", done_before),
        ("success", data["inserted"]),
    ]
    assert rows[-1][3] == killed[0]
    assert scalar(
        conn, "SELECT error_message FROM public.cleanup_audit_log WHERE id = %s", killed[0]
    ) == (f"interrupted: its process or connection ended; continued by run {rows[-1][0]}")
    assert ghost_count(conn) == 0


def test_a_locked_auth_table_makes_batches_retry_then_fail_cleanly(
    database: Database, auth: AuthServer, conn: psycopg.Connection, tmp_path: Path
) -> None:
    _installed_with_ghosts(database, auth, conn, 300)
    cfg = tmp_path / "ghostguard.toml"
    cfg.write_text("[trigger]\nlock_timeout = '100ms'\n")
    with psycopg.connect(database.auth_url) as owner:
        owner.execute("LOCK TABLE auth.users IN ACCESS EXCLUSIVE MODE")
        result = run("backfill", "--yes", "--config", str(cfg), db=database)
        holder = owner.info.backend_pid
        owner.rollback()
    assert result.exit_code == 2
    assert result.stderr == (
        "error: backfill: the first batch gave up retrying (4 retries): canceling statement due to lock timeout; "
        f"in the way: pid {holder} (role supabase_auth_admin, holds AccessExclusiveLock on auth.users; its "
        "activity is hidden from this role: grant pg_read_all_stats to postgres to see it); progress is saved: "
        "run again to resume\n"
    )
    assert scalar(conn, "SELECT count(*) FROM public.users") == 0
    assert _audit(conn)[-1][1:3] == ("failed", None)
    again = run("backfill", "--yes", "--config", str(cfg), "--json", db=database)
    assert again.exit_code == 0 and json.loads(again.stdout)["inserted"] == 300
    assert ghost_count(conn) == 0


def test_batches_on_several_connections_cover_every_key_once(
    database: Database, auth: AuthServer, conn: psycopg.Connection
) -> None:
    ids = _installed_with_ghosts(database, auth, conn, 2000)
    result = run(
        "backfill",
        "--yes",
        "--json",
        "--jobs",
        "3",
        "--no-yield",
        "--batch-size",
        "100",
        db=database,
    )
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert (data["inserted"], data["scanned"], data["batches"], data["jobs"]) == (2000, 2000, 20, 3)
    assert ghost_count(conn) == 0
    assert scalar(conn, "SELECT count(*) FROM public.users") == 2000
    assert _audit(conn)[-1][1:3] == ("success", 2000) and _audit(conn)[-1][4] == str(ids[-1])


def test_a_connection_limit_means_fewer_batch_connections_not_a_failure(
    database: Database, auth: AuthServer, conn: psycopg.Connection, admin: psycopg.Connection
) -> None:
    _installed_with_ghosts(database, auth, conn, 500)
    others = scalar(conn, "SELECT count(*) FROM pg_stat_activity WHERE usename = 'postgres'")
    # Room for this test's connections, the CLI's coordinating one and one batch connection.
    admin.execute(f"ALTER ROLE postgres CONNECTION LIMIT {int(others) + 2}")  # type: ignore[call-overload]
    try:
        result = run("backfill", "--yes", "--json", "--jobs", "4", "--no-yield", db=database)
    finally:
        admin.execute("ALTER ROLE postgres CONNECTION LIMIT -1")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert (data["jobs"], data["inserted"]) == (1, 500)
    assert ghost_count(conn) == 0


def test_a_batch_that_gives_up_keeps_the_others_and_the_next_run_finishes(
    database: Database, auth: AuthServer, conn: psycopg.Connection, tmp_path: Path
) -> None:
    """Windows finish out of order: the failed run's checkpoint stops before the window that gave
    up, the windows after it that finished keep their profiles, and the next run does the rest."""
    ids = _installed_with_ghosts(database, auth, conn, 1000)
    blocked = ids[250]
    cfg = tmp_path / "ghostguard.toml"
    cfg.write_text("[trigger]\nlock_timeout = '100ms'\n")
    with psycopg.connect(database.url) as other:
        # An uncommitted profile for one ghost: the batch that reaches it waits on that transaction.
        other.execute(
            "INSERT INTO public.users (id, email) VALUES (%s, 'racing@example.com')", (blocked,)
        )
        result = run(
            "backfill",
            "--yes",
            "--config",
            str(cfg),
            "--jobs",
            "2",
            "--no-yield",
            "--batch-size",
            "100",
            db=database,
        )
        other.rollback()
    assert result.exit_code == 2
    assert "gave up retrying (4 retries): canceling statement due to lock timeout" in result.stderr
    assert result.stderr.endswith("progress is saved: run again to resume\n")
    failed = _audit(conn)[-1]
    assert failed[1] == "failed"
    present = {r[0] for r in conn.execute("SELECT id FROM public.users").fetchall()}
    assert failed[2] == len(present) and blocked not in present
    assert ids[-1] in present, "windows after the blocked one ran on the other connection"
    checkpoint = uuid.UUID(str(failed[4]))
    assert ids[199] <= checkpoint < blocked  # the blocked window is (ids[199], ids[299]]
    assert all(i in present for i in ids if i <= checkpoint)

    again = run("backfill", "--yes", "--json", db=database)
    assert again.exit_code == 0, again.output
    data = json.loads(again.stdout)
    assert data["resumed_from"] == failed[0] and data["inserted"] == 1000 - len(present)
    assert ghost_count(conn) == 0


def _backfill_showing_progress(database: Database) -> Result:
    """A backfill in batches of 250 with a plain progress line after every batch."""
    return run(
        "backfill",
        "--yes",
        "--json",
        "--batch-size",
        "250",
        db=database,
        env={"GHOSTGUARD_PROGRESS_SECONDS": "0"},
    )


def test_plain_progress_lines_on_stderr_and_only_the_result_on_stdout(
    database: Database, auth: AuthServer, conn: psycopg.Connection
) -> None:
    _installed_with_ghosts(database, auth, conn, 1000)
    result = _backfill_showing_progress(database)
    assert result.exit_code == 0
    json.loads(result.stdout)  # stdout is exactly the JSON result
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 4
    assert lines[-1].startswith(
        "backfill: 1,000/1,000 auth rows scanned (100%), 1,000 profiles created, "
    )


def test_max_rate_limits_the_scan_rate(
    database: Database, auth: AuthServer, conn: psycopg.Connection
) -> None:
    _installed_with_ghosts(database, auth, conn, 600)
    result = run(
        "backfill", "--yes", "--json", "--batch-size", "200", "--max-rate", "1000", db=database
    )
    assert result.exit_code == 0
    assert (
        json.loads(result.stdout)["seconds"] >= 0.55
    )  # 600 rows at 1,000 rows/s (correctness of the limiter)


def test_the_backfill_yields_while_other_sessions_write(
    database: Database, auth: AuthServer, conn: psycopg.Connection
) -> None:
    _installed_with_ghosts(database, auth, conn, 1500)
    alone = run("backfill", "--yes", "--json", "--batch-size", "500", db=database)
    assert alone.exit_code == 0 and json.loads(alone.stdout)["yielded_seconds"] == 0
    conn.execute("DELETE FROM public.users")
    with psycopg.connect(database.auth_url) as writer:  # a writing transaction stays open meanwhile
        writer.execute(
            "UPDATE auth.users SET last_sign_in_at = now() WHERE id = (SELECT id FROM auth.users LIMIT 1)"
        )
        busy = run("backfill", "--yes", "--json", "--batch-size", "500", db=database)
        writer.rollback()
    data = json.loads(busy.stdout)
    assert busy.exit_code == 0 and data["inserted"] == 1500
    assert data["yielded_seconds"] > 0
    unyielding = run("backfill", "--yes", "--json", "--no-yield", db=database)
    assert unyielding.exit_code == 0 and json.loads(unyielding.stdout)["yielded_seconds"] == 0
    assert ghost_count(conn) == 0


def test_progress_never_reads_over_100_percent_when_the_estimate_is_low(
    database: Database, auth: AuthServer, conn: psycopg.Connection, admin: psycopg.Connection
) -> None:
    _installed_with_ghosts(database, auth, conn, 300)
    admin.execute("ANALYZE auth.users")  # the planner now expects 300 rows
    authserver.import_users(auth.conn, 700)
    conn.execute("DELETE FROM public.users")
    result = _backfill_showing_progress(database)
    assert result.exit_code == 0, result.output
    lines = result.stderr.strip().splitlines()
    shares = [int(s) for line in lines for s in re.findall(r"\((\d+)%\)", line)]
    assert shares and max(shares) == 100
    assert lines[-1].startswith("backfill: 1,000/1,000 auth rows scanned (100%), 1,000 profiles")
    assert "ETA" not in lines[-1]  # past the estimate the remainder is unknown, not zero


def test_a_backfilled_users_failure_is_resolved(
    database: Database, auth: AuthServer, conn: psycopg.Connection
) -> None:
    assert run("apply", "--yes", db=database).exit_code == 0
    user = auth.signup(authserver.email_user("once-failed@example.com", full_name="Once"))
    conn.execute("DELETE FROM public.users WHERE id = %s", (user,))  # a ghost ...
    conn.execute(  # ... whose profile write was recorded as failing (say, a lock timeout)
        "INSERT INTO public.profile_sync_failures (user_id, operation, sqlstate, message) "
        "VALUES (%s, 'INSERT', '55P03', 'canceling statement due to lock timeout')",
        (str(user),),
    )
    assert run("scan", db=database).exit_code == 1
    result = run("backfill", "--yes", "--json", db=database)
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["inserted"] == 1
    resolved = conn.execute(
        "SELECT resolved_at IS NOT NULL, resolution FROM public.profile_sync_failures "
        "WHERE user_id = %s",
        (str(user),),
    ).fetchall()
    assert resolved == [(True, "resolved: a profile was created (backfill)")]
    assert run("scan", db=database).exit_code == 0


def test_a_locked_analyze_is_said_not_an_error(
    database: Database, auth: AuthServer, conn: psycopg.Connection, tmp_path: Path
) -> None:
    _installed_with_ghosts(database, auth, conn, 50)
    cfg = tmp_path / "ghostguard.toml"
    cfg.write_text("[trigger]\nlock_timeout = '100ms'\n")
    with psycopg.connect(database.url, application_name="vacuum-like") as holder:
        # what VACUUM or CREATE INDEX CONCURRENTLY hold: inserts pass, ANALYZE waits
        holder.execute("LOCK TABLE public.users IN SHARE UPDATE EXCLUSIVE MODE")
        result = run("backfill", "--yes", "--config", str(cfg), db=database)
        holder.rollback()
    assert result.exit_code == 0, result.output
    assert "backfilled profiles: 50" in result.stdout
    assert "note: ANALYZE skipped (another session holds public.users; in the way: pid " in (
        result.stdout
    )
    assert ghost_count(conn) == 0
    assert _audit(conn)[-1][1] == "success"


@pytest.mark.parametrize(("signum", "code"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_ctrl_c_and_sigterm_say_what_was_done_and_how_to_resume(
    database: Database, auth: AuthServer, conn: psycopg.Connection, signum: int, code: int
) -> None:
    _installed_with_ghosts(database, auth, conn, 3000)
    proc = subprocess.Popen(
        [sys.executable, "-m", "ghostguard", "backfill", "--yes", "--json", "--batch-size", "200"]
        + ["--max-rate", "2000", "--db-url", database.url],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "DATABASE_URL": "", "GHOSTGUARD_PROGRESS_SECONDS": "3600"},
    )
    deadline = time.monotonic() + 60
    while (
        time.monotonic() < deadline and int(scalar(conn, "SELECT count(*) FROM public.users")) < 600
    ):  # type: ignore[call-overload]
        time.sleep(0.05)
    os.kill(proc.pid, signum)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == code, err
    data = json.loads(out)
    name = signal.Signals(signum).name
    assert data["interrupted"] == name and data["resume"] == "ghostguard backfill --yes"
    last = err.strip().splitlines()[-1]
    assert last.startswith(f"interrupted: backfill interrupted by {name} after creating ")
    assert last.endswith("the checkpoint is kept: run `ghostguard backfill --yes` to resume")
    done = int(scalar(conn, "SELECT count(*) FROM public.users"))  # type: ignore[call-overload]
    assert data["inserted"] == done and 0 < done < 3000
    status, message = conn.execute(
        "SELECT status, error_message FROM public.cleanup_audit_log "
        "WHERE job_name = 'backfill_ghost_users' ORDER BY started_at DESC LIMIT 1"
    ).fetchone()  # type: ignore[misc]
    assert (status, message) == ("failed", f"interrupted by {name}")
    resumed = run("backfill", "--yes", "--json", db=database)
    assert resumed.exit_code == 0, resumed.output
    assert json.loads(resumed.stdout)["resumed_from"] == data["run_id"]
    assert ghost_count(conn) == 0
