"""What a backfill run is given (options, a progress callback) and what it reports."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

from ghostguard.retry import RetryPolicy


@dataclass(frozen=True)
class BackfillOptions:
    batch_size: int | None = None  # a fixed size; None adapts the size to target_seconds
    start_size: int = 5_000
    min_size: int = 500
    max_size: int = 50_000  # bounds the worst batch when the machine stalls mid-batch
    target_seconds: float = 0.075  # keeps the slowest batches well under 250 ms on a busy machine
    max_rate: float | None = None  # source rows scanned per second
    # While other sessions are writing, pause yield_factor x the batch's time after it (0: never):
    # signups and sign-ins get the CPU first. A running batch holds a core, and a signup that
    # becomes runnable meanwhile can wait a scheduler timeslice; only fewer batches per second
    # shorten that tail (signup p99 during/before: ~2.0-2.5x at 3, 1.3-1.9x at 8; benchmarks.md).
    yield_factor: float = 8.0
    # Connections running batches at once on an otherwise idle server (one while others write).
    jobs: int = 2
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
    def expected(self) -> int:
        """Rows this run will scan as far as is known: the estimate, or more once it is passed."""
        return max(self.total, self.scanned)

    @property
    def share(self) -> float | None:
        """Done so far, never over 1 (the planner's estimate can be low); None when unknown."""
        return min(self.scanned / self.total, 1.0) if self.total else None

    @property
    def eta(self) -> float | None:
        """Seconds left at the run's rate so far; None when unknown, and once the estimate is
        passed (the true remainder is then unknown, not zero)."""
        if not self.total or not self.rate or self.scanned >= self.total:
            return None
        return (self.total - self.scanned) / self.rate


ProgressCallback = Callable[[Progress], None]


@dataclass(frozen=True)
class FailureGroup:
    """Unresolved backfill failures that broke one constraint: how many, and the first users."""

    constraint: str
    users: int
    examples: list[str]


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
    jobs: int = 1  # connections that ran batches
    failed: int = 0  # users that could not get a profile this run (recorded in the failures table)
    failures: list[FailureGroup] = field(default_factory=list[FailureGroup])
    failures_table: str = ""  # where they are recorded
    swept: int = 0  # a resumed run: keys behind its starting checkpoint scanned again
    analyze_skipped: str = ""  # why the closing ANALYZE did not run (the rows are in regardless)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)
