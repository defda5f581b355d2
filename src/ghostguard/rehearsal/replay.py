"""Running one migration file the way the Supabase CLI does (one transaction, statement by
statement), and what a failure means for a rehearsal, in one line with the way out."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import psycopg
from psycopg import errors

from ghostguard.errors import GhostguardError
from ghostguard.rehearsal import files
from ghostguard.rehearsal.locate import Location
from ghostguard.runner import primary_message
from ghostguard.sandbox import guard, standins
from ghostguard.sqlparts import verbatim

# Errors that mean something the migrations expect is not there: an object made outside them (in
# the dashboard, or by a hosted service), or an extension this server was built without.
MISSING_OBJECT = (
    errors.UndefinedTable,
    errors.UndefinedObject,
    errors.UndefinedFunction,
    errors.InvalidSchemaName,
)
MISSING_EXTENSION = (errors.FeatureNotSupported, errors.UndefinedFile)
EXTENSION_NAME = re.compile(r'extension "([^"]+)"')
SUPABASE_SCHEMAS = ("auth", "storage", "realtime")
# Hosted offers them; no stand-in can: they are compiled code with their own types and indexes.
NO_STAND_IN = {
    "postgis": "PostGIS",
    "postgis_raster": "PostGIS",
    "postgis_topology": "PostGIS",
    "postgis_tiger_geocoder": "PostGIS",
    "pgrouting": "pgRouting (needs PostGIS)",
    "timescaledb": "TimescaleDB",
    "pgroonga": "PGroonga",
    "rum": "RUM",
    "plv8": "PL/V8",
}


class ReplayFailed(GhostguardError):
    """A migration (or the seed) failed: the file, the statement and the error, in one line;
    `details` is what --json prints."""

    def __init__(self, message: str, details: dict[str, Any]) -> None:
        super().__init__(message)
        self.details = details


def run_file(conn: psycopg.Connection, path: Path, text: str) -> None:
    """One transaction for the file, as the Supabase CLI does; statement by statement, so a
    failure names its statement and line."""
    parts = files.statements(text)
    current = parts[0]
    try:
        with conn.transaction():
            for current in parts:
                conn.execute(verbatim(current.text))  # the project's own SQL, as `db push` runs it
    except psycopg.Error as exc:
        position = int(exc.diag.statement_position or 0) if exc.diag else 0
        whole = len(parts) == 1 and current.text == text
        shown = files.statement_at(text, position) if whole else files.shown(current.text)
        line = files.line_at(text, position) if whole and position else current.line
        meaning = _meaning(conn, exc)
        raise ReplayFailed(
            f"{path.name}:{line}: {shown!r}: {primary_message(exc)}{meaning}",
            {
                "file": path.name,
                "path": Location.of(path).path,
                "line": line,
                "statement": shown,
                "error": primary_message(exc),
                "sqlstate": exc.sqlstate,
                "meaning": meaning.removeprefix("; "),
            },
        ) from None


def _meaning(conn: psycopg.Connection, exc: psycopg.Error) -> str:
    """What a migration's error means for a rehearsal, and the way out, as the end of its line."""
    message = primary_message(exc)
    if isinstance(exc, MISSING_EXTENSION):
        return _missing_extension(EXTENSION_NAME.search(message))
    if isinstance(exc, errors.InsufficientPrivilege):
        return _refused(conn, message)
    if isinstance(exc, errors.ForeignKeyViolation):
        return (
            "; the row needs one no migration creates (a user made in the dashboard?): a fresh "
            "`supabase db reset` fails here too; move such rows to the seed, after what they need"
        )
    if isinstance(exc, MISSING_OBJECT):
        return (
            "; not in the sandbox: an object created outside these migrations (in the "
            "dashboard, or by a hosted service the sandbox does not reproduce)"
        )
    return ""


def _missing_extension(named: re.Match[str] | None) -> str:
    name = named[1] if named else ""
    if name in NO_STAND_IN:
        return (
            f"; {NO_STAND_IN[name]} is not in this server and has no stand-in (it is compiled "
            "code): rehearse with --pg-bin of a PostgreSQL that has it installed"
        )
    if name in standins.names():
        return (
            "; this server has no stand-in for it (PostgreSQL 18 and later do): rehearse "
            "on the embedded server, without --pg-bin"
        )
    return (
        "; this PostgreSQL was built without it: rehearse with --pg-bin of a server that has "
        "it (e.g. $(pg_config --bindir))"
    )


def _refused(conn: psycopg.Connection, message: str) -> str:
    """A privilege error: what hosted does with the same statement."""
    if not guard.active(conn):
        return f"; if the statement is one supautils allows postgres: {guard.WITHOUT_IT}"
    table = re.match(r"must be owner of (?:table|relation) (\S+)", message)
    if table and _in_supabase_schema(conn, table[1]):
        return (
            "; hosted projects refuse it too: the table belongs to Supabase (postgres may create "
            "and drop triggers and policies on it and nothing else; RLS is already on)"
        )
    if message.startswith("permission denied for schema auth"):
        return "; hosted projects refuse it too: since 2025-04-21 nothing new may be made in auth"
    return ""


def _in_supabase_schema(conn: psycopg.Connection, table: str) -> bool:
    row = conn.execute(
        "SELECT count(*) FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n "
        "ON n.oid = c.relnamespace WHERE c.relname = %s AND n.nspname = ANY(%s)",
        (table, list(SUPABASE_SCHEMAS)),
    ).fetchone()
    return bool(row and row[0])
