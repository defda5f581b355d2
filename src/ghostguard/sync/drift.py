"""What apply installed, recorded so drift can be told apart from a different ghostguard version
(checks/sync_state.py judges it).

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

from ghostguard import catalog
from ghostguard import config as config_mod
from ghostguard.config import Config
from ghostguard.sqlparts import Step, audit, function, name_literal, source

INSTALL_JOB = "install_user_sync"
ROLLBACK_JOB = "rollback_user_sync"  # after it, the install record no longer describes the catalog


@dataclass(frozen=True)
class Fingerprint:
    function_md5: str | None
    triggers: dict[str, str] = field(default_factory=dict[str, str])
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
            src=name_literal(source(config)),
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


def installed_fingerprint(conn: psycopg.Connection, config: Config) -> Fingerprint | None:
    """The newest install fingerprint, or None (no audit table, apply never ran, or a rollback
    came after it: what is there now is the app's own again, not drift)."""
    if not catalog.table_columns(conn, config.audit):
        return None
    row = conn.execute(
        sql.SQL(
            "SELECT status, records_affected, started_at, completed_at, error_message, details\n"
            "FROM {audit} a WHERE a.job_name = {install}\n"
            "  AND NOT EXISTS (SELECT 1 FROM {audit} r WHERE r.job_name = {rollback}\n"
            "                  AND r.started_at >= a.started_at)\n"
            "ORDER BY a.started_at DESC LIMIT 1"
        ).format(
            audit=audit(config),
            install=sql.Literal(INSTALL_JOB),
            rollback=sql.Literal(ROLLBACK_JOB),
        )
    ).fetchone()
    return from_audit_row(row)
