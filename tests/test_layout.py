"""Text reports read well at 80 and 120 columns: no line wider than the terminal, no name broken
mid-word, no trailing spaces; the layouts are kept as snapshots (tests/snapshots/, rewritten
with GHOSTGUARD_UPDATE_SNAPSHOTS=1 after a deliberate change)."""

from __future__ import annotations

import os
import re
from pathlib import Path

import psycopg
import pytest

from conftest import Database, make_ghosts, run
from ghostguard.supabase.authserver import AuthServer

SNAPSHOTS = Path(__file__).parent / "snapshots"
BODY = ("┏", "FAIL", "WARN", "PASS", "Signup kinds")
UPDATE = os.environ.get("GHOSTGUARD_UPDATE_SNAPSHOTS") == "1"
# A trigger of the app's with the pitfalls doctor names, and a long name to keep whole.
APP_TRIGGER = """
CREATE FUNCTION public.create_profile_for_new_user_account() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO users (id, email) VALUES (NEW.id, NEW.email);
  RETURN NEW;
EXCEPTION WHEN others THEN
  RETURN NEW;
END $$;
CREATE TRIGGER on_auth_user_created_make_profile_row AFTER INSERT ON auth.users
  FOR EACH ROW EXECUTE FUNCTION public.create_profile_for_new_user_account();
"""


def _shown(command: str, database: Database, width: int) -> str:
    """The report, less its first line(s): where the database is (a port, a temporary path)."""
    result = run(command, db=database, env={"COLUMNS": str(width)})
    lines = result.stdout.splitlines(keepends=True)
    assert max(len(line.rstrip("\n")) for line in lines) <= width
    first = next(i for i, line in enumerate(lines) if line.startswith(BODY))
    return "".join(lines[first:])


def _matches_snapshot(name: str, text: str) -> None:
    path = SNAPSHOTS / name
    if UPDATE:
        path.write_text(text)
    assert text == path.read_text(), f"{name} changed; GHOSTGUARD_UPDATE_SNAPSHOTS=1 rewrites it"


@pytest.mark.parametrize("width", [80, 120])
def test_doctor_fits_the_terminal_and_keeps_names_whole(
    database: Database, admin: psycopg.Connection, auth: AuthServer, conn: psycopg.Connection,
    width: int,
) -> None:  # fmt: skip
    make_ghosts(auth, conn)
    admin.execute(APP_TRIGGER)
    text = _shown("doctor", database, width)
    lines = text.splitlines()
    assert max(len(line) for line in lines) <= width
    assert all(line == line.rstrip() for line in lines)
    failing = run("doctor", "--json", db=database).stdout
    names = set(re.findall(r'"name": "([a-z_]+)"', failing))
    for name in names:  # every check's name whole on its line, never split
        assert re.search(rf"^(│ )?(FAIL|WARN|PASS) +(│ )?{name}( |$)", text, re.M), name
    assert "trigger_records_exceptions" in text and "trigger_definer" in text
    _matches_snapshot(f"doctor-{width}.txt", text)


@pytest.mark.parametrize("width", [80, 120])
def test_check_fits_the_terminal(
    database: Database, auth: AuthServer, conn: psycopg.Connection, width: int
) -> None:
    make_ghosts(auth, conn)
    conn.execute("ALTER TABLE public.users ALTER COLUMN email SET NOT NULL")
    text = _shown("check", database, width)
    lines = text.splitlines()
    assert max(len(line) for line in lines) <= width
    assert all(line == line.rstrip() for line in lines)
    assert re.search(r"│ phone +│", text)  # the kind column is never wrapped
    _matches_snapshot(f"check-{width}.txt", text)


@pytest.mark.parametrize("width", [80, 120])
def test_scan_and_verify_fit_the_terminal(
    database: Database, auth: AuthServer, conn: psycopg.Connection, width: int
) -> None:
    """Their reports carry ids and timings, so no snapshot: the width and whole words."""
    make_ghosts(auth, conn)
    for command in ("scan", "verify"):
        result = run(command, db=database, env={"COLUMNS": str(width)})
        assert result.exit_code == 1, result.output
        lines = result.stdout.splitlines()
        assert max(len(line) for line in lines) <= width, command
        assert all(line == line.rstrip() for line in lines), command
        words = set(re.findall(r"[a-z]+(?:_[a-z]+)+", result.stdout))  # identifiers, whole
        assert {"on_auth_user_created", "handle_new_user"} <= words, (command, words)
