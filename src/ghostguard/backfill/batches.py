"""One run's batches: the next window of keys, and one batch over a window, each in its own short
transaction; a window whose batch fails on a row's data is salvaged (salvage.py)."""

from __future__ import annotations

from typing import Any

import psycopg

from ghostguard.backfill import salvage
from ghostguard.backfill.options import BackfillOptions
from ghostguard.backfill.pool import Window
from ghostguard.backfill.statements import EngineStatements


class Batches:
    """The statements of one run: the next window (on the coordinating connection) and one
    batch over a window (on a pool connection), each in its own short transaction."""

    def __init__(self, sql_set: EngineStatements, run_id: str, options: BackfillOptions):
        self.run_id = run_id
        self.sql_set = sql_set
        self.salvaging = False  # the last salvaged window had bad rows
        self.timeouts = {
            "lock_timeout": options.lock_timeout,
            "statement_timeout": options.statement_timeout,
        }
        self.settings = sql_set.settings.statement
        self.window = {first: sql_set.window(first).statement for first in (True, False)}
        self.batch = {first: sql_set.batch(first).statement for first in (True, False)}
        self.other_writers = sql_set.other_writers.statement

    def next_window(self, conn: psycopg.Connection, after: Any, size: int) -> Window | None:
        """The next `size` keys after `after`, or None when none is left."""
        with conn.transaction():
            conn.execute(self.settings, self.timeouts)
            row = conn.execute(
                self.window[after is None], {"after": after, "size": size}, prepare=False
            ).fetchone()
        return None if row is None else Window(after, row[0], int(row[1]))

    def run_batch(
        self, conn: psycopg.Connection, window: Window, checkpoint: Any
    ) -> tuple[int, int]:
        """(profiles created, users that could not get one) for the window; planned per batch
        (never a cached generic plan made when the profile table's statistics were different).
        A row whose data breaks the insert does not stop the run: the window is salvaged."""
        params = {
            "after": window.after,
            "last": window.last,
            "count": window.count,
            "run": self.run_id,
            "checkpoint": checkpoint,
        }
        first = window.after is None
        if not self.salvaging:
            try:
                with conn.transaction():
                    conn.execute(self.settings, self.timeouts)
                    row = conn.execute(self.batch[first], params, prepare=False).fetchone()
                assert row is not None, "the run's audit row disappeared"
                return int(row[0]), 0
            except salvage.DATA_ERRORS:
                pass
        inserted, failed = self.salvage(conn, window, params)
        # Bad rows are seldom alone: while windows keep having them, skip the doomed attempt.
        self.salvaging = failed > 0
        return inserted, failed

    def salvage(
        self, conn: psycopg.Connection, window: Window, params: dict[str, Any]
    ) -> tuple[int, int]:
        """The window again in one transaction: rows that break a rule recorded, the rest
        inserted set-based, else in chunks and row by row (salvage.py)."""
        first = window.after is None
        bounds = {"after": "" if first else str(window.after), "last": str(window.last)}
        with conn.transaction():
            conn.execute(self.settings, self.timeouts)
            conn.execute(self.sql_set.salvage_bounds.statement, bounds)
            count = self.sql_set.salvage_count_first if first else self.sql_set.salvage_count_next
            before = conn.execute(count.statement, params, prepare=False).fetchone()
            conn.execute(self.sql_set.salvage.statement)
            record = (
                self.sql_set.salvage_record_first if first else self.sql_set.salvage_record_next
            )
            row = conn.execute(
                record.statement, {**params, "before": before[0] if before else 0}, prepare=False
            ).fetchone()
        assert row is not None, "the run's audit row disappeared"
        return int(row[0]), int(row[1])
