"""Profile tables as public Supabase projects write them: a UNIQUE NOT NULL username with a CHECK,
email NOT NULL while phone and anonymous users have none, an enum role with a default. With
fallbacks, enum-safe values and a collision rule, every kind of user gets a profile."""

from __future__ import annotations

import json
from pathlib import Path

import psycopg

from conftest import Database, app_grants, ghost_count, run, scalar
from ghostguard.supabase import authserver
from ghostguard.supabase.authserver import AuthServer

PROFILES = """
CREATE TYPE public.user_role AS ENUM ('member', 'admin');
CREATE TABLE public.profiles (
  id uuid PRIMARY KEY REFERENCES auth.users (id) ON DELETE CASCADE,
  username text UNIQUE NOT NULL CHECK (char_length(username) >= 3),
  email text NOT NULL,
  full_name text,
  role public.user_role NOT NULL DEFAULT 'member',
  created_at timestamptz DEFAULT now()
);
ALTER TABLE public.profiles ENABLE ROW LEVEL SECURITY;
""" + app_grants("public.profiles", "id")

CONFIG = """
[target]
table = "profiles"
soft_delete_column = ""

[mapping.username]
metadata = ["user_name", "preferred_username"]
fallback = ["email_local", "id_handle"]
on_collision = "suffix"

[mapping.email]
column = "email"
fallback = ["placeholder_email"]

[mapping.full_name]
metadata = ["full_name", "name"]

[mapping.role]
metadata = ["role"]
from = "raw_app_meta_data"
fallback = ["literal:member"]
"""


def _github(email: str, user_name: str, provider_id: str) -> authserver.NewUser:
    meta = {"iss": "https://api.github.com", "user_name": user_name, "email": email}
    return authserver.NewUser(
        email=email, provider="github", user_metadata=meta, provider_id=provider_id
    )


def _profile(conn: psycopg.Connection, user_id: object) -> tuple[object, ...]:
    row = conn.execute(
        "SELECT username, email, full_name, role::text FROM public.profiles WHERE id = %s",
        (user_id,),
    ).fetchone()
    assert row is not None, f"no profile for {user_id}"
    return tuple(row)


def test_fallbacks_enums_and_collisions_give_every_kind_a_profile(
    database: Database, auth: AuthServer, conn: psycopg.Connection, tmp_path: Path
) -> None:
    conn.execute(PROFILES)
    (tmp_path / "ghostguard.toml").write_text(CONFIG)
    ids = {
        "sam_a": auth.signup(authserver.email_user("sam@one.example", full_name="Sam One")),
        "sam_b": auth.signup(authserver.email_user("sam@two.example")),
        "octo_a": auth.signup(_github("a@octo.example", "octo", "101")),
        "octo_b": auth.signup(_github("b@octo.example", "octo", "202")),  # a second "octo"
        "phone": auth.signup(authserver.phone_user("15550009999")),
        "anonymous": auth.signup(authserver.anonymous_user()),
        "admin": auth.admin_create(authserver.email_user("boss@corp.example"), {"role": "admin"}),
        "bogus_role": auth.admin_create(
            authserver.email_user("mallory@corp.example"), {"role": "superuser"}
        ),
    }
    assert ghost_count_profiles(conn) == 8  # the app had no trigger: every one a ghost

    result = run("apply", "--yes", "--json", db=database)
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["preflight"]["failing"] == []
    assert ghost_count_profiles(conn) == 0
    assert _profile(conn, ids["sam_a"])[1:] == ("sam@one.example", "Sam One", "member")
    # Two users wanting one UNIQUE name: one gets it, the other the name and its id's first hex
    # digits (which one depends on key order, like the Auth server's random ids).
    for first, second in (("sam_a", "sam_b"), ("octo_a", "octo_b")):
        wanted = first.split("_")[0]
        names = {_profile(conn, ids[first])[0], _profile(conn, ids[second])[0]}
        assert names in (
            {wanted, f"{wanted}_{_hex(ids[second])[:6]}"},
            {wanted, f"{wanted}_{_hex(ids[first])[:6]}"},
        ), names
    assert _profile(conn, ids["phone"]) == (
        f"user_{_hex(ids['phone'])[:8]}",
        f"{ids['phone']}@placeholder.invalid",
        None,
        "member",
    )
    assert _profile(conn, ids["anonymous"])[1].endswith("@placeholder.invalid")  # type: ignore[union-attr]
    assert _profile(conn, ids["admin"])[3] == "admin"  # app metadata, an enum label
    assert _profile(conn, ids["bogus_role"])[3] == "member"  # not a label: the next source

    # New signups of every kind get profiles too (the preflight matrix, then real ones).
    check = run("check", "--json", db=database)
    assert check.exit_code == 0, check.output
    assert {k["outcome"] for k in json.loads(check.stdout)["kinds"]} == {"profile"}
    later = auth.signup(authserver.email_user("sam@three.example"))
    assert _profile(conn, later)[0] == f"sam_{_hex(later)[:6]}"
    renamed = auth.signup(authserver.phone_user("15550008888"))
    auth.convert_anonymous(renamed, "renamed@corp.example")  # an UPDATE follows into the profile
    assert _profile(conn, renamed)[1] == "renamed@corp.example"
    assert scalar(conn, "SELECT count(*) FROM public.profile_sync_failures") == 0
    assert run("verify", db=database).exit_code == 0
    # Once it has an email, the converted user's placeholders follow it away.
    assert _profile(conn, renamed)[0] == "renamed"
    # The phone and anonymous users hold placeholders (a user_ handle, a .invalid email); scan
    # counts them for the app to follow up.
    scan = run("scan", "--json", db=database)
    assert scan.exit_code == 0
    assert json.loads(scan.stdout)["placeholder_profiles"] == 2
    assert "2 profiles hold a placeholder" in run("scan", db=database).stdout


def _hex(user_id: object) -> str:
    return str(user_id).replace("-", "")


def ghost_count_profiles(conn: psycopg.Connection) -> int:
    row = conn.execute(
        "SELECT count(*) FROM auth.users au WHERE NOT EXISTS "
        "(SELECT 1 FROM public.profiles p WHERE p.id = au.id)"
    ).fetchone()
    assert row is not None
    return int(row[0])


def test_a_fallback_that_names_a_missing_column_or_a_privilege_is_refused(
    database: Database, conn: psycopg.Connection, tmp_path: Path
) -> None:
    conn.execute(PROFILES)
    config = tmp_path / "ghostguard.toml"
    config.write_text(CONFIG.replace('"placeholder_email"', '"no_such_column"'))
    result = run("scan", db=database)
    assert (result.exit_code, result.stderr) == (
        2,
        "error: ghostguard.toml: mapping.email.fallback: column 'no_such_column' not found in auth.users\n",
    )
    config.write_text(CONFIG.replace('"literal:member"', '"meta:role"'))
    result = run("scan", db=database)
    assert result.exit_code == 2
    assert "reads raw_user_meta_data, which every user can change" in result.stderr
    assert ghost_count(conn) == 0  # nothing was written anywhere


def test_init_proposes_a_config_that_works_for_every_kind_with_no_edits(
    database: Database, auth: AuthServer, conn: psycopg.Connection
) -> None:
    conn.execute(PROFILES)
    ids = [
        auth.signup(authserver.email_user("kim@one.example", full_name="Kim")),
        auth.signup(authserver.email_user("kim@two.example")),
        auth.signup(authserver.phone_user("15550007777")),
        auth.signup(authserver.anonymous_user()),
        auth.signup(authserver.sso_user("kim@one.example")),
    ]
    init = run("init", db=database)
    assert init.exit_code == 0, init.output
    assert "profiles.username: UNIQUE: a value another profile already has gets a suffix" in (
        init.stderr
    )
    assert (
        "signup kinds here: 2 email, 1 anonymous, 1 phone, 1 sso (of 5 sampled users)"
        in init.stderr
    )
    assert (
        "profiles.email: NOT NULL, and email is empty for 1 anonymous, 1 phone of 5 sampled "
        "users: falls back to placeholder_email" in init.stderr
    )
    written = Path("ghostguard.toml").read_text()
    assert 'fallback = [\n    "placeholder_email",\n]' in written
    result = run("apply", "--yes", db=database)
    assert result.exit_code == 0, result.output
    assert ghost_count_profiles(conn) == 0
    assert all(_profile(conn, user_id)[0] for user_id in ids)
    assert run("check", db=database).exit_code == 0


def test_init_marks_what_it_cannot_choose_and_exits_1(
    database: Database, conn: psycopg.Connection
) -> None:
    conn.execute(PROFILES)
    conn.execute(
        "CREATE TABLE public.orgs (id uuid PRIMARY KEY); "
        "ALTER TABLE public.profiles ADD COLUMN org_id uuid NOT NULL REFERENCES public.orgs (id), "
        "ADD COLUMN invite_code uuid NOT NULL"
    )
    init = run("init", db=database)
    assert init.exit_code == 1
    assert "2 choice(s) left to you, marked at the end of ghostguard.toml" in init.stdout
    written = Path("ghostguard.toml").read_text()
    assert "# TO DECIDE before `ghostguard apply` (init could not choose):" in written
    assert (
        "# - public.profiles.org_id is NOT NULL with no default and looks like a privilege"
        in written
    )
    scan = run("scan", db=database)  # the file is there; the undecided column is named
    assert scan.exit_code == 2
    assert "public.profiles.org_id is NOT NULL with no default and no mapping" in scan.stderr


ACCOUNTS = """
CREATE SCHEMA app;
CREATE TABLE app.accounts (
  id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  user_id uuid NOT NULL UNIQUE REFERENCES auth.users (id) ON DELETE CASCADE,
  email_address text NOT NULL,
  firstname text,
  lastname text,
  settings jsonb NOT NULL DEFAULT '{}'
);
""" + app_grants("app.accounts", "user_id")


def test_a_user_id_link_in_another_schema_with_other_names(
    database: Database, auth: AuthServer, conn: psycopg.Connection
) -> None:
    """The link is not the primary key, the table is app.accounts, the names are the app's own."""
    conn.execute(ACCOUNTS)
    alice = auth.signup(
        authserver.email_user("alice@corp.example", firstName="Alice", lastName="Liddell")
    )
    phone = auth.signup(authserver.phone_user("15550006666"))
    init = run("init", db=database)
    assert init.exit_code == 0, init.output
    assert (
        "profile table: app.accounts (key user_id): its key user_id references auth.users(id)"
        in (init.stderr)
    )
    assert run("apply", "--yes", db=database).exit_code == 0
    rows = dict(
        (r[0], r[1:])
        for r in conn.execute(
            "SELECT user_id, email_address, firstname, lastname FROM app.accounts"
        ).fetchall()
    )
    assert rows[alice] == ("alice@corp.example", "Alice", "Liddell")
    assert rows[phone] == (f"{phone}@placeholder.invalid", None, None)
    later = auth.signup(authserver.email_user("bob@corp.example", firstName="Bob"))
    assert scalar(conn, "SELECT firstname FROM app.accounts WHERE user_id = %s", later) == "Bob"
    assert run("check", db=database).exit_code == 0


MEMBERS = """
CREATE TABLE public.members (
  id uuid PRIMARY KEY REFERENCES auth.users (id) ON DELETE CASCADE,
  newsletter boolean NOT NULL,
  age integer,
  birthday date,
  settings jsonb NOT NULL
);
""" + app_grants("public.members", "id")

MEMBERS_CONFIG = """
[target]
table = "members"
soft_delete_column = ""

[mapping.newsletter]
metadata = ["newsletter"]
fallback = ["literal:false"]

[mapping.age]
metadata = ["age"]

[mapping.birthday]
metadata = ["birthday"]

[mapping.settings]
metadata = ["settings"]
fallback = ["literal:{}"]
"""


def test_typed_columns_take_a_value_only_when_it_casts(
    database: Database, auth: AuthServer, conn: psycopg.Connection, tmp_path: Path
) -> None:
    conn.execute(MEMBERS)
    (tmp_path / "ghostguard.toml").write_text(MEMBERS_CONFIG)
    applied = run("apply", "--yes", db=database)
    assert applied.exit_code == 0, applied.output
    good = auth.signup(
        authserver.email_user(
            "good@types.example",
            newsletter="yes",
            age="42",
            birthday="1990-05-01",
            settings={"theme": "dark"},
        )
    )
    bad = auth.signup(
        authserver.email_user("bad@types.example", newsletter="maybe", age="old", birthday="soon")
    )
    bare = auth.signup(authserver.phone_user("15550005555"))
    rows = {
        r[0]: r[1:]
        for r in conn.execute(
            "SELECT id, newsletter, age, birthday::text, settings FROM public.members"
        ).fetchall()
    }
    assert rows[good] == (True, 42, "1990-05-01", {"theme": "dark"})
    assert rows[bad] == (False, None, None, {})  # nothing cast: the next source, or nothing
    assert rows[bare] == (False, None, None, {})
    assert scalar(conn, "SELECT count(*) FROM public.profile_sync_failures") == 0

    (tmp_path / "ghostguard.toml").write_text(MEMBERS_CONFIG.replace("literal:{}", "literal:{"))
    refused = run("scan", db=database)
    assert (refused.exit_code, refused.stderr) == (
        2,
        "error: ghostguard.toml: mapping.settings.fallback: 'literal:{' is not JSON, and public.members.settings "
        "is jsonb\n",
    )


SLUGS = """
CREATE TABLE public.people (
  id uuid PRIMARY KEY REFERENCES auth.users (id) ON DELETE CASCADE,
  slug text NOT NULL,
  signup_day date
);
""" + app_grants("public.people", "id")


def test_the_sql_escape_hatch_is_checked_before_anything_runs(
    database: Database, auth: AuthServer, conn: psycopg.Connection, tmp_path: Path
) -> None:
    conn.execute(SLUGS)
    config = tmp_path / "ghostguard.toml"
    base = '[target]\ntable = "people"\nsoft_delete_column = ""\n\n'
    config.write_text(
        base + "[mapping.slug]\nsql = \"lower(split_part(au.emial, '@', 1))\"\n"
        'fallback = ["id_handle"]\n'
    )
    typo = run("scan", db=database)
    assert (typo.exit_code, typo.stderr) == (
        2,
        "error: ghostguard.toml: mapping.slug.sql does not compile against auth.users: column au.emial does not "
        "exist\n",
    )
    config.write_text(
        base + '[mapping.slug]\nsql = "1) AS x FROM auth.users au; DROP TABLE x; SELECT (1"\n'
    )
    smuggled = run("scan", db=database)
    assert smuggled.exit_code == 2
    assert "mapping.slug.sql must be one expression over the auth row au" in smuggled.stderr
    assert scalar(conn, "SELECT to_regprocedure('public.handle_new_user()') IS NULL") is True

    config.write_text(
        base + "[mapping.slug]\nsql = \"lower(split_part(au.email, '@', 1))\"\n"
        'fallback = ["id_handle"]\n\n'
        '[mapping.signup_day]\nsql = "au.created_at::date"\n'
    )
    before = auth.signup(authserver.email_user("Ada.Lovelace@Example.com"))
    assert run("apply", "--yes", db=database).exit_code == 0
    after = auth.signup(authserver.phone_user("15550004444"))
    rows = {r[0]: r[1:] for r in conn.execute("SELECT id, slug, signup_day FROM public.people")}
    assert rows[before][0] == "ada.lovelace" and rows[before][1] is not None
    assert rows[after][0] == f"user_{_hex(after)[:8]}"  # the expression gave NULL: the fallback
    assert run("check", db=database).exit_code == 0
