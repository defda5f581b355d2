"""Every statement ghostguard runs or writes, composed with psycopg.sql: the one place SQL text is made.

Migration files render these statements; apply/backfill/rollback execute the very same objects,
so what a file says and what the tool does cannot drift apart.
"""

from __future__ import annotations

from psycopg import sql

from ghostguard import fingerprint, locks, syncsql
from ghostguard.catalog import Shape
from ghostguard.config import Config
from ghostguard.sqlparts import (
    DOLLAR_TAG,
    Step,
    audit,
    closed_to_api_roles,
    function,
    grantees,
    ident,
    profile_columns,
    source,
    target,
)

GHOST_COUNT_JOB = "record_ghost_count"
ROLLBACK_JOB = "rollback_user_sync"


def ghost_condition(config: Config, auth_alias: str = "au") -> sql.Composed:
    """`NOT EXISTS` anti-join: an auth row with no profile. Uses the target's unique key index."""
    return sql.SQL(
        "NOT EXISTS (SELECT 1 FROM {target} pu WHERE pu.{tkey} = {alias}.{skey})"
    ).format(
        target=target(config),
        tkey=ident(config.target.key),
        alias=ident(auth_alias),
        skey=ident(config.source.key),
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


def comment_function(config: Config) -> Step:
    return Step(
        "say who manages the function",
        sql.SQL("COMMENT ON FUNCTION {}() IS {}").format(
            function(config),
            sql.Literal(
                f"ghostguard: keeps {config.target.display} in step with {config.source.display} "
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


def install_plan(config: Config, shape: Shape) -> list[Step]:
    """Migration 1 and apply's install transaction: audit table, ghost count, function, trigger."""
    return [
        set_lock_timeout(config),
        *audit_table(config, shape),
        record_ghost_count(config),
        *syncsql.failures_table(config, shape),
        syncsql.trigger_function(config, shape),
        comment_function(config),
        revoke_execute(config, shape),
        *syncsql.triggers(config, shape),
        fingerprint.record(config, syncsql.expected_triggers(config, shape)),
        reset_lock_timeout(),
    ]


def ghost_keys(config: Config) -> sql.Composed:
    """Keys of auth rows with no profile, as a set difference.

    EXCEPT is hashed or sorted, never a nested loop, so it stays linear even when the profile
    table's statistics are stale (an anti-join against a freshly analyzed empty table is planned as
    a nested loop over a sequential scan and turns quadratic as the table fills).
    """
    return sql.SQL("SELECT {skey} FROM {source} EXCEPT SELECT {tkey} FROM {target}").format(
        skey=ident(config.source.key),
        source=source(config),
        tkey=ident(config.target.key),
        target=target(config),
    )


def advisory_lock(config: Config) -> Step:
    return Step(
        "one backfill at a time (ghostguard's own runs take the same advisory lock)",
        sql.SQL("SELECT pg_advisory_lock({}, {})").format(
            sql.Literal(locks.LOCK_CLASS), sql.Literal(locks.lock_key(config))
        ),
    )


def advisory_unlock(config: Config) -> Step:
    return Step(
        "release the advisory lock",
        sql.SQL("SELECT pg_advisory_unlock({}, {})").format(
            sql.Literal(locks.LOCK_CLASS), sql.Literal(locks.lock_key(config))
        ),
    )


def backfill_start(config: Config) -> Step:
    return Step(
        "backfill: open the audit row (status running)",
        sql.SQL("INSERT INTO {} (job_name, status) VALUES ({}, 'running') RETURNING id").format(
            audit(config), sql.Literal(config.job_name)
        ),
    )


def _running_row(config: Config) -> sql.Composed:
    """This session's newest running backfill row (the one backfill_start opened)."""
    return sql.SQL(
        "SELECT id FROM {audit}\n"
        "  WHERE job_name = {job} AND status = 'running' AND backend_pid = pg_backend_pid()\n"
        "  ORDER BY started_at DESC LIMIT 1"
    ).format(audit=audit(config), job=sql.Literal(config.job_name))


def backfill_run(config: Config, shape: Shape) -> Step:
    """The whole backfill as one statement (migration file): fill, then close the audit row."""
    columns, values = profile_columns(config, shape, ident("au"))
    return Step(
        "backfill: create the missing profiles, idempotently, and record how many",
        sql.SQL(
            "WITH run AS (\n  {running}\n), inserted AS (\n"
            "  INSERT INTO {target} ({columns})\n"
            "  SELECT {values}\n"
            "  FROM {source} au\n"
            "  WHERE au.{skey} IN ({ghost_keys})\n"
            "  ON CONFLICT ({key}) DO NOTHING\n"
            "  RETURNING 1\n)\n"
            "UPDATE {audit}\n"
            "SET status = 'success', records_affected = (SELECT count(*) FROM inserted),\n"
            "    completed_at = clock_timestamp()\n"
            "WHERE id = (SELECT id FROM run)\n"
            "RETURNING records_affected"
        ).format(
            running=_running_row(config),
            target=target(config),
            columns=columns,
            values=values,
            source=source(config),
            skey=ident(config.source.key),
            ghost_keys=ghost_keys(config),
            key=ident(config.target.key),
            audit=audit(config),
        ),
    )


def backfill_plan(config: Config, shape: Shape) -> list[Step]:
    """Migration 2: lock, open the audit row, fill and close it in one statement, unlock."""
    return [
        advisory_lock(config),
        backfill_start(config),
        backfill_run(config, shape),
        advisory_unlock(config),
    ]


# -- the batched engine (apply, backfill): keyset windows over the source key -------------------


def backfill_window(config: Config, first: bool) -> Step:
    """The next batch: its last key and row count (index-only scan of the source key).

    Params: after (omitted when first), size.
    """
    after = (
        sql.SQL("")
        if first
        else sql.SQL("WHERE au.{} > %(after)s").format(ident(config.source.key))
    )
    return Step(
        "backfill: the key range of the next batch",
        sql.SQL(
            "SELECT w.k, w.n FROM (\n"
            "  SELECT au.{key} AS k, row_number() OVER (ORDER BY au.{key}) AS n\n"
            "  FROM {source} au {after}\n"
            "  ORDER BY au.{key} LIMIT %(size)s\n"
            ") w ORDER BY w.n DESC LIMIT 1"
        ).format(key=ident(config.source.key), source=source(config), after=after),
    )


def backfill_batch(config: Config, shape: Shape, first: bool) -> Step:
    """One batch over (after, last]: anti-join the keys on both primary keys, insert full rows for
    the ghosts only, and advance the audit row's checkpoint in the same statement.

    Params: after (omitted when first), last, count, run, checkpoint (the end of the contiguous
    run of finished windows, see batchpool.py). Run with enable_nestloop off so the anti-join is a
    merge or hash join confined to the range, whatever the statistics say.
    """
    skey, tkey = ident(config.source.key), ident(config.target.key)
    a_lower = sql.SQL("") if first else sql.SQL("a.{} > %(after)s AND ").format(skey)
    pu_lower = sql.SQL("") if first else sql.SQL("pu.{} > %(after)s AND ").format(tkey)
    columns, values = profile_columns(config, shape, ident("au"))
    return Step(
        "backfill: one batch (run repeatedly, each in its own short transaction)",
        sql.SQL(
            "WITH inserted AS (\n"
            "  INSERT INTO {target} ({columns})\n"
            "  SELECT {values}\n"
            "  FROM {source} au\n"
            "  WHERE au.{skey} = ANY (ARRAY(\n"
            "    SELECT a.{skey} FROM {source} a\n"
            "    WHERE {a_lower}a.{skey} <= %(last)s\n"
            "      AND NOT EXISTS (SELECT 1 FROM {target} pu\n"
            "                      WHERE pu.{tkey} = a.{skey} AND {pu_lower}pu.{tkey} <= %(last)s)))\n"
            "  ON CONFLICT ({tkey}) DO NOTHING\n"
            "  RETURNING 1\n)\n"
            "UPDATE {audit}\n"
            "SET records_affected = coalesce(records_affected, 0) + (SELECT count(*) FROM inserted),\n"
            "    details = details || jsonb_build_object(\n"
            "      'checkpoint', %(checkpoint)s::text,\n"
            "      'scanned', coalesce((details ->> 'scanned')::bigint, 0) + %(count)s,\n"
            "      'batches', coalesce((details ->> 'batches')::bigint, 0) + 1)\n"
            "WHERE id = %(run)s\n"
            "RETURNING (SELECT count(*) FROM inserted)"
        ).format(
            target=target(config),
            columns=columns,
            values=values,
            source=source(config),
            skey=skey,
            tkey=tkey,
            a_lower=a_lower,
            pu_lower=pu_lower,
            audit=audit(config),
        ),
    )


def batch_settings() -> Step:
    """Params: lock_timeout, statement_timeout. Transaction-local, like SET LOCAL."""
    return Step(
        "backfill: this batch waits briefly for locks, runs briefly, never plans a nested-loop "
        "anti-join (quadratic on a profile table whose statistics say it is empty), and does not make "
        "signups wait behind its WAL flush (safe: a batch and its checkpoint commit together, so a "
        "crash loses both and the resumed run redoes them)",
        sql.SQL(
            "SELECT set_config('lock_timeout', %(lock_timeout)s, true), "
            "set_config('statement_timeout', %(statement_timeout)s, true), "
            "set_config('enable_nestloop', 'off', true), "
            "set_config('synchronous_commit', 'off', true)"
        ),
    )


def other_writers() -> Step:
    """Sessions with a writing transaction open right now (cluster-wide: they share CPU and WAL),
    other than ours (param: ours, the backfill's own connections).

    pg_locks is readable by every role, unlike other roles' pg_stat_activity state, and an idle
    pooled connection holds no transactionid lock, so this counts real concurrent work.
    """
    return Step(
        "backfill: are other sessions writing? (the backfill yields to them)",
        sql.SQL(
            "SELECT count(DISTINCT pid) FROM pg_catalog.pg_locks "
            "WHERE locktype = 'transactionid' AND granted AND pid <> pg_backend_pid() "
            "AND pid <> ALL (%(ours)s::int[])"
        ),
    )


def backfill_engine(config: Config, shape: Shape) -> list[Step]:
    """What apply and backfill run, for --dry-run: the statements of the batched engine."""
    return [
        backfill_start(config),
        batch_settings(),
        backfill_window(config, first=True),
        backfill_batch(config, shape, first=True),
        backfill_window(config, first=False),
        backfill_batch(config, shape, first=False),
        backfill_finish(config),
    ]


def backfill_finish(config: Config) -> Step:
    """Params: run, checkpoint (the last key, once every window has finished)."""
    return Step(
        "backfill: close the audit row as success",
        sql.SQL(
            "UPDATE {} SET status = 'success', completed_at = clock_timestamp(), "
            "details = details || jsonb_build_object('checkpoint', %(checkpoint)s::text) "
            "WHERE id = %(run)s RETURNING records_affected"
        ).format(audit(config)),
    )


def backfill_failed(config: Config) -> Step:
    """Params: run, message, checkpoint (where the next run resumes)."""
    return Step(
        "backfill: close the audit row as failed, with the checkpoint the next run resumes from",
        sql.SQL(
            "UPDATE {} SET status = 'failed', error_message = %(message)s, "
            "completed_at = clock_timestamp(), "
            "details = details || jsonb_build_object('checkpoint', %(checkpoint)s::text) "
            "WHERE id = %(run)s"
        ).format(audit(config)),
    )


def backfill_last_run(config: Config) -> Step:
    """The newest run of the job, with whether the session that ran it is still connected."""
    return Step(
        "backfill: the newest run, to resume from",
        sql.SQL(
            "SELECT id, status, details ->> 'checkpoint',\n"
            "       EXISTS (SELECT 1 FROM pg_catalog.pg_stat_activity a WHERE a.pid = l.backend_pid)\n"
            "FROM {} l WHERE job_name = {} ORDER BY started_at DESC LIMIT 1"
        ).format(audit(config), sql.Literal(config.job_name)),
    )


def backfill_mark_interrupted(config: Config) -> Step:
    """Params: old, run."""
    return Step(
        "backfill: the earlier run died (killed, connection or server lost): say so",
        sql.SQL(
            "UPDATE {} SET status = 'interrupted', completed_at = clock_timestamp(),\n"
            "  error_message = 'interrupted: its process or connection ended; continued by run ' || %(run)s\n"
            "WHERE id = %(old)s AND status = 'running'"
        ).format(audit(config)),
    )


def backfill_resumes(config: Config) -> Step:
    """Params: run, old, checkpoint."""
    return Step(
        "backfill: record where this run resumes from",
        sql.SQL(
            "UPDATE {} SET details = details || jsonb_build_object("
            "'resumed_from', %(old)s::text, 'start_checkpoint', %(checkpoint)s::text, "
            "'checkpoint', %(checkpoint)s::text) WHERE id = %(run)s"
        ).format(audit(config)),
    )


def analyze_target(config: Config) -> Step:
    return Step(
        "fresh statistics for the profile table after a large backfill",
        sql.SQL("ANALYZE {}").format(target(config)),
    )


def drop_function(config: Config) -> Step:
    return Step(
        "remove the sync function; CASCADE removes its trigger too, which works where DROP TRIGGER "
        "is refused to a non-owner of the auth table",
        sql.SQL("DROP FUNCTION IF EXISTS {}() CASCADE").format(function(config)),
    )


def record_rollback(config: Config, dropped_function: bool, dropped_trigger: bool) -> Step:
    return Step(
        "record the rollback; every profile row is kept",
        sql.SQL(
            "INSERT INTO {audit} (job_name, status, records_affected, completed_at, details)\n"
            "VALUES ({job}, 'success', 0, clock_timestamp(),\n"
            "        jsonb_build_object('dropped_function', {f}, 'dropped_trigger', {t}))"
        ).format(
            audit=audit(config),
            job=sql.Literal(ROLLBACK_JOB),
            f=sql.Literal(dropped_function),
            t=sql.Literal(dropped_trigger),
        ),
    )


def refuse_foreign_callers(config: Config) -> Step:
    """For the rollback migration: stop before CASCADE would drop a trigger that is not ours."""
    return Step(
        "refuse when a trigger that is not ghostguard's calls the function (CASCADE would drop it)",
        sql.SQL(
            "DO {tag}\nBEGIN\n"
            "  IF EXISTS (SELECT 1 FROM pg_catalog.pg_trigger t\n"
            "             WHERE t.tgfoid = pg_catalog.to_regprocedure({fn})\n"
            "               AND NOT (t.tgrelid = {src}::regclass AND t.tgname = ANY ({ours}))) THEN\n"
            "    RAISE EXCEPTION 'ghostguard rollback refused: another trigger calls %; "
            "drop or repoint it first', {shown};\n"
            "  END IF;\n"
            "END\n{tag}"
        ).format(
            tag=DOLLAR_TAG,
            fn=sql.Literal(function(config).as_string(None) + "()"),
            shown=sql.Literal(config.function_display),
            src=sql.Literal(source(config).as_string(None)),
            ours=sql.Literal(list(config.trigger_names)),
        ),
    )


def rollback_migration_plan(config: Config) -> list[Step]:
    """The rollback as a migration file: the same DROP FUNCTION ... CASCADE and audit row as
    `ghostguard rollback`, guarded in SQL where the command checks the catalog first."""
    return [
        set_lock_timeout(config),
        refuse_foreign_callers(config),
        drop_function(config),
        record_rollback(config, True, True),
        reset_lock_timeout(),
    ]
