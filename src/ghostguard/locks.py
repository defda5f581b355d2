"""One ghostguard writer per profile table at a time, enforced with a PostgreSQL advisory lock."""

from __future__ import annotations

import zlib
from collections.abc import Generator
from contextlib import contextmanager

import psycopg
from psycopg import errors, sql

from ghostguard import sqlfiles
from ghostguard.config import Config, TableRef
from ghostguard.errors import DatabaseError, Refused
from ghostguard.sqlparts import Step, do_block, name_literal

_SQL = sqlfiles.statements(__name__, "locks.sql")
LOCK_CLASS = 0x67676C6B  # "gglk": the first key, so our locks are recognisable in pg_locks


def lock_key(config: Config) -> int:
    """Second key: derived from the profile table, so syncs of different tables do not block each other."""
    value = zlib.crc32(f"ghostguard:{config.target.display}".encode())
    return value - (1 << 32) if value >= (1 << 31) else value


def _lock_call(function: str, config: Config) -> sql.Composed:
    return sql.SQL("SELECT {}({}, {})").format(
        sql.Identifier("pg_catalog", function),
        sql.Literal(LOCK_CLASS),
        sql.Literal(lock_key(config)),
    )


def try_lock(config: Config) -> Step:
    return Step(
        "one ghostguard run at a time on this profile table (refused, not queued, when taken)",
        _lock_call("pg_try_advisory_lock", config),
    )


def advisory_lock(config: Config) -> Step:
    return Step(
        "one backfill at a time (ghostguard's own runs take the same advisory lock)",
        _lock_call("pg_advisory_lock", config),
    )


def advisory_unlock(config: Config) -> Step:
    return Step("release the advisory lock", _lock_call("pg_advisory_unlock", config))


@contextmanager
def exclusive_run(
    conn: psycopg.Connection, config: Config, action: str
) -> Generator[None, None, None]:
    """Hold the session-level advisory lock for the block, or refuse naming who holds it."""
    row = conn.execute(try_lock(config).statement).fetchone()
    if not (row and row[0]):
        holder_text = holder(conn, lock_key(config))
        raise Refused(f"{action} refused: another ghostguard run holds the lock ({holder_text})")
    try:
        yield
    finally:
        if not conn.closed and not conn.broken:
            conn.execute(advisory_unlock(config).statement)


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
    pid: int,
    user: str,
    application: str | None,
    state: str | None,
    age: object,
    started: str | None,
    modes: str,
    query: str | None,
) -> str:
    if state is None:  # other roles' activity is hidden without pg_read_all_stats
        return (
            f"pid {pid} (role {user}, holds {modes}; its activity is hidden from this role: "
            "grant pg_read_all_stats to postgres to see it)"
        )
    return (
        f"pid {pid} (application {application or '?'}, role {user}, {state}, transaction open "
        f"{age}, query started {started}, holds {modes}, query {query!r})"
    )


def profile_lock_first(config: Config) -> Step:
    """Before anything locks the auth table: the lock a profile write needs, without waiting
    (LockNotAvailable at once when a migration holds the profile table). So ghostguard never holds
    a lock on auth.users while it waits on the profile table, and the signups queued behind it
    never wait on that migration too. (A table that does not exist is not locked: the caller
    reports that.)"""
    table = sql.Identifier(config.target.schema, config.target.table)
    return Step(
        "the profile table's lock first and without waiting: never hold auth.users while waiting",
        # In a DO block so a migration file run outside a transaction (plain `psql -f`) still
        # fails fast when the table is locked; inside one, the lock is held to its end.
        do_block(
            sql.SQL(
                "\nBEGIN\n"
                "  IF pg_catalog.to_regclass({name}) IS NOT NULL THEN\n"
                "    LOCK TABLE {table} IN ROW EXCLUSIVE MODE NOWAIT;\n"
                "  END IF;\n"
                "END\n"
            ).format(name=name_literal(table), table=table)
        ),
    )


@contextmanager
def conflicts_named(
    conn: psycopg.Connection, tables: list[TableRef], action: str
) -> Generator[None, None, None]:
    """Around a transaction block: a lock it could not get ends as one DatabaseError (exit 2)
    naming the session in the way, read after the transaction was rolled back."""
    try:
        yield
    except errors.LockNotAvailable as exc:
        who = in_the_way(conn, tables)
        names = " or ".join(t.display for t in tables)
        raise DatabaseError(
            f"{action}: {names} is locked by another session{who}; nothing was changed and no "
            "signup waited on ghostguard; run again when that transaction ends",
            exc.sqlstate,
        ) from None
