"""What apply installed, recorded so drift can be told apart from a different ghostguard version.

The install transaction (and the migration file) writes one audit row, job `install_user_sync`,
whose details hold md5 digests of `pg_get_functiondef` of the function and `pg_get_triggerdef`
of each trigger it created, computed by the server right after creating them, and of the config.
Drift is then "the catalog no longer says what was recorded": a function replaced by hand, a
trigger recreated differently, or a config changed since (see `differences`).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any

import psycopg
from psycopg import sql

from ghostguard import audit as audit_log
from ghostguard import catalog
from ghostguard import config as config_mod
from ghostguard.catalog import FunctionState, Shape, TriggerState
from ghostguard.config import Config
from ghostguard.sqlparts import Step, audit, function, source
from ghostguard.sync import triggers as sync_triggers

INSTALL_JOB = "install_user_sync"


@dataclass(frozen=True)
class Fingerprint:
    function_md5: str | None
    triggers: dict[str, str] = field(default_factory=dict)
    config_md5: str | None = None
    recorded_at: str | None = None


def md5(text: str) -> str:
    """The same digest as PostgreSQL's md5(text) on a UTF-8 database."""
    return hashlib.md5(text.encode(), usedforsecurity=False).hexdigest()


def config_digest(config: Config) -> str:
    return md5(config_mod.dumps(config))


def record(config: Config, trigger_names: list[str]) -> Step:
    """The audit row apply writes in its install transaction, after the triggers exist."""
    fn = sql.Literal(function(config).as_string(None) + "()")
    return Step(
        "record what was installed (digests of the function and triggers) for drift detection",
        sql.SQL(
            "INSERT INTO {audit} (job_name, status, completed_at, details)\n"
            "SELECT {job}, 'success', clock_timestamp(), jsonb_build_object(\n"
            "  'function_md5', md5(pg_catalog.pg_get_functiondef({fn}::regprocedure)),\n"
            "  'triggers', (SELECT coalesce(jsonb_object_agg(t.tgname, "
            "md5(pg_catalog.pg_get_triggerdef(t.oid))), '{{}}')\n"
            "               FROM pg_catalog.pg_trigger t\n"
            "               WHERE t.tgrelid = {src}::regclass AND t.tgname = ANY ({names})),\n"
            "  'config_md5', {config_md5})"
        ).format(
            audit=audit(config),
            job=sql.Literal(INSTALL_JOB),
            fn=fn,
            src=sql.Literal(source(config).as_string(None)),
            names=sql.Literal(trigger_names),
            config_md5=sql.Literal(config_digest(config)),
        ),
    )


def from_audit_row(row: tuple[Any, ...] | None) -> Fingerprint | None:
    """The fingerprint in a `audit_log.latest_audit` row of the install job."""
    if row is None:
        return None
    completed, details = row[3], row[5]
    return Fingerprint(
        details.get("function_md5"),
        dict(details.get("triggers") or {}),
        details.get("config_md5"),
        completed.isoformat(sep=" ") if completed else None,
    )


def differences(
    installed: Fingerprint | None,
    config: Config,
    triggers: list[TriggerState],
    function_state: FunctionState | None,
) -> list[str]:
    """How the live function and triggers differ from what apply recorded (empty: they match)."""
    if installed is None:
        return []
    when = f" on {installed.recorded_at[:19]}" if installed.recorded_at else ""
    found: list[str] = []
    if (
        function_state is not None
        and installed.function_md5
        and function_state.definition_md5 != installed.function_md5
    ):
        found.append(
            f"function {function_state.name} was replaced since ghostguard installed it{when}"
        )
    by_name = {t.name: t for t in triggers}
    for name, digest in installed.triggers.items():
        trigger = by_name.get(name)
        if trigger is not None and md5(trigger.definition) != digest:
            found.append(
                f"trigger {name} was recreated differently since ghostguard installed it{when}"
            )
    if installed.config_md5 and installed.config_md5 != config_digest(config):
        found.append("the config differs from the one apply installed with")
    return found


def duplicates(config: Config, triggers: list[TriggerState]) -> list[str]:
    """Triggers on the auth table that call our function but are not ours: profiles written twice."""
    return [
        f"trigger {t.name} also calls {config.function_display}: each row is synced twice"
        for t in triggers
        if t.calls(config) and t.name not in config.trigger_names and t.is_on(config.source)
    ]


def drift(
    config: Config,
    shape: Shape,
    triggers: list[TriggerState],
    function: FunctionState | None,
    installed: Fingerprint | None,
) -> list[str]:
    """How the live function and triggers differ from what apply installs and from what it
    recorded when it did (empty: no drift)."""
    found: list[str] = []
    if function is None:
        found.append(f"function {config.function_display} is missing")
    else:
        if not function.security_definer:
            found.append(f"function {function.name} is not SECURITY DEFINER")
        if function.search_path is None:
            found.append(f"function {function.name} has no pinned search_path")
    by_name = {t.name: t for t in triggers}
    for name in sync_triggers.expected_triggers(config, shape):
        trigger = by_name.get(name)
        if trigger is None:
            found.append(f"trigger {name} on {config.source.display} is missing")
        elif not trigger.is_enabled:
            found.append(f"trigger {name} is disabled ({trigger.enabled})")
        elif not trigger.calls(config):
            found.append(f"trigger {name} calls {trigger.function}, not {config.function_display}")
    found += differences(installed, config, triggers, function)
    found += duplicates(config, triggers)
    return found


def installed_fingerprint(conn: psycopg.Connection, config: Config) -> Fingerprint | None:
    """The newest install fingerprint, or None (no audit table, or apply never ran)."""
    if not catalog.table_columns(conn, config.audit):
        return None
    row = conn.execute(audit_log.latest_audit(config, INSTALL_JOB)).fetchone()
    return from_audit_row(row)


def read_drift(conn: psycopg.Connection, config: Config, shape: Shape) -> list[str]:
    """Drift, read from the catalog and apply's record (for callers that need nothing else)."""
    return drift(
        config,
        shape,
        catalog.triggers_on(conn, config.source),
        catalog.function_state(conn, config),
        installed_fingerprint(conn, config),
    )
