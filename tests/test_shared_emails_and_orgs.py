"""Two more profile tables from public projects: a citext email that is UNIQUE NOT NULL while SSO
users share an address (in any case), and a profile with a plan enum, jsonb settings and an org
foreign key read from app metadata, where one user's org does not exist."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import psycopg

from conftest import Database, app_grants, run, scalar
from ghostguard.supabase import authserver
from ghostguard.supabase.authserver import AuthServer

CITEXT = """
CREATE EXTENSION IF NOT EXISTS citext WITH SCHEMA extensions;
CREATE TABLE public.profiles (
  id uuid PRIMARY KEY REFERENCES auth.users (id) ON DELETE CASCADE,
  email extensions.citext UNIQUE NOT NULL,
  full_name text
);
""" + app_grants("public.profiles", "id")


def _emails(conn: psycopg.Connection) -> dict[uuid.UUID, str]:
    return {r[0]: r[1] for r in conn.execute("SELECT id, email::text FROM public.profiles")}


def test_a_citext_unique_email_gives_sso_users_sharing_it_a_profile_each(
    database: Database, auth: AuthServer, conn: psycopg.Connection
) -> None:
    conn.execute(CITEXT)
    kim = auth.signup(authserver.email_user("Kim@Corp.example", full_name="Kim"))
    okta = auth.signup(authserver.sso_user("kim@corp.example"))
    azure = auth.signup(authserver.sso_user("KIM@corp.example", sso_provider="acme-azure"))
    phone = auth.signup(authserver.phone_user("15550002222"))
    init = run("init", db=database)
    assert init.exit_code == 0, init.output
    assert "profiles.email: UNIQUE: a value another profile already has gets a suffix" in (
        init.stderr
    )
    applied = run("apply", "--yes", db=database)
    assert applied.exit_code == 0, applied.output
    emails = _emails(conn)
    own = {kim: "Kim@Corp.example", okta: "kim@corp.example", azure: "KIM@corp.example"}
    first = min(own, key=str)  # the backfill goes in key order: the first keeps its address
    assert emails[first] == own[first]
    for user in set(own) - {first}:  # compared as citext: the same address in another case
        assert emails[user] == f"{own[user]}_{user.hex[:6]}"
    assert emails[phone] == f"{phone}@placeholder.invalid"
    assert scalar(conn, "SELECT count(*) FROM public.profile_sync_failures") == 0

    later = auth.signup(authserver.sso_user("kim@CORP.example", sso_provider="acme-google"))
    assert _emails(conn)[later] == f"kim@CORP.example_{later.hex[:6]}"
    check = run("check", "--json", db=database)
    assert check.exit_code == 0, check.output
    kinds = {k["kind"]: k["outcome"] for k in json.loads(check.stdout)["kinds"]}
    assert kinds["sso_shared_email"] == "profile"


ORGS = """
CREATE TYPE public.plan AS ENUM ('free', 'pro');
CREATE TABLE public.orgs (id uuid PRIMARY KEY, name text NOT NULL);
CREATE TABLE public.profiles (
  id uuid PRIMARY KEY REFERENCES auth.users (id) ON DELETE CASCADE,
  org_id uuid REFERENCES public.orgs (id),
  plan public.plan NOT NULL DEFAULT 'free',
  settings jsonb NOT NULL DEFAULT '{}',
  full_name text
);
INSERT INTO public.orgs VALUES ('00000000-0000-4000-8000-00000000a001', 'Acme');
""" + app_grants("public.profiles", "id")
ORGS_CONFIG = """
[target]
table = "profiles"
soft_delete_column = ""

[mapping.org_id]
from = "raw_app_meta_data"
metadata = ["org_id"]

[mapping.plan]
from = "raw_app_meta_data"
metadata = ["plan"]
fallback = ["literal:free"]

[mapping.settings]
metadata = ["settings"]
fallback = ["literal:{}"]

[mapping.full_name]
metadata = ["full_name"]
"""
ACME = "00000000-0000-4000-8000-00000000a001"
GONE = "00000000-0000-4000-8000-00000000dead"


def test_an_org_that_does_not_exist_is_recorded_and_named_and_repair_finishes_it(
    database: Database, auth: AuthServer, conn: psycopg.Connection, tmp_path: Path
) -> None:
    conn.execute(ORGS)
    (tmp_path / "ghostguard.toml").write_text(ORGS_CONFIG)
    member = auth.admin_create(
        authserver.email_user("m@acme.example", full_name="M", settings={"theme": "dark"}),
        {"org_id": ACME, "plan": "pro"},
    )
    lost = auth.admin_create(authserver.email_user("l@gone.example"), {"org_id": GONE})
    solo = auth.signup(authserver.email_user("s@solo.example", settings="not json"))
    odd = auth.admin_create(authserver.email_user("o@acme.example"), {"plan": "platinum"})

    applied = run("apply", "--yes", db=database)
    assert applied.exit_code == 1, applied.output
    assert "1 user could not get a profile" in applied.output
    assert f"profiles_org_id_fkey: 1 user (e.g. {lost})" in applied.output
    verify = json.loads(run("verify", "--json", db=database).stdout)
    ghosts = next(c for c in verify["checks"] if c["name"] == "no_ghosts")
    assert ghosts["remediation"].startswith(
        "1 user could not get one (recorded, see `ghostguard check`): fix the mapping"
    )
    rows = {
        r[0]: r[1:]
        for r in conn.execute("SELECT id, org_id::text, plan::text, settings FROM public.profiles")
    }
    assert rows[member] == (ACME, "pro", {"theme": "dark"})
    assert rows[solo] == (None, "free", "not json")  # a JSON string is JSON
    assert rows[odd] == (None, "free", {})  # not a label: the fallback
    assert lost not in rows
    failure = conn.execute(
        "SELECT operation, sqlstate, constraint_name FROM public.profile_sync_failures "
        "WHERE user_id = %s",
        (str(lost),),
    ).fetchall()
    assert failure == [("backfill", "23503", "profiles_org_id_fkey")]

    conn.execute("INSERT INTO public.orgs VALUES (%s, 'Found again')", (GONE,))
    repaired = run("repair", "--yes", db=database)
    assert repaired.exit_code == 0, repaired.output
    assert scalar(conn, "SELECT org_id::text FROM public.profiles WHERE id = %s", lost) == GONE
    final = run("verify", "--json", db=database)
    assert final.exit_code == 0, final.stdout
    logged = next(c for c in json.loads(final.stdout)["checks"] if c["name"] == "backfill_logged")
    assert logged["detail"].endswith("; every one of them repaired since")


NAMES = """
CREATE TABLE public.profiles (
  id uuid PRIMARY KEY REFERENCES auth.users (id) ON DELETE CASCADE,
  username text UNIQUE NOT NULL
    CHECK (username ~ '^[a-z0-9_]{3,24}$') CHECK (username NOT LIKE '%admin%'),
  first_name text NOT NULL,
  last_name text NOT NULL,
  full_name text NOT NULL CHECK (char_length(full_name) >= 2)
);
""" + app_grants("public.profiles", "id")


def test_values_breaking_a_check_fall_through_to_the_next_source(
    database: Database, auth: AuthServer, conn: psycopg.Connection
) -> None:
    """init with no edits; a source whose value breaks a one-column CHECK gives way to the next
    (the last is written as it is, so what nothing can fix is recorded with its constraint)."""
    conn.execute(NAMES)
    short = auth.signup(authserver.email_user("al@x.example"))  # local part too short for a name
    admin = auth.signup(
        authserver.github_user("mallory@x.example", "superadmin", "https://avatars/m.png")
    )
    spaced = auth.signup(authserver.email_user("grace@x.example", user_name="Grace H!"))
    full = auth.signup(
        authserver.email_user("ada@x.example", firstName="Ada", lastName="Lovelace", full_name="A")
    )
    phone = auth.signup(authserver.phone_user("15550003333"))
    init = run("init", db=database)
    assert init.exit_code == 0, init.output
    assert (
        "profiles.username: CHECK (username !~~ '%admin%'::text): a value that breaks it gives way "
        "to the next source; the last one is written as it is" in init.stderr
    )
    applied = run("apply", "--yes", db=database)  # the backfill: statements with parameters
    assert applied.exit_code == 0, applied.output
    rows = {
        r[0]: r[1:]
        for r in conn.execute(
            "SELECT id, username, first_name, last_name, full_name FROM public.profiles"
        )
    }

    def handle(user: uuid.UUID) -> str:
        return f"user_{user.hex[:8]}"

    assert rows[short] == (handle(short), "al", "al", "al")  # "al": too short a username only
    assert rows[admin][0] == "mallory"  # "superadmin" breaks a CHECK: the email's local part
    assert rows[spaced][0] == "grace"  # "Grace H!" breaks the pattern
    assert rows[full] == ("ada", "Ada", "Lovelace", "ada")  # "A" is too short a full name
    assert rows[phone] == (handle(phone),) * 4
    assert scalar(conn, "SELECT count(*) FROM public.profile_sync_failures") == 0

    later = auth.signup(authserver.email_user("admin@x.example", user_name="admin"))
    assert scalar(conn, "SELECT username FROM public.profiles WHERE id = %s", later) == (
        handle(later)
    )
    # repair rebuilds a profile with the same statement shape, run with parameters
    conn.execute("DELETE FROM public.profiles WHERE id = %s", (admin,))
    conn.execute(
        "INSERT INTO public.profile_sync_failures (user_id, operation, sqlstate, message) "
        "VALUES (%s, 'INSERT', '23514', 'planted')",
        (str(admin),),
    )
    assert run("repair", "--yes", db=database).exit_code == 0
    assert scalar(conn, "SELECT username FROM public.profiles WHERE id = %s", admin) == "mallory"
    check = run("check", "--json", db=database)
    assert check.exit_code == 0, check.output
    outcomes = {k["kind"]: k["outcome"] for k in json.loads(check.stdout)["kinds"]}
    assert set(outcomes.values()) == {"profile"}
