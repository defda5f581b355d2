"""The Supabase workflow: pgTAP tests, the rollback as a migration, and the CLI's migration history."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import psycopg
import pytest
from psycopg import conninfo

from conftest import Database, run, scalar
from ghostguard.supabase.authserver import AuthServer, email_user
from test_migrations import _psql

HISTORY = """
CREATE SCHEMA supabase_migrations;
CREATE TABLE supabase_migrations.schema_migrations (
  version text PRIMARY KEY, statements text[], name text);
"""


def _versions(conn: psycopg.Connection) -> list[tuple[str, str]]:
    return [
        (v, n)
        for v, n in conn.execute(
            "SELECT version, name FROM supabase_migrations.schema_migrations ORDER BY version"
        ).fetchall()
    ]


def test_tests_file_is_written_once_with_a_plan_that_counts_its_tests(
    database: Database, tmp_path: Path
) -> None:
    tests_dir = tmp_path / "tests"
    args = ("migrations", "--dir", str(tmp_path / "m"), "--tests", "--tests-dir", str(tests_dir))
    first = run(*args, db=database)
    assert first.exit_code == 0 and f"wrote {tests_dir / 'ghostguard_test.sql'}" in first.stdout
    text = (tests_dir / "ghostguard_test.sql").read_text()
    planned = int(re.search(r"SELECT plan\((\d+)\);", text).group(1))  # type: ignore[union-attr]
    assertions = re.findall(
        r"^SELECT (?:has_function|is_definer|ok|is|has_trigger|trigger_is)\(", text, re.M
    )
    assert planned == len(assertions) == 17
    assert text.startswith("-- ghostguard's pgTAP tests") and text.rstrip().endswith("ROLLBACK;")
    second = run(*args, db=database)
    assert f"up to date: {tests_dir / 'ghostguard_test.sql'}" in second.stdout


def _connection_args(url: str) -> list[str]:
    """pg_prove takes the server as -h/-p/-U/-d (it does not read a URL's query parameters)."""
    parts = conninfo.conninfo_to_dict(url)
    return ["-h", str(parts["host"]), "-p", str(parts["port"]), "-U", str(parts["user"]),
            "-d", str(parts["dbname"])]  # fmt: skip


@pytest.mark.pgtap
def test_pgtap_tests_pass_on_an_install_and_fail_after_rollback(
    database: Database, admin: psycopg.Connection, tmp_path: Path
) -> None:
    """Runs the generated file with pg_prove, as `supabase test db` would (CI: PostgreSQL 15
    with Debian's postgresql-15-pgtap)."""
    pg_prove = shutil.which("pg_prove")
    assert pg_prove, "pg_prove is needed: apt-get install libtap-parser-sourcehandler-pgtap-perl"
    admin.execute("CREATE EXTENSION pgtap WITH SCHEMA extensions")
    assert run("apply", "--yes", db=database).exit_code == 0
    tests_dir = tmp_path / "tests"
    run(
        "migrations",
        "--dir",
        str(tmp_path / "m"),
        "--tests",
        "--tests-dir",
        str(tests_dir),
        db=database,
    )
    test_file = str(tests_dir / "ghostguard_test.sql")
    passed = subprocess.run(
        [pg_prove, *_connection_args(database.url), test_file], capture_output=True, text=True
    )
    assert passed.returncode == 0, passed.stdout + passed.stderr
    assert "All tests successful" in passed.stdout and "Tests=17" in passed.stdout
    assert scalar(admin, "SELECT count(*) FROM auth.users") == 0  # the probe signup rolled back
    assert run("rollback", "--yes", db=database).exit_code == 0
    failed = subprocess.run(
        [pg_prove, *_connection_args(database.url), test_file], capture_output=True, text=True
    )
    assert failed.returncode != 0
    assert "Failed" in failed.stdout + failed.stderr


def test_down_migration_rolls_back_under_psql_and_is_rerunnable(
    database: Database, conn: psycopg.Connection, auth: AuthServer, tmp_path: Path
) -> None:
    assert run("apply", "--yes", db=database).exit_code == 0
    auth.signup(email_user("kept@example.com"))
    up = run("migrations", "--dir", str(tmp_path), db=database)
    down = run("migrations", "--down", "--dir", str(tmp_path), db=database)
    assert down.exit_code == 0
    files = sorted(p.name for p in tmp_path.iterdir())
    assert len(files) == 3 and files[2].endswith("_rollback_user_sync.sql")
    assert files[2][:14] > files[1][:14] and up.exit_code == 0
    for _ in range(2):
        done = _psql(database, tmp_path / files[2], "--single-transaction")
        assert done.returncode == 0, done.stderr
    assert (
        scalar(
            conn,
            "SELECT count(*) FROM pg_trigger WHERE tgrelid = 'auth.users'::regclass AND tgname LIKE 'on_auth_user_%'",
        )
        == 0
    )
    assert scalar(conn, "SELECT to_regprocedure('public.handle_new_user()')") is None
    assert scalar(conn, "SELECT count(*) FROM public.users") == 1
    assert (
        scalar(
            conn,
            "SELECT count(*) FROM public.cleanup_audit_log WHERE job_name = 'rollback_user_sync'",
        )
        == 2
    )


def test_down_migration_refuses_to_cascade_into_another_trigger(
    database: Database, conn: psycopg.Connection, tmp_path: Path
) -> None:
    assert run("apply", "--yes", db=database).exit_code == 0
    conn.execute(
        "CREATE TRIGGER someone_elses AFTER INSERT ON auth.users "
        "FOR EACH ROW EXECUTE FUNCTION public.handle_new_user()"
    )
    run("migrations", "--down", "--dir", str(tmp_path), db=database)
    (down,) = tmp_path.iterdir()
    refused = _psql(database, down, "--single-transaction")
    assert refused.returncode != 0
    assert (
        "ghostguard rollback refused: another trigger calls public.handle_new_user()"
        in refused.stderr
    )
    assert (
        scalar(conn, "SELECT count(*) FROM pg_trigger WHERE tgname = 'on_auth_user_created'") == 1
    )


def test_apply_and_rollback_record_the_migration_history_with_the_local_versions(
    database: Database, conn: psycopg.Connection, tmp_path: Path
) -> None:
    conn.execute(HISTORY)
    directory = tmp_path / "supabase" / "migrations"
    directory.mkdir(parents=True)
    applied = run("apply", "--yes", "--migrations-dir", str(directory), db=database)
    assert applied.exit_code == 0, applied.output
    files = sorted(p.name for p in directory.iterdir())
    assert [f[15:] for f in files] == ["create_user_sync_trigger.sql", "backfill_ghost_users.sql"]
    assert _versions(conn) == [(f[:14], f[15:-4]) for f in files]
    assert "in supabase_migrations.schema_migrations" in applied.stderr
    statements = scalar(
        conn,
        "SELECT statements FROM supabase_migrations.schema_migrations WHERE name = 'create_user_sync_trigger'",
    )
    assert isinstance(statements, list) and len(statements) > 5
    text = (directory / files[0]).read_text()
    assert all(s in text for s in statements)
    # the files match the history: `ghostguard migrations` has nothing new to write
    again = run("migrations", "--dir", str(directory), db=database)
    assert again.stdout.count("up to date:") == 2
    # applying again records nothing twice
    assert run("apply", "--yes", "--migrations-dir", str(directory), db=database).exit_code == 0
    assert len(_versions(conn)) == 2
    rolled = run("rollback", "--yes", "--migrations-dir", str(directory), db=database)
    assert rolled.exit_code == 0, rolled.output
    history = _versions(conn)
    assert len(history) == 3 and history[2][1] == "rollback_user_sync"
    assert (directory / f"{history[2][0]}_rollback_user_sync.sql").exists()


def test_history_is_recorded_without_a_migrations_directory_and_only_when_present(
    database: Database, conn: psycopg.Connection, tmp_path: Path
) -> None:
    assert (
        run("apply", "--yes", "--migrations-dir", str(tmp_path / "none"), db=database).exit_code
        == 0
    )
    assert not (tmp_path / "none").exists()  # no history table: nothing recorded, nothing written
    conn.execute(HISTORY)
    assert (
        run("apply", "--yes", "--migrations-dir", str(tmp_path / "none"), db=database).exit_code
        == 0
    )
    assert [n for _, n in _versions(conn)] == ["create_user_sync_trigger", "backfill_ghost_users"]
    assert not (tmp_path / "none").exists()
