"""Every statement of the backfill: the batched engine's set and the migration file's one statement."""

from __future__ import annotations

from dataclasses import dataclass

from psycopg import sql

from ghostguard import locks
from ghostguard.backfill import salvage
from ghostguard.backfill.resume import Resumption
from ghostguard.catalog import Shape
from ghostguard.config import Config
from ghostguard.sqlparts import (
    Step,
    audit,
    for_parameters,
    ghost_keys,
    ident,
    source,
    target,
    unless_linked,
)
from ghostguard.sync import failures as sync_failures
from ghostguard.sync.mapping import profile_columns


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
            "  {conflict}\n"
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
            conflict=unless_linked(
                config, shape, sql.SQL("au.{}").format(ident(config.source.key))
            )[1],
            audit=audit(config),
        ),
    )


def backfill_plan(config: Config, shape: Shape) -> list[Step]:
    """Migration 2: lock, open the audit row, fill and close it in one statement, unlock."""
    return [
        locks.advisory_lock(config),
        backfill_start(config),
        backfill_run(config, shape),
        locks.advisory_unlock(config),
    ]


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
    run of finished windows, see pool.py). Run with enable_nestloop off so the anti-join is a
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
            "  {conflict}\n"
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
            values=for_parameters(values),
            source=source(config),
            skey=skey,
            tkey=tkey,
            a_lower=a_lower,
            pu_lower=pu_lower,
            conflict=unless_linked(config, shape, sql.SQL("au.{}").format(skey))[1],
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


def backfill_finish(config: Config) -> Step:
    """Params: run, checkpoint (the last key, once every window has finished)."""
    return Step(
        "backfill: close the audit row: success, or partial when some users could not get a profile",
        sql.SQL(
            "UPDATE {audit} SET completed_at = clock_timestamp(),\n"
            "  status = CASE WHEN coalesce(records_failed, 0) > 0 THEN 'partial' ELSE 'success' END,\n"
            "  error_message = CASE WHEN coalesce(records_failed, 0) > 0 THEN records_failed\n"
            "    || CASE WHEN records_failed = 1 THEN ' user' ELSE ' users' END\n"
            "    || ' could not get a profile (recorded in ' || {failures} || ')' END,\n"
            "  details = details || jsonb_build_object('checkpoint', %(checkpoint)s::text)\n"
            "WHERE id = %(run)s RETURNING records_affected"
        ).format(audit=audit(config), failures=sql.Literal(config.failures.display)),
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


def estimated_rows(config: Config) -> Step:
    """The planner's row estimate for the source table (free, good enough for progress and ETA);
    an exact count only when the table was never analyzed (reltuples = -1)."""
    return Step(
        "backfill: how many auth rows to scan, for progress (the planner's estimate)",
        sql.SQL(
            "SELECT CASE WHEN c.reltuples < 0 THEN (SELECT count(*) FROM {source}) "
            "ELSE c.reltuples::bigint END FROM pg_catalog.pg_class c "
            "JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = {schema} AND c.relname = {name}"
        ).format(
            source=sql.Identifier(config.source.schema, config.source.table),
            schema=sql.Literal(config.source.schema),
            name=sql.Literal(config.source.table),
        ),
    )


def rows_after(config: Config) -> Step:
    """Param: after. A resumed run scans only the keys after its checkpoint: counted exactly (an
    index-only scan of what is left), since the estimate's share of them is a guess when keys are
    not spread evenly."""
    return Step(
        "backfill: how many auth rows are left after the checkpoint, for progress",
        sql.SQL("SELECT count(*) FROM {} a WHERE a.{} > %(after)s").format(
            source(config), ident(config.source.key)
        ),
    )


def rows_upto(config: Config) -> Step:
    """Param: after. How many keys a resumed run sweeps again: those up to the checkpoint it
    started from, done by the interrupted run, where ghosts may have appeared since."""
    return Step(
        "backfill: a resumed run sweeps the keys behind its checkpoint again (only when resumed)",
        sql.SQL("SELECT count(*) FROM {} a WHERE a.{} <= %(after)s").format(
            source(config), ident(config.source.key)
        ),
    )


@dataclass(frozen=True)
class EngineStatements:
    """Every statement the batched engine runs, built once per run: the engine executes these
    very objects, and `plan` lists them for `apply --dry-run`."""

    estimate: Step
    rows_after: Step
    rows_upto: Step
    last_run: Step
    start: Step
    mark_interrupted: Step
    resumes: Step
    other_writers: Step
    settings: Step
    window_first: Step
    window_next: Step
    batch_first: Step
    batch_next: Step
    finish: Step
    failed: Step
    analyze: Step
    salvage_bounds: Step
    salvage_count_first: Step
    salvage_count_next: Step
    salvage: Step
    salvage_record_first: Step
    salvage_record_next: Step
    failure_summary: Step
    resolve_profiled: Step

    @classmethod
    def build(cls, config: Config, shape: Shape) -> EngineStatements:
        return cls(
            estimate=estimated_rows(config),
            rows_after=rows_after(config),
            rows_upto=rows_upto(config),
            last_run=backfill_last_run(config),
            start=backfill_start(config),
            mark_interrupted=backfill_mark_interrupted(config),
            resumes=backfill_resumes(config),
            other_writers=other_writers(),
            settings=batch_settings(),
            window_first=backfill_window(config, first=True),
            window_next=backfill_window(config, first=False),
            batch_first=backfill_batch(config, shape, first=True),
            batch_next=backfill_batch(config, shape, first=False),
            finish=backfill_finish(config),
            failed=backfill_failed(config),
            analyze=analyze_target(config),
            salvage_bounds=salvage.bounds(),
            salvage_count_first=salvage.ghosts_in_window(config, first=True),
            salvage_count_next=salvage.ghosts_in_window(config, first=False),
            salvage=salvage.salvage(config, shape),
            salvage_record_first=salvage.record(config, first=True),
            salvage_record_next=salvage.record(config, first=False),
            failure_summary=sync_failures.summary(config, salvage.OPERATION),
            resolve_profiled=sync_failures.resolve_profiled(
                config, shape, "resolved: a profile was created (backfill)"
            ),
        )

    def window(self, first: bool) -> Step:
        return self.window_first if first else self.window_next

    def batch(self, first: bool) -> Step:
        return self.batch_first if first else self.batch_next

    def plan(self, earlier: Resumption) -> list[Step]:
        """What a run executes, in order, for a run that follows `earlier`. The steps that depend
        on the data say so in their titles: the salvage of a window (only when a batch fails on a
        row's data), the failure record (only when a batch gives up) and ANALYZE (only when
        profiles were created)."""
        return [
            self.estimate,
            self.last_run,
            self.start,
            *([self.mark_interrupted] if earlier.mark_interrupted else []),
            *([self.resumes, self.rows_after] if earlier.resume else []),
            self.other_writers,
            self.settings,
            self.window_first,
            self.window_next,
            self.batch_first,
            self.batch_next,
            *(
                _only_when(step, "a batch fails on a row's data")
                for step in (
                    self.salvage_bounds,
                    self.salvage_count_first,
                    self.salvage_count_next,
                    self.salvage,
                    self.salvage_record_first,
                    self.salvage_record_next,
                )
            ),
            *([self.rows_upto] if earlier.resume else []),
            self.finish,
            self.resolve_profiled,
            _only_when(self.failed, "a batch gives up"),
            _only_when(self.analyze, "profiles were created"),
            _only_when(self.failure_summary, "some users could not get a profile"),
        ]


def _only_when(step: Step, condition: str) -> Step:
    return Step(f"{step.title} (only when {condition})", step.statement)
