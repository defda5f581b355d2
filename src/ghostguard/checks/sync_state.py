"""How the installed sync is judged: one set of judgments behind scan's drift, verify's checks,
doctor's findings and the monitor, so the same fact can never pass one and fail another.
"""

from __future__ import annotations

from dataclasses import dataclass

import psycopg
from psycopg import sql

from ghostguard import catalog
from ghostguard.catalog import FunctionState, Shape, TriggerState
from ghostguard.checks.finding import APPLY, ERROR, WARN, Finding, failing, ok, problem
from ghostguard.config import Config
from ghostguard.sqlparts import function, ident, source
from ghostguard.sync import drift as recorded
from ghostguard.sync import install as sync_install
from ghostguard.sync import triggers as sync_triggers
from ghostguard.sync.drift import Fingerprint

PINNED_EMPTY = ('""', "''", "")  # how pg_proc.proconfig spells search_path = ''


def shown_search_path(value: str | None) -> str:
    """A function's search_path, spelled one way in every report: as `SET` takes it."""
    if value is None:
        return "search_path not pinned"
    return "search_path = ''" if value in PINNED_EMPTY else f"search_path = {value}"


def statement(composed: sql.Composable) -> str:
    """A fix as SQL text to print: names quoted by psycopg, never by hand."""
    return composed.as_string(None) + ";"


@dataclass(frozen=True)
class SyncState:
    """What the catalog says about the sync, and what apply recorded when it installed it."""

    triggers: list[TriggerState]
    function: FunctionState | None
    installed: Fingerprint | None


def read_state(conn: psycopg.Connection, config: Config) -> SyncState:
    return SyncState(
        catalog.triggers_on(conn, config.source),
        catalog.function_state(conn, config),
        recorded.installed_fingerprint(conn, config),
    )


# -- the function ---------------------------------------------------------------------------------


def function_exists(fn: FunctionState | None, config: Config) -> Finding:
    if fn is None:
        return problem(
            "function_exists",
            ERROR,
            config.function_display,
            f"function {config.function_display} is missing",
            APPLY,
        )
    return ok("function_exists", ERROR, fn.name, "exists")


def definer(fn: FunctionState, config: Config) -> Finding:
    if fn.security_definer:
        return ok("function_definer", ERROR, fn.name, "SECURITY DEFINER")
    return problem(
        "function_definer",
        ERROR,
        fn.name,
        f"function {fn.name} is not SECURITY DEFINER",
        statement(sql.SQL("ALTER FUNCTION {}() SECURITY DEFINER").format(function(config))),
    )


def search_path_pinned(fn: FunctionState, config: Config) -> Finding:
    if fn.search_path in PINNED_EMPTY:
        return ok("search_path_pinned", ERROR, fn.name, "search_path = ''")
    return problem(
        "search_path_pinned",
        ERROR,
        fn.name,
        f"{shown_search_path(fn.search_path)}: a SECURITY DEFINER function must pin "
        "search_path = ''",
        statement(sql.SQL("ALTER FUNCTION {}() SET search_path = ''").format(function(config))),
    )


def execute_revoked(fn: FunctionState, config: Config, shape: Shape) -> Finding:
    if not fn.executable_by:
        return ok("execute_revoked", ERROR, fn.name, "no API role may EXECUTE it")
    return problem(
        "execute_revoked",
        ERROR,
        fn.name,
        f"EXECUTE granted to {', '.join(fn.executable_by)}",
        sync_install.revoke_execute(config, shape).render() + ";  -- Supabase linter 0028/0029",
    )


def definer_owner(fn: FunctionState, config: Config) -> Finding:
    if fn.owner == "postgres":
        return ok("definer_owner", WARN, fn.name, "owned by postgres")
    return problem(
        "definer_owner",
        WARN,
        fn.name,
        f"owned by {fn.owner}: a SECURITY DEFINER function runs with its owner's rights; "
        "Supabase expects postgres",
        statement(sql.SQL("ALTER FUNCTION {}() OWNER TO postgres").format(function(config))),
    )


# -- the triggers ---------------------------------------------------------------------------------


def trigger_installed(name: str, triggers: list[TriggerState], config: Config) -> Finding:
    """One of the triggers apply installs: present, enabled, calling the sync function."""
    trigger = next((t for t in triggers if t.name == name), None)
    obj = f"trigger {name} on {config.source.display}"
    if trigger is None:
        return problem("trigger_installed", ERROR, obj, f"{obj} is missing", APPLY)
    if not trigger.is_enabled:
        return problem(
            "trigger_installed",
            ERROR,
            obj,
            f"trigger {name} is {trigger.state}",
            f"{APPLY} (replaces it enabled), or as the table owner: "
            + statement(
                sql.SQL("ALTER TABLE {} ENABLE TRIGGER {}").format(source(config), ident(name))
            ),
        )
    if not trigger.calls(config):
        detail = f"trigger {name} calls {trigger.function}, not {config.function_display}"
        return problem("trigger_installed", ERROR, obj, detail, APPLY)
    return ok(
        "trigger_installed",
        ERROR,
        obj,
        f"{trigger.name} | {trigger.state} | {trigger.table} | calls {trigger.function}",
    )


def no_duplicate_callers(triggers: list[TriggerState], config: Config) -> list[Finding]:
    """Triggers on the auth table that call our function but are not ours: profiles written twice."""
    return [
        problem(
            "no_duplicate_callers",
            ERROR,
            f"trigger {t.name}",
            f"trigger {t.name} also calls {config.function_display}: each row is synced twice",
            "drop the extra trigger (as the table owner)",
        )
        for t in triggers
        if t.calls(config) and t.name not in config.trigger_names and t.is_on(config.source)
    ]


# -- what apply recorded --------------------------------------------------------------------------


def as_recorded(state: SyncState, config: Config) -> list[Finding]:
    """How the live function and triggers differ from what apply recorded (nothing: they match)."""
    installed = state.installed
    if installed is None:
        return []
    when = f" on {installed.recorded_at[:19]}" if installed.recorded_at else ""
    found: list[Finding] = []
    fn = state.function
    if fn is not None and installed.function_md5 and fn.definition_md5 != installed.function_md5:
        found.append(
            problem(
                "as_recorded",
                ERROR,
                fn.name,
                f"function {fn.name} was replaced since ghostguard installed it{when}",
                APPLY,
            )
        )
    by_name = {t.name: t for t in state.triggers}
    for name, digest in installed.triggers.items():
        trigger = by_name.get(name)
        if trigger is not None and recorded.md5(trigger.definition) != digest:
            found.append(
                problem(
                    "as_recorded",
                    ERROR,
                    f"trigger {name}",
                    f"trigger {name} was recreated differently since ghostguard installed it{when}",
                    APPLY,
                )
            )
    if installed.config_md5 and installed.config_md5 != recorded.config_digest(config):
        found.append(
            problem(
                "as_recorded",
                ERROR,
                "config",
                "the config differs from the one apply installed with",
                APPLY,
            )
        )
    return found


# -- drift: everything that makes the installed sync differ from what apply installs ---------------


def drift_findings(state: SyncState, config: Config, shape: Shape) -> list[Finding]:
    """The function (exists, definer, search_path ''), every trigger apply would install, what apply
    recorded, and duplicate callers. EXECUTE grants and the owner are security findings, not drift."""
    found = [function_exists(state.function, config)]
    if state.function is not None:
        found += [definer(state.function, config), search_path_pinned(state.function, config)]
    found += [
        trigger_installed(name, state.triggers, config)
        for name in sync_triggers.expected_triggers(config, shape)
    ]
    return found + as_recorded(state, config) + no_duplicate_callers(state.triggers, config)


def drift(state: SyncState, config: Config, shape: Shape) -> list[str]:
    """What scan, verify and the monitor report as drift: the failing drift findings' details."""
    return [f.detail for f in failing(drift_findings(state, config, shape))]


def function_security(fn: FunctionState | None, config: Config, shape: Shape) -> list[Finding]:
    """What verify calls a secure function: it exists, is a definer, pins search_path, and no API
    role may EXECUTE it."""
    if fn is None:
        return [function_exists(fn, config)]
    return [
        definer(fn, config),
        search_path_pinned(fn, config),
        execute_revoked(fn, config, shape),
    ]
