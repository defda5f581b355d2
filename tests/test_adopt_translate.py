"""init reads the app's own trigger function and writes its logic into ghostguard.toml; the same
signups through the original and through the adopted sync give the same profile rows."""

from __future__ import annotations

import json
import tomllib
from pathlib import Path

import psycopg
import pytest

from conftest import Database, run
from ghostguard.supabase import authserver
from ghostguard.supabase.authserver import AuthServer, NewUser
from test_adopt import DOCS_RECIPE, OWN_NAMES, PROFILES, auth_trigger_catalog

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
# cast from app metadata, derivations with lower() and split_part(), a constant, now(), and a
# comment that is not ASCII (the parser counts bytes: every location after it shifts).
HAND_WRITTEN = """
CREATE FUNCTION public.handle_new_auth_user() RETURNS trigger LANGUAGE plpgsql
SECURITY DEFINER SET search_path = '' AS $$
BEGIN
  INSERT INTO public.profiles (id, email, firstname, lastname, plan, username, joined_at)
  -- les valeurs de l'utilisateur « nouveau »
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


def _rows(conn: psycopg.Connection) -> dict[object, object]:
    """Profile rows by user id, column by column, timestamps aside."""
    return {
        r[0]: r[1]
        for r in conn.execute("SELECT id, to_jsonb(p) - 'joined_at' FROM public.profiles p")
    }


RECIPES = {
    "supabase docs recipe": (
        PROFILES,
        DOCS_RECIPE,
        {
            "full_name": {"metadata": ["full_name"], "update": False},
            "avatar_url": {"metadata": ["avatar_url"], "update": False},
        },
    ),
    "own names, another schema, email fallback": (
        PROFILES,
        OWN_NAMES,
        {"full_name": {"metadata": ["name"], "update": False, "fallback": ["email_local"]}},
    ),
    "enum cast, derivations, constants, now()": (
        PLANS,
        HAND_WRITTEN,
        {
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
        },
    ),
}


@pytest.mark.parametrize(("table", "recipe", "mapping"), RECIPES.values(), ids=list(RECIPES))
def test_init_translates_apply_adopts_the_same_rows_and_rollback_restores_exactly(
    table: str,
    recipe: str,
    mapping: dict[str, object],
    database: Database,
    auth: AuthServer,
    conn: psycopg.Connection,
) -> None:
    conn.execute(table)
    conn.execute(recipe)
    before = auth_trigger_catalog(conn)
    users = _signups()

    def through_the_trigger() -> dict[object, object]:
        """Every kind signed up, the profiles read, then the users deleted again."""
        _sign_up_all(auth, users)
        rows = _rows(conn)
        for user, _ in users:
            auth.hard_delete(user.id)
        return rows

    original = through_the_trigger()
    assert len(original) == len(users)

    init = run("init", db=database)
    assert init.exit_code == 0, init.output
    written = tomllib.loads(Path("ghostguard.toml").read_text())
    (trigger,) = written["adopt"]["triggers"]
    assert f"adopting trigger {trigger} (" in init.stderr
    assert written["mapping"] == mapping

    applied = run("apply", "--yes", db=database)
    assert applied.exit_code == 0, applied.output
    assert through_the_trigger() == original  # every kind, column by column

    assert run("rollback", "--yes", db=database).exit_code == 0
    assert auth_trigger_catalog(conn) == before  # the original, exactly
    assert through_the_trigger() == original  # and it behaves as before


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
    before = auth_trigger_catalog(conn)
    with pytest.raises(psycopg.errors.InsufficientPrivilege):
        auth.signup(authserver.email_user("blocked@example.com", full_name="Blocked"))
    init = run("init", db=database)
    assert init.exit_code == 0, init.output
    written = tomllib.loads(Path("ghostguard.toml").read_text())
    assert (written["adopt"], written["mapping"]) == (
        {"triggers": ["make_profile"]},
        {"full_name": {"metadata": ["full_name"], "update": False}},
    )
    doctor = json.loads(run("doctor", "--json", db=database).stdout)
    invoker = next(f for f in doctor["findings"] if f["check"] == "trigger_definer")
    assert (invoker["passed"], invoker["object"]) == (
        False,
        "function public.make_profile() (trigger make_profile)",
    )
    assert run("apply", "--yes", db=database).exit_code == 0
    user = auth.signup(authserver.email_user("works@example.com", full_name="Works"))
    assert _rows_named(conn) == {user: "Works"}
    assert run("rollback", "--yes", db=database).exit_code == 0
    assert auth_trigger_catalog(conn) == before
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
        "writes public.profiles.role from raw_user_meta_data, which every user sets for "
        "themselves at signup" in doctor.stdout
    )


EMAIL_REQUIRED = """
CREATE TABLE public.profiles (
  id uuid PRIMARY KEY REFERENCES auth.users (id) ON DELETE CASCADE,
  email text NOT NULL
);
CREATE FUNCTION public.handle_new_user() RETURNS trigger LANGUAGE plpgsql SECURITY DEFINER
SET search_path = '' AS $$
BEGIN
  INSERT INTO public.profiles (id, email) VALUES (NEW.id, NEW.email);
  RETURN NEW;
END $$;
CREATE TRIGGER on_auth_user_created AFTER INSERT ON auth.users
  FOR EACH ROW EXECUTE FUNCTION public.handle_new_user();
"""


def test_kinds_the_original_fails_are_named_by_doctor_and_get_a_profile_once_adopted(
    database: Database, auth: AuthServer, conn: psycopg.Connection
) -> None:
    conn.execute(EMAIL_REQUIRED)
    with pytest.raises(psycopg.errors.NotNullViolation):
        auth.signup(authserver.phone_user("15550001010"))
    assert run("init", db=database).exit_code == 0
    doctor = json.loads(run("doctor", "--json", db=database).stdout)
    signups = next(f for f in doctor["findings"] if f["check"] == "app_trigger_signups")
    assert (signups["passed"], signups["level"]) == (False, "error")
    assert signups["object"] == "the app's own trigger on_auth_user_created on auth.users"
    assert signups["detail"].startswith(
        'signups it leaves without a profile: phone: null value in column "email"'
    )
    written = tomllib.loads(Path("ghostguard.toml").read_text())
    assert written["mapping"] == {
        "email": {"column": "email", "update": False, "fallback": ["placeholder_email"]}
    }
    assert run("apply", "--yes", db=database).exit_code == 0
    phone = auth.signup(authserver.phone_user("15550001010"))
    ada = auth.signup(authserver.email_user("ada@example.com"))
    emails = dict(conn.execute("SELECT id, email FROM public.profiles").fetchall())
    assert emails == {phone: f"{phone}@placeholder.invalid", ada: "ada@example.com"}


UPSERT_ON_UPDATE = """
CREATE TABLE public.profiles (
  id uuid PRIMARY KEY REFERENCES auth.users (id) ON DELETE CASCADE,
  email text,
  full_name text,
  last_seen timestamptz
);
CREATE FUNCTION public.sync_profile() RETURNS trigger LANGUAGE plpgsql SECURITY DEFINER
SET search_path = '' AS $$
BEGIN
  INSERT INTO public.profiles (id, email, full_name)
  VALUES (NEW.id, NEW.email, NEW.raw_user_meta_data ->> 'full_name')
  ON CONFLICT (id) DO UPDATE SET email = excluded.email, full_name = excluded.full_name;
  RETURN NEW;
END $$;
CREATE TRIGGER sync_profile AFTER INSERT OR UPDATE ON auth.users
  FOR EACH ROW EXECUTE FUNCTION public.sync_profile();
"""


def test_a_trigger_that_also_fires_on_update_is_translated_to_following_columns(
    database: Database, auth: AuthServer, conn: psycopg.Connection
) -> None:
    conn.execute(UPSERT_ON_UPDATE)
    init = run("init", db=database)
    assert init.exit_code == 0, init.output
    assert tomllib.loads(Path("ghostguard.toml").read_text())["mapping"] == {
        "email": {"column": "email"},
        "full_name": {"metadata": ["full_name"]},
    }
    assert run("apply", "--yes", db=database).exit_code == 0
    user = auth.signup(authserver.email_user("old@example.com", full_name="Kim"))
    auth.confirm_email_change(user, "new@example.com")
    assert conn.execute(
        "SELECT email, full_name FROM public.profiles WHERE id = %s", (user,)
    ).fetchone() == ("new@example.com", "Kim")


LAST_SEEN = UPSERT_ON_UPDATE.replace(
    "  RETURN NEW;\nEND $$;",
    "  IF TG_OP = 'UPDATE' THEN\n"
    "    UPDATE public.profiles SET last_seen = now() WHERE id = NEW.id;\n"
    "  END IF;\n  RETURN NEW;\nEND $$;",
)


def test_what_cannot_be_kept_on_update_is_a_decision_and_apply_refuses(
    database: Database, auth: AuthServer, conn: psycopg.Connection
) -> None:
    conn.execute(LAST_SEEN)
    before = conn.execute(
        "SELECT pg_get_functiondef('public.sync_profile()'::regprocedure)"
    ).fetchone()
    init = run("init", db=database)
    assert init.exit_code == 1, init.output
    assert (
        "profiles.last_seen: the original's UPDATE sets it to 'now()', which ghostguard cannot "
        "keep in step: map it by hand (update = true)"
    ) in Path("ghostguard.toml").read_text()
    refused = run("apply", "--yes", db=database)
    assert refused.exit_code == 3, refused.output
    assert refused.stderr.startswith(
        "refused: apply refused: taking over sync_profile would drop what it does: trigger "
        "sync_profile writes public.profiles.last_seen, which is not mapped; nothing was changed"
    )
    assert (
        conn.execute("SELECT pg_get_functiondef('public.sync_profile()'::regprocedure)").fetchone()
        == before
    )
    assert conn.execute("SELECT to_regclass('public.cleanup_audit_log')").fetchone() == (None,)
