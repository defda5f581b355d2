"""The app's own trigger on auth.users: apply never replaces or doubles it unasked (exit 3, nothing
changed); adopted, it is saved and taken over in the install transaction, and rollback puts back
exactly what was there, as the non-owner `postgres`."""

from __future__ import annotations

import json
from pathlib import Path

import psycopg
import pytest

from conftest import Database, app_grants, run, scalar
from ghostguard.supabase import authserver
from ghostguard.supabase.authserver import AuthServer

PROFILES = """
CREATE TABLE public.profiles (
  id uuid PRIMARY KEY REFERENCES auth.users (id) ON DELETE CASCADE,
  full_name text,
  avatar_url text
);
""" + app_grants("public.profiles", "id")
# The recipe from Supabase's docs ("Managing user data"), as projects paste it.
DOCS_RECIPE = """
create function public.handle_new_user()
returns trigger
language plpgsql
security definer set search_path = ''
as $$
begin
  insert into public.profiles (id, full_name, avatar_url)
  values (new.id, new.raw_user_meta_data ->> 'full_name', new.raw_user_meta_data ->> 'avatar_url');
  return new;
end;
$$;
create trigger on_auth_user_created
  after insert on auth.users
  for each row execute procedure public.handle_new_user();
"""
# Other names, another schema, a coalesce chain with an email fallback.
OWN_NAMES = """
create schema app;
create function app.create_profile() returns trigger language plpgsql security definer
set search_path = '' as $$
begin
  insert into public.profiles (id, full_name)
  values (new.id, coalesce(new.raw_user_meta_data ->> 'name', split_part(new.email, '@', 1)));
  return new;
end $$;
revoke execute on function app.create_profile() from public;
create trigger create_profile_on_signup after insert on auth.users
  for each row execute function app.create_profile();
"""
CONFIG = """
[target]
table = "profiles"
soft_delete_column = ""

[mapping.full_name]
metadata = ["full_name", "name"]
fallback = ["email_local"]

[mapping.avatar_url]
metadata = ["avatar_url"]
"""


def auth_trigger_catalog(conn: psycopg.Connection) -> list[tuple[object, ...]]:
    """Every trigger on auth.users and its function, exactly as the catalog prints them."""
    return [
        tuple(r)
        for r in conn.execute(
            "SELECT t.tgname, t.tgenabled::text, pg_get_triggerdef(t.oid), "
            "pg_get_functiondef(t.tgfoid), pg_get_userbyid(p.proowner), p.proacl::text[], "
            "obj_description(p.oid, 'pg_proc') "
            "FROM pg_trigger t JOIN pg_proc p ON p.oid = t.tgfoid "
            "WHERE t.tgrelid = 'auth.users'::regclass AND NOT t.tgisinternal ORDER BY 1"
        )
    ]


def _full_name(conn: psycopg.Connection, user: object) -> object:
    return scalar(conn, "SELECT full_name FROM public.profiles WHERE id = %s", user)


@pytest.mark.parametrize(
    ("recipe", "trigger", "function"),
    [
        (DOCS_RECIPE, "on_auth_user_created", "public.handle_new_user()"),
        (OWN_NAMES, "create_profile_on_signup", "app.create_profile()"),
    ],
    ids=["supabase docs recipe", "own names in another schema"],
)
def test_apply_refuses_then_adopts_and_rollback_restores_exactly(
    recipe: str,
    trigger: str,
    function: str,
    database: Database,
    auth: AuthServer,
    conn: psycopg.Connection,
    tmp_path: Path,
) -> None:
    conn.execute(PROFILES)
    conn.execute(recipe)
    before = auth_trigger_catalog(conn)
    config = tmp_path / "ghostguard.toml"
    config.write_text(CONFIG)
    ghost = auth.signup(authserver.phone_user("15550009999"))
    conn.execute("DELETE FROM public.profiles")  # a ghost made the usual way

    for args in (("apply", "--yes"), ("apply", "--dry-run")):
        refused = run(*args, db=database)
        assert refused.exit_code == 3, refused.output
        assert f"apply refused: trigger {trigger} (calls {function}; " in refused.stderr
        assert f'add [adopt] triggers = ["{trigger}"] to ghostguard.toml' in refused.stderr
    assert auth_trigger_catalog(conn) == before  # nothing changed
    assert scalar(conn, "SELECT to_regclass('public.cleanup_audit_log')") is None

    # scan and doctor see it for what it is: the app's own, with what it writes
    (app,) = json.loads(run("scan", "--json", db=database).stdout)["app_triggers"]
    assert (app["name"], app["function"], app["adopted"]) == (trigger, function, False)
    assert "writes public.profiles" in app["in_the_way"]
    assert "public.profiles.full_name <- " in app["writes"][1]
    text = " ".join(run("scan", db=database).stdout.split())
    assert "apply refuses until adopted" in text
    assert "apply will not replace or double them unless told to" in text
    assert f"writes public.profiles.full_name <- {app['writes'][1].split(' <- ')[1]}" in text
    doctor = json.loads(run("doctor", "--json", db=database).stdout)
    installed = next(f for f in doctor["findings"] if f["check"] == "sync_installed")
    assert installed["detail"].startswith(f"the app's own trigger {trigger} (calls {function}")
    assert installed["fix"].startswith(f'add [adopt] triggers = ["{trigger}"] to ghostguard.toml')

    config.write_text(CONFIG + f'\n[adopt]\ntriggers = ["{trigger}"]\n')
    dry = run("apply", "--dry-run", db=database)
    assert dry.exit_code == 0, dry.output
    assert dry.stdout.startswith(f"-- takes over trigger {trigger} (calls {function}; ")
    applied = run("apply", "--yes", "--json", db=database)
    assert applied.exit_code == 0, applied.output
    assert json.loads(applied.stdout)["adopted"][0].startswith(f"trigger {trigger} (calls")
    after = auth_trigger_catalog(conn)
    assert [t[0] for t in after] == ["on_auth_user_created", "on_auth_user_updated"]
    assert all(str(t[6]).startswith("ghostguard:") for t in after)
    assert _full_name(conn, ghost) is None  # backfilled: a phone user has no name
    assert len(conn.execute("SELECT 1 FROM public.profiles").fetchall()) == 1
    ada = auth.signup(authserver.email_user("ada@example.com", full_name="Ada"))
    assert _full_name(conn, ada) == "Ada"
    again = run("apply", "--yes", db=database)  # idempotent: nothing of the app's is left to save
    assert again.exit_code == 0, again.output
    saved = conn.execute(
        "SELECT status, details -> 'triggers' -> 0 ->> 'name' FROM public.cleanup_audit_log "
        "WHERE job_name = 'adopt_app_sync'"
    ).fetchall()
    assert saved == [("success", trigger)]

    rolled = run("rollback", "--yes", db=database)
    assert rolled.exit_code == 0, rolled.output
    assert f"restored the app's own trigger {trigger} and its function, as they were" in (
        rolled.stdout
    )
    assert (
        auth_trigger_catalog(conn) == before
    )  # definitions, enabled state, owner, grants: as they were
    grace = auth.signup(authserver.email_user("grace@example.com", name="Grace"))
    assert _full_name(conn, grace) == ("Grace" if recipe is OWN_NAMES else None)
    assert scalar(conn, "SELECT count(*) FROM public.profiles WHERE id = %s", grace) == 1
    assert scalar(
        conn, "SELECT status FROM public.cleanup_audit_log WHERE job_name = 'adopt_app_sync'"
    ) == ("restored")


def test_a_function_doing_other_work_is_not_adopted_and_an_unrelated_trigger_is_left_alone(
    database: Database, auth: AuthServer, conn: psycopg.Connection, tmp_path: Path
) -> None:
    conn.execute(PROFILES)
    conn.execute(
        "CREATE TABLE public.signup_events (user_id uuid, at timestamptz DEFAULT now());"
        + DOCS_RECIPE.replace(
            "  return new;",
            "  insert into public.signup_events (user_id) values (new.id);\n  return new;",
        )
        + "create function public.log_signup() returns trigger language plpgsql security definer "
        "set search_path = '' as $$ begin insert into public.signup_events (user_id) "
        "values (new.id); return new; end $$;"
        "create trigger log_signup after insert on auth.users "
        "for each row execute function public.log_signup();"
    )
    before = auth_trigger_catalog(conn)
    (tmp_path / "ghostguard.toml").write_text(
        CONFIG + '\n[adopt]\ntriggers = ["on_auth_user_created"]\n'
    )
    refused = run("apply", "--yes", db=database)
    assert refused.exit_code == 3
    assert (
        "adoption refused: public.handle_new_user() (trigger on_auth_user_created) also writes "
        "public.signup_events; ghostguard would not do that work" in refused.stderr
    )
    assert auth_trigger_catalog(conn) == before

    conn.execute(  # calling another function is other work too
        "CREATE FUNCTION public.notify_team(uuid) RETURNS void LANGUAGE sql AS 'SELECT NULL';"
        + DOCS_RECIPE.replace("create function", "create or replace function")
        .replace("  return new;", "  perform public.notify_team(new.id);\n  return new;")
        .split("create trigger")[0]
    )
    refused = run("apply", "--yes", db=database)
    assert refused.exit_code == 3
    assert "also calls public.notify_team(new.id); ghostguard would not do that work" in (
        refused.stderr
    )

    conn.execute("DROP FUNCTION public.handle_new_user() CASCADE")
    (tmp_path / "ghostguard.toml").write_text(CONFIG)
    applied = run("apply", "--yes", db=database)  # log_signup does not write profiles: kept
    assert applied.exit_code == 0, applied.output
    user = auth.signup(authserver.email_user("kim@example.com", full_name="Kim"))
    assert _full_name(conn, user) == "Kim"
    assert scalar(conn, "SELECT count(*) FROM public.signup_events WHERE user_id = %s", user) == 1
    assert [t[0] for t in auth_trigger_catalog(conn)] == [
        "log_signup",
        "on_auth_user_created",
        "on_auth_user_updated",
    ]


def test_the_rollback_migration_restores_the_adopted_trigger_too(
    database: Database, conn: psycopg.Connection, tmp_path: Path
) -> None:
    conn.execute(PROFILES)
    conn.execute(DOCS_RECIPE)
    before = auth_trigger_catalog(conn)
    (tmp_path / "ghostguard.toml").write_text(
        CONFIG + '\n[adopt]\ntriggers = ["on_auth_user_created"]\n'
    )
    assert run("apply", "--yes", db=database).exit_code == 0
    assert auth_trigger_catalog(conn) != before
    down = run("migrations", "--down", "--stdout", db=database)
    assert down.exit_code == 0, down.output
    conn.execute(down.stdout)  # as `supabase db push` would run the file
    assert auth_trigger_catalog(conn) == before
