"""ghostguard.toml: the guide's defaults, parsing errors, and validation against the live catalog."""

from __future__ import annotations

from pathlib import Path

import psycopg
import pytest

from conftest import Database, run
from ghostguard import catalog, config
from ghostguard.config import ColumnSource, Config, TableRef
from ghostguard.errors import ConfigError
from ghostguard.supabase.authserver import AuthServer, email_user, phone_user


def test_defaults_reproduce_the_guide() -> None:
    c = Config()
    assert (c.source.display, c.target.display, c.trigger_name) == (
        "auth.users",
        "public.users",
        "on_auth_user_created",
    )
    assert c.function_display == "public.handle_new_user()"
    assert (c.audit.display, c.job_name) == ("public.cleanup_audit_log", "backfill_ghost_users")
    # The guide's columns, with the metadata keys every identity provider uses as fallbacks.
    assert c.mapping == {
        "email": ColumnSource(column="email"),
        "full_name": ColumnSource(
            metadata=("full_name", "name", "user_name", "preferred_username", "nickname")
        ),
        "avatar_url": ColumnSource(metadata=("avatar_url", "picture")),
        "created_at": ColumnSource(column="created_at", follow_updates=False),
    }
    assert c.trigger_names == (
        "on_auth_user_created",
        "on_auth_user_updated",
        "on_auth_user_deleted",
    )
    assert c.failures.display == "public.profile_sync_failures"


def test_round_trip_through_toml(tmp_path: Path) -> None:
    custom = Config(
        target=TableRef("public", "profiles"),
        mapping={"handle": ColumnSource(metadata=("user_name",))},
    )
    path = tmp_path / "g.toml"
    path.write_text(config.dumps(custom))
    assert config.load(path) == custom


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[target\n", "is not valid TOML"),
        ("[targets]\ntable = 'x'\n", "unknown section(s) ['targets']"),
        ("[target]\ntabel = 'x'\n", "[target] has unknown key(s) ['tabel']"),
        ("[mapping]\nemail = { column = 'email', metadata = ['x'] }\n", "exactly one of them"),
        ("[trigger]\nname = 'a$b'\n", "names may not contain '$'"),
        ("[target]\ntable = ''\n", "target.table must be a non-empty string"),
    ],
)
def test_bad_config_files_are_one_line_errors(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "ghostguard.toml"
    path.write_text(text)
    with pytest.raises(ConfigError) as err:
        config.load(path)
    assert message in err.value.message and str(path) in err.value.message
    assert "\n" not in err.value.message


def test_missing_config_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not found; create one with `ghostguard init`"):
        config.load(tmp_path / "nope.toml")


def _resolve_error(conn: psycopg.Connection, cfg: Config) -> str:
    with pytest.raises(ConfigError) as err:
        catalog.resolve(conn, cfg)
    return err.value.message


def test_validation_against_the_live_catalog(conn: psycopg.Connection) -> None:
    assert "target (profile) table public.profiles not found" in _resolve_error(
        conn, Config(target=TableRef("public", "profiles"))
    )
    assert "mapping: column 'nickname' not found in public.users" in _resolve_error(
        conn, Config(mapping={"nickname": ColumnSource(column="email")})
    )
    assert "mapping.email: column 'mail' not found in auth.users" in _resolve_error(
        conn, Config(mapping={"email": ColumnSource(column="mail")})
    )
    conn.execute("CREATE TABLE public.profiles (id uuid, email text)")
    shape = catalog.resolve(conn, Config(target=TableRef("public", "profiles"), mapping={}))
    assert shape.key_unique is False  # supported: a user has a profile when a row links to it
    assert catalog.resolve(conn, Config()).key_unique is True
    conn.execute("ALTER TABLE public.users ADD COLUMN plan text NOT NULL")
    assert "public.users.plan is NOT NULL with no default and no mapping" in _resolve_error(
        conn, Config()
    )


def test_cli_reports_config_errors_with_exit_2_and_changes_nothing(
    database: Database, conn: psycopg.Connection, tmp_path: Path
) -> None:
    bad = tmp_path / "g.toml"
    bad.write_text("[target]\ntable = 'profiles'\n")
    result = run("apply", "--yes", "--config", str(bad), db=database)
    assert result.exit_code == 2
    assert result.stderr.strip().startswith(
        f"error: {bad}: target (profile) table public.profiles not found"
    )
    assert len(result.stderr.strip().splitlines()) == 1
    assert conn.execute(
        "SELECT count(*) FROM pg_proc WHERE proname = 'handle_new_user'"
    ).fetchone() == (0,)


def test_init_writes_a_config_from_the_catalog_and_refuses_to_overwrite(
    database: Database, conn: psycopg.Connection, tmp_path: Path
) -> None:
    out = tmp_path / "ghostguard.toml"
    result = run("init", "--output", str(out), db=database)
    assert result.exit_code == 0, result.output
    assert result.stdout.strip() == f"wrote {out}"
    assert (
        "public.users.full_name <- raw_user_meta_data->>'full_name', then raw_user_meta_data->>'name'"
        not in result.stderr
    )  # notes name the table, not schema.table
    assert (
        "users.full_name <- raw_user_meta_data->>'full_name', then raw_user_meta_data->>'name', "
        "then raw_user_meta_data->>'user_name'" in result.stderr
    )
    assert config.load(out) == Config()
    again = run("init", "--output", str(out), db=database)
    assert again.exit_code == 3
    assert again.stderr.strip() == (
        f"refused: {out} already exists: pass --force to update it (your values are kept)"
    )


def test_init_finds_a_profiles_table(
    database: Database, conn: psycopg.Connection, tmp_path: Path
) -> None:
    conn.execute("DROP TABLE public.users")
    conn.execute(
        "CREATE TABLE public.profiles (id uuid PRIMARY KEY, username text, avatar_url text, phone text)"
    )
    out = tmp_path / "ghostguard.toml"
    assert run("init", "--output", str(out), db=database).exit_code == 0
    loaded = config.load(out)
    assert loaded.target == TableRef("public", "profiles")
    assert (
        set(loaded.mapping) == {"username", "avatar_url", "phone"}
        and loaded.soft_delete_column is None
    )


def test_init_prefers_the_table_whose_key_references_auth_and_explains_each_choice(
    database: Database, conn: psycopg.Connection, auth: AuthServer, tmp_path: Path
) -> None:
    conn.execute(
        "CREATE TABLE public.profiles (id uuid PRIMARY KEY REFERENCES auth.users (id) "
        "ON DELETE CASCADE, full_name text, company text, role text, bio text, picture text)"
    )
    auth.signup(email_user("a@example.com", full_name="Ada", company="ACME", role="admin"))
    auth.signup(email_user("b@example.com", name="Bo", company="Initech"))
    auth.signup(phone_user("15550004444"))
    out = tmp_path / "ghostguard.toml"
    result = run("init", "--output", str(out), db=database)
    assert result.exit_code == 0, result.output
    loaded = config.load(out)
    assert loaded.target == TableRef("public", "profiles")  # not public.users: the key links it
    assert loaded.mapping["company"].metadata == ("company",)  # seen in the data
    assert "role" not in loaded.mapping and "bio" not in loaded.mapping
    assert loaded.mapping["picture"].metadata == ("avatar_url", "picture")
    notes = result.stderr
    assert "profile table: public.profiles (key id): its key id references auth.users(id)" in notes
    assert (
        "profiles.full_name <- raw_user_meta_data->>'full_name', then raw_user_meta_data->>'name'"
        in notes
    )
    assert "(seen in 3 sampled users: full_name 1, name 1)" in notes
    assert (
        "profiles.company <- raw_user_meta_data->>'company' (seen in 3 sampled users: company 2)"
        in notes
    )
    assert (
        "profiles.role: not mapped: raw_user_meta_data has a 'role' key, but every user can write it"
        in notes
    )
    assert "profiles.bio: nothing in auth.users maps to it; left to the app" in notes


def test_init_without_any_profile_table_is_a_one_line_error(
    database: Database, conn: psycopg.Connection, tmp_path: Path
) -> None:
    conn.execute("DROP TABLE public.users")
    result = run("init", "--output", str(tmp_path / "g.toml"), db=database)
    assert result.exit_code == 2
    assert result.stderr.startswith(
        "error: no profile table found (no table's key references auth.users(id)"
    )
    assert not (tmp_path / "g.toml").exists()
