"""One ghostguard writer per profile table at a time, enforced with a PostgreSQL advisory lock."""

from __future__ import annotations

import zlib
from collections.abc import Iterator
from contextlib import contextmanager

import psycopg

from ghostguard import sqlfiles
from ghostguard.config import Config, TableRef
from ghostguard.errors import Refused

_SQL = sqlfiles.statements(__name__, "locks.sql")
LOCK_CLASS = 0x67676C6B  # "gglk": the first key, so our locks are recognisable in pg_locks


def lock_key(config: Config) -> int:
    """Second key: derived from the profile table, so syncs of different tables do not block each other."""
    value = zlib.crc32(f"ghostguard:{config.target.display}".encode())
    return value - (1 << 32) if value >= (1 << 31) else value


@contextmanager
def exclusive_run(conn: psycopg.Connection, config: Config, action: str) -> Iterator[None]:
    """Hold the session-level advisory lock for the block, or refuse naming who holds it."""
    key = lock_key(config)
    row = conn.execute("SELECT pg_try_advisory_lock(%s, %s)", (LOCK_CLASS, key)).fetchone()
    if not (row and row[0]):
        raise Refused(
            f"{action} refused: another ghostguard run holds the lock ({holder(conn, key)})"
        )
    try:
        yield
    finally:
        if not conn.closed and not conn.broken:
            conn.execute("SELECT pg_advisory_unlock(%s, %s)", (LOCK_CLASS, key))


def holder(conn: psycopg.Connection, key: int) -> str:
    """Describe the session that holds our lock: pid, role, application, since when, what it runs."""
    row = conn.execute(
        _SQL["lock_holder"],
        (LOCK_CLASS & 0xFFFFFFFF, key & 0xFFFFFFFF),
    ).fetchone()
    if row is None:
        return "holder not visible to this role"
    pid, user, app, age, query = row
    return f"pid {pid}, role {user}, application {app or '?'}, connected {age}, running {query!r}"


def lock_holders(conn: psycopg.Connection, tables: list[TableRef]) -> list[str]:
    """Other sessions holding locks on these tables, oldest transaction first, described in one line each.

    Used after a lock_timeout to name who is in the way (the query text is visible when the role
    may read other sessions' activity).
    """
    rows = conn.execute(
        _SQL["table_lock_holders"],
        ([t.schema for t in tables], [t.table for t in tables]),
    ).fetchall()
    return [_describe_holder(*row) for row in rows]


def in_the_way(conn: psycopg.Connection, tables: list[TableRef]) -> str:
    """'; in the way: <oldest holder>' for an error message, or '' when nobody is visible."""
    holders = lock_holders(conn, tables)
    return f"; in the way: {holders[0]}" if holders else ""


def _describe_holder(
    pid: int, user: str, state: str | None, age: object, modes: str, query: str | None
) -> str:
    if state is None:  # other roles' activity is hidden without pg_read_all_stats
        return (
            f"pid {pid} (role {user}, holds {modes}; its activity is hidden from this role: "
            "grant pg_read_all_stats to postgres to see it)"
        )
    return (
        f"pid {pid} (role {user}, {state}, transaction open {age}, holds {modes}, query {query!r})"
    )
