"""The backfill engine: keyset batches over the source key, each a short audited transaction.

Each batch takes the next `size` keys after the checkpoint (index-only), anti-joins them against
the profile table's primary key over the same range, inserts full rows for the ghosts only
(ON CONFLICT DO NOTHING), and advances the audit row's checkpoint in the same statement, so a
killed run is resumed exactly where it stopped. Batches retry on lock/statement timeouts with
backoff, adapt their size to a target duration, and can be rate-limited.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

import psycopg
from psycopg import errors

from ghostguard import catalog, queries, statements
from ghostguard.catalog import Shape
from ghostguard.config import Config
from ghostguard.errors import DatabaseError, Refused
from ghostguard.locks import exclusive_run, in_the_way
from ghostguard.retry import RetryPolicy, with_retries
from ghostguard.runner import database_errors, primary_message


@dataclass(frozen=True)
class BackfillOptions:
    batch_size: int | None = None  # a fixed size; None adapts the size to target_seconds
    start_size: int = 5_000
    min_size: int = 500
    max_size: int = 100_000
    target_seconds: float = 0.075  # keeps the slowest batches well under 250 ms on a busy machine
    max_rate: float | None = None  # source rows scanned per second
    # While other sessions are writing, pause yield_factor x the batch's time after it (0: never):
    # signups and sign-ins get the CPU and the WAL first.
    yield_factor: float = 2.0
    lock_timeout: str = "1s"
    statement_timeout: str = "10s"
    retry: RetryPolicy = RetryPolicy()


@dataclass(frozen=True)
class Progress:
    scanned: int
    total: int  # estimate; 0 when unknown
    inserted: int
    batches: int
    batch_size: int
    elapsed: float

    @property
    def rate(self) -> float:
        return self.scanned / self.elapsed if self.elapsed > 0 else 0.0

    @property
    def eta(self) -> float | None:
        if not self.total or not self.rate:
            return None
        return max(self.total - self.scanned, 0) / self.rate


ProgressCallback = Callable[[Progress], None]


@dataclass(frozen=True)
class BackfillResult:
    run_id: str
    inserted: int
    scanned: int
    batches: int
    seconds: float
    worst_batch_seconds: float
    retries: int
    resumed_from: str | None
    analyze_seconds: float = 0.0  # ANALYZE of the profile table afterwards, not part of `seconds`
    yielded_seconds: float = 0.0  # paused for other writers (part of `seconds`)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class _Run:
    run_id: str
    after: str | None  # resume checkpoint (text form of the key)
    resumed_from: str | None


def require_audit_table(conn: psycopg.Connection, config: Config) -> None:
    """The backfill records itself in the audit table, which `apply` creates."""
    if not catalog.table_columns(conn, config.audit):
        raise Refused(f"{config.audit.display} does not exist: run `ghostguard apply` first")


def backfill(
    conn: psycopg.Connection,
    config: Config,
    shape: Shape,
    options: BackfillOptions | None = None,
    progress: ProgressCallback | None = None,
) -> BackfillResult:
    """A standalone backfill: one run at a time (advisory lock), audited, resumable."""
    require_audit_table(conn, config)
    with exclusive_run(conn, config, "backfill"):
        return run_backfill(conn, config, shape, options, progress)


def _open_run(conn: psycopg.Connection, config: Config) -> _Run:
    """Open this run's audit row; continue from the newest unfinished run's checkpoint, if any.

    Callers hold the advisory lock, so a `running` row whose session is gone was interrupted.
    """
    with database_errors("backfill: opening the audit row"), conn.transaction():
        last = conn.execute(statements.backfill_last_run(config).statement).fetchone()
        row = conn.execute(statements.backfill_start(config).statement).fetchone()
        assert row is not None
        run_id = str(row[0])
        if last is None:
            return _Run(run_id, None, None)
        old_id, status, checkpoint, alive = last
        if status == "running" and not alive:
            conn.execute(
                statements.backfill_mark_interrupted(config).statement,
                {"old": old_id, "run": run_id},
            )
        elif status != "failed":
            return _Run(run_id, None, None)
        if checkpoint is None:
            return _Run(run_id, None, None)
        conn.execute(
            statements.backfill_resumes(config).statement,
            {"run": run_id, "old": str(old_id), "checkpoint": checkpoint},
        )
        return _Run(run_id, checkpoint, str(old_id))


class _Batches:
    """The statements of one run, and one batch as a retryable unit of work."""

    def __init__(
        self, conn: psycopg.Connection, config: Config, shape: Shape, options: BackfillOptions
    ):
        self.conn = conn
        self.options = options
        self.settings = statements.batch_settings().statement
        self.window = {
            first: statements.backfill_window(config, first).statement for first in (True, False)
        }
        self.batch = {
            first: statements.backfill_batch(config, shape, first).statement
            for first in (True, False)
        }

    def run_one(self, run_id: str, after: Any, size: int) -> tuple[Any, int, int] | None:
        """(last key, rows scanned, profiles inserted), or None when no key is left after `after`."""
        first = after is None
        with self.conn.transaction():
            self.conn.execute(
                self.settings,
                {
                    "lock_timeout": self.options.lock_timeout,
                    "statement_timeout": self.options.statement_timeout,
                },
            )
            window = self.conn.execute(
                self.window[first], {"after": after, "size": size}
            ).fetchone()
            if window is None:
                return None
            last, count = window
            row = self.conn.execute(
                self.batch[first], {"after": after, "last": last, "count": count, "run": run_id}
            ).fetchone()
            assert row is not None, "the run's audit row disappeared"
            return last, int(count), int(row[0])


def _next_size(size: int, count: int, seconds: float, options: BackfillOptions) -> int:
    """Aim for target_seconds per batch: grow at most 1.5x, shrink at most 2x per step."""
    if options.batch_size is not None or count < size or seconds <= 0:
        return size
    ideal = count * options.target_seconds / seconds
    return int(min(options.max_size, max(options.min_size, size / 2, min(size * 1.5, ideal))))


def run_backfill(
    conn: psycopg.Connection,
    config: Config,
    shape: Shape,
    options: BackfillOptions | None = None,
    progress: ProgressCallback | None = None,
) -> BackfillResult:
    """Run (or resume) the batched backfill on an autocommit connection; the caller holds the lock."""
    options = options or BackfillOptions()
    total = _estimate_rows(conn, config)
    run = _open_run(conn, config)
    batches = _Batches(conn, config, shape, options)
    size = options.batch_size or options.start_size
    after: Any = run.after
    scanned = inserted = retries = done_batches = 0
    worst = yielded = busy = 0.0  # busy: smoothed share of recent checks that saw other writers
    writers = statements.other_writers().statement
    started = time.monotonic()

    def on_retry(attempt: int, exc: psycopg.Error, delay: float) -> None:
        nonlocal size, retries
        retries += 1
        if isinstance(exc, errors.QueryCanceled):
            size = max(options.min_size, size // 2)  # too slow: smaller batches

    def next_batch() -> tuple[tuple[Any, int, int] | None, float]:
        # Reads `after` and `size` when called, so a retry uses a size that on_retry just halved.
        # Times this attempt alone: backoff sleeps between attempts are not batch time.
        attempt_started = time.monotonic()
        return batches.run_one(run.run_id, after, size), time.monotonic() - attempt_started

    try:
        while True:
            done, seconds = with_retries(next_batch, options.retry, on_retry)
            if done is None:
                break
            worst = max(worst, seconds)
            after, count, added = done
            scanned += count
            inserted += added
            done_batches += 1
            if progress is not None:
                progress(
                    Progress(
                        scanned, total, inserted, done_batches, size, time.monotonic() - started
                    )
                )
            size = _next_size(size, count, seconds, options)
            if options.yield_factor:
                busy = _others_busy(conn, writers, busy)
                yielded += _pause(options.yield_factor * seconds * busy)
            _throttle(options.max_rate, scanned, started)
    except (errors.LockNotAvailable, errors.QueryCanceled) as exc:
        who = (
            in_the_way(conn, [config.source, config.target])
            if isinstance(exc, errors.LockNotAvailable)
            else ""
        )
        message = (
            f"{_where(after)} gave up retrying ({retries} retries): {primary_message(exc)}{who}"
        )
        _fail(conn, config, run.run_id, message)
        raise DatabaseError(
            f"backfill: {message}; progress is saved: run again to resume", exc.sqlstate
        ) from None
    except psycopg.Error as exc:
        message = f"{_where(after)}: {primary_message(exc)}"
        _fail(conn, config, run.run_id, message)
        raise DatabaseError(
            f"backfill failed (audit row marked failed, checkpoint kept: run again to resume): {message}",
            exc.sqlstate,
        ) from None
    with database_errors("backfill: closing the audit row"), conn.transaction():
        conn.execute(statements.backfill_finish(config).statement, {"run": run.run_id})
    seconds = time.monotonic() - started
    analyzed = time.monotonic()
    if inserted:
        _analyze(conn, config)
    return BackfillResult(
        run.run_id,
        inserted,
        scanned,
        done_batches,
        seconds,
        worst,
        retries,
        run.resumed_from,
        time.monotonic() - analyzed,
        yielded,
    )


def _estimate_rows(conn: psycopg.Connection, config: Config) -> int:
    """Rows to scan, for progress; 0 (unknown) rather than waiting behind a lock to count them."""
    try:
        with conn.transaction():
            row = conn.execute(queries.estimated_rows(config)).fetchone()
    except errors.LockNotAvailable:
        return 0
    return max(int(row[0]), 0) if row else 0


def _where(after: Any) -> str:
    return "the first batch" if after is None else f"the batch after key {after}"


def _others_busy(conn: psycopg.Connection, writers: statements.Query, busy: float) -> float:
    """Update the smoothed share of checks that found other sessions with a writing transaction."""
    row = conn.execute(writers).fetchone()
    return 0.7 * busy + 0.3 * (1.0 if row and row[0] else 0.0)


def _pause(seconds: float) -> float:
    """Sleep, when it is worth it; returns the time slept."""
    if seconds <= 0.001:
        return 0.0
    time.sleep(seconds)
    return seconds


def _throttle(max_rate: float | None, scanned: int, started: float) -> None:
    if max_rate:
        ahead = scanned / max_rate - (time.monotonic() - started)
        if ahead > 0:
            time.sleep(ahead)


def _fail(conn: psycopg.Connection, config: Config, run_id: str, message: str) -> None:
    """Close the run as failed, when the connection still works (else the next run finds it dead)."""
    if conn.broken or conn.closed:
        return
    with database_errors("backfill: recording the failure"), conn.transaction():
        conn.execute(
            statements.backfill_failed(config).statement, {"run": run_id, "message": message}
        )


def _analyze(conn: psycopg.Connection, config: Config) -> None:
    """Fresh statistics, so the next anti-join is planned for the table's real size (owner only)."""
    with database_errors("backfill: analyzing the profile table"):
        conn.execute(statements.analyze_target(config).statement)
