"""Backfill batches on several connections at once, with a checkpoint that never skips a key.

One backend inserts at the speed of one core; the single `INSERT … SELECT` it is measured against
uses one core too, so a batched run on one connection can only lose to it. Batches over disjoint
key windows on a few connections do not conflict, and the backfill drops back to one connection
while other sessions are writing (see engine.py), so signups keep the CPU they need.

Windows are handed out in key order but may finish out of order. The checkpoint a batch writes
is the end of the contiguous run of finished windows (its own end when everything before it had
finished), so a resumed run never skips a key and redoes at most the batches that were in flight.
"""

from __future__ import annotations

import queue
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, TypeVar

import psycopg
from psycopg import errors

from ghostguard.retry import RetryPolicy, with_retries


@dataclass(frozen=True)
class Window:
    """Source keys in (after, last]; `after` is None for the first window."""

    after: Any
    last: Any
    count: int


@dataclass(frozen=True)
class Done:
    window: Window
    inserted: int
    seconds: float  # the successful attempt only: backoff sleeps are not batch time
    retries: int
    timed_out: bool  # a statement timeout was retried: the coordinator shrinks later windows
    failed: int = 0  # users of the window that could not get a profile (recorded)


class BatchFailed(Exception):
    """A batch gave up after its retries; `cause` is the last database error."""

    def __init__(self, window: Window, retries: int, cause: psycopg.Error) -> None:
        super().__init__(str(cause))
        self.window, self.retries, self.cause = window, retries, cause


class Checkpoints:
    """The end of the contiguous prefix of finished windows, starting from a resume point."""

    def __init__(self, start: Any) -> None:
        self.value = start
        self._open: deque[list[Any]] = deque()  # [window, finished] in dispatch order

    def dispatch(self, window: Window) -> Any:
        """Register a window; returns the checkpoint its batch may record when it commits."""
        self._open.append([window, False])
        return window.last if len(self._open) == 1 else self.value

    def finish(self, window: Window) -> None:
        for entry in self._open:
            if entry[0] is window:
                entry[1] = True
        while self._open and self._open[0][1]:
            self.value = self._open.popleft()[0].last


BatchStatement = Callable[[psycopg.Connection, Window, Any], tuple[int, int]]
T = TypeVar("T")


@dataclass
class Attempts:
    """The retries of one unit of work (a window query or a batch)."""

    retries: int = 0
    timed_out: bool = False  # a statement timeout was among them

    def on_retry(self, attempt: int, exc: psycopg.Error, delay: float) -> None:
        self.retries += 1
        self.timed_out = self.timed_out or isinstance(exc, errors.QueryCanceled)


def retried(action: Callable[[], T], policy: RetryPolicy, window: Window) -> tuple[T, Attempts]:
    """Run `action` with retries; when it gives up, BatchFailed names the window and the count."""
    attempts = Attempts()
    try:
        return with_retries(action, policy, attempts.on_retry), attempts
    except psycopg.Error as exc:
        raise BatchFailed(window, attempts.retries, exc) from exc


class Pool:
    """`size` connections like `like` (same server, role and options), each running one batch at
    a time in its own thread."""

    def __init__(self, like: psycopg.Connection, size: int) -> None:
        self._idle: queue.SimpleQueue[psycopg.Connection] = queue.SimpleQueue()
        self.connections: list[psycopg.Connection] = []
        for _ in range(max(size, 1)):
            try:
                conn = psycopg.connect(
                    like.info.dsn, password=like.info.password or None, autocommit=True
                )
            except psycopg.OperationalError:
                if self.connections:  # a connection limit: carry on with fewer
                    break
                raise
            self.connections.append(conn)
            self._idle.put(conn)
        self._executor = ThreadPoolExecutor(len(self.connections), "ghostguard-batch")

    @property
    def size(self) -> int:
        return len(self.connections)

    @property
    def pids(self) -> list[int]:
        return [c.info.backend_pid for c in self.connections]

    def submit(
        self, batch: BatchStatement, window: Window, checkpoint: Any, policy: RetryPolicy
    ) -> Future[Done]:
        return self._executor.submit(self._run, batch, window, checkpoint, policy)

    def _run(
        self, batch: BatchStatement, window: Window, checkpoint: Any, policy: RetryPolicy
    ) -> Done:
        conn = self._idle.get()

        def attempt() -> tuple[tuple[int, int], float]:
            started = time.monotonic()
            counts = batch(conn, window, checkpoint)
            return counts, time.monotonic() - started

        try:
            ((inserted, failed), seconds), attempts = retried(attempt, policy, window)
        finally:
            self._idle.put(conn)
        return Done(window, inserted, seconds, attempts.retries, attempts.timed_out, failed)

    def close(self) -> None:
        """Wait for batches in flight (each is short), then close every connection."""
        self._executor.shutdown(wait=True, cancel_futures=True)
        for conn in self.connections:
            conn.close()
