"""The app's own triggers on the profile table behave under ghostguard's writes as under the
app's: unqualified types, functions and tables resolve (the sync function pins search_path = ''
for itself only); and when one of them still fails, the preflight names it and gives the fix."""

from __future__ import annotations

import psycopg

from conftest import Database, run, scalar
from ghostguard.supabase import authserver
from ghostguard.supabase.authserver import AuthServer

SCHEMA = """
CREATE TYPE public.notification_type AS ENUM ('email', 'push');
CREATE TABLE public.profile_log (user_id uuid, what text);
CREATE TABLE public.profiles (
  id uuid PRIMARY KEY REFERENCES auth.users (id) ON DELETE CASCADE,
  email text,
  full_name text,
  notify public.notification_type[]
);
CREATE FUNCTION public.default_channels() RETURNS notification_type[] LANGUAGE sql
AS $$ SELECT '{email}'::notification_type[] $$;
-- as apps write them: no SET search_path, every name unqualified
CREATE FUNCTION public.profiles_touch() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  NEW.notify := coalesce(NEW.notify, '{push}'::notification_type[] || default_channels());
  INSERT INTO profile_log VALUES (NEW.id, TG_OP);
  RETURN NEW;
END $$;
CREATE TRIGGER profiles_touch BEFORE INSERT OR UPDATE ON public.profiles
  FOR EACH ROW EXECUTE FUNCTION public.profiles_touch();
"""
CONFIG = '[target]\ntable = "profiles"\nsoft_delete_column = ""\n[mapping]\nemail = "email"\n'


def test_unqualified_names_in_the_apps_trigger_resolve_under_the_sync(
    database: Database, auth: AuthServer, conn: psycopg.Connection, tmp_path
) -> None:
    conn.execute(SCHEMA)
    cfg = tmp_path / "ghostguard.toml"
    cfg.write_text(CONFIG)
    check = run("check", "--config", str(cfg), db=database)
    assert check.exit_code == 0, check.output
    assert run("apply", "--yes", "--config", str(cfg), db=database).exit_code == 0
    user = auth.signup(authserver.email_user("kim@example.com"))
    auth.confirm_email_change(user, "kim@new.example")
    row = conn.execute("SELECT email, notify::text FROM public.profiles WHERE id = %s", (user,))
    assert row.fetchone() == ("kim@new.example", "{push,email}")
    logged = conn.execute(
        "SELECT what FROM public.profile_log WHERE user_id = %s ORDER BY ctid", (user,)
    ).fetchall()
    assert logged == [("INSERT",), ("UPDATE",)]  # as the app's own writes: no INSERT per update
    assert scalar(conn, "SELECT count(*) FROM public.profile_sync_failures") == 0
    # the sync function still pins an empty search_path for itself (Supabase's linter)
    config = scalar(conn, "SELECT proconfig FROM pg_proc WHERE proname = 'handle_new_user'")
    assert 'search_path=""' in config  # type: ignore[operator]


def test_a_failing_app_trigger_is_named_with_its_fix(
    database: Database, auth: AuthServer, conn: psycopg.Connection, tmp_path
) -> None:
    conn.execute(SCHEMA)
    auth.signup(authserver.email_user("existing@example.com"))  # the project has email users
    conn.execute(  # a schema only its own writes had on their path
        "CREATE SCHEMA app; ALTER FUNCTION public.profiles_touch() RENAME TO old_touch;"
        "CREATE FUNCTION public.profiles_touch2() RETURNS trigger LANGUAGE plpgsql AS $$ "
        "BEGIN PERFORM app_only_helper(); RETURN NEW; END $$;"
        "CREATE FUNCTION app.app_only_helper() RETURNS void LANGUAGE sql AS $$ SELECT $$;"
        "DROP TRIGGER profiles_touch ON public.profiles;"
        "CREATE TRIGGER profiles_touch2 BEFORE INSERT ON public.profiles "
        "FOR EACH ROW EXECUTE FUNCTION public.profiles_touch2();"
    )
    cfg = tmp_path / "ghostguard.toml"
    cfg.write_text(CONFIG)
    refused = run("apply", "--yes", "--config", str(cfg), db=database)
    assert refused.exit_code == 3, refused.output
    assert (
        "raised in the app's trigger profiles_touch2 on public.profiles "
        "(public.profiles_touch2()): qualify the names it uses, or pin the schemas it needs: "
        "ALTER FUNCTION public.profiles_touch2() SET search_path = public, extensions (and any "
        "other schema it uses)"
    ) in refused.stderr
    assert "Fix the app's trigger named there, or accept them" in refused.stderr
    assert "Fix the mapping" not in refused.stderr
