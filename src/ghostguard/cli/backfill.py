"""`ghostguard backfill`: the missing profiles, in short audited resumable batches."""

from __future__ import annotations

from pathlib import Path

import click

from ghostguard.backfill import engine as backfill
from ghostguard.cli import render
from ghostguard.cli.batching import backfill_options, batch_options
from ghostguard.cli.common import (
    confirm,
    connected,
    db_options,
    finish,
    json_option,
    json_when_interrupted,
    print_json,
    resolve_target,
    stdout_console,
    yes_option,
)
from ghostguard.cli.progress import backfill_progress


@click.command("backfill")
@db_options
@batch_options
@yes_option
@json_option
def backfill_cmd(
    db_url: str | None,
    config_path: Path | None,
    batch_size: int | None,
    max_rate: float | None,
    jobs: int,
    no_yield: bool,
    yes: bool,
    as_json: bool,
) -> None:
    """Create the missing profile rows in short, audited, resumable batches.

    Each batch is its own transaction with a lock_timeout and statement_timeout, retried with
    backoff; progress is checkpointed in the audit log, so a killed run is resumed by the next one.
    A row whose data breaks a constraint never stops the run: the others get their profiles, and
    each user who cannot is recorded once in the failures table; then the run exits 1 naming the
    constraints and the first users (fix the mapping or the constraint, then `ghostguard repair`).
    Progress goes to stderr. Needs the audit table, so run `apply` once first.
    """
    target = resolve_target(db_url, config_path)
    with connected(target) as (conn, shape):
        backfill.require_audit_table(conn, target.config)
        confirm(yes, f"Backfill missing {target.config.target.display} rows in {target.where}")
        with backfill_progress() as progress, json_when_interrupted(as_json):
            result = backfill.backfill(
                conn,
                target.config,
                shape,
                backfill_options(target.config, batch_size, max_rate, jobs, no_yield),
                progress,
            )
    if as_json:
        print_json(result.to_dict())
    else:
        render.backfill(stdout_console(), result)
    finish(result.failed == 0)
