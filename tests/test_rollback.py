"""rollback: trigger and function go, every profile stays, works as a non-owner and when empty."""

from __future__ import annotations

import json

import psycopg

from conftest import Database, make_ghosts, run, scalar
from ghostguard.supabase.authserver import AuthServer


def test_rollback_twice_then_apply_again(
    database: Database, auth: AuthServer, conn: psycopg.Connection
) -> None:
    make_ghosts(auth, conn)
    assert run("apply", "--yes", db=database).exit_code == 0
    first = run("rollback", "--yes", "--json", db=database)
    assert first.exit_code == 0, first.output
    assert json.loads(first.stdout) == {
        "dropped_function": True,
        "dropped_trigger": True,
        "left_in_place": [],
        "profiles_kept": 8,
        "audited": True,
        "restored": [],
    }
    assert (
        scalar(conn, "SELECT count(*) FROM pg_trigger WHERE tgname = 'on_auth_user_created'") == 0
    )
    assert scalar(conn, "SELECT count(*) FROM pg_proc WHERE proname = 'handle_new_user'") == 0
    assert scalar(conn, "SELECT count(*) FROM public.users") == 8
    assert conn.execute(
        "SELECT status, details FROM public.cleanup_audit_log WHERE job_name = 'rollback_user_sync'"
    ).fetchall() == [("success", {"dropped_function": True, "dropped_trigger": True})]
    second = run("rollback", "--yes", db=database)
    assert second.exit_code == 0
    assert second.stdout.splitlines() == [
        "nothing to roll back: ghostguard's sync function is not installed",
        "profiles kept: 8",
    ]
    again = run("apply", "--yes", db=database)
    assert again.exit_code == 0, again.output
    assert (
        scalar(conn, "SELECT count(*) FROM pg_trigger WHERE tgname = 'on_auth_user_created'") == 1
    )


def test_rollback_on_a_fresh_database_does_nothing(
    database: Database, conn: psycopg.Connection
) -> None:
    result = run("rollback", "--yes", db=database)
    assert result.exit_code == 0
    assert scalar(conn, "SELECT to_regclass('public.cleanup_audit_log')") is None


def test_rollback_refuses_to_cascade_into_someone_elses_trigger(
    database: Database, conn: psycopg.Connection
) -> None:
    assert run("apply", "--yes", db=database).exit_code == 0
    conn.execute("CREATE TABLE public.invites (id uuid PRIMARY KEY, email text)")
    conn.execute(
        "CREATE TRIGGER copy_invite AFTER INSERT ON public.invites FOR EACH ROW "
        "EXECUTE FUNCTION public.handle_new_user()"
    )
    result = run("rollback", "--yes", db=database)
    assert result.exit_code == 3
    assert result.stderr.strip() == (
        "refused: rollback refused: public.handle_new_user() is also called by copy_invite on public.invites; "
        "drop or repoint those triggers first (DROP FUNCTION ... CASCADE would remove them)"
    )
    assert (
        scalar(
            conn,
            "SELECT count(*) FROM pg_trigger WHERE tgname IN ('on_auth_user_created', 'copy_invite')",
        )
        == 2
    )


def test_rollback_dry_run_and_confirmation(database: Database, conn: psycopg.Connection) -> None:
    assert run("apply", "--yes", db=database).exit_code == 0
    dry = run("rollback", "--dry-run", db=database)
    assert dry.exit_code == 0
    assert 'DROP FUNCTION "public"."handle_new_user"() CASCADE;' in dry.stdout
    refused = run("rollback", db=database)
    assert refused.exit_code == 3
    assert (
        scalar(conn, "SELECT count(*) FROM pg_trigger WHERE tgname = 'on_auth_user_created'") == 1
    )
