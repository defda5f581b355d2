"""`ghostguard init` writes its reasons into ghostguard.toml as comments beside each entry, and
`init --force` over an edited file keeps every value the user set."""

from __future__ import annotations

import tomllib
from pathlib import Path

import psycopg
from psycopg import sql

from conftest import Database, run
from ghostguard import config as config_mod
from ghostguard.supabase import authserver
from ghostguard.supabase.authserver import AuthServer

PROFILES = """
CREATE TABLE public.profiles (
  id uuid PRIMARY KEY REFERENCES auth.users (id) ON DELETE CASCADE,
  username text NOT NULL UNIQUE,
  full_name text,
  plan text NOT NULL DEFAULT 'free',
  is_admin boolean NOT NULL DEFAULT false,
  created_at timestamptz NOT NULL DEFAULT now()
);
"""


def _comments_above(text: str, header: str) -> list[str]:
    lines = text.splitlines()
    at = lines.index(header)
    above: list[str] = []
    for line in reversed(lines[:at]):
        if not line.startswith("#"):
            break
        above.insert(0, line)
    return above


def test_init_writes_why_beside_each_entry(
    database: Database, conn: psycopg.Connection, auth: AuthServer, tmp_path: Path
) -> None:
    conn.execute(PROFILES)
    auth.signup(authserver.email_user("ada@example.com", full_name="Ada"))
    auth.signup(authserver.phone_user("15550001111"))
    result = run("init", db=database)
    assert result.exit_code == 0, result.output
    text = (tmp_path / "ghostguard.toml").read_text()
    config = config_mod.load(tmp_path / "ghostguard.toml")  # the comments leave valid TOML
    assert config.target.table == "profiles"
    target = " ".join(_comments_above(text, "[target]"))
    assert "profile table: public.profiles" in target
    assert "signup kinds here:" in target and "phone" in target  # the kinds seen
    username = " ".join(_comments_above(text, "[mapping.username]"))
    assert "profiles.username <-" in username  # where it comes from
    assert "is empty for 1 email, 1 phone" in username and "falls back to" in username  # why
    assert "UNIQUE" in username or "collision" in username, username
    full_name = " ".join(_comments_above(text, "[mapping.full_name]"))
    assert "profiles.full_name <- " in full_name
    tail = text[text.index("# Not mapped") :]
    assert "profiles.is_admin" in tail  # a privilege: not from user metadata, said why
    assert "profiles.plan" in tail or "plan" not in config.mapping


def test_init_force_keeps_every_value_the_user_set(
    database: Database, conn: psycopg.Connection, auth: AuthServer, tmp_path: Path
) -> None:
    conn.execute(PROFILES)
    auth.signup(authserver.email_user("ada@example.com", full_name="Ada"))
    assert run("init", db=database).exit_code == 0
    path = tmp_path / "ghostguard.toml"
    edited = (
        path.read_text()
        .replace('lock_timeout = "1s"', 'lock_timeout = "3s"')
        .replace("[mapping.full_name]\n", '[mapping.full_name]\nfallback = ["literal:Friend"]\n')
    )
    edited += '\n[rehearse.metadata]\nemail = { full_name = "Ada" }\n'
    path.write_text(edited)
    before = config_mod.load(path)
    conn.execute("ALTER TABLE public.profiles ADD COLUMN avatar_url text")  # something new

    result = run("init", "--force", db=database)
    assert result.exit_code == 0, result.output
    after = config_mod.load(path)
    assert after.lock_timeout == "3s"
    assert [str(f) for f in after.mapping["full_name"].fallbacks] == ["literal:Friend"]
    assert after.rehearse_metadata == {"email": {"full_name": "Ada"}}
    assert after.mapping["username"] == before.mapping["username"]
    assert "avatar_url" in after.mapping  # what is new is added
    assert "trigger.lock_timeout: kept yours" in result.stderr
    assert "# trigger.lock_timeout: kept yours" in path.read_text()

    again = run("init", "--force", db=database)  # a fixed point: nothing changes the second time
    assert again.exit_code == 0
    assert config_mod.load(path) == after


def test_init_refuses_a_file_it_cannot_read_back_and_leaves_it(
    database: Database, conn: psycopg.Connection, tmp_path: Path
) -> None:
    conn.execute(PROFILES)
    path = tmp_path / "ghostguard.toml"
    path.write_text("[target\ntable = 'x'\n")
    result = run("init", "--force", db=database)
    assert result.exit_code == 2
    assert result.stderr.startswith("error: ghostguard.toml is not valid TOML")
    assert path.read_text() == "[target\ntable = 'x'\n"
    assert run("init", db=database).exit_code == 3  # without --force: refused, as before


def test_init_force_with_values_that_no_longer_fit_writes_nothing(
    database: Database, conn: psycopg.Connection, tmp_path: Path
) -> None:
    conn.execute(PROFILES)
    assert run("init", db=database).exit_code == 0
    path = tmp_path / "ghostguard.toml"
    path.write_text(path.read_text().replace("[mapping.full_name]", "[mapping.nickname]"))
    written = path.read_text()
    result = run("init", "--force", db=database)
    assert result.exit_code == 2, result.output
    assert "nothing was written" in result.stderr and "nickname" in result.stderr
    assert path.read_text() == written


def test_hostile_column_names_stay_inside_keys_and_comments(
    database: Database, conn: psycopg.Connection, tmp_path: Path
) -> None:
    """A column name is catalog text: it reaches a key and init's notes, and must not add a
    section or a value to the file."""
    evil = 'bio\n[trigger]\nname = "pwned"\n#'
    conn.execute(PROFILES)
    conn.execute(
        sql.SQL("ALTER TABLE public.profiles ADD COLUMN {} text").format(sql.Identifier(evil))
    )
    result = run("init", db=database)
    assert result.exit_code in (0, 1), result.output
    data = tomllib.loads((tmp_path / "ghostguard.toml").read_text())
    assert data["trigger"]["name"] == "on_auth_user_created"
    assert all(
        not line.startswith('name = "pwned"')
        for line in (tmp_path / "ghostguard.toml").read_text().splitlines()
    )
