"""The guide's deployment in its order: record the ghost count, install function and trigger, backfill, verify."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

import psycopg
from psycopg import errors

from ghostguard import audit as audit_log
from ghostguard import catalog, locks, sqlparts
from ghostguard.adopt import takeover
from ghostguard.backfill.engine import run_backfill
from ghostguard.backfill.options import BackfillOptions, BackfillResult, ProgressCallback
from ghostguard.backfill.resume import Resumption, resumption
from ghostguard.backfill.statements import EngineStatements
from ghostguard.catalog import Shape
from ghostguard.checks import signup_kinds
from ghostguard.checks.signup_kinds import CheckReport
from ghostguard.checks.verify import VerifyReport, verify
from ghostguard.config import Config
from ghostguard.errors import DatabaseError, Refused
from ghostguard.locks import exclusive_run, in_the_way
from ghostguard.retry import OnRetry, RetryPolicy, with_retries
from ghostguard.runner import database_errors, run_steps
from ghostguard.sqlparts import Step
from ghostguard.supabase.history import HistoryPlan
from ghostguard.sync import install as sync_install

INSTALL_MIGRATION, BACKFILL_MIGRATION = "create_user_sync_trigger", "backfill_ghost_users"
PREFLIGHT_FIRST = (
    "-- first `ghostguard check`: one user of every signup kind, in a transaction rolled back\n\n"
)
VERIFY_FOLLOWS = (
    "\n-- then `ghostguard verify`: read-only checks, and a registration probe that rolls back\n"
)
T = TypeVar("T")
DDL_RETRY = RetryPolicy(attempts=4, first_delay=0.5, max_delay=4.0, budget_seconds=15.0)


@dataclass(frozen=True)
class ApplyResult:
    ghosts_before: int
    backfill: BackfillResult
    report: VerifyReport
    install_attempts: int = 1
    preflight: CheckReport | None = None
    adopted: list[str] = field(default_factory=list[str])  # the app's triggers taken over

    @property
    def backfilled(self) -> int:
        return self.backfill.inserted

    def to_dict(self) -> dict[str, Any]:
        return {
            "ghosts_before": self.ghosts_before,
            "backfilled": self.backfilled,
            "install_attempts": self.install_attempts,
            "backfill": self.backfill.to_dict(),
            "verify": self.report.to_dict(),
            "preflight": self.preflight.to_dict() if self.preflight else None,
            "adopted": self.adopted,
        }


@dataclass
class ApplyOptions:
    backfill: BackfillOptions = field(default_factory=BackfillOptions)
    ddl_retry: RetryPolicy = DDL_RETRY
    on_retry: OnRetry | None = None
    progress: ProgressCallback | None = None
    history: HistoryPlan | None = None  # Supabase migration history to keep in step
    accept_failing: tuple[str, ...] = ()  # signup kinds the preflight may find failing


@dataclass(frozen=True)
class ApplyPlan:
    """What apply would do: its statements, and the app's triggers it takes over."""

    steps: list[Step]
    takes_over: list[
        str
    ]  # the app's triggers adopted: saved in the audit log, restored by rollback

    @property
    def text(self) -> str:
        """What `apply --dry-run` prints: the SQL, between the preflight and the verification."""
        taken = "".join(
            sqlparts.comment(f"takes over {name}: saved in the audit log, restored by rollback")
            + "\n"
            for name in self.takes_over
        )
        return taken + PREFLIGHT_FIRST + sqlparts.render(self.steps) + VERIFY_FOLLOWS


def plan(
    conn: psycopg.Connection, config: Config, shape: Shape, history: HistoryPlan | None = None
) -> ApplyPlan:
    """Every statement apply runs, in order (--dry-run), from the same constructors it executes:
    the lock, the install transaction, the migration history, the batched engine's statement set
    (with the resume steps when the newest run was interrupted), the lock's release. Read-only
    verification (`ghostguard verify`) follows. Refuses as apply does while an app's trigger is
    in the way and not adopted."""
    taken = takeover.refuse_unadopted(conn, config, "apply")
    earlier = Resumption(False, False)
    if catalog.table_columns(conn, config.audit):
        sql_set = EngineStatements.build(config, shape)
        earlier = resumption(conn.execute(sql_set.last_run.statement).fetchone())
    records = history or HistoryPlan([])
    steps = [
        locks.try_lock(config),
        *sync_install.install_plan(config, shape),
        *records.step(INSTALL_MIGRATION),
        audit_log.recorded_ghost_count(config),
        *EngineStatements.build(config, shape).plan(earlier),
        *records.step(BACKFILL_MIGRATION),
        locks.advisory_unlock(config),
    ]
    return ApplyPlan(steps, [w.display for w in taken])


def _under_locks(
    conn: psycopg.Connection,
    config: Config,
    options: ApplyOptions,
    what: str,
    action: Callable[[], T],
) -> tuple[T, int]:
    """Run `action` (its own transaction, under lock_timeout) retried a bounded number of times;
    returns its result and the attempts. When a long transaction keeps the tables locked, gives up
    naming it; nothing is half-applied."""
    attempts = 0

    def attempt() -> T:
        nonlocal attempts
        attempts += 1
        return action()

    with database_errors(f"apply: {what}"):
        try:
            return with_retries(attempt, options.ddl_retry, options.on_retry), attempts
        except errors.LockNotAvailable as exc:
            who = in_the_way(conn, [config.source, config.target, config.audit])
            raise DatabaseError(
                f"apply: could not lock {config.target.display} (without waiting) and "
                f"{config.source.display} (within lock_timeout {config.lock_timeout}) in "
                f"{attempts} attempts{who}; nothing was changed, run again when that "
                "transaction ends",
                exc.sqlstate,
            ) from None


def install(conn: psycopg.Connection, config: Config, shape: Shape, options: ApplyOptions) -> int:
    """The install transaction, retried under lock_timeout (see `_under_locks`); returns attempts."""

    def transaction() -> None:
        with conn.transaction():
            run_steps(conn, sync_install.install_plan(config, shape))
            if options.history:
                run_steps(conn, options.history.step(INSTALL_MIGRATION))

    return _under_locks(conn, config, options, "installing the sync trigger", transaction)[1]


def apply(
    conn: psycopg.Connection, config: Config, shape: Shape, options: ApplyOptions | None = None
) -> ApplyResult:
    """Install, then the audited batched backfill, then verify. `conn` must be in autocommit mode."""
    options = options or ApplyOptions()
    with exclusive_run(conn, config, "apply"):
        adopted = [w.display for w in takeover.refuse_unadopted(conn, config, "apply")]
        takeover.refuse_lossy(conn, config, "apply")
        preflight = preflight_or_refuse(conn, config, shape, options)
        attempts = install(conn, config, shape, options)
        row = conn.execute(audit_log.recorded_ghost_count(config).statement).fetchone()
        ghosts_before = int(row[1]) if row and row[1] is not None else 0
        result = run_backfill(conn, config, shape, options.backfill, options.progress)
        if options.history:
            with database_errors("apply: recording the migration history"), conn.transaction():
                run_steps(conn, options.history.step(BACKFILL_MIGRATION))
    return ApplyResult(
        ghosts_before, result, verify(conn, config, shape), attempts, preflight, adopted
    )


def preflight_or_refuse(
    conn: psycopg.Connection, config: Config, shape: Shape, options: ApplyOptions
) -> CheckReport:
    """`ghostguard check` first: refuse, with nothing changed, when a kind of signup the project
    has would end without a profile and that kind was not accepted."""
    report, _ = _under_locks(
        conn,
        config,
        options,
        "the preflight of every signup kind",
        lambda: signup_kinds.check(conn, config, shape),
    )
    failing = report.failing(options.accept_failing)
    if failing:
        kinds = report.describe_failing(options.accept_failing)
        fix = (
            "Fix the app's trigger named there"
            if "raised in the app's trigger" in kinds
            else "Fix the mapping (`ghostguard init`) or the constraint"
        )
        raise Refused(
            f"apply refused: signups this project has would get no profile ({kinds}); nothing "
            f"was changed. {fix}, or accept them: "
            f"--accept-failing {','.join(k.kind for k in failing)}"
        )
    return report
