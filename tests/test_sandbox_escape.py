"""The sandbox is no way into the machine: no TCP, a socket only its starter reaches, hosted's
reserved memberships on every server, no COPY ... PROGRAM for a migration, and no rehearsal that
leaves roles or role settings behind for the next one."""

from __future__ import annotations

import os
import pwd
import socket
import stat
import subprocess
from pathlib import Path

import psycopg
import pytest

from conftest import Database, run, scalar
from ghostguard.sandbox import Sandbox
from ghostguard.sandbox.server import SERVICE_USER

HOSTED = '"{}" role memberships are reserved, only superusers can grant them'


def test_no_tcp_and_a_socket_in_a_private_directory(sandbox: Sandbox) -> None:
    port = sandbox.server.port
    assert port is not None
    with socket.socket() as probe:
        assert probe.connect_ex(("127.0.0.1", port)) != 0  # nothing listens on TCP
    sockets = sandbox.server.socket_dir
    mode = sockets.stat()
    assert stat.S_IMODE(mode.st_mode) == 0o700
    owner = SERVICE_USER if os.geteuid() == 0 else pwd.getpwuid(os.getuid()).pw_name
    assert pwd.getpwuid(mode.st_uid).pw_name == owner
    assert sandbox.url("postgres").startswith(
        f"postgresql://postgres@/postgres?host={sockets}&port="
    )


def test_another_local_user_cannot_connect(sandbox: Sandbox, database: Database) -> None:
    psql = sandbox.server.bin_dir / "psql"
    if os.geteuid() == 0:  # as root (CI): try as the unprivileged `nobody`
        done = subprocess.run(
            [str(psql), "-X", "-d", database.admin_url, "-c", "select 1"],
            capture_output=True,
            text=True,
            check=False,
            user="nobody",
            group="nogroup",
            extra_groups=[],
        )
        assert done.returncode != 0
        assert "Permission denied" in done.stderr
    else:  # nobody else can even look into the directory
        assert stat.S_IMODE(sandbox.server.socket_dir.stat().st_mode) & 0o077 == 0


@pytest.mark.parametrize(
    ("statement", "role"),
    [
        ("GRANT pg_execute_server_program TO postgres", "pg_execute_server_program"),
        ("GRANT pg_read_server_files TO authenticated", "pg_read_server_files"),
        ("CREATE ROLE sneaky IN ROLE pg_write_server_files", "pg_write_server_files"),
        ("ALTER GROUP pg_execute_server_program ADD USER postgres", "pg_execute_server_program"),
        (
            "DO $$ BEGIN EXECUTE 'GRANT pg_execute_server_program TO postgres'; END $$",
            "pg_execute_server_program",
        ),
        ("GRANT supabase_auth_admin TO postgres", "supabase_auth_admin"),
    ],
)
def test_reserved_memberships_are_refused_on_every_server(
    database: Database, conn: psycopg.Connection, pg_major: int, statement: str, role: str
) -> None:
    refusals = (psycopg.errors.InsufficientPrivilege, psycopg.errors.ReservedName)
    with pytest.raises(refusals) as refused:
        conn.execute(statement)
    assert refused.value.diag.message_primary == HOSTED.format(role)  # the guard: hosted's words
    assert scalar(conn, "SELECT pg_has_role('postgres', %s, 'MEMBER')", role) is False
    assert scalar(conn, "SELECT count(*) FROM pg_roles WHERE rolname = 'sneaky'") == 0


def _escape_folder(tmp_path: Path, marker: Path) -> Path:
    folder = tmp_path / "supabase" / "migrations"
    folder.mkdir(parents=True)
    (folder / "20240101000000_escape.sql").write_text(
        "grant pg_execute_server_program, pg_read_server_files to postgres;\n"
        f"copy (select 1) to program 'touch {marker}';\n"
        "create table public.loot (line text);\n"
        "copy public.loot from '/etc/passwd';\n"
    )
    return folder


def test_a_migration_cannot_run_a_program_or_read_files(sandbox: Sandbox, tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    folder = _escape_folder(tmp_path, marker)
    result = run("rehearse", "--migrations", str(folder), "--data-dir", str(sandbox.server.home))
    assert result.exit_code == 2, result.output
    assert "20240101000000_escape.sql" in result.stderr
    assert "grant pg_execute_server_program" in result.stderr
    assert not marker.exists()


def test_a_rehearsal_leaves_no_role_or_role_setting_behind(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    folder = tmp_path / "one" / "supabase" / "migrations"
    folder.mkdir(parents=True)
    (folder / "20240101000000_roles.sql").write_text(
        "alter role postgres set statement_timeout = '1ms';\n"
        "alter role authenticator set pgrst.db_pre_request = 'public.check_request';\n"
        "alter role postgres in database postgres set work_mem = '1MB';\n"
        "create role app_reader nologin;\n"
        "grant app_reader to postgres;\n"
        "grant usage, create on schema public to app_reader;\n"
        "create table public.owned_by_reader (x int);\n"
        "alter table public.owned_by_reader owner to app_reader;\n"
    )
    admin_url = sandbox.url("template1", "supabase_admin")
    with psycopg.connect(admin_url, autocommit=True) as admin:
        settings_before = admin.execute(
            "SELECT setrole::regrole::text, setdatabase, setconfig FROM pg_db_role_setting "
            "ORDER BY 1, 2"
        ).fetchall()
    first = run("rehearse", "--migrations", str(folder), "--data-dir", str(sandbox.server.home))
    assert "app_reader" not in first.stderr, first.output
    with psycopg.connect(admin_url, autocommit=True) as admin:
        assert (
            admin.execute(
                "SELECT setrole::regrole::text, setdatabase, setconfig FROM pg_db_role_setting "
                "ORDER BY 1, 2"
            ).fetchall()
            == settings_before
        )
        assert scalar(admin, "SELECT count(*) FROM pg_roles WHERE rolname = 'app_reader'") == 0
    second = run("rehearse", "--migrations", str(folder), "--data-dir", str(sandbox.server.home))
    assert second.exit_code == first.exit_code, second.output  # not "role app_reader exists"
    assert "already exists" not in second.output
