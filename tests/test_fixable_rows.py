"""Mappings never turn a fixable row into a failure: every source empty gives the column's
DEFAULT, not an explicit NULL; a nullable column's value that breaks its CHECK becomes NULL."""

from __future__ import annotations

from pathlib import Path

import psycopg

from conftest import Database, run, scalar
from ghostguard.supabase import authserver
from ghostguard.supabase.authserver import AuthServer

PROFILES = """
CREATE TABLE public.profiles (
  id uuid PRIMARY KEY REFERENCES auth.users (id) ON DELETE CASCADE,
  full_name text NOT NULL DEFAULT '',
  username text UNIQUE CHECK (char_length(username) >= 3),
  plan text NOT NULL DEFAULT 'free' CHECK (plan IN ('free', 'pro'))
);
"""
CONFIG = """
[target]
table = "profiles"
soft_delete_column = ""

[mapping]
full_name = { metadata = ["full_name", "name"] }
username = { metadata = ["user_name"] }
plan = { metadata = ["plan"], from = "raw_app_meta_data" }
"""


def test_defaults_and_nulls_instead_of_failures(
    database: Database, auth: AuthServer, conn: psycopg.Connection, tmp_path: Path
) -> None:
    conn.execute(PROFILES)
    cfg = tmp_path / "ghostguard.toml"
    cfg.write_text(CONFIG)
    check = run("check", "--config", str(cfg), db=database)
    assert check.exit_code == 0, check.output  # phone, anonymous, Apple: all get a profile
    assert run("apply", "--yes", "--config", str(cfg), db=database).exit_code == 0
    phone = auth.signup(authserver.phone_user("15550002222"))
    short = auth.signup(
        authserver.NewUser(
            email="ab@example.com", user_metadata={"user_name": "ab", "full_name": "A B"}
        )
    )
    rows = dict(
        (r[0], r[1:]) for r in conn.execute(
            "SELECT id, full_name, username, plan FROM public.profiles"
        ).fetchall()
    )  # fmt: skip
    assert rows[phone] == ("", None, "free")  # every source empty: the DEFAULTs
    assert rows[short] == ("A B", None, "free")  # 'ab' breaks the CHECK: NULL, not a ghost
    assert scalar(conn, "SELECT count(*) FROM public.profile_sync_failures") == 0
    # an admin sets a plan the CHECK refuses: NOT NULL with a default, so the default
    auth.conn.execute(
        'UPDATE auth.users SET raw_app_meta_data = raw_app_meta_data || \'{"plan": "gold"}\' '
        "WHERE id = %s",
        (phone,),
    )
    assert scalar(conn, "SELECT plan FROM public.profiles WHERE id = %s", phone) == "free"
    assert scalar(conn, "SELECT count(*) FROM public.profile_sync_failures") == 0


def test_init_says_so_per_column(database: Database, conn: psycopg.Connection) -> None:
    conn.execute(PROFILES)
    result = run("init", db=database)
    assert result.exit_code in (0, 1), result.output
    assert "profiles.full_name: when every source is empty: its DEFAULT ''::text" in result.stderr
    assert (
        "profiles.username: CHECK (char_length(username) >= 3): a value that breaks it gives way "
        "to the next source; the last one is written as NULL (the column may be NULL)"
    ) in result.stderr
