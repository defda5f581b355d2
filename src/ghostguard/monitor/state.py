"""The monitor's memory: the latest readings, reachability, counters since start and 24h of history.

Written by the monitor loop, read by the HTTP handlers (metrics, status page, JSON) and the
alerts, each under one lock, so a scrape always sees one consistent set of readings.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from dataclasses import dataclass, field

from ghostguard.monitor.readings import Census, Tick

DAY = 24 * 3600.0


@dataclass(frozen=True)
class Sample:
    """One point of history: what the charts show."""

    at: float
    ghosts: int | None  # from the newest full reconciliation at that time
    signups: int  # since the monitor started
    failures: int | None  # unresolved


class History:
    """Samples of the last 24 hours, oldest first."""

    def __init__(self, span: float = DAY, limit: int = 100_000) -> None:
        self.span = span
        self._samples: deque[Sample] = deque(maxlen=limit)

    def add(self, sample: Sample) -> None:
        self._samples.append(sample)
        self._trim(sample.at)

    def extend(self, samples: list[Sample]) -> None:
        for sample in sorted(samples, key=lambda s: s.at):
            self._samples.append(sample)
        if self._samples:
            self._trim(time.time())

    def _trim(self, now: float) -> None:
        while self._samples and self._samples[0].at < now - self.span:
            self._samples.popleft()

    def samples(self) -> list[Sample]:
        return list(self._samples)


class SignupCounter:
    """Signups since the monitor started, from the cumulative insert counter of the auth table.

    The statistics can be reset (pg_stat_reset, a crash): a counter that goes down restarts from
    zero, and what it counts from then on is added, like Prometheus' own counter resets.
    """

    def __init__(self) -> None:
        self.total = 0
        self._last: int | None = None

    def observe(self, cumulative: int) -> int:
        if self._last is not None:
            self.total += cumulative - self._last if cumulative >= self._last else cumulative
        self._last = cumulative
        return self.total


@dataclass(frozen=True)
class Reading:
    """Everything a scrape, the status page or the alerts need, read at one moment."""

    where: str
    started_at: float
    reachable: bool
    error: str | None
    tick: Tick | None
    census: Census | None
    signups: int
    last_seen: float | None  # the last time the database answered
    history: list[Sample] = field(default_factory=list[Sample])


class MonitorState:
    def __init__(self, where: str, history: History | None = None) -> None:
        self.where = where
        self.started_at = time.time()
        self.history = history or History()
        self._lock = threading.Lock()
        self._reachable = False
        self._error: str | None = None
        self._tick: Tick | None = None
        self._census: Census | None = None
        self._last_seen: float | None = None
        self.signups = SignupCounter()

    def record_tick(self, tick: Tick) -> Sample:
        with self._lock:
            self._tick = tick
            self._reachable, self._error, self._last_seen = True, None, tick.at
            sample = Sample(
                tick.at,
                self._census.ghost_total if self._census else None,
                self.signups.observe(tick.auth_inserts),
                tick.failures_unresolved,
            )
            self.history.add(sample)
            return sample

    def record_census(self, census: Census) -> None:
        with self._lock:
            self._census = census
            self._reachable, self._error, self._last_seen = True, None, census.at

    def record_unreachable(self, error: str) -> None:
        with self._lock:
            self._reachable, self._error = False, error

    def read(self, with_history: bool = False) -> Reading:
        with self._lock:
            return Reading(
                where=self.where,
                started_at=self.started_at,
                reachable=self._reachable,
                error=self._error,
                tick=self._tick,
                census=self._census,
                signups=self.signups.total,
                last_seen=self._last_seen,
                history=self.history.samples() if with_history else [],
            )
