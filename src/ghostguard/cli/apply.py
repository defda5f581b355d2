"""`ghostguard apply`: the preflight, install, backfill and verify, or the plan (--dry-run)."""

from __future__ import annotations

from pathlib import Path

import click

from ghostguard import deploy as apply_mod
from ghostguard.cli import render
from ghostguard.cli.batching import backfill_options, batch_options
from ghostguard.cli.check import accept_failing_option
from ghostguard.cli.common import (
    confirm,
    connected,
    db_options,
    finish,
    json_option,
    json_when_interrupted,
    note,
    print_json,
    resolve_target,
    stdout_console,
    yes_option,
)
from ghostguard.cli.migrations import history_for, migrations_dir_option, say_recorded
from ghostguard.cli.progress import backfill_progress
from ghostguard.supabase import migrations


@click.command("apply")
@db_options
@migrations_dir_option
@click.option(
    "--dry-run", is_flag=True, help="Print the exact SQL apply would run; change nothing."
)
@batch_options
@accept_failing_option
@yes_option
@json_option
def apply_cmd(
    db_url: str | None,
    config_path: Path | None,
    migrations_dir: Path,
    dry_run: bool,
    batch_size: int | None,
    max_rate: float | None,
    jobs: int,
    no_yield: bool,
    accept_failing: tuple[str, ...],
    yes: bool,
    as_json: bool,
) -> None:
    """Record the ghost count, install function and trigger, backfill, then verify.

    First the preflight (`ghostguard check`): apply refuses (exit 3, nothing changed) when a kind
    of signup the project has would end without a profile, unless --accept-failing names it.
    DDL runs in one transaction under a short lock_timeout, retried a few times; if a long
    transaction holds the tables it gives up naming it, with nothing applied. The backfill runs in
    short audited batches and resumes an interrupted run. Exits 1 if verification fails afterwards.
    """
    target = resolve_target(db_url, config_path)
    with connected(target) as (conn, shape):
        files = migrations.render(target.config, shape)
        if dry_run:
            history = history_for(conn, migrations_dir, files, write=False)
            click.echo(apply_mod.plan(conn, target.config, shape, history).text, nl=False)
            return
        confirm(
            yes,
            f"Install {target.config.trigger_name} on {target.config.source.display} and backfill "
            f"{target.config.target.display} in {target.where}",
        )
        history = history_for(conn, migrations_dir, files)
        with backfill_progress() as progress, json_when_interrupted(as_json):
            options = apply_mod.ApplyOptions(
                backfill=backfill_options(target.config, batch_size, max_rate, jobs, no_yield),
                on_retry=_say_retry,
                progress=progress,
                history=history,
                accept_failing=accept_failing,
            )
            result = apply_mod.apply(conn, target.config, shape, options)
        say_recorded(history)
    if as_json:
        print_json(result.to_dict())
    else:
        render.apply(stdout_console(), result)
    finish(result.report.passed)


def _say_retry(attempt: int, exc: Exception, delay: float) -> None:
    note(
        f"apply: tables are locked by another session ({type(exc).__name__}); retry {attempt} in {delay:.1f}s"
    )
