"""scan: read-only truth, ghosts by kind, orphans, trigger and function state, exit code for cron."""

from __future__ import annotations

import json

import psycopg

from conftest import Database, make_ghosts, run, scalar
from ghostguard.supabase.authserver import AuthServer


def test_scan_splits_ghosts_by_kind_and_exits_1(
    database: Database, auth: AuthServer, conn: psycopg.Connection
) -> None:
    ids = make_ghosts(auth, conn)
    conn.execute(
        "INSERT INTO public.users (id, email) VALUES (%s, 'ada@example.com')", (ids["email"],)
    )
    conn.execute("INSERT INTO public.users (id) VALUES (gen_random_uuid())")  # an orphan profile
    result = run("scan", "--json", db=database)
    assert result.exit_code == 1
    data = json.loads(result.stdout)
    # email user has a profile now; google, github and the SSO user are email kinds
    assert data["ghosts"] == {
        "email": 2,
        "phone": 1,
        "anonymous": 1,
        "sso": 1,
        "soft_deleted": 1,
        "other": 1,
    }
    assert data["ghost_total"] == 7
    assert data["counts"] == {
        "auth_users": 8,
        "profiles": 2,
        "soft_deleted_profiles": 0,
        "orphan_profiles": 1,
    }
    assert data["trigger"] is None and data["function"] is None
    assert str(ids["phone"]) in data["sample_ghost_ids"]


def test_scan_changes_nothing(
    database: Database, auth: AuthServer, conn: psycopg.Connection
) -> None:
    make_ghosts(auth, conn)
    before = scalar(
        conn, "SELECT xact_commit FROM pg_stat_database WHERE datname = current_database()"
    )
    assert run("scan", db=database).exit_code == 1
    assert scalar(conn, "SELECT count(*) FROM public.users") == 0
    assert scalar(conn, "SELECT to_regclass('public.cleanup_audit_log')") is None
    assert before is not None


def test_scan_human_report_and_clean_exit(
    database: Database, auth: AuthServer, conn: psycopg.Connection
) -> None:
    assert run("apply", "--yes", db=database).exit_code == 0
    make_ghosts(auth, conn)  # the trigger now creates profiles
    result = run("scan", db=database)
    assert result.exit_code == 0, result.output
    assert "ghost users      0" in result.stdout
    assert (
        "on_auth_user_created on auth.users: enabled, calls public.handle_new_user()"
        in result.stdout
    )
    assert (
        "public.handle_new_user(): SECURITY DEFINER, search_path = '', owner postgres, no API EXECUTE"
        in result.stdout
    )


def test_scan_reports_someone_elses_trigger_and_insecure_function(
    database: Database, conn: psycopg.Connection
) -> None:
    conn.execute(
        "CREATE FUNCTION public.handle_new_user() RETURNS trigger LANGUAGE plpgsql AS "
        "$$ BEGIN INSERT INTO public.users (id) VALUES (NEW.id); RETURN NEW; END $$"
    )
    conn.execute(
        "CREATE FUNCTION public.other() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RETURN NULL; END $$"
    )
    conn.execute(
        "CREATE TRIGGER on_auth_user_created AFTER INSERT ON auth.users FOR EACH ROW "
        "EXECUTE FUNCTION public.other()"
    )
    data = json.loads(run("scan", "--json", db=database).stdout)
    assert data["trigger"]["function_name"] == "other" and data["trigger_calls_ours"] is False
    assert data["function"]["security_definer"] is False and data["function"]["search_path"] is None
    assert data["function"]["executable_by"] == ["PUBLIC", "anon", "authenticated", "service_role"]


def test_fail_on_chooses_the_conditions_that_exit_1(
    database: Database, auth: AuthServer, conn: psycopg.Connection, admin: psycopg.Connection
) -> None:
    # Nothing installed: drift; ghosts exist.
    make_ghosts(auth, conn)
    drifted = run("scan", "--json", "--fail-on", "drift", db=database)
    assert drifted.exit_code == 1
    assert (
        "trigger on_auth_user_created on auth.users is missing"
        in json.loads(drifted.stdout)["drift"]
    )
    assert run("scan", "--fail-on", "failures", db=database).exit_code == 0  # ghosts, no failures
    assert run("scan", "--fail-on", "ghosts,failures", db=database).exit_code == 1

    assert run("apply", "--yes", db=database).exit_code == 0
    clean = run("scan", "--json", "--fail-on", "ghosts,failures,drift,blocking-fks", db=database)
    assert clean.exit_code == 0, clean.stdout
    assert json.loads(clean.stdout)["drift"] == []

    admin.execute("ALTER TABLE auth.users DISABLE TRIGGER on_auth_user_updated")
    disabled = run("scan", "--fail-on", "drift", db=database)
    assert disabled.exit_code == 1
    assert "drift: trigger on_auth_user_updated is disabled (D)" in disabled.stdout
    assert run("scan", "--fail-on", "ghosts", db=database).exit_code == 0
    # The fix scan prints: apply replaces the trigger, which enables it again.
    assert run("apply", "--yes", db=database).exit_code == 0
    assert run("scan", "--fail-on", "drift", db=database).exit_code == 0


def test_fail_on_rejects_an_unknown_condition(database: Database) -> None:
    result = run("scan", "--fail-on", "ghosts,typo", db=database)
    assert result.exit_code == 2
    assert (
        "typo is not a condition; choose from ghosts, failures, drift, blocking-fks"
        in result.stderr
    )
