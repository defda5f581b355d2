"""One ghostguard writer per profile table at a time, enforced with a PostgreSQL advisory lock."""

from __future__ import annotations

import zlib
from collections.abc import Iterator
from contextlib import contextmanager

import psycopg

from ghostguard.config import Config
from ghostguard.errors import Refused

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
        """
        SELECT a.pid, a.usename, a.application_name, now() - a.backend_start, left(a.query, 80)
        FROM pg_catalog.pg_locks l JOIN pg_catalog.pg_stat_activity a ON a.pid = l.pid
        WHERE l.locktype = 'advisory' AND l.granted AND l.classid = %s::oid AND l.objid = %s::oid
          AND l.objsubid = 2
        """,
        (LOCK_CLASS & 0xFFFFFFFF, key & 0xFFFFFFFF),
    ).fetchone()
    if row is None:
        return "holder not visible to this role"
    pid, user, app, age, query = row
    return f"pid {pid}, role {user}, application {app or '?'}, connected {age}, running {query!r}"
