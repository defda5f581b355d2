"""Execute plan steps and turn database failures into one-line errors, deciding by SQLSTATE class."""

from __future__ import annotations

from collections.abc import Generator
from contextlib import contextmanager

import psycopg
from psycopg import errors

from ghostguard.errors import DatabaseError
from ghostguard.secrets import mask
from ghostguard.sqlparts import Step


def primary_message(exc: psycopg.Error) -> str:
    """The server's primary message (first line), with anything password-like masked."""
    text = exc.diag.message_primary if exc.diag and exc.diag.message_primary else str(exc)
    return mask(text.strip().splitlines()[0] if text.strip() else type(exc).__name__)


@contextmanager
def database_errors(action: str) -> Generator[None, None, None]:
    """Re-raise psycopg errors from the block as DatabaseError naming the action."""
    try:
        yield
    except errors.LockNotAvailable as exc:
        raise DatabaseError(
            f"{action}: gave up waiting for a lock (lock_timeout): another session holds the table; "
            "nothing was changed, run again when it finishes",
            exc.sqlstate,
        ) from None
    except errors.InsufficientPrivilege as exc:
        raise DatabaseError(
            f"{action}: permission denied: {primary_message(exc)}", exc.sqlstate
        ) from None
    except psycopg.OperationalError as exc:
        raise DatabaseError(
            f"{action}: lost the database connection: {primary_message(exc)}"
        ) from None
    except psycopg.Error as exc:
        raise DatabaseError(f"{action} failed: {primary_message(exc)}", exc.sqlstate) from None


def run_steps(conn: psycopg.Connection, steps: list[Step]) -> None:
    """Run steps in order on the current transaction (callers own the transaction)."""
    for step in steps:
        conn.execute(step.statement)
