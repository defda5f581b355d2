"""The sandbox allows `postgres` what hosted Supabase allows it through supautils, and refuses
what hosted refuses, with hosted's words (docs/supabase-facts.md). Every extension used here is
in PostgreSQL's contrib, so the same tests run on 15 and 18."""

from __future__ import annotations

from pathlib import Path

import psycopg
import pytest
from psycopg import sql

from conftest import Database, run, scalar
from ghostguard.sandbox import Sandbox


def _extension(conn: psycopg.Connection, name: str) -> tuple[str, str] | None:
    row = conn.execute(
        "SELECT extowner::regrole::text, extnamespace::regnamespace::text FROM pg_extension "
        "WHERE extname = %s",
        (name,),
    ).fetchone()
    return (str(row[0]), str(row[1])) if row else None


@pytest.mark.parametrize("name", ["dblink", "moddatetime", "postgres_fdw", "pg_stat_statements"])
def test_postgres_creates_and_drops_a_privileged_extension_as_the_superuser(
    conn: psycopg.Connection, name: str
) -> None:
    conn.execute(f'DROP EXTENSION IF EXISTS "{name}"')
    conn.execute(f'CREATE EXTENSION "{name}" WITH SCHEMA extensions')
    assert _extension(conn, name) == ("supabase_admin", "extensions")
    conn.execute(f'DROP EXTENSION "{name}"')
    assert _extension(conn, name) is None


def test_a_privileged_extension_moves_schema_and_cascades(conn: psycopg.Connection) -> None:
    conn.execute("CREATE EXTENSION pg_trgm")
    conn.execute("ALTER EXTENSION pg_trgm SET SCHEMA extensions")
    assert _extension(conn, "pg_trgm") == ("supabase_admin", "extensions")
    conn.execute("CREATE EXTENSION earthdistance CASCADE")
    assert _extension(conn, "cube") is not None


def test_an_extension_hosted_omits_as_unsafe_is_refused_with_the_servers_words(
    conn: psycopg.Connection,
) -> None:
    with pytest.raises(psycopg.errors.InsufficientPrivilege) as refused:
        conn.execute("CREATE EXTENSION file_fdw")
    assert refused.value.diag.message_primary == 'permission denied to create extension "file_fdw"'
    assert _extension(conn, "file_fdw") is None


def test_after_create_grants_and_nothing_more(conn: psycopg.Connection) -> None:
    """Hosted's after-create scripts: postgres may use postgres_fdw's wrapper; dblink's
    password-less connect stays the superuser's (it would reach the sandbox as its superuser)."""
    conn.execute("CREATE EXTENSION postgres_fdw")
    conn.execute("CREATE SERVER elsewhere FOREIGN DATA WRAPPER postgres_fdw")
    conn.execute("CREATE EXTENSION dblink")
    with pytest.raises(psycopg.errors.InsufficientPrivilege, match="dblink_connect_u"):
        conn.execute("SELECT dblink_connect_u('dbname=postgres')")


def test_drop_trigger_and_policies_on_supabase_tables_but_no_other_change(
    conn: psycopg.Connection,
) -> None:
    conn.execute(
        "CREATE FUNCTION public.noop() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RETURN NEW; END $$"
    )
    for table in ("auth.users", "auth.identities", "storage.objects"):
        conn.execute(
            f"CREATE TRIGGER t AFTER INSERT ON {table} FOR EACH ROW EXECUTE FUNCTION public.noop()"
        )
        conn.execute(f"DROP TRIGGER t ON {table}")
    conn.execute("DROP TRIGGER IF EXISTS never_there ON auth.users")
    conn.execute(
        'CREATE POLICY "admins read" ON auth.users FOR SELECT TO authenticated USING (false)'
    )
    conn.execute('ALTER POLICY "admins read" ON auth.users USING (true)')
    conn.execute('DROP POLICY "admins read" ON auth.users')
    assert (
        scalar(conn, "SELECT count(*) FROM pg_policy WHERE polrelid = 'auth.users'::regclass") == 0
    )
    for statement, message in (
        ("ALTER TABLE auth.users DISABLE TRIGGER ALL", "must be owner of table users"),
        ("ALTER TABLE auth.users ADD COLUMN extra text", "must be owner of table users"),
        ("CREATE INDEX ON auth.users (created_at)", "must be owner of table users"),
        ("CREATE TABLE auth.mine (id int)", "permission denied for schema auth"),
    ):
        with pytest.raises(psycopg.errors.InsufficientPrivilege) as refused:
            conn.execute(statement)
        assert refused.value.diag.message_primary == message


def test_the_settings_hosted_lets_postgres_set(
    database: Database, conn: psycopg.Connection
) -> None:
    conn.execute("SET session_replication_role = replica")
    assert scalar(conn, "SHOW session_replication_role") == "replica"
    conn.execute("RESET session_replication_role")
    conn.execute("ALTER ROLE authenticator SET pgrst.db_pre_request = 'public.check_request'")
    try:
        settings = scalar(
            conn,
            "SELECT array_to_string(setconfig, ',') FROM pg_db_role_setting "
            "WHERE setrole = 'authenticator'::regrole AND setdatabase = 0",
        )
        assert "pgrst.db_pre_request=public.check_request" in str(settings)
    finally:
        conn.execute("ALTER ROLE authenticator RESET pgrst.db_pre_request")
    with pytest.raises(psycopg.errors.InsufficientPrivilege):
        conn.execute("ALTER ROLE supabase_admin SET log_statement = 'all'")
    with pytest.raises(psycopg.errors.InsufficientPrivilege):
        conn.execute("SET track_functions = 'all'")  # not among hosted's allowed settings


def test_another_role_gets_none_of_postgres_allowances(conn: psycopg.Connection) -> None:
    """supautils' privileged role is postgres alone: a role postgres creates does not inherit it."""
    database = sql.Identifier(str(scalar(conn, "SELECT current_database()")))
    conn.execute("CREATE ROLE app_owner NOLOGIN")
    conn.execute(sql.SQL("GRANT CREATE ON DATABASE {} TO app_owner").format(database))
    conn.execute("GRANT app_owner TO postgres")
    try:
        conn.execute("SET ROLE app_owner")
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute("CREATE EXTENSION dblink")
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute("SET session_replication_role = replica")
    finally:
        conn.execute("RESET ROLE")
        conn.execute(sql.SQL("REVOKE CREATE ON DATABASE {} FROM app_owner").format(database))
        conn.execute("DROP ROLE app_owner")


def test_without_a_compiler_the_sandbox_says_what_hosted_allows(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, pg_major: int, sandbox: Sandbox
) -> None:
    """From PostgreSQL 16 a sandbox starts without its guard (the server refuses reserved grants
    itself); a rehearsal that meets a statement only supautils allows says so and what to install.
    On 15 the guard is what keeps a migration off the machine: no compiler, no sandbox."""
    monkeypatch.setenv("CC", str(tmp_path / "no-such-compiler"))
    folder = tmp_path / "supabase" / "migrations"
    folder.mkdir(parents=True)
    (folder / "20240101000000_drop.sql").write_text(
        "create function public.noop() returns trigger language plpgsql as "
        "$$ begin return new; end $$;\n"
        "create trigger t after insert on auth.users for each row execute function public.noop();\n"
        "drop trigger t on auth.users;\n"
    )
    home = tmp_path / "bare"
    result = run(
        "rehearse", "--migrations", str(folder), "--data-dir", str(home),
        *(["--pg-bin", str(sandbox.server.bin_dir)] if pg_major < 18 else []),
    )  # fmt: skip
    try:
        assert result.exit_code == 2
        if pg_major < 16:
            assert "a C compiler (cc) is missing" in result.stderr
            return
        assert result.stderr.endswith(
            "must be owner of relation users; if the statement is one supautils allows postgres: "
            "hosted Supabase allows it (supautils); the sandbox does the same with a small C "
            "module it builds when it starts, and found no C compiler: install one (Debian: "
            "apt-get install gcc) and rehearse again\n"
        ), result.stderr
    finally:
        Sandbox(home).stop()
