"""The audit log (the guide's cleanup_audit_log): its table, the ghost count row, the newest row of a job."""

from __future__ import annotations

from psycopg import sql

from ghostguard.catalog import Shape
from ghostguard.config import Config
from ghostguard.sqlparts import (
    Step,
    audit,
    closed_to_api_roles,
    ghost_keys,
)

GHOST_COUNT_JOB = "record_ghost_count"


def audit_table(config: Config, shape: Shape) -> list[Step]:
    """The guide's cleanup_audit_log, created if missing, closed to API roles."""
    table = audit(config)
    steps = [
        Step(
            "audit log (the guide's cleanup_audit_log), kept if it already exists",
            sql.SQL(
                "CREATE TABLE IF NOT EXISTS {audit} (\n"
                "  id uuid PRIMARY KEY DEFAULT gen_random_uuid(),\n"
                "  job_name text NOT NULL,\n"
                "  status text NOT NULL,\n"
                "  records_affected bigint,\n"
                "  records_failed bigint,\n"
                "  started_at timestamptz NOT NULL DEFAULT now(),\n"
                "  completed_at timestamptz,\n"
                "  error_message text,\n"
                "  details jsonb NOT NULL DEFAULT '{{}}'::jsonb,\n"
                "  ran_by text NOT NULL DEFAULT current_user,\n"
                "  backend_pid integer DEFAULT pg_backend_pid()\n"
                ")"
            ).format(audit=table),
        ),
        Step(
            "columns ghostguard relies on, added to an audit table that predates it",
            sql.SQL(
                "ALTER TABLE {audit}\n"
                "  ADD COLUMN IF NOT EXISTS records_affected bigint,\n"
                "  ADD COLUMN IF NOT EXISTS records_failed bigint,\n"
                "  ADD COLUMN IF NOT EXISTS completed_at timestamptz,\n"
                "  ADD COLUMN IF NOT EXISTS error_message text,\n"
                "  ADD COLUMN IF NOT EXISTS details jsonb NOT NULL DEFAULT '{{}}'::jsonb,\n"
                "  ADD COLUMN IF NOT EXISTS ran_by text NOT NULL DEFAULT current_user,\n"
                "  ADD COLUMN IF NOT EXISTS backend_pid integer DEFAULT pg_backend_pid()"
            ).format(audit=table),
        ),
        *closed_to_api_roles(
            table,
            shape,
            "audit rows are not for API roles (public tables get ALL by default privileges)",
        ),
    ]
    return steps


def record_ghost_count(config: Config) -> Step:
    return Step(
        "document the current ghost user count (pre-deployment checklist)",
        sql.SQL(
            "INSERT INTO {audit} (job_name, status, records_affected, completed_at, details)\n"
            "SELECT {job}, 'success', count(*), clock_timestamp(),\n"
            "       jsonb_build_object('source', {src_name}, 'target', {tgt_name})\n"
            "FROM ({ghost_keys}) ghosts"
        ).format(
            audit=audit(config),
            job=sql.Literal(GHOST_COUNT_JOB),
            src_name=sql.Literal(config.source.display),
            tgt_name=sql.Literal(config.target.display),
            ghost_keys=ghost_keys(config),
        ),
    )


def latest_audit(config: Config, job: str) -> sql.Composed:
    return sql.SQL(
        "SELECT status, records_affected, started_at, completed_at, error_message, details\n"
        "FROM {audit} WHERE job_name = {job} ORDER BY started_at DESC LIMIT 1"
    ).format(audit=sql.Identifier(config.audit.schema, config.audit.table), job=sql.Literal(job))


def recorded_ghost_count(config: Config) -> Step:
    """apply reads back the count the install transaction recorded."""
    return Step(
        "read back the ghost count recorded before the install",
        latest_audit(config, GHOST_COUNT_JOB),
    )
