"""A profile table whose own key is a generated id and whose `user_id` has no unique index: a user
has a profile when at least one row links to it. Every write checks for that row instead of
ON CONFLICT, the counts are per user, and scan and doctor say how to add the index."""

from __future__ import annotations

import json
import uuid

import psycopg

from conftest import Database, app_grants, run, scalar
from ghostguard.supabase import authserver
from ghostguard.supabase.authserver import AuthServer

PROFILES = """
CREATE TABLE public.profiles (
  id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  user_id uuid NOT NULL REFERENCES auth.users (id) ON DELETE CASCADE,
  email text,
  full_name text,
  updated_at timestamptz
);
CREATE TABLE public.posts (
  id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  author_id uuid NOT NULL REFERENCES auth.users (id) ON DELETE CASCADE,
  body text
);
""" + app_grants("public.profiles", "user_id")
FIX = 'CREATE UNIQUE INDEX CONCURRENTLY "profiles_user_id_key" ON "public"."profiles" ("user_id");'


def _profiles(conn: psycopg.Connection, user_id: uuid.UUID) -> list[tuple[object, ...]]:
    return [
        tuple(r)
        for r in conn.execute(
            "SELECT email, full_name FROM public.profiles WHERE user_id = %s ORDER BY id",
            (user_id,),
        ).fetchall()
    ]


def _body(conn: psycopg.Connection) -> str:
    return str(scalar(conn, "SELECT prosrc FROM pg_proc WHERE proname = 'handle_new_user'"))


def _ghosts(conn: psycopg.Connection) -> int:
    return int(
        str(
            scalar(
                conn,
                "SELECT count(*) FROM auth.users au WHERE NOT EXISTS "
                "(SELECT 1 FROM public.profiles p WHERE p.user_id = au.id)",
            )
        )
    )


def test_a_user_id_without_a_unique_index_gets_exactly_one_profile(
    database: Database, auth: AuthServer, conn: psycopg.Connection
) -> None:
    conn.execute(PROFILES)
    alice = auth.signup(authserver.email_user("alice@example.com", full_name="Alice"))
    phone = auth.signup(authserver.phone_user("15550001234"))
    anon = auth.signup(authserver.anonymous_user())
    twice = auth.signup(authserver.email_user("twice@example.com"))
    conn.execute(
        "INSERT INTO public.profiles (user_id, email) VALUES (%s, 'a@x'), (%s, 'b@x')",
        (twice, twice),
    )

    init = run("init", db=database)
    assert init.exit_code == 0, init.output
    assert (
        "profile table: public.profiles (key user_id): its key user_id references auth.users(id) "
        "(no unique index on user_id: `ghostguard scan` says how to add one)" in init.stderr
    )

    scan = run("scan", "--json", db=database)
    report = json.loads(scan.stdout)
    assert report["ghost_total"] == 3
    assert report["counts"] == {
        "auth_users": 4,
        "profiles": 2,
        "soft_deleted_profiles": 0,
        "orphan_profiles": 0,
    }
    assert report["link_index"] == {
        "column": "public.profiles.user_id",
        "indexed": False,
        "users_with_several_profiles": 1,
        "fix": FIX,
    }
    text = run("scan", db=database).stdout
    assert "public.profiles.user_id has no unique index (no index at all: every signup" in text
    assert "1 users have more than one profile: merge them first" in text

    applied = run("apply", "--yes", db=database)
    assert applied.exit_code == 0, applied.output
    assert "ON CONFLICT" not in _body(conn)  # nothing to conflict on: it looks for the row
    assert _ghosts(conn) == 0
    assert _profiles(conn, alice) == [("alice@example.com", "Alice")]
    assert _profiles(conn, phone) == [(None, None)]
    assert len(_profiles(conn, anon)) == 1
    assert _profiles(conn, twice) == [("a@x", None), ("b@x", None)]  # left as the app had them

    # Later signups and updates go through the trigger: one profile, kept up to date.
    later = auth.signup(authserver.email_user("later@example.com", full_name="Later"))
    assert _profiles(conn, later) == [("later@example.com", "Later")]
    auth.confirm_email_change(alice, "alice@new.example")
    assert _profiles(conn, alice) == [("alice@new.example", "Alice")]
    auth.confirm_email_change(twice, "twice@new.example")
    assert _profiles(conn, twice) == [("twice@new.example", None)] * 2
    assert run("backfill", "--yes", db=database).exit_code == 0  # nothing left to create
    assert scalar(conn, "SELECT count(*) FROM public.profiles") == 6
    assert scalar(conn, "SELECT count(*) FROM public.posts") == 0  # never taken for a profile
    assert run("verify", db=database).exit_code == 0
    assert run("check", db=database).exit_code == 0

    doctor = json.loads(run("doctor", "--json", db=database).stdout)
    link = next(f for f in doctor["findings"] if f["check"] == "link_unique")
    assert (link["passed"], link["level"], link["fix"]) == (False, "warn", FIX)

    # The fix as printed (after merging the duplicate), then apply again: ON CONFLICT from now on.
    conn.execute(
        "DELETE FROM public.profiles WHERE user_id = %s AND id <> "
        "(SELECT min(id) FROM public.profiles WHERE user_id = %s)",
        (twice, twice),
    )
    conn.execute(FIX)
    assert run("apply", "--yes", db=database).exit_code == 0
    assert 'ON CONFLICT ("user_id") DO NOTHING' in _body(conn)
    doctor = json.loads(run("doctor", "--json", db=database).stdout)
    link = next(f for f in doctor["findings"] if f["check"] == "link_unique")
    assert link["passed"]
    assert "link_index" not in json.loads(run("scan", "--json", db=database).stdout) or (
        json.loads(run("scan", "--json", db=database).stdout)["link_index"] is None
    )
