"""The guide's deployment in its order: record the ghost count, install function and trigger, backfill, verify."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import psycopg

from ghostguard import queries, statements
from ghostguard.backfill import run_backfill
from ghostguard.catalog import Shape
from ghostguard.config import Config
from ghostguard.locks import exclusive_run
from ghostguard.runner import database_errors, run_steps
from ghostguard.statements import Step
from ghostguard.verify import VerifyReport, verify


@dataclass(frozen=True)
class ApplyResult:
    ghosts_before: int
    backfilled: int
    report: VerifyReport

    def to_dict(self) -> dict[str, Any]:
        return {
            "ghosts_before": self.ghosts_before,
            "backfilled": self.backfilled,
            "verify": self.report.to_dict(),
        }


def plan(config: Config, shape: Shape) -> list[Step]:
    """Exactly what apply executes, in order (printed by --dry-run; the migration files hold the same)."""
    return statements.install_plan(config, shape) + statements.backfill_plan(config, shape)


def apply(conn: psycopg.Connection, config: Config, shape: Shape) -> ApplyResult:
    """Install under lock_timeout in one transaction, then the audited backfill, then verify.

    `conn` must be in autocommit mode: each phase is its own transaction.
    """
    with exclusive_run(conn, config, "apply"):
        with database_errors("apply: installing the sync trigger"), conn.transaction():
            run_steps(conn, statements.install_plan(config, shape))
        row = conn.execute(queries.latest_audit(config, statements.GHOST_COUNT_JOB)).fetchone()
        ghosts_before = int(row[1]) if row and row[1] is not None else 0
        backfilled = run_backfill(conn, config, shape)
    return ApplyResult(ghosts_before, backfilled, verify(conn, config, shape))
