"""A profile the signed-in user cannot read through the Data API is, to the app, a ghost: verify,
doctor and scan read the profile table as PostgREST would (role authenticated with a real user's
claims, then anon), under today's hosted grants and the legacy ones."""

from __future__ import annotations

import json
from pathlib import Path

import psycopg

from conftest import Database, run
from ghostguard.sandbox import Sandbox
from ghostguard.supabase import authserver
from ghostguard.supabase.authserver import AuthServer

PROFILES = """
CREATE TABLE public.profiles (
  id uuid PRIMARY KEY REFERENCES auth.users (id) ON DELETE CASCADE,
  user_ref uuid,
  full_name text
);
"""
CONFIG = '[target]\ntable = "profiles"\nsoft_delete_column = ""\n\n[mapping.full_name]\nmetadata = ["full_name"]\n'


def _app_view(database: Database) -> tuple[int, dict[str, object]]:
    result = run("verify", "--json", db=database)
    view = next(c for c in json.loads(result.stdout)["checks"] if c["name"] == "app_view")
    return result.exit_code, view


def _doctor(database: Database) -> dict[str, dict[str, object]]:
    data = json.loads(run("doctor", "--json", db=database).stdout)
    return {f["check"]: f for f in data["findings"] if f["check"].startswith("app_view")}


def test_no_grant_then_no_policy_then_the_wrong_column_then_right(
    database: Database, auth: AuthServer, conn: psycopg.Connection, tmp_path: Path
) -> None:
    conn.execute(PROFILES)
    (tmp_path / "ghostguard.toml").write_text(CONFIG)
    for n in range(3):
        auth.signup(authserver.email_user(f"u{n}@example.com", full_name=f"U{n}"))
    assert run("apply", "--yes", db=database).exit_code == 1  # every user has a profile, and yet

    code, view = _app_view(database)
    assert (code, view["passed"]) == (1, False)
    assert view["detail"] == (
        "0 of 3 sampled users can read their own profile; 3 get permission denied "
        "(no SELECT grant to authenticated)"
    )
    assert view["fix"].startswith('GRANT SELECT ON "public"."profiles" TO authenticated;')
    scan = json.loads(run("scan", "--json", db=database).stdout)
    assert (scan["ghost_total"], scan["unreadable_profiles"]) == (0, 3)
    assert run("scan", "--fail-on", "unreadable", db=database).exit_code == 1

    conn.execute('GRANT SELECT ON "public"."profiles" TO authenticated')  # the printed fix, part 1
    conn.execute("ALTER TABLE public.profiles ENABLE ROW LEVEL SECURITY")
    code, view = _app_view(database)
    assert code == 1
    assert view["detail"] == (
        "0 of 3 sampled users can read their own profile; 3 see no row (RLS with no policy that "
        "lets them read their own)"
    )
    policy = (
        'CREATE POLICY "Users can view their own profile" ON "public"."profiles" FOR SELECT TO '
        'authenticated USING ((SELECT auth.uid()) = "id");'
    )
    assert view["fix"] == policy

    conn.execute(  # a policy against the wrong column: still nobody reads their own row
        "CREATE POLICY wrong ON public.profiles FOR SELECT TO authenticated "
        "USING ((SELECT auth.uid()) = user_ref)"
    )
    code, view = _app_view(database)
    assert code == 1 and "3 see no row" in str(view["detail"])

    conn.execute(policy)  # the printed fix
    code, view = _app_view(database)
    assert (code, view["passed"]) == (0, True)
    assert view["detail"] == "3 of 3 sampled users can read their own profile"
    assert json.loads(run("scan", "--json", db=database).stdout)["unreadable_profiles"] == 0
    doctor = _doctor(database)
    assert set(doctor) == {"app_view"} and doctor["app_view"]["passed"]

    conn.execute("GRANT SELECT ON public.profiles TO anon")
    conn.execute(
        "CREATE POLICY everyone ON public.profiles FOR SELECT TO anon, authenticated USING (true)"
    )
    doctor = _doctor(database)
    assert doctor["app_view_anon"]["detail"] == "anon (not signed in) can read 3 profiles"
    assert (
        doctor["app_view_anon"]["fix"]
        == 'if that is not meant: REVOKE SELECT ON "public"."profiles" FROM anon;'
    )
    assert (
        doctor["app_view_others"]["detail"] == "a signed-in user can read 2 other users' profiles"
    )
    assert _app_view(database)[0] == 0  # what the project decided: warnings, not a failure


def test_under_legacy_grants_the_grant_is_there_and_the_missing_policy_is_what_fails(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    url = sandbox.fresh_database("app_view_legacy", legacy_grants=True)
    try:
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(PROFILES + "ALTER TABLE public.profiles ENABLE ROW LEVEL SECURITY;")
        (tmp_path / "ghostguard.toml").write_text(CONFIG)
        auth_url = url.replace("postgres@", "supabase_auth_admin@")
        with psycopg.connect(auth_url, autocommit=True) as writer:
            AuthServer(writer).signup(authserver.email_user("legacy@example.com", full_name="L"))
        assert run("apply", "--yes", "--db-url", url).exit_code == 1
        result = run("verify", "--json", "--db-url", url)
        view = next(c for c in json.loads(result.stdout)["checks"] if c["name"] == "app_view")
        assert view["detail"].startswith(
            "0 of 1 sampled users can read their own profile; 1 see no row"
        )
    finally:
        sandbox.drop_database("app_view_legacy")


def test_a_policy_that_raises_is_reported_not_a_crash(
    database: Database, auth: AuthServer, conn: psycopg.Connection, tmp_path: Path
) -> None:
    conn.execute(PROFILES)
    (tmp_path / "ghostguard.toml").write_text(CONFIG)
    auth.signup(authserver.email_user("p@example.com", full_name="P"))
    assert run("apply", "--yes", db=database).exit_code == 1
    conn.execute(
        "GRANT SELECT ON public.profiles TO authenticated; "
        "ALTER TABLE public.profiles ENABLE ROW LEVEL SECURITY; "
        "CREATE POLICY broken ON public.profiles FOR SELECT TO authenticated "
        "USING (1 / (SELECT count(*) - count(*) FROM pg_catalog.pg_class) = 1)"
    )
    code, view = _app_view(database)
    assert code == 1
    assert view["detail"] == (
        "0 of 1 sampled users can read their own profile; 1 get an error: division by zero"
    )
