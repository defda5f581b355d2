"""doctor: every check passes on a clean install and fails on its planted fault, with the fix."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import psycopg
import pytest

from conftest import Database, run, scalar
from ghostguard.supabase import authserver
from ghostguard.supabase.authserver import AuthServer

GUIDE_STYLE = """
CREATE FUNCTION public.make_profile() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO users (id, email) VALUES (NEW.id, NEW.email);  -- unqualified, invoker
  RETURN NEW;
EXCEPTION WHEN OTHERS THEN
  RETURN NEW;  -- the usual "fix": swallowed
END $$;
CREATE TRIGGER make_profile AFTER INSERT ON auth.users
  FOR EACH ROW EXECUTE FUNCTION public.make_profile();
"""

SECOND_WRITER = """
CREATE FUNCTION public.touch_profile() RETURNS trigger LANGUAGE plpgsql SECURITY DEFINER
SET search_path = '' AS $$
BEGIN
  INSERT INTO public.users (id) VALUES (NEW.id) ON CONFLICT (id) DO NOTHING;
  RETURN NEW;
END $$;
CREATE TRIGGER touch_profile AFTER INSERT OR UPDATE ON auth.users
  FOR EACH ROW EXECUTE FUNCTION public.touch_profile();
"""

# name -> (SQL as postgres, SQL as supabase_admin, signups, expected failing (check, level))
PLANTS: dict[str, tuple[str, str, list[str], set[tuple[str, str]]]] = {
    "search path reset": (
        "ALTER FUNCTION public.handle_new_user() RESET search_path",
        "",
        [],
        {
            ("search_path_pinned", "error"),
            ("sync_installed", "error"),
            ("trigger_search_path", "warn"),
        },
    ),
    "owner not postgres": (
        "",
        "ALTER FUNCTION public.handle_new_user() OWNER TO supabase_admin",
        [],
        {("definer_owner", "warn")},
    ),
    "execute granted": (
        "GRANT EXECUTE ON FUNCTION public.handle_new_user() TO anon",
        "",
        [],
        {("execute_revoked", "error")},
    ),
    "audit readable": (
        "GRANT SELECT ON public.cleanup_audit_log TO authenticated",
        "",
        [],
        {("audit_table_closed", "error")},
    ),
    "failures without RLS": (
        "ALTER TABLE public.profile_sync_failures DISABLE ROW LEVEL SECURITY",
        "",
        [],
        {("failures_table_closed", "error")},
    ),
    "profile RLS off": (
        "ALTER TABLE public.users DISABLE ROW LEVEL SECURITY",
        "",
        [],
        {("profile_rls", "error")},
    ),
    "no own-row policy": (
        'DROP POLICY "Users can view their own profile" ON public.users',
        "",
        [],
        {("profile_rls", "warn")},
    ),
    "guide-style trigger": (
        GUIDE_STYLE,
        "",
        [],
        {
            ("trigger_definer", "error"),
            ("trigger_search_path", "warn"),
            ("trigger_qualified_names", "error"),
            ("trigger_records_exceptions", "error"),
        },
    ),
    "second writer on every update": (
        SECOND_WRITER,
        "",
        [],
        {  # the app's own writer beside ghostguard's: apply refuses until it is adopted
            ("sync_installed", "error"),
            ("one_profile_writer", "warn"),
            ("trigger_skips_sign_ins", "warn"),
        },
    ),
    "NOT NULL email, phone users exist": (
        "ALTER TABLE public.users ALTER COLUMN email SET NOT NULL",
        "",
        ["phone"],
        {("nullable_sources", "error")},
    ),
    "NOT NULL email, none yet": (
        "ALTER TABLE public.users ALTER COLUMN email SET NOT NULL",
        "",
        [],
        {("nullable_sources", "warn")},
    ),
    "UNIQUE email with SSO users sharing one": (
        "CREATE UNIQUE INDEX users_email_key ON public.users (email)",
        "",
        ["sso", "sso"],
        {("unique_email", "error")},
    ),
    "CHECK on a mapped column": (
        "ALTER TABLE public.users ADD CONSTRAINT name_len CHECK (char_length(full_name) >= 3)",
        "",
        [],
        {("checks_on_mapped", "warn")},
    ),
    "foreign key without cascade": (
        "CREATE TABLE public.posts (id int PRIMARY KEY, author uuid NOT NULL REFERENCES auth.users (id))",
        "",
        [],
        {("deletes_cascade", "error")},
    ),
    "view over auth.users": (
        "CREATE VIEW public.user_emails AS SELECT id, email FROM auth.users; "
        "GRANT SELECT ON public.user_emails TO anon, authenticated",  # explicit since 2026
        "",
        [],
        {("no_exposed_auth_views", "error")},
    ),
    "function replaced": (
        "CREATE OR REPLACE FUNCTION public.handle_new_user() RETURNS trigger LANGUAGE plpgsql "
        "SECURITY DEFINER SET search_path = '' AS $$ BEGIN RETURN NULL; END $$",
        "",
        [],
        {("sync_installed", "error")},
    ),
}


def doctor_json(database: Database, *args: str) -> tuple[int, dict[str, Any]]:
    result = run("doctor", "--json", *args, db=database)
    return result.exit_code, json.loads(result.stdout)


def failing(data: dict[str, Any]) -> set[tuple[str, str]]:
    return {(f["check"], f["level"]) for f in data["findings"] if not f["passed"]}


def test_clean_install_passes_every_check(database: Database, auth: AuthServer) -> None:
    assert run("apply", "--yes", db=database).exit_code == 0
    auth.signup(authserver.email_user("ok@example.com", full_name="Okay"))
    code, data = doctor_json(database, "--fail-on", "warn")
    assert code == 0, failing(data)
    assert data["errors"] == 0 and data["warnings"] == 0
    checks = {f["check"] for f in data["findings"]}
    assert {
        "sync_installed",
        "search_path_pinned",
        "definer_owner",
        "execute_revoked",
        "audit_table_closed",
        "failures_table_closed",
        "profile_rls",
        "trigger_definer",
        "trigger_search_path",
        "trigger_qualified_names",
        "trigger_records_exceptions",
        "trigger_skips_sign_ins",
        "one_profile_writer",
        "link_unique",
        "profile_key_uuid",
        "deletes_cascade",
    } <= checks


def test_nothing_installed_is_an_error_naming_apply(database: Database) -> None:
    code, data = doctor_json(database)
    assert code == 1
    installed = next(f for f in data["findings"] if f["check"] == "sync_installed")
    assert not installed["passed"] and installed["fix"] == "ghostguard apply --yes"
    assert "function public.handle_new_user() is missing" in installed["detail"]


@pytest.mark.parametrize("plant", list(PLANTS), ids=list(PLANTS))
def test_planted_fault_is_found_with_its_fix(
    plant: str,
    database: Database,
    conn: psycopg.Connection,
    admin: psycopg.Connection,
    auth: AuthServer,
) -> None:
    as_postgres, as_admin, signups, expected = PLANTS[plant]
    assert run("apply", "--yes", db=database).exit_code == 0
    if as_postgres:
        conn.execute(as_postgres)
    if as_admin:
        admin.execute(as_admin)
    for n, kind in enumerate(signups):
        user = (
            authserver.phone_user("15550003333")
            if kind == "phone"
            else authserver.sso_user("shared@example.com", f"idp-{n}")
        )
        auth.signup(user)
    code, data = doctor_json(database, "--fail-on", "warn")
    assert failing(data) == expected
    assert code == 1
    for finding in data["findings"]:
        if not finding["passed"]:
            assert finding["fix"] and finding["detail"] and finding["object"]
    default_code, _ = doctor_json(database)
    assert default_code == (1 if any(level == "error" for _, level in expected) else 0)


def test_fixes_that_are_sql_repair_what_they_report(
    database: Database, conn: psycopg.Connection
) -> None:
    assert run("apply", "--yes", db=database).exit_code == 0
    for statement in (
        "GRANT EXECUTE ON FUNCTION public.handle_new_user() TO anon",
        "GRANT SELECT ON public.cleanup_audit_log TO authenticated",
        "ALTER TABLE public.users DISABLE ROW LEVEL SECURITY",
        'DROP POLICY "Users can view their own profile" ON public.users',
        "CREATE TABLE public.posts (id int PRIMARY KEY, author uuid REFERENCES auth.users (id))",
        "ALTER TABLE public.users ALTER COLUMN email SET NOT NULL",
    ):
        conn.execute(statement)
    _, data = doctor_json(database, "--fail-on", "warn")
    fixes = [f["fix"] for f in data["findings"] if not f["passed"]]
    assert len(fixes) == 5, fixes
    for fix in fixes:
        conn.execute(fix)  # type: ignore[call-overload]
    code, data = doctor_json(database, "--fail-on", "warn")
    assert code == 0, failing(data)


def test_profile_key_that_is_not_uuid(
    database: Database, conn: psycopg.Connection, tmp_path: Path
) -> None:
    conn.execute("CREATE TABLE public.profiles (id text PRIMARY KEY, email text)")
    config = tmp_path / "profiles.toml"
    config.write_text(
        '[target]\ntable = "profiles"\nsoft_delete_column = ""\n'
        '[mapping]\nemail = { column = "email" }\n'
    )
    result = run("doctor", "--json", "--config", str(config), db=database)
    assert result.stdout, result.stderr
    data = json.loads(result.stdout)
    key = next(f for f in data["findings"] if f["check"] == "profile_key_uuid")
    assert not key["passed"] and key["detail"] == "text, but the auth key is uuid"
    assert (
        key["fix"]
        == 'ALTER TABLE "public"."profiles" ALTER COLUMN "id" TYPE uuid USING "id"::uuid;'
    )
    assert result.exit_code == 1


def test_doctor_human_report_and_bad_level(database: Database) -> None:
    assert run("apply", "--yes", db=database).exit_code == 0
    result = run("doctor", db=database)
    assert result.exit_code == 0
    assert "ghostguard doctor" in result.stdout and "0 errors, 0 warnings" in result.stdout
    bad = run("doctor", "--fail-on", "fatal", db=database)
    assert bad.exit_code == 2 and "'fatal' is not one of 'warn', 'error'" in bad.output


CAREFUL_WRITER = """
CREATE TABLE public.signup_events (user_id uuid, note text);
CREATE FUNCTION public.log_signup() RETURNS trigger LANGUAGE plpgsql SECURITY DEFINER
SET search_path = '' AS $$
BEGIN
  -- nothing here reads FROM users
  INSERT INTO public.signup_events (user_id, note) VALUES (NEW.id, 'copied FROM users');
  RETURN NEW;
EXCEPTION WHEN OTHERS THEN
  IF TG_OP = 'INSERT' THEN NULL; END IF;
  RAISE WARNING 'signup log failed: %', SQLERRM;
  RETURN NEW;
END $$;
CREATE TRIGGER log_signup AFTER INSERT ON auth.users
  FOR EACH ROW EXECUTE FUNCTION public.log_signup();
"""


def test_handlers_strings_and_comments_are_read_by_the_parser(
    database: Database, conn: psycopg.Connection, auth: AuthServer
) -> None:
    """A handler that reports after an IF block, and table-like text in strings and comments."""
    assert run("apply", "--yes", db=database).exit_code == 0
    conn.execute(CAREFUL_WRITER)
    auth.signup(authserver.email_user("logged@example.com"))
    code, data = doctor_json(database, "--fail-on", "warn")
    assert code == 0, failing(data)
    mine = {f["check"]: f for f in data["findings"] if "log_signup" in f["object"]}
    assert mine["trigger_records_exceptions"]["detail"] == "no exception is swallowed"
    assert mine["trigger_qualified_names"]["detail"] == "every table name is schema-qualified"
    writers = next(f for f in data["findings"] if f["check"] == "one_profile_writer")
    assert writers["detail"] == "1 trigger writes profiles"
    assert scalar(conn, "SELECT count(*) FROM public.signup_events") == 1
