"""CLI contract: exit codes, one-line errors without tracebacks or passwords, help and docs for every command."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import click
import psycopg
import pytest

from conftest import Database, run, scalar
from ghostguard import demo as demo_mod
from ghostguard.cli import cli
from ghostguard.sandbox import Sandbox

README = Path(__file__).resolve().parent.parent / "README.md"
DB_COMMANDS = [
    "scan",
    "migrations",
    "apply",
    "backfill",
    "verify",
    "rollback",
    "repair",
    "orphans",
]


def _all_commands() -> list[tuple[str, click.Command]]:
    found = []
    for name, command in cli.commands.items():
        found.append((name, command))
        if isinstance(command, click.Group):
            found += [(f"{name} {sub}", c) for sub, c in command.commands.items()]
    return found


@pytest.mark.parametrize(
    ("name", "command"), _all_commands(), ids=lambda v: v if isinstance(v, str) else ""
)
def test_every_command_has_help_and_is_in_the_readme(name: str, command: click.Command) -> None:
    assert command.help and len(command.help.strip()) > 20
    result = run(*name.split(), "--help")
    assert result.exit_code == 0 and "Usage: ghostguard " + name in result.stdout
    assert f"ghostguard {name}" in README.read_text(), (
        f"README has no example of `ghostguard {name}`"
    )


@pytest.mark.parametrize("command", DB_COMMANDS)
def test_unparsable_url_is_a_one_line_error(command: str) -> None:
    result = run(command, "--db-url", "postgresql//admin:hunter2@nowhere/x")
    assert result.exit_code == 2
    assert result.stderr == (
        "error: invalid database URL: expected one like postgresql://user@host:5432/dbname "
        "or 'host=... dbname=...'\n"
    )
    assert "hunter2" not in result.output


WRITE_FLAGS = {
    "apply": ["--yes"],
    "backfill": ["--yes"],
    "rollback": ["--yes"],
    "repair": ["--yes"],
    "orphans": ["--mark-deleted", "--yes"],
    "migrations": ["--stdout"],
}


@pytest.mark.parametrize("command", DB_COMMANDS)
def test_unreachable_server_never_shows_the_password(command: str) -> None:
    url = "postgresql://admin:s3cr3t-pw@127.0.0.1:1/app"
    result = run(command, *WRITE_FLAGS.get(command, []), "--db-url", url)
    assert result.exit_code == 2
    assert "s3cr3t-pw" not in result.output
    assert result.stderr.startswith("error: cannot connect to admin@127.0.0.1:1/app: ")
    assert result.stderr.endswith("; check --db-url / DATABASE_URL\n")
    assert len(result.stderr.splitlines()) == 1


@pytest.mark.parametrize(
    ("password", "refused"),
    [("zq7/ss99word", True), ("zq7@ss99word", True), ("zq7:ss99word", False)],
)
@pytest.mark.parametrize("command", ["scan", "apply", "doctor"])
def test_a_password_with_unencoded_separators_never_shows(
    command: str, password: str, refused: bool
) -> None:
    result = run(
        command,
        *WRITE_FLAGS.get(command, []),
        "--db-url",
        f"postgresql://admin:{password}@127.0.0.1:1/app",
    )
    assert result.exit_code == 2
    assert len(result.stderr.splitlines()) == 1
    for fragment in ("zq7", "ss99word", password):
        assert fragment not in result.output
    if refused:
        assert result.stderr == (
            "error: invalid database URL: its password holds a raw '/' or '@'; percent-encode them "
            "(/ as %2F, @ as %40, : as %3A) or pass the password in PGPASSWORD\n"
        )
    else:
        assert result.stderr.startswith("error: cannot connect to admin@127.0.0.1:1/app: ")


def test_password_in_a_working_url_never_reaches_output(
    database: Database, admin: psycopg.Connection
) -> None:
    admin.execute(
        "ALTER ROLE postgres PASSWORD 'pw-should-stay-secret'"
    )  # PG15: not by itself (REPLICATION)
    url = database.url.replace("postgres@", "postgres:pw-should-stay-secret@")
    for args in (
        ["scan"],
        ["verify", "--json"],
        ["apply", "--dry-run"],
        ["apply", "--yes", "--json"],
    ):
        result = run(*args, "--db-url", url)
        assert result.exit_code in (0, 1), result.output
        assert "pw-should-stay-secret" not in result.output


def test_database_url_env_var_is_used(database: Database) -> None:
    result = run("scan", "--json", env={"DATABASE_URL": database.url})
    assert result.exit_code == 0 and '"ghost_total": 0' in result.stdout


def test_missing_tables_are_a_config_error(database: Database, conn: psycopg.Connection) -> None:
    conn.execute("DROP TABLE public.users")
    result = run("scan", db=database)
    assert result.exit_code == 2
    assert result.stderr == (
        "error: no ghostguard.toml here and the defaults do not fit this database (target "
        "(profile) table public.users not found (or not visible to this role); set [target] in "
        "ghostguard.toml): run `ghostguard init` to write one that does\n"
    )


def test_backfill_before_apply_is_refused(database: Database, conn: psycopg.Connection) -> None:
    result = run("backfill", "--yes", db=database)
    assert result.exit_code == 3
    assert (
        result.stderr
        == "refused: public.cleanup_audit_log does not exist: run `ghostguard apply` first\n"
    )
    assert scalar(conn, "SELECT count(*) FROM public.users") == 0


def test_no_traceback_for_a_server_side_permission_error(
    database: Database, admin: psycopg.Connection
) -> None:
    admin.execute("REVOKE TRIGGER ON auth.users FROM postgres")
    result = run("apply", "--yes", db=database)
    assert result.exit_code == 2
    assert result.stderr == (
        "error: apply: the preflight of every signup kind: permission denied: "
        "permission denied for table users\n"
    )
    assert "Traceback" not in result.output


def test_python_dash_m_and_version(database: Database) -> None:
    """--version names the tool, psycopg and libpq, and the server a command would use."""
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    done = subprocess.run(
        [sys.executable, "-m", "ghostguard", "--version"], capture_output=True, text=True, env=env
    )
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert re.fullmatch(r"ghostguard \d+\.\d+\.\d+", lines[0])
    assert re.fullmatch(r"psycopg 3\.\d+\.\d+ \(libpq \d+\.\d+\)", lines[1])
    assert re.fullmatch(r"server: PostgreSQL \d+\.\d+, the embedded sandbox \(.+/bin\)", lines[2])
    url = database.url.replace("postgres@", "postgres:hunter2@")
    done = subprocess.run(
        [sys.executable, "-m", "ghostguard", "--version"],
        capture_output=True,
        text=True,
        env={**env, "DATABASE_URL": url},
    )
    server = done.stdout.splitlines()[2]
    assert re.fullmatch(
        r"server: PostgreSQL \d+\.\d+.* at postgres@/\S+ \(socket, port \d+\)/\w+ \(DATABASE_URL\)",
        server,
    )
    assert "hunter2" not in done.stdout + done.stderr


def test_demo_reports_zero_ghosts_and_every_check_passing(sandbox: Sandbox) -> None:
    result = run("demo", "--users", "400", "--data-dir", str(sandbox.server.home))
    assert result.exit_code == 0, result.output
    assert "Result: 0 ghosts, every check passing." in result.stdout
    assert "6/6 success criteria met" in result.stdout
    assert re.search(r"Signed-in users can read their own\s+profile[^\n]*│ PASS", result.stdout)
    assert "unreadable       0 profiles their users cannot read through the Data API" in (
        result.stdout
    )
    assert re.search(r"ghost users\s+[1-9]\d*", result.stdout)  # there were ghosts before
    again = run("demo", "--users", "400", "--data-dir", str(sandbox.server.home))
    assert again.exit_code == 0 and again.stdout.count("backfilled profiles:") == 1


def test_a_long_demo_says_how_far_it_is_on_stderr(
    sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(demo_mod, "PROGRESS_EVERY", 0.0)  # a line per round, not per 5 s
    monkeypatch.setattr(demo_mod, "SIGNUP_CHUNK", 500)
    result = run(
        "demo", "--users", "1500", "--data-dir", str(sandbox.server.home),
        env={"GHOSTGUARD_PROGRESS_SECONDS": "0"},
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    lines = result.stderr.splitlines()
    signed = [line for line in lines if line.startswith("signed up ")]
    assert signed[0].startswith("signed up 500/") and "/s)" in signed[0], lines
    assert any(line.startswith("backfill: ") and "auth rows scanned" in line for line in lines)
    assert "signed up" not in result.stdout  # progress never mixes with the report


def test_without_a_config_defaults_that_do_not_fit_say_run_init(
    database: Database, conn: psycopg.Connection
) -> None:
    """Every command names `ghostguard init`, never only an unrelated column; a config file the
    user wrote keeps its own message."""
    conn.execute("ALTER TABLE public.users DROP COLUMN email")
    expected = (
        "error: no ghostguard.toml here and the defaults do not fit this database (mapping: column "
        "'email' not found in public.users): run `ghostguard init` to write one that does\n"
    )
    for command in (("scan",), ("verify",), ("apply", "--yes"), ("check",), ("doctor",)):
        result = run(*command, db=database)
        assert (result.exit_code, result.stderr) == (2, expected), command
    assert run("init", db=database).exit_code == 0
    assert run("scan", db=database).exit_code == 0  # the written ghostguard.toml fits
    written = Path("ghostguard.toml").read_text()
    Path("mine.toml").write_text(written + '\n[mapping.email]\ncolumn = "email"\n')
    mine = run("scan", "--config", "mine.toml", db=database)
    assert mine.stderr == "error: mine.toml: mapping: column 'email' not found in public.users\n"


def test_connection_errors_keep_libpqs_reason_and_invent_no_host() -> None:
    from ghostguard import db

    assert db.describe("postgresql:///mydb") == "(default user)@(default host)/mydb"
    assert db.describe("postgresql://u@/d?host=/tmp/s&port=5") == "u@/tmp/s (socket, port 5)/d"
    result = run("scan", "--db-url", "postgresql://admin@127.0.0.1:1/app")
    assert result.exit_code == 2
    assert "port 1 failed: Connection refused (Is the server running" in result.stderr, (
        result.stderr
    )


def test_the_top_level_help_gives_every_summary_whole() -> None:
    result = run("--help")
    assert result.exit_code == 0
    commands = result.output.split("Commands:", 1)[1].split("Exit codes:", 1)[0]
    assert "..." not in commands
    assert "every signup gets a profile." in " ".join(commands.split())


def test_piped_output_has_no_trailing_spaces_and_follows_columns(database: Database) -> None:
    narrow = run("doctor", db=database, env={"COLUMNS": "80"})
    lines = narrow.stdout.splitlines()
    assert lines and all(line == line.rstrip() for line in lines)
    assert max(len(line) for line in lines) <= 80
