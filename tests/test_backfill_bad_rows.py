"""The backfill never stops on data: rows that break a constraint are recorded once and named,
every other user gets a profile, and a killed run still resumes without skipping or doubling."""

from __future__ import annotations

import json

import psycopg

from conftest import Database, ghost_count, run, scalar
from ghostguard.supabase.authserver import AuthServer
from test_backfill import LOAD_USERS, kill_mid_run

SEVENS = "email LIKE '%7@load.example'"  # 1 in 10 of the loaded users
# A CHECK that NULL cannot satisfy either: a NULL fixes a nullable column's bad value, so the
# rows that break this one are rows nothing can fix.


def _ghosts(
    database: Database, auth: AuthServer, conn: psycopg.Connection, n: int, *setup: str
) -> None:
    """The trigger installed, `n` users loaded, `setup` run on auth.users, then every profile gone."""
    assert run("apply", "--yes", db=database).exit_code == 0
    auth.conn.execute(LOAD_USERS, (n,))
    for statement in setup:
        auth.conn.execute(statement)
    conn.execute("DELETE FROM public.users")


def _failures(conn: psycopg.Connection) -> list[tuple[object, ...]]:
    return conn.execute(
        "SELECT sqlstate, constraint_name, count(*), count(DISTINCT user_id) "
        "FROM public.profile_sync_failures WHERE operation = 'backfill' AND resolved_at IS NULL "
        "GROUP BY 1, 2 ORDER BY 2"
    ).fetchall()


def _last_run(conn: psycopg.Connection) -> tuple[object, ...]:
    row = conn.execute(
        "SELECT status, records_affected, records_failed, error_message FROM public.cleanup_audit_log "
        "WHERE job_name = 'backfill_ghost_users' ORDER BY started_at DESC LIMIT 1"
    ).fetchone()
    assert row is not None
    return row


def test_rows_breaking_a_check_are_recorded_once_and_the_rest_get_profiles(
    database: Database, auth: AuthServer, conn: psycopg.Connection
) -> None:
    _ghosts(database, auth, conn, 1200)
    conn.execute(
        f"ALTER TABLE public.users ADD CONSTRAINT no_sevens CHECK (email IS NOT NULL AND NOT ({SEVENS}))"
    )
    result = run("backfill", "--yes", "--json", "--batch-size", "500", db=database)
    assert result.exit_code == 1, result.output
    data = json.loads(result.stdout)
    assert (data["inserted"], data["failed"], data["scanned"]) == (1080, 120, 1200)
    assert [(g["constraint"], g["users"], len(g["examples"])) for g in data["failures"]] == [
        ("no_sevens", 120, 3)
    ]
    assert _failures(conn) == [("23514", "no_sevens", 120, 120)]
    assert _last_run(conn)[:3] == ("partial", 1080, 120)
    stuck = {
        r[0] for r in conn.execute(f"SELECT id::text FROM auth.users WHERE {SEVENS}").fetchall()
    }
    assert {
        r[0]
        for r in conn.execute(
            "SELECT id::text FROM auth.users au WHERE NOT EXISTS "
            "(SELECT 1 FROM public.users pu WHERE pu.id = au.id)"
        ).fetchall()
    } == stuck
    assert set(data["failures"][0]["examples"]) <= stuck

    # Again: the same users fail, nothing is recorded twice, the message names them and the fix.
    again = run("backfill", "--yes", "--batch-size", "500", db=database)
    assert again.exit_code == 1
    assert "120 users could not get a profile" in again.stdout
    assert "no_sevens: 120 users (e.g. " in again.stdout
    assert "ghostguard repair --yes" in again.stdout
    assert _failures(conn) == [("23514", "no_sevens", 120, 120)]
    assert _last_run(conn)[:3] == ("partial", 0, 120)
    assert "120 users could not get a profile" in str(_last_run(conn)[3])

    # The constraint relaxed, repair finishes the job.
    conn.execute("ALTER TABLE public.users DROP CONSTRAINT no_sevens")
    assert run("repair", "--yes", db=database).exit_code == 0
    assert ghost_count(conn) == 0 and _failures(conn) == []


def test_not_null_and_unique_collisions_are_named_by_their_constraint(
    database: Database, auth: AuthServer, conn: psycopg.Connection
) -> None:
    _ghosts(
        database,
        auth,
        conn,
        1000,
        "UPDATE auth.users SET raw_user_meta_data = '{}' WHERE email LIKE '%3@load.example'",
        'UPDATE auth.users SET raw_user_meta_data = \'{"full_name": "Same Name"}\' '
        "WHERE email LIKE '%55@load.example'",
    )
    conn.execute("ALTER TABLE public.users ALTER COLUMN full_name SET NOT NULL")
    conn.execute("CREATE UNIQUE INDEX users_full_name_key ON public.users (full_name)")
    result = run("backfill", "--yes", "--json", "--batch-size", "300", db=database)
    assert result.exit_code == 1, result.output
    data = json.loads(result.stdout)
    # 100 without a name (NOT NULL); 10 share one name: the first gets it, 9 collide (UNIQUE)
    assert (data["inserted"], data["failed"]) == (891, 109)
    assert _failures(conn) == [
        ("23502", "full_name NOT NULL", 100, 100),
        ("23505", "users_full_name_key", 9, 9),
    ]
    assert ghost_count(conn) == 109
    assert scalar(conn, "SELECT count(*) FROM public.users WHERE full_name = 'Same Name'") == 1


def test_a_killed_run_over_bad_rows_resumes_without_skipping_or_doubling(
    database: Database, auth: AuthServer, conn: psycopg.Connection
) -> None:
    _ghosts(database, auth, conn, 4000)
    conn.execute(
        f"ALTER TABLE public.users ADD CONSTRAINT no_sevens CHECK (email IS NOT NULL AND NOT ({SEVENS}))"
    )
    kill_mid_run(database, conn, lambda: int(_last_run(conn)[1] or 0) >= 900)  # type: ignore[call-overload]
    killed_at = int(_last_run(conn)[1] or 0)
    assert 0 < killed_at < 3600

    result = run("backfill", "--yes", "--json", db=database)
    assert result.exit_code == 1
    data = json.loads(result.stdout)
    assert data["resumed_from"] is not None
    assert ghost_count(conn) == 400  # exactly the users that break the constraint
    assert scalar(conn, "SELECT count(*) FROM public.users") == 3600
    assert _failures(conn) == [("23514", "no_sevens", 400, 400)]  # once each, across both runs
    total = scalar(
        conn,
        "SELECT sum(records_affected) FROM public.cleanup_audit_log WHERE job_name = 'backfill_ghost_users'",
    )
    assert total == 3600  # no profile counted twice
