"""migrations: the guide's two files, the Supabase CLI's naming, apply's statements, valid under psql."""

from __future__ import annotations

import re
import subprocess
from datetime import UTC, datetime
from pathlib import Path

import psycopg

from conftest import Database, ghost_count, make_ghosts, run
from ghostguard import catalog
from ghostguard.config import Config
from ghostguard.supabase import migrations
from ghostguard.supabase.authserver import AuthServer


def _psql(database: Database, path: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    psql = database.sandbox.server.bin_dir / "psql"
    return subprocess.run(
        [
            str(psql),
            "-X",
            "-q",
            "-v",
            "ON_ERROR_STOP=1",
            *extra,
            "-d",
            database.url,
            "-f",
            str(path),
        ],
        capture_output=True,
        text=True,
        check=False,
    )


def test_files_are_named_like_the_supabase_cli_and_not_rewritten(
    database: Database, tmp_path: Path
) -> None:
    first = run("migrations", "--dir", str(tmp_path), db=database)
    assert first.exit_code == 0, first.output
    names = sorted(p.name for p in tmp_path.iterdir())
    assert re.fullmatch(r"\d{14}_create_user_sync_trigger\.sql", names[0])
    assert re.fullmatch(r"\d{14}_backfill_ghost_users\.sql", names[1])
    assert names[1][:14] > names[0][:14]
    second = run("migrations", "--dir", str(tmp_path), db=database)
    assert second.stdout.splitlines() == [f"up to date: {tmp_path / n}" for n in names]
    assert len(list(tmp_path.iterdir())) == 2


def test_new_versions_follow_existing_migrations(tmp_path: Path) -> None:
    (tmp_path / "29991231235959_later.sql").write_text("select 1;")
    config = Config()
    result = migrations.write(
        tmp_path,
        migrations.render(config, catalog.supabase_shape(config)),
        now=datetime(2026, 1, 27, tzinfo=UTC),
    )
    assert [p.name for p in result.written] == [
        "30000101000000_create_user_sync_trigger.sql",
        "30000101000001_backfill_ghost_users.sql",
    ]


def test_files_run_under_psql_twice_as_postgres(
    database: Database, auth: AuthServer, conn: psycopg.Connection, tmp_path: Path
) -> None:
    make_ghosts(auth, conn)
    assert run("migrations", "--dir", str(tmp_path), db=database).exit_code == 0
    files = sorted(tmp_path.iterdir())
    for attempt in range(2):
        for path in files:
            done = _psql(database, path, *(["--single-transaction"] if attempt else []))
            assert done.returncode == 0, done.stderr
    assert ghost_count(conn) == 0
    assert conn.execute(
        "SELECT status, records_affected FROM public.cleanup_audit_log "
        "WHERE job_name = 'backfill_ghost_users' ORDER BY started_at"
    ).fetchall() == [("success", 8), ("success", 0)]
    assert run("verify", db=database).exit_code == 0


def test_stdout_and_offline(tmp_path: Path) -> None:
    result = run("migrations", "--stdout", "--offline")
    assert result.exit_code == 0
    assert result.stdout.startswith("-- ===== create_user_sync_trigger.sql =====")
    assert "-- ===== backfill_ghost_users.sql =====" in result.stdout
    assert (
        'REVOKE EXECUTE ON FUNCTION "public"."handle_new_user"() FROM PUBLIC, "anon", "authenticated", '
        '"service_role"' in result.stdout
    )
