"""Every statement ghostguard runs or writes, composed with psycopg.sql: the one place SQL text is made.

Migration files render these statements; apply/backfill/rollback execute the very same objects,
so what a file says and what the tool does cannot drift apart.
"""

from __future__ import annotations

from dataclasses import dataclass

from psycopg import sql

from ghostguard.catalog import Shape
from ghostguard.config import ColumnSource, Config

# Identity columns the Auth server replaces with an opaque hash on soft delete: never copy those.
SCRUBBED_ON_SOFT_DELETE = frozenset({"email", "phone"})
DOLLAR_TAG = sql.SQL("$ghostguard$")
Query = sql.SQL | sql.Composed  # what psycopg can execute: never a plain str built by hand
GHOST_COUNT_JOB = "record_ghost_count"
ROLLBACK_JOB = "rollback_user_sync"


@dataclass(frozen=True)
class Step:
    """One statement with a short title; plans are lists of steps."""

    title: str
    statement: Query

    def render(self) -> str:
        return self.statement.as_string(None)


def render(steps: list[Step]) -> str:
    """SQL text for a list of steps: each titled with a comment and ended with a semicolon."""
    return "\n\n".join(f"-- {s.title}\n{s.render()};" for s in steps) + "\n"


def _ident(*names: str) -> sql.Identifier:
    return sql.Identifier(*names)


def _source(config: Config) -> sql.Identifier:
    return _ident(config.source.schema, config.source.table)


def _target(config: Config) -> sql.Identifier:
    return _ident(config.target.schema, config.target.table)


def _audit(config: Config) -> sql.Identifier:
    return _ident(config.audit.schema, config.audit.table)


def _function(config: Config) -> sql.Identifier:
    return _ident(config.function_schema, config.function_name)


def _value(src: ColumnSource, row: sql.Composable, shape: Shape) -> sql.Composable:
    """The expression for one mapped profile column, read from an auth row (NEW or an alias)."""
    if src.column is not None:
        expr: sql.Composable = sql.SQL("{}.{}").format(row, _ident(src.column))
        if src.column in SCRUBBED_ON_SOFT_DELETE and shape.source_soft_delete:
            expr = sql.SQL("CASE WHEN {row}.{deleted} IS NULL THEN {expr} END").format(
                row=row, deleted=_ident("deleted_at"), expr=expr
            )
        return expr
    tries = [
        sql.SQL("NULLIF({}.{} ->> {}, '')").format(
            row, _ident(src.metadata_column), sql.Literal(key)
        )
        for key in src.metadata
    ]
    return (
        tries[0] if len(tries) == 1 else sql.SQL("COALESCE({})").format(sql.SQL(", ").join(tries))
    )


def _profile_columns(
    config: Config, shape: Shape, row: sql.Composable
) -> tuple[sql.Composable, sql.Composable]:
    """(column list, value list) for a profile INSERT built from an auth row."""
    names = [config.target.key]
    values: list[sql.Composable] = [sql.SQL("{}.{}").format(row, _ident(config.source.key))]
    for column, src in config.mapping.items():
        names.append(column)
        values.append(_value(src, row, shape))
    soft = shape.target_soft_delete
    if soft and shape.source_soft_delete and soft not in config.mapping:
        names.append(soft)
        values.append(sql.SQL("{}.{}").format(row, _ident("deleted_at")))
    return sql.SQL(", ").join(map(_ident, names)), sql.SQL(", ").join(values)


def ghost_condition(config: Config, auth_alias: str = "au") -> sql.Composed:
    """`NOT EXISTS` anti-join: an auth row with no profile. Uses the target's unique key index."""
    return sql.SQL(
        "NOT EXISTS (SELECT 1 FROM {target} pu WHERE pu.{tkey} = {alias}.{skey})"
    ).format(
        target=_target(config),
        tkey=_ident(config.target.key),
        alias=_ident(auth_alias),
        skey=_ident(config.source.key),
    )


def set_lock_timeout(config: Config) -> Step:
    return Step(
        "never wait long for a lock on a busy table: fail fast, change nothing, retry later",
        sql.SQL("SET lock_timeout = {}").format(sql.Literal(config.lock_timeout)),
    )


def reset_lock_timeout() -> Step:
    return Step("restore the session's lock_timeout", sql.SQL("RESET lock_timeout"))


def audit_table(config: Config, shape: Shape) -> list[Step]:
    """The guide's cleanup_audit_log, created if missing, closed to API roles."""
    audit = _audit(config)
    steps = [
        Step(
            "audit log (the guide's cleanup_audit_log), kept if it already exists",
            sql.SQL(
                "CREATE TABLE IF NOT EXISTS {audit} (\n"
                "  id uuid PRIMARY KEY DEFAULT gen_random_uuid(),\n"
                "  job_name text NOT NULL,\n"
                "  status text NOT NULL,\n"
                "  records_affected bigint,\n"
                "  started_at timestamptz NOT NULL DEFAULT now(),\n"
                "  completed_at timestamptz,\n"
                "  error_message text,\n"
                "  details jsonb NOT NULL DEFAULT '{{}}'::jsonb,\n"
                "  ran_by text NOT NULL DEFAULT current_user,\n"
                "  backend_pid integer DEFAULT pg_backend_pid()\n"
                ")"
            ).format(audit=audit),
        ),
        Step(
            "columns ghostguard relies on, added to an audit table that predates it",
            sql.SQL(
                "ALTER TABLE {audit}\n"
                "  ADD COLUMN IF NOT EXISTS records_affected bigint,\n"
                "  ADD COLUMN IF NOT EXISTS completed_at timestamptz,\n"
                "  ADD COLUMN IF NOT EXISTS error_message text,\n"
                "  ADD COLUMN IF NOT EXISTS details jsonb NOT NULL DEFAULT '{{}}'::jsonb,\n"
                "  ADD COLUMN IF NOT EXISTS ran_by text NOT NULL DEFAULT current_user,\n"
                "  ADD COLUMN IF NOT EXISTS backend_pid integer DEFAULT pg_backend_pid()"
            ).format(audit=audit),
        ),
        Step(
            "RLS on with no policies: API roles see nothing even if a grant slips in",
            sql.SQL("ALTER TABLE {} ENABLE ROW LEVEL SECURITY").format(audit),
        ),
    ]
    steps.append(
        Step(
            "audit rows are not for API roles (public tables get ALL by default privileges)",
            sql.SQL("REVOKE ALL ON TABLE {} FROM {}").format(audit, _grantees(shape)),
        )
    )
    return steps


def _grantees(shape: Shape) -> sql.Composable:
    return sql.SQL(", ").join([sql.SQL("PUBLIC"), *map(_ident, shape.api_roles)])


def record_ghost_count(config: Config) -> Step:
    return Step(
        "document the current ghost user count (pre-deployment checklist)",
        sql.SQL(
            "INSERT INTO {audit} (job_name, status, records_affected, completed_at, details)\n"
            "SELECT {job}, 'success', count(*), clock_timestamp(),\n"
            "       jsonb_build_object('source', {src_name}, 'target', {tgt_name})\n"
            "FROM {source} au\n"
            "WHERE {ghost}"
        ).format(
            audit=_audit(config),
            job=sql.Literal(GHOST_COUNT_JOB),
            src_name=sql.Literal(config.source.display),
            tgt_name=sql.Literal(config.target.display),
            source=_source(config),
            ghost=ghost_condition(config),
        ),
    )


def trigger_function(config: Config, shape: Shape) -> Step:
    """SECURITY DEFINER with search_path = '' and every name qualified, as Supabase's linter wants."""
    columns, values = _profile_columns(config, shape, sql.SQL("NEW"))
    body = sql.SQL(
        "\nBEGIN\n"
        "  INSERT INTO {target} ({columns})\n"
        "  VALUES ({values})\n"
        "  ON CONFLICT ({key}) DO NOTHING;\n"
        "  RETURN NULL;\n"
        "END;\n"
    ).format(target=_target(config), columns=columns, values=values, key=_ident(config.target.key))
    return Step(
        f"sync function: creates the profile row for each new {config.source.display} row",
        sql.SQL(
            "CREATE OR REPLACE FUNCTION {fn}()\n"
            "RETURNS trigger\n"
            "LANGUAGE plpgsql\n"
            "SECURITY DEFINER\n"
            "SET search_path = ''\n"
            "AS {tag}{body}{tag}"
        ).format(fn=_function(config), tag=DOLLAR_TAG, body=body),
    )


def comment_function(config: Config) -> Step:
    return Step(
        "say who manages the function",
        sql.SQL("COMMENT ON FUNCTION {}() IS {}").format(
            _function(config),
            sql.Literal(
                f"ghostguard: creates a {config.target.display} row for every new "
                f"{config.source.display} row (trigger {config.trigger_name})"
            ),
        ),
    )


def revoke_execute(config: Config, shape: Shape) -> Step:
    return Step(
        "nobody calls it directly (EXECUTE is not checked when a trigger fires)",
        sql.SQL("REVOKE EXECUTE ON FUNCTION {}() FROM {}").format(
            _function(config), _grantees(shape)
        ),
    )


def create_trigger(config: Config) -> Step:
    return Step(
        f"the trigger the guide names: AFTER INSERT on {config.source.display}",
        sql.SQL(
            "CREATE OR REPLACE TRIGGER {name}\n"
            "  AFTER INSERT ON {source}\n"
            "  FOR EACH ROW EXECUTE FUNCTION {fn}()"
        ).format(name=_ident(config.trigger_name), source=_source(config), fn=_function(config)),
    )


def install_plan(config: Config, shape: Shape) -> list[Step]:
    """Migration 1 and apply's install transaction: audit table, ghost count, function, trigger."""
    return [
        set_lock_timeout(config),
        *audit_table(config, shape),
        record_ghost_count(config),
        trigger_function(config, shape),
        comment_function(config),
        revoke_execute(config, shape),
        create_trigger(config),
        reset_lock_timeout(),
    ]


def backfill_start(config: Config) -> Step:
    return Step(
        "backfill: open the audit row (status running)",
        sql.SQL("INSERT INTO {} (job_name, status) VALUES ({}, 'running')").format(
            _audit(config), sql.Literal(config.job_name)
        ),
    )


def _running_row(config: Config) -> sql.Composed:
    """This session's newest running backfill row (the one backfill_start opened)."""
    return sql.SQL(
        "SELECT id FROM {audit}\n"
        "  WHERE job_name = {job} AND status = 'running' AND backend_pid = pg_backend_pid()\n"
        "  ORDER BY started_at DESC LIMIT 1"
    ).format(audit=_audit(config), job=sql.Literal(config.job_name))


def backfill_run(config: Config, shape: Shape) -> Step:
    """Insert every missing profile and close the audit row with the exact count, atomically."""
    columns, values = _profile_columns(config, shape, _ident("au"))
    return Step(
        "backfill: create the missing profiles, idempotently, and record how many",
        sql.SQL(
            "WITH run AS (\n  {running}\n), inserted AS (\n"
            "  INSERT INTO {target} ({columns})\n"
            "  SELECT {values}\n"
            "  FROM {source} au\n"
            "  WHERE {ghost}\n"
            "  ON CONFLICT ({key}) DO NOTHING\n"
            "  RETURNING 1\n)\n"
            "UPDATE {audit}\n"
            "SET status = 'success', records_affected = (SELECT count(*) FROM inserted),\n"
            "    completed_at = clock_timestamp()\n"
            "WHERE id = (SELECT id FROM run)\n"
            "RETURNING records_affected"
        ).format(
            running=_running_row(config),
            target=_target(config),
            columns=columns,
            values=values,
            source=_source(config),
            ghost=ghost_condition(config),
            key=_ident(config.target.key),
            audit=_audit(config),
        ),
    )


def backfill_failed(config: Config, message: str) -> Step:
    return Step(
        "backfill: close the audit row as failed",
        sql.SQL(
            "UPDATE {audit} SET status = 'failed', error_message = {message}, "
            "completed_at = clock_timestamp()\nWHERE id = ({running})"
        ).format(audit=_audit(config), message=sql.Literal(message), running=_running_row(config)),
    )


def backfill_plan(config: Config, shape: Shape) -> list[Step]:
    """Migration 2 and apply's backfill: open the audit row, then fill and close it in one statement."""
    return [backfill_start(config), backfill_run(config, shape)]


def drop_function(config: Config) -> Step:
    return Step(
        "remove the sync function; CASCADE removes its trigger too, which works where DROP TRIGGER "
        "is refused to a non-owner of the auth table",
        sql.SQL("DROP FUNCTION IF EXISTS {}() CASCADE").format(_function(config)),
    )


def record_rollback(config: Config, dropped_function: bool, dropped_trigger: bool) -> Step:
    return Step(
        "record the rollback; every profile row is kept",
        sql.SQL(
            "INSERT INTO {audit} (job_name, status, records_affected, completed_at, details)\n"
            "VALUES ({job}, 'success', 0, clock_timestamp(),\n"
            "        jsonb_build_object('dropped_function', {f}, 'dropped_trigger', {t}))"
        ).format(
            audit=_audit(config),
            job=sql.Literal(ROLLBACK_JOB),
            f=sql.Literal(dropped_function),
            t=sql.Literal(dropped_trigger),
        ),
    )
