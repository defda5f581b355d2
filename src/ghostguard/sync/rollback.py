"""The guide's rollback plan: remove the triggers and the function, keep every profile, log it."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import psycopg
from psycopg import sql

from ghostguard import catalog, locks, sqlparts
from ghostguard.adopt.existing import MANAGED_COMMENT, MANAGED_PATTERN
from ghostguard.adopt.takeover import is_ghostguards, restorable, restore_adopted
from ghostguard.config import Config
from ghostguard.errors import Refused
from ghostguard.locks import exclusive_run
from ghostguard.runner import database_errors, run_steps
from ghostguard.sqlparts import (
    Step,
    audit,
    do_block,
    function,
    name_literal,
    source,
)
from ghostguard.sync import ensure
from ghostguard.sync import install as sync_install
from ghostguard.sync.drift import ROLLBACK_JOB


@dataclass(frozen=True)
class RollbackPlan:
    steps: list[Step]
    drops_function: bool
    drops_trigger: bool
    left_in_place: list[str]
    audits: bool
    restores: list[str] = field(default_factory=list[str])  # the app's triggers put back

    def text(self, config: Config, record: list[Step] | None = None) -> str:
        """What `rollback --dry-run` prints: every statement, after what it puts back."""
        restores = "".join(
            sqlparts.comment(
                f"puts back the app's own trigger {name} and its function, as saved by apply"
            )
            + "\n"
            for name in self.restores
        )
        return restores + sqlparts.render(statements(self, config, record))


@dataclass(frozen=True)
class RollbackResult:
    dropped_function: bool
    dropped_trigger: bool
    left_in_place: list[str]
    profiles_kept: int
    audited: bool
    restored: list[str] = field(default_factory=list[str])  # the app's triggers put back

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def plan(conn: psycopg.Connection, config: Config) -> RollbackPlan:
    """What rollback would run, decided from the catalog; refuses if CASCADE would drop someone else's trigger.

    Only what ghostguard installed is ever removed: a function of the configured name without
    ghostguard's comment (the app's own `handle_new_user()`, the docs' name and ghostguard's
    default) is left exactly as it is, with its triggers, and rollback says so."""
    function = catalog.function_state(conn, config)
    if function is not None and not is_ghostguards(conn, config):
        return RollbackPlan(
            [],
            False,
            False,
            [
                f"{config.function_display} and its triggers are not ghostguard's (no "
                f"`{MANAGED_COMMENT}` comment: apply never installed them): left as they are"
            ],
            audits=False,
        )
    callers = catalog.triggers_calling(conn, config) if function else []
    ours = [t for t in callers if t.name in config.trigger_names and t.is_on(config.source)]
    others = [t for t in callers if t not in ours]
    if others:
        names = ", ".join(f"{t.name} on {t.table}" for t in others)
        raise Refused(
            f"rollback refused: {config.function_display} is also called by {names}; "
            "drop or repoint those triggers first (DROP FUNCTION ... CASCADE would remove them)"
        )
    trigger = catalog.our_trigger(catalog.triggers_on(conn, config.source), config)
    left = (
        []
        if trigger is None or ours
        else [f"trigger {trigger.name} calls {trigger.function}, not ours: left in place"]
    )
    if function is None:
        return RollbackPlan([], False, False, left, audits=False)
    audits = bool(catalog.table_columns(conn, config.audit))
    return RollbackPlan(
        drop_steps(config, bool(ours), audits),
        True,
        bool(ours),
        left,
        audits,
        restorable(conn, config) if audits else [],
    )


def drop_steps(config: Config, drops_trigger: bool = True, audits: bool = True) -> list[Step]:
    """The rollback transaction, the same for `ghostguard rollback` and the rollback migration:
    the SQL guard repeats in the transaction what the command checked in the catalog."""
    return [
        sync_install.set_lock_timeout(config),
        refuse_foreign_callers(config),
        drop_function(config),
        ensure.drop_if_ours(config),
        *(
            [restore_adopted(config), record_rollback(config, True, drops_trigger)]
            if audits
            else []
        ),
        sync_install.reset_lock_timeout(),
    ]


def count_profiles(config: Config) -> Step:
    return Step(
        "count the profiles kept",
        sql.SQL("SELECT count(*) FROM {}").format(
            sql.Identifier(config.target.schema, config.target.table)
        ),
    )


def statements(todo: RollbackPlan, config: Config, record: list[Step] | None = None) -> list[Step]:
    """Every statement `rollback` runs for this plan, in order (--dry-run)."""
    return [
        locks.try_lock(config),
        *todo.steps,
        *((record or []) if todo.drops_function else []),
        count_profiles(config),
        locks.advisory_unlock(config),
    ]


def rollback(
    conn: psycopg.Connection, config: Config, record: list[Step] | None = None
) -> RollbackResult:
    """Run the plan in one transaction (autocommit connection); a no-op when nothing is installed.

    `record`: steps that record the rollback elsewhere (the Supabase migration history), run in
    the same transaction when something is dropped.
    """
    with exclusive_run(conn, config, "rollback"):
        with database_errors("rollback"), conn.transaction():
            todo = plan(conn, config)
            run_steps(conn, todo.steps + ((record or []) if todo.drops_function else []))
        row = conn.execute(count_profiles(config).statement).fetchone()
    return RollbackResult(
        dropped_function=todo.drops_function,
        dropped_trigger=todo.drops_trigger,
        left_in_place=todo.left_in_place,
        profiles_kept=int(row[0]) if row else 0,
        audited=todo.audits,
        restored=todo.restores,
    )


def drop_function(config: Config) -> Step:
    """Only a function that carries ghostguard's comment: the rollback migration, run where the
    app has its own function of that name, leaves it (and its triggers) alone."""
    return Step(
        "remove the sync function if ghostguard installed it; CASCADE removes its trigger too, "
        "which works where DROP TRIGGER is refused to a non-owner of the auth table",
        do_block(
            sql.SQL(
                "\nDECLARE f regprocedure := pg_catalog.to_regprocedure({signature});\nBEGIN\n"
                "  IF f IS NULL THEN\n"
                "    RETURN;\n"
                "  ELSIF coalesce(pg_catalog.obj_description(f, 'pg_proc'), '') LIKE {ours} THEN\n"
                "    DROP FUNCTION {fn}() CASCADE;\n"
                "  ELSE\n"
                "    RAISE NOTICE 'ghostguard rollback: % is not ghostguard''s: left as it is', f;\n"
                "  END IF;\n"
                "END\n"
            ).format(
                signature=sql.Literal(function(config).as_string(None) + "()"),
                ours=sql.Literal(MANAGED_PATTERN),
                fn=function(config),
            )
        ),
    )


def record_rollback(config: Config, dropped_function: bool, dropped_trigger: bool) -> Step:
    return Step(
        "record the rollback where ghostguard's audit log exists; every profile row is kept",
        do_block(
            sql.SQL(
                "\nBEGIN\n"
                "  IF pg_catalog.to_regclass({audit_name}) IS NOT NULL THEN\n"
                "    INSERT INTO {audit} (job_name, status, records_affected, completed_at, details)\n"
                "    VALUES ({job}, 'success', 0, clock_timestamp(),\n"
                "            jsonb_build_object('dropped_function', {f}, 'dropped_trigger', {t}));\n"
                "  END IF;\n"
                "END\n"
            ).format(
                audit=audit(config),
                audit_name=name_literal(audit(config)),
                job=sql.Literal(ROLLBACK_JOB),
                f=sql.Literal(dropped_function),
                t=sql.Literal(dropped_trigger),
            )
        ),
    )


def refuse_foreign_callers(config: Config) -> Step:
    """For the rollback migration: stop before CASCADE would drop a trigger that is not ours
    (only when the function is ghostguard's: another one is left alone, not dropped)."""
    return Step(
        "refuse when a trigger that is not ghostguard's calls the function (CASCADE would drop it)",
        do_block(
            sql.SQL(
                "\nBEGIN\n"
                "  IF EXISTS (SELECT 1 FROM pg_catalog.pg_trigger t\n"
                "             WHERE t.tgfoid = pg_catalog.to_regprocedure({fn})\n"
                "               AND coalesce(pg_catalog.obj_description(t.tgfoid, 'pg_proc'), '')\n"
                "                   LIKE {marker}\n"
                "               AND NOT (t.tgrelid = {src}::regclass AND t.tgname = ANY ({ours}))) THEN\n"
                "    RAISE EXCEPTION 'ghostguard rollback refused: another trigger calls %; "
                "drop or repoint it first', {shown};\n"
                "  END IF;\n"
                "END\n"
            ).format(
                fn=sql.Literal(function(config).as_string(None) + "()"),
                shown=sql.Literal(config.function_display),
                src=name_literal(source(config)),
                ours=sql.Literal(list(config.trigger_names)),
                marker=sql.Literal(MANAGED_PATTERN),
            )
        ),
    )


def rollback_migration_plan(config: Config) -> list[Step]:
    """The rollback as a migration file: the very transaction `ghostguard rollback` runs."""
    return drop_steps(config)
