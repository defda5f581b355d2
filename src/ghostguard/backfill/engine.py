"""The backfill engine: keyset batches over the source key, each a short audited transaction.

The coordinating connection hands out windows of the next `size` keys after the checkpoint
(index-only); a batch anti-joins its window against the profile table's primary key over the same
range, inserts full rows for the ghosts only (ON CONFLICT DO NOTHING), and advances the audit row's
checkpoint in the same statement, so a killed run resumes where it stopped. Batches run on a few
connections at once while nobody else writes (pool.py), retry on lock/statement timeouts with
backoff, adapt their size to a target duration, and can be rate-limited.
"""

from __future__ import annotations

import signal
import time
from collections.abc import Generator
from concurrent.futures import FIRST_COMPLETED, Future, as_completed, wait
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, NoReturn

import psycopg
from psycopg import errors

from ghostguard import catalog
from ghostguard.backfill.batches import Batches
from ghostguard.backfill.options import (
    BackfillOptions,
    BackfillResult,
    FailureGroup,
    Progress,
    ProgressCallback,
)
from ghostguard.backfill.pool import BatchFailed, Checkpoints, Done, Pool, Window, retried
from ghostguard.backfill.resume import resumption
from ghostguard.backfill.statements import EngineStatements
from ghostguard.catalog import Shape
from ghostguard.config import Config
from ghostguard.errors import DatabaseError, Interrupted, Refused
from ghostguard.locks import exclusive_run, in_the_way
from ghostguard.runner import database_errors, primary_message
from ghostguard.secrets import mask
from ghostguard.sqlparts import Query
from ghostguard.stopping import STOPS, signal_number


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


def _open_run(conn: psycopg.Connection, sql_set: EngineStatements) -> _Run:
    """Open this run's audit row; continue from the newest unfinished run's checkpoint, if any.

    Callers hold the advisory lock, so a `running` row whose session is gone was interrupted.
    """
    with database_errors("backfill: opening the audit row"), conn.transaction():
        earlier = resumption(conn.execute(sql_set.last_run.statement).fetchone())
        row = conn.execute(sql_set.start.statement).fetchone()
        assert row is not None
        run_id = str(row[0])
        if earlier.mark_interrupted:
            conn.execute(sql_set.mark_interrupted.statement, {"old": earlier.old_id, "run": run_id})
        if not earlier.resume:
            return _Run(run_id, None, None)
        conn.execute(
            sql_set.resumes.statement,
            {"run": run_id, "old": earlier.old_id, "checkpoint": earlier.checkpoint},
        )
        return _Run(run_id, earlier.checkpoint, earlier.old_id)


def _next_size(size: int, count: int, seconds: float, options: BackfillOptions) -> int:
    """Aim for target_seconds per batch: grow at most 1.5x, shrink at most 2x per step."""
    if options.batch_size is not None or count < size or seconds <= 0:
        return size
    ideal = count * options.target_seconds / seconds
    return int(min(options.max_size, max(options.min_size, size / 2, min(size * 1.5, ideal))))


class _Tally:
    """What the run has done so far, and how it paces itself."""

    def __init__(self, options: BackfillOptions, jobs: int) -> None:
        self.options = options
        self.jobs = jobs
        self.size = options.batch_size or options.start_size
        self.scanned = self.inserted = self.failed = self.retries = self.batches = 0
        self.worst = self.yielded = 0.0
        self.busy = 0.0  # smoothed share of recent checks that saw other writers
        self.started = time.monotonic()

    def add(self, done: Done) -> None:
        self.scanned += done.window.count
        self.inserted += done.inserted
        self.failed += done.failed
        self.retries += done.retries
        self.batches += 1
        self.worst = max(self.worst, done.seconds)
        if done.timed_out:
            self.size = max(self.options.min_size, self.size // 2)  # too slow: smaller batches
        else:
            self.size = _next_size(self.size, done.window.count, done.seconds, self.options)

    @property
    def concurrency(self) -> int:
        """All connections on an otherwise idle server; one while other sessions are writing."""
        return self.jobs if self.busy < 0.05 else 1

    def progress(self, total: int) -> Progress:
        elapsed = time.monotonic() - self.started
        return Progress(self.scanned, total, self.inserted, self.batches, self.size, elapsed)


def run_backfill(
    conn: psycopg.Connection,
    config: Config,
    shape: Shape,
    options: BackfillOptions | None = None,
    progress: ProgressCallback | None = None,
) -> BackfillResult:
    """Run (or resume) the batched backfill; `conn` (autocommit) holds the run's advisory lock and
    hands out windows, `options.jobs` more connections run the batches."""
    options = options or BackfillOptions()
    sql_set = EngineStatements.build(config, shape)
    total = _estimate_rows(conn, sql_set)
    with _connections(conn, options.jobs) as workers:  # before the audit row: nothing to undo
        run = _open_run(conn, sql_set)
        if run.after is not None:
            total = _rows_after(conn, sql_set, run.after, total)
        plan = Batches(sql_set, run.run_id, options)
        checkpoints = Checkpoints(run.after)
        tally = _Tally(options, workers.size)
        try:
            _drive(conn, plan, workers, checkpoints, tally, options, total, progress)
            swept = (
                _sweep(conn, sql_set, plan, workers, tally, options, checkpoints.value, run.after)
                if run.after is not None
                else 0
            )
        except BatchFailed as failed:
            _give_up(conn, sql_set, config, run.run_id, failed, checkpoints.value)
        except STOPS as stop:
            _stopped(conn, sql_set, run.run_id, tally, checkpoints.value, signal_number(stop))
        except psycopg.Error as exc:  # the coordinating connection itself
            message = primary_message(exc)
            _fail(conn, sql_set, run.run_id, message, checkpoints.value)
            raise DatabaseError(
                f"backfill failed (checkpoint kept: run again to resume): {message}", exc.sqlstate
            ) from None
    with database_errors("backfill: closing the audit row"), conn.transaction():
        conn.execute(
            sql_set.finish.statement,
            {"run": run.run_id, "checkpoint": checkpoints.value},
        )
        conn.execute(sql_set.resolve_profiled.statement)
    seconds = time.monotonic() - tally.started
    analyzed = time.monotonic()
    skipped = _analyze(conn, sql_set, config) if tally.inserted else ""
    groups = _failure_groups(conn, sql_set) if tally.failed else []
    return BackfillResult(
        run.run_id,
        tally.inserted,
        tally.scanned,
        tally.batches,
        seconds,
        tally.worst,
        tally.retries,
        run.resumed_from,
        time.monotonic() - analyzed,
        tally.yielded,
        workers.size,
        tally.failed,
        groups,
        config.failures.display,
        swept,
        skipped,
    )


class _Sweep(Batches):
    """The keys behind a resumed run's starting checkpoint, from the first key on, once more:
    `limit` keys (counted before the sweep), each batch recording the run's final checkpoint."""

    def __init__(self, plan: Batches, checkpoint: Any, limit: int) -> None:
        self.__dict__.update(plan.__dict__)
        self.checkpoint, self.left = checkpoint, limit

    def next_window(self, conn: psycopg.Connection, after: Any, size: int) -> Window | None:
        if self.left <= 0:
            return None
        window = super().next_window(conn, after, min(size, self.left))
        self.left -= window.count if window is not None else self.left
        return window

    def run_batch(
        self, conn: psycopg.Connection, window: Window, checkpoint: Any
    ) -> tuple[int, int]:
        return super().run_batch(conn, window, self.checkpoint)


def _sweep(
    conn: psycopg.Connection,
    sql_set: EngineStatements,
    plan: Batches,
    workers: Pool,
    tally: _Tally,
    options: BackfillOptions,
    checkpoint: Any,
    resumed_at: Any,
) -> int:
    """A resumed run revisits the keys the interrupted run had done: a user who became a ghost
    since (a profile deleted, a sync that failed) is behind the checkpoint, and would otherwise
    stay a ghost while the run reports success."""
    with database_errors("backfill: counting the keys behind the checkpoint"), conn.transaction():
        row = conn.execute(sql_set.rows_upto.statement, {"after": resumed_at}).fetchone()
    behind = int(row[0]) if row else 0
    own = _Tally(options, tally.jobs)  # the main pass's figures stay its own
    _drive(
        conn, _Sweep(plan, checkpoint, behind), workers, Checkpoints(None), own, options, 0, None
    )
    tally.inserted += own.inserted
    tally.failed += own.failed
    tally.retries += own.retries
    tally.batches += own.batches
    tally.worst = max(tally.worst, own.worst)
    return own.scanned


def _failure_groups(conn: psycopg.Connection, sql_set: EngineStatements) -> list[FailureGroup]:
    """What the users left without a profile broke, for the summary."""
    with database_errors("backfill: reading the recorded failures"):
        rows = conn.execute(sql_set.failure_summary.statement).fetchall()
    return [FailureGroup(name, int(count), list(users)) for name, count, users in rows]


def _drive(
    conn: psycopg.Connection,
    plan: Batches,
    workers: Pool,
    checkpoints: Checkpoints,
    tally: _Tally,
    options: BackfillOptions,
    total: int,
    progress: ProgressCallback | None,
) -> None:
    """Hand out windows in key order while fewer than `tally.concurrency` batches run; account
    for each finished batch; stop at the first batch that gave up (after the others finish)."""
    writers = plan.other_writers
    if options.yield_factor and _others_busy(conn, writers, workers.pids, 0.0):
        tally.busy = 1.0  # others are writing already: start on one connection, not on all
    in_flight: dict[Future[Done], Window] = {}
    after, exhausted = checkpoints.value, False
    try:
        while True:
            while not exhausted and len(in_flight) < tally.concurrency:
                window = _next_window(conn, plan, after, tally, options)
                if window is None:
                    exhausted = True
                    break
                future = workers.submit(
                    plan.run_batch, window, checkpoints.dispatch(window), options.retry
                )
                in_flight[future] = window
                after = window.last
            if not in_flight:
                return
            finished, _ = wait(in_flight, return_when=FIRST_COMPLETED)
            for future in finished:
                window = in_flight.pop(future)
                done = future.result()  # BatchFailed propagates; the pool waits for the rest
                checkpoints.finish(window)
                tally.add(done)
                if progress is not None:
                    progress(tally.progress(total))
                if options.yield_factor:
                    tally.busy = _others_busy(conn, writers, workers.pids, tally.busy)
                    tally.yielded += _pause(options.yield_factor * done.seconds * tally.busy)
            _throttle(options.max_rate, tally.scanned, tally.started)
    except BatchFailed:
        # Record everything that did finish, so the checkpoint is as far on as it can be.
        for future in as_completed(in_flight):
            if future.exception() is None:
                checkpoints.finish(in_flight[future])
        raise
    except STOPS:
        # Batches in flight finish (each is short) and count: what the run says it did is
        # exactly what is committed.
        for future in as_completed(in_flight):
            if future.exception() is None:
                checkpoints.finish(in_flight[future])
                tally.add(future.result())
        raise


def _next_window(
    conn: psycopg.Connection, plan: Batches, after: Any, tally: _Tally, options: BackfillOptions
) -> Window | None:
    """The next window, retried like a batch (it waits behind an ACCESS EXCLUSIVE lock too)."""
    window, _ = retried(
        lambda: plan.next_window(conn, after, tally.size), options.retry, Window(after, None, 0)
    )
    return window


@contextmanager
def _connections(conn: psycopg.Connection, jobs: int) -> Generator[Pool, None, None]:
    try:
        workers = Pool(conn, jobs)
    except psycopg.OperationalError as exc:
        raise DatabaseError(
            f"backfill: cannot open a connection for the batches: {mask(primary_message(exc))}",
            exc.sqlstate,
        ) from None
    try:
        yield workers
    finally:
        workers.close()


def _give_up(
    conn: psycopg.Connection,
    sql_set: EngineStatements,
    config: Config,
    run_id: str,
    failed: BatchFailed,
    checkpoint: Any,
) -> NoReturn:
    """Record the failure with the furthest safe checkpoint, name who is in the way, and raise.

    Every batch has finished by now: our own pool connections hold no locks."""
    exc = failed.cause
    where = _where(failed.window.after)
    if isinstance(exc, errors.LockNotAvailable | errors.QueryCanceled):
        who = (
            in_the_way(conn, [config.source, config.target])
            if isinstance(exc, errors.LockNotAvailable)
            else ""
        )
        message = (
            f"{where} gave up retrying ({failed.retries} retries): {primary_message(exc)}{who}"
        )
        _fail(conn, sql_set, run_id, message, checkpoint)
        raise DatabaseError(
            f"backfill: {message}; progress is saved: run again to resume", exc.sqlstate
        ) from None
    message = f"{where}: {primary_message(exc)}"
    _fail(conn, sql_set, run_id, message, checkpoint)
    raise DatabaseError(
        f"backfill failed (audit row marked failed, checkpoint kept: run again to resume): {message}",
        exc.sqlstate,
    ) from None


def _stopped(
    conn: psycopg.Connection,
    sql_set: EngineStatements,
    run_id: str,
    tally: _Tally,
    checkpoint: Any,
    signum: int,
) -> NoReturn:
    """Ctrl-C or SIGTERM: the run is closed as failed with its checkpoint (the next run resumes
    from it); every committed batch stays; say so."""
    name = signal.Signals(signum).name
    if not conn.broken:  # an interrupted statement was cancelled; the connection may be fine
        _fail(conn, sql_set, run_id, f"interrupted by {name}", checkpoint)
    raise Interrupted(
        f"backfill interrupted by {name} after creating {tally.inserted:,} profiles "
        f"({tally.scanned:,} auth rows scanned); each batch is its own transaction and the "
        "checkpoint is kept: run `ghostguard backfill --yes` to resume",
        signum,
        {
            "interrupted": name,
            "run_id": run_id,
            "inserted": tally.inserted,
            "scanned": tally.scanned,
            "checkpoint": None if checkpoint is None else str(checkpoint),
            "resume": "ghostguard backfill --yes",
        },
    )


def _rows_after(
    conn: psycopg.Connection, sql_set: EngineStatements, after: Any, estimate: int
) -> int:
    """What a resumed run has left to scan; the estimate when counting would wait behind a lock."""
    try:
        with conn.transaction():
            row = conn.execute(sql_set.rows_after.statement, {"after": after}).fetchone()
    except errors.LockNotAvailable:
        return estimate
    return int(row[0]) if row else estimate


def _estimate_rows(conn: psycopg.Connection, sql_set: EngineStatements) -> int:
    """Rows to scan, for progress; 0 (unknown) rather than waiting behind a lock to count them."""
    try:
        with conn.transaction():
            row = conn.execute(sql_set.estimate.statement).fetchone()
    except errors.LockNotAvailable:
        return 0
    return max(int(row[0]), 0) if row else 0


def _where(after: Any) -> str:
    return "the first batch" if after is None else f"the batch after key {after}"


def _others_busy(conn: psycopg.Connection, writers: Query, ours: list[int], busy: float) -> float:
    """Update the smoothed share of checks that found other sessions with a writing transaction."""
    row = conn.execute(writers, {"ours": ours}).fetchone()
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


def _fail(
    conn: psycopg.Connection, sql_set: EngineStatements, run_id: str, message: str, checkpoint: Any
) -> None:
    """Close the run as failed, when the connection still works (else the next run finds it dead)."""
    if conn.broken or conn.closed:
        return
    with database_errors("backfill: recording the failure"), conn.transaction():
        conn.execute(
            sql_set.failed.statement,
            {"run": run_id, "message": message, "checkpoint": checkpoint},
        )


def _analyze(conn: psycopg.Connection, sql_set: EngineStatements, config: Config) -> str:
    """Fresh statistics, so the next anti-join is planned for the table's real size (owner only).
    The profiles are in and logged by now: a lock that keeps ANALYZE out is said, not an error
    (autovacuum analyzes the table later); returns why it was skipped, or ''."""
    with database_errors("backfill: analyzing the profile table"):
        try:
            conn.execute(sql_set.analyze.statement)
        except errors.LockNotAvailable:
            who = in_the_way(conn, [config.target])
            return f"another session holds {config.target.display}{who}"
    return ""
