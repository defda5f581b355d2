"""init reads the app's own trigger function and writes its logic into ghostguard.toml; the same
signups through the original and through the adopted sync give the same profile rows."""

from __future__ import annotations

import tomllib
from pathlib import Path

import psycopg
import pytest

from conftest import Database, run
from ghostguard.supabase import authserver
from ghostguard.supabase.authserver import AuthServer, NewUser

PLANS = """
CREATE TYPE public.plan AS ENUM ('free', 'pro');
CREATE TABLE public.profiles (
  id uuid PRIMARY KEY REFERENCES auth.users (id) ON DELETE CASCADE,
  email text,
  firstname text,
  lastname text,
  plan public.plan NOT NULL DEFAULT 'free',
  username text,
  joined_at timestamptz
);
"""
# A hand-written function as projects write them: its own names, camelCase metadata, an enum
# cast from app metadata, derivations with lower() and split_part(), a constant, now().
HAND_WRITTEN = """
CREATE FUNCTION public.handle_new_auth_user() RETURNS trigger LANGUAGE plpgsql
SECURITY DEFINER SET search_path = '' AS $$
BEGIN
  INSERT INTO public.profiles (id, email, firstname, lastname, plan, username, joined_at)
  VALUES (
    NEW.id,
    lower(NEW.email),
    NEW.raw_user_meta_data ->> 'firstName',
    coalesce(NEW.raw_user_meta_data ->> 'lastName', NEW.raw_user_meta_data ->> 'family_name', 'Unknown'),
    coalesce((NEW.raw_app_meta_data ->> 'plan')::public.plan, 'free'),
    lower(split_part(NEW.email, '@', 1)),
    now()
  );
  RETURN NEW;
END;
$$;
CREATE TRIGGER on_signup_create_profile AFTER INSERT ON auth.users
  FOR EACH ROW EXECUTE FUNCTION public.handle_new_auth_user();
"""


def _signups() -> list[tuple[NewUser, dict[str, str] | None]]:
    """Every kind, with fixed ids (the second run reuses them), and app metadata for admin creates."""
    return [
        (authserver.email_user("Ada@Example.com", firstName="Ada", lastName="Lovelace"), None),
        (authserver.phone_user("15550007070"), None),
        (authserver.anonymous_user(), None),
        (authserver.google_user("grace@gmail.example", "Grace Hopper", "https://pic/g.png"), None),
        (authserver.github_user("linus@example.com", "torvalds", "https://a/l.png"), None),
        (authserver.apple_user(None), None),
        (authserver.sso_user("ada@example.com"), None),
        (authserver.email_user("Pro@Corp.example", family_name="Paid"), {"plan": "pro"}),
    ]


def _sign_up_all(auth: AuthServer, users: list[tuple[NewUser, dict[str, str] | None]]) -> None:
    for user, app in users:
        if app is None:
            auth.signup(user)
        else:
            auth.admin_create(user, app)


def _rows(conn: psycopg.Connection) -> dict[object, tuple[object, ...]]:
    """Profile rows by user id, timestamps aside."""
    return {
        r[0]: tuple(r[1:])
        for r in conn.execute(
            "SELECT id, email, firstname, lastname, plan::text, username, joined_at IS NOT NULL "
            "FROM public.profiles"
        )
    }


def test_init_translates_the_function_and_the_adopted_sync_gives_the_same_rows(
    database: Database, auth: AuthServer, conn: psycopg.Connection
) -> None:
    conn.execute(PLANS)
    conn.execute(HAND_WRITTEN)
    users = _signups()
    _sign_up_all(auth, users)
    original = _rows(conn)
    assert len(original) == len(users)
    for user, _ in users:  # the same signups again later, through ghostguard
        auth.hard_delete(user.id)
    assert _rows(conn) == {}

    init = run("init", db=database)
    assert init.exit_code == 0, init.output
    assert "adopting trigger on_signup_create_profile (public.handle_new_auth_user())" in (
        init.stderr
    )
    written = tomllib.loads(Path("ghostguard.toml").read_text())
    assert written["adopt"] == {"triggers": ["on_signup_create_profile"]}
    assert written["mapping"] == {
        "email": {"sql": "lower(au.email)"},
        "firstname": {"metadata": ["firstName"], "update": False},
        "lastname": {
            "metadata": ["lastName", "family_name"],
            "update": False,
            "fallback": ["literal:Unknown"],
        },
        "plan": {
            "metadata": ["plan"],
            "from": "raw_app_meta_data",
            "update": False,
            "fallback": ["literal:free"],
        },
        "username": {"sql": "lower(split_part(au.email, '@', 1))"},
        "joined_at": {"sql": "now()"},
    }

    applied = run("apply", "--yes", db=database)
    assert applied.exit_code == 0, applied.output
    _sign_up_all(auth, users)
    assert _rows(conn) == original  # column by column, for every kind


INVOKER = """
CREATE TABLE public.profiles (
  id uuid PRIMARY KEY REFERENCES auth.users (id) ON DELETE CASCADE,
  full_name text
);
CREATE FUNCTION public.make_profile() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO public.profiles (id, full_name) VALUES (NEW.id, NEW.raw_user_meta_data ->> 'full_name');
  RETURN NEW;
END $$;
CREATE TRIGGER make_profile AFTER INSERT ON auth.users
  FOR EACH ROW EXECUTE FUNCTION public.make_profile();
"""


def test_a_security_invoker_function_that_fails_every_signup_is_adopted_and_signups_work(
    database: Database, auth: AuthServer, conn: psycopg.Connection
) -> None:
    conn.execute(INVOKER)
    with pytest.raises(psycopg.errors.InsufficientPrivilege):
        auth.signup(authserver.email_user("blocked@example.com", full_name="Blocked"))
    init = run("init", db=database)
    assert init.exit_code == 0, init.output
    assert run("apply", "--yes", db=database).exit_code == 0
    user = auth.signup(authserver.email_user("works@example.com", full_name="Works"))
    assert _rows_named(conn) == {user: "Works"}
    assert run("rollback", "--yes", db=database).exit_code == 0
    with pytest.raises(psycopg.errors.InsufficientPrivilege):  # the original, as it was
        auth.signup(authserver.email_user("blocked@example.com", full_name="Blocked"))


def _rows_named(conn: psycopg.Connection) -> dict[object, object]:
    return {r[0]: r[1] for r in conn.execute("SELECT id, full_name FROM public.profiles")}


ROLE_FROM_USER_METADATA = """
CREATE TABLE public.profiles (
  id uuid PRIMARY KEY REFERENCES auth.users (id) ON DELETE CASCADE,
  full_name text,
  role text NOT NULL DEFAULT 'member'
);
CREATE FUNCTION public.handle_new_user() RETURNS trigger LANGUAGE plpgsql SECURITY DEFINER
SET search_path = '' AS $$
BEGIN
  INSERT INTO public.profiles (id, full_name, role)
  VALUES (NEW.id, NEW.raw_user_meta_data ->> 'full_name',
          coalesce(NEW.raw_user_meta_data ->> 'role', 'member'));
  RETURN NEW;
END $$;
CREATE TRIGGER on_auth_user_created AFTER INSERT ON auth.users
  FOR EACH ROW EXECUTE FUNCTION public.handle_new_user();
"""


def test_a_role_read_from_user_metadata_is_an_error_and_not_carried_over(
    database: Database, conn: psycopg.Connection
) -> None:
    conn.execute(ROLE_FROM_USER_METADATA)
    init = run("init", db=database)
    assert init.exit_code == 1
    written = Path("ghostguard.toml").read_text()
    assert "role" not in tomllib.loads(written)["mapping"]
    assert (
        "profiles.role: the original reads it from raw_user_meta_data: any user can give "
        "themselves this at signup" in written
    )
    doctor = run("doctor", "--json", db=database)
    assert doctor.exit_code == 1
    assert (
        "writes public.profiles.role from raw_user_meta_data: any user can give themselves this "
        "at signup; read it from raw_app_meta_data" in doctor.stdout
    )
