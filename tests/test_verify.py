"""verify: the guide's five checks, the success criteria, and a probe that leaves nothing behind."""

from __future__ import annotations

import json

import psycopg

from conftest import Database, make_ghosts, run, scalar
from ghostguard.supabase.authserver import AuthServer


def _checks(stdout: str) -> dict[str, tuple[bool, str]]:
    data = json.loads(stdout)
    return {c["name"]: (c["passed"], c["detail"]) for c in data["checks"]}


def test_before_apply_every_check_fails_and_exit_is_1(
    database: Database, auth: AuthServer, conn: psycopg.Connection
) -> None:
    make_ghosts(auth, conn)
    result = run("verify", "--json", db=database)
    assert result.exit_code == 1
    checks = _checks(result.stdout)
    assert checks["no_ghosts"] == (
        False,
        "8 ghost users (3 email, 1 phone, 1 anonymous, 1 sso, 1 soft_deleted, 1 other)",
    )
    assert checks["counts_match"][0] is False
    assert checks["counts_match"][1] == (
        "auth.users: 8, active public.users: 0; difference +8 = 8 ghosts + 0 "
        "soft-deleted profiles - 0 orphan profiles"
    )
    assert checks["trigger_installed"] == (
        False,
        "trigger on_auth_user_created on auth.users is missing",
    )
    assert checks["backfill_logged"] == (False, "public.cleanup_audit_log does not exist")
    assert checks["registration_probe"] == (
        False,
        "signup succeeded but no public.users row appeared (ran as postgres with search_path = auth)",
    )
    assert json.loads(result.stdout)["probe_ran_as"] == "postgres with search_path = auth"


def test_after_apply_all_pass_and_the_probe_leaves_nothing(
    database: Database, auth: AuthServer, conn: psycopg.Connection
) -> None:
    make_ghosts(auth, conn)
    assert run("apply", "--yes", db=database).exit_code == 0
    counts = lambda: conn.execute(  # noqa: E731
        "SELECT (SELECT count(*) FROM auth.users), (SELECT count(*) FROM auth.identities), "
        "(SELECT count(*) FROM auth.audit_log_entries), (SELECT count(*) FROM public.users)"
    ).fetchone()
    before = counts()
    result = run("verify", db=database)
    assert result.exit_code == 0, result.output
    assert "6/6 success criteria met" in result.stdout
    as_json = run("verify", "--json", db=database)
    assert _checks(as_json.stdout)["counts_match"] == (
        True,
        (
            "auth.users: 8, active public.users: 7; difference +1 = 0 ghosts + 1 soft-deleted profiles "
            "- 0 orphan profiles"
        ),
    )
    assert counts() == before
    assert (
        scalar(conn, "SELECT count(*) FROM auth.users WHERE email LIKE 'ghostguard-probe-%'") == 0
    )


def test_probe_runs_as_the_auth_server_role_when_postgres_may_assume_it(
    database: Database, admin: psycopg.Connection
) -> None:
    assert run("apply", "--yes", db=database).exit_code == 0
    admin.execute("GRANT supabase_auth_admin TO postgres")
    try:
        result = run("verify", "--json", db=database)
    finally:
        admin.execute("REVOKE supabase_auth_admin FROM postgres")
    assert result.exit_code == 0
    assert json.loads(result.stdout)["probe_ran_as"] == "supabase_auth_admin"


def test_a_trigger_that_raises_fails_the_probe_like_a_real_signup(
    database: Database, conn: psycopg.Connection
) -> None:
    assert run("apply", "--yes", db=database).exit_code == 0
    conn.execute("ALTER TABLE public.users ADD COLUMN plan text NOT NULL DEFAULT 'free'")
    conn.execute("ALTER TABLE public.users ADD CONSTRAINT paid CHECK (plan <> 'free')")
    result = run("verify", "--json", db=database)
    assert result.exit_code == 1
    passed, detail = _checks(result.stdout)["registration_probe"]
    assert not passed
    # The signup itself succeeds (the trigger never blocks it); the probe names the recorded failure.
    assert detail.startswith(
        "signup succeeded, but its profile write failed (recorded in public.profile_sync_failures, "
        'not raised): new row for relation "users" violates check constraint "paid"'
    )
    assert scalar(conn, "SELECT count(*) FROM public.profile_sync_failures") == 0  # rolled back


def test_a_disabled_trigger_fails_check_3(database: Database, admin: psycopg.Connection) -> None:
    assert run("apply", "--yes", db=database).exit_code == 0
    admin.execute("ALTER TABLE auth.users DISABLE TRIGGER on_auth_user_created")
    result = run("verify", "--json", db=database)
    assert result.exit_code == 1
    assert _checks(result.stdout)["trigger_installed"] == (
        False,
        "trigger on_auth_user_created is disabled (D)",
    )


def test_a_function_opened_to_api_roles_fails_the_security_check(
    database: Database, conn: psycopg.Connection
) -> None:
    assert run("apply", "--yes", db=database).exit_code == 0
    conn.execute("GRANT EXECUTE ON FUNCTION public.handle_new_user() TO anon")
    out = run("verify", "--json", db=database).stdout
    checks = _checks(out)
    assert checks["function_secure"] == (False, "EXECUTE granted to anon")
    # verify's checks are findings like doctor's: each has a level and a fix
    secure = next(c for c in json.loads(out)["checks"] if c["name"] == "function_secure")
    assert (secure["level"], secure["fix"]) == (
        "error",
        "run `ghostguard apply --yes` to reinstall it",
    )
    assert secure["remediation"] == secure["fix"]  # the name earlier versions used
    ghosts = next(c for c in json.loads(out)["checks"] if c["name"] == "no_ghosts")
    assert (ghosts["level"], ghosts["passed"], ghosts["fix"]) == ("error", True, "")
