"""The install transaction: audit table, ghost count, failures table, function, triggers, fingerprint.

Migration 1 renders these steps; apply executes the same objects."""

from __future__ import annotations

from psycopg import sql

from ghostguard import locks
from ghostguard.adopt.existing import MANAGED_COMMENT
from ghostguard.adopt.takeover import takeover_steps
from ghostguard.audit import audit_table, record_ghost_count
from ghostguard.catalog import Shape
from ghostguard.config import Config
from ghostguard.sqlparts import (
    Step,
    function,
    grantees,
)
from ghostguard.sync import drift as sync_drift
from ghostguard.sync import ensure
from ghostguard.sync import failures as sync_failures
from ghostguard.sync import function as sync_function
from ghostguard.sync import triggers as sync_triggers


def set_lock_timeout(config: Config) -> Step:
    return Step(
        "never wait long for a lock on a busy table: fail fast, change nothing, retry later",
        sql.SQL("SET lock_timeout = {}").format(sql.Literal(config.lock_timeout)),
    )


def reset_lock_timeout() -> Step:
    return Step("restore the session's lock_timeout", sql.SQL("RESET lock_timeout"))


def comment_function(config: Config) -> Step:
    return Step(
        "say who manages the function",
        sql.SQL("COMMENT ON FUNCTION {}() IS {}").format(
            function(config),
            sql.Literal(
                f"{MANAGED_COMMENT} keeps {config.target.display} in step with {config.source.display} "
                f"(triggers {', '.join(config.trigger_names)}); failures go to "
                f"{config.failures.display}"
            ),
        ),
    )


def revoke_execute(config: Config, shape: Shape) -> Step:
    return Step(
        "nobody calls it directly (EXECUTE is not checked when a trigger fires)",
        sql.SQL("REVOKE EXECUTE ON FUNCTION {}() FROM {}").format(
            function(config), grantees(shape)
        ),
    )


def sync_objects(config: Config, shape: Shape) -> list[Step]:
    """The failures table, the function and its triggers: what keeps profiles in step (also what
    the preflight installs inside its rolled-back transaction)."""
    return [
        *sync_failures.failures_table(config, shape),
        sync_function.trigger_function(config, shape),
        comment_function(config),
        revoke_execute(config, shape),
        *sync_triggers.triggers(config, shape),
        *(ensure.ensure_function(config, shape) if config.ensure_profile else []),
    ]


def install_plan(config: Config, shape: Shape) -> list[Step]:
    """Migration 1 and apply's install transaction: audit table, ghost count, function, trigger."""
    return [
        set_lock_timeout(config),
        locks.profile_lock_first(config),
        *audit_table(config, shape),
        record_ghost_count(config),
        *takeover_steps(config),
        *sync_objects(config, shape),
        sync_drift.record(config, sync_triggers.expected_triggers(config, shape)),
        reset_lock_timeout(),
    ]
