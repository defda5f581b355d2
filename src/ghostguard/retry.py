"""Retry a unit of work when the server says "not now" (lock or statement timeout), never by message text."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

import psycopg
from psycopg import errors

T = TypeVar("T")

# lock_timeout -> LockNotAvailable (55P03); statement_timeout -> QueryCanceled (57014).
RETRYABLE: tuple[type[psycopg.Error], ...] = (errors.LockNotAvailable, errors.QueryCanceled)


@dataclass(frozen=True)
class RetryPolicy:
    """Bounded in attempts and in total waiting time; the delay doubles up to max_delay."""

    attempts: int = 5
    first_delay: float = 0.25
    max_delay: float = 4.0
    budget_seconds: float = 30.0


OnRetry = Callable[[int, psycopg.Error, float], None]


def with_retries(
    action: Callable[[], T],
    policy: RetryPolicy,
    on_retry: OnRetry | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> T:
    """Run `action`; on a retryable error call on_retry(attempt, error, delay), wait, try again.

    The last error is re-raised once the attempts or the time budget are used up. `action` must
    leave the database as it was when it raises (each attempt is its own transaction).
    """
    waited = 0.0
    delay = policy.first_delay
    for attempt in range(1, policy.attempts + 1):
        try:
            return action()
        except RETRYABLE as exc:
            if attempt == policy.attempts or waited + delay > policy.budget_seconds:
                raise
            if on_retry is not None:
                on_retry(attempt, exc, delay)
            sleep(delay)
            waited += delay
            delay = min(delay * 2, policy.max_delay)
    raise AssertionError("unreachable: the loop returns or raises")
