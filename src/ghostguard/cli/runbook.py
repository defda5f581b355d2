"""The deployment guide's steps as commands: each parses options, calls one core function, renders."""

from __future__ import annotations

from pathlib import Path

import click

from ghostguard import apply as apply_mod
from ghostguard import orphans as orphans_mod
from ghostguard import repair, sqlparts
from ghostguard.adopt import takeover
from ghostguard.backfill import engine as backfill
from ghostguard.backfill.options import BackfillOptions
from ghostguard.checks import scan as scan_mod
from ghostguard.checks import verify
from ghostguard.cli import render
from ghostguard.cli.check import accept_failing_option
from ghostguard.cli.common import (
    F,
    Output,
    confirm,
    connected,
    db_options,
    exit_code,
    finish,
    json_option,
    json_when_interrupted,
    note,
    output_options,
    print_json,
    resolve_target,
    stdout_console,
    yes_option,
)
from ghostguard.cli.migrations import history_for, migrations_dir_option, say_recorded
from ghostguard.cli.progress import backfill_progress
from ghostguard.config import Config
from ghostguard.formats import collect
from ghostguard.supabase import migrations
from ghostguard.sync import failures as sync_failures
from ghostguard.sync import rollback

FAIL_ON = ("ghosts", "failures", "drift", "blocking-fks", "unreadable")
PREFLIGHT_FIRST = (
    "-- first `ghostguard check`: one user of every signup kind, in a transaction rolled back\n\n"
)
VERIFY_FOLLOWS = (
    "\n-- then `ghostguard verify`: read-only checks, and a registration probe that rolls back\n"
)


def _fail_on(_ctx: click.Context, _param: click.Parameter, value: str | None) -> tuple[str, ...]:
    if value is None:
        return ("ghosts", "failures")
    chosen = tuple(v.strip() for v in value.split(",") if v.strip())
    unknown = [v for v in chosen if v not in FAIL_ON]
    if unknown or not chosen:
        raise click.BadParameter(
            f"{', '.join(unknown) or 'nothing'} is not a condition; choose from {', '.join(FAIL_ON)}"
        )
    return chosen


@click.command()
@db_options
@output_options
@click.option(
    "--fail-on",
    callback=_fail_on,
    metavar="LIST",
    help="Comma-separated conditions that make the exit code 1: ghosts, failures (unresolved "
    "sync failures), drift (function or triggers missing, disabled or changed), blocking-fks "
    "(foreign keys that make user deletes fail), unreadable (profiles their users cannot read "
    "through the Data API). Default: ghosts,failures.",
)
def scan(
    db_url: str | None, config_path: Path | None, output: Output, fail_on: tuple[str, ...]
) -> None:
    """Read-only: ghost users by kind, orphan profiles, sync failures, trigger and function state,
    drift from what apply installs, and foreign keys that make user deletes fail.

    Exits 1 when a --fail-on condition holds (default: ghosts or unresolved sync failures), so
    cron and CI can alert on it.
    """
    target = resolve_target(db_url, config_path)
    with connected(target) as (conn, shape):
        report = scan_mod.scan(conn, target.config, shape)
    problems = report.problems()
    passed = not any(problems[condition] for condition in fail_on)
    if output.text:
        render.scan(stdout_console(), report, target.where)
    outcomes = collect.from_scan(report, fail_on)
    output.emit("scan", report.to_dict(), outcomes, exit_code(passed), target.anchor)
    finish(passed)


@click.command("repair")
@db_options
@yes_option
@json_option
def repair_cmd(db_url: str | None, config_path: Path | None, yes: bool, as_json: bool) -> None:
    """Retry the profile writes the trigger recorded as failed; mark each repaired one resolved.

    Fix the cause first (a constraint, a column), then run this. Each user is synced from the auth
    row as it is now, in its own transaction. Exits 1 when some still fail.
    """
    target = resolve_target(db_url, config_path)
    with connected(target) as (conn, shape):
        pending = sync_failures.unresolved(conn, target.config)
        if not pending:
            click.echo("no unresolved profile sync failures")
            return
        confirm(yes, f"Retry {pending:,} recorded profile sync failures in {target.where}")
        result = repair.repair(conn, target.config, shape)
    if as_json:
        print_json(result.to_dict())
    else:
        render.repair(stdout_console(), result)
    finish(not result.still_failing)


@click.command("orphans")
@db_options
@click.option(
    "--mark-deleted",
    is_flag=True,
    help="Set deleted_at on orphan profiles not marked yet (nothing is ever deleted).",
)
@yes_option
@json_option
def orphans_cmd(
    db_url: str | None, config_path: Path | None, mark_deleted: bool, yes: bool, as_json: bool
) -> None:
    """Profiles whose auth user no longer exists. Read-only unless --mark-deleted.

    Exits 1 when unmarked orphans remain.
    """
    target = resolve_target(db_url, config_path)
    with connected(target) as (conn, shape):
        report = orphans_mod.find(conn, target.config, shape)
        if mark_deleted and report.unmarked:
            confirm(
                yes,
                f"Mark {report.unmarked:,} orphan profiles in {target.config.target.display} deleted",
            )
            report = orphans_mod.mark_deleted(conn, target.config, shape)
    if as_json:
        print_json(report.to_dict())
    else:
        render.orphans(stdout_console(), report)
    finish(report.unmarked == 0)


def batch_options(func: F) -> F:
    """--batch-size, --max-rate, --jobs and --no-yield, for every command that runs the backfill."""
    func = click.option(
        "--jobs",
        type=click.IntRange(1, 16),
        default=BackfillOptions.jobs,
        show_default=True,
        help="Connections running batches at once while no other session is writing (one while "
        "others are, unless --no-yield).",
    )(func)
    func = click.option(
        "--no-yield",
        is_flag=True,
        help="Run at full speed even while other sessions are writing (by default the backfill "
        "pauses between batches while they do, so signups and sign-ins come first).",
    )(func)
    func = click.option(
        "--max-rate",
        type=click.FloatRange(min=1),
        metavar="ROWS_PER_S",
        help="Scan at most this many auth rows per second (default: as fast as batches allow).",
    )(func)
    func = click.option(
        "--batch-size",
        type=click.IntRange(100, 1_000_000),
        help="Fixed rows per batch (default: adaptive, aiming at 75 ms per batch transaction).",
    )(func)
    return func


def _backfill_options(
    config: Config, batch_size: int | None, max_rate: float | None, jobs: int, no_yield: bool
) -> BackfillOptions:
    return BackfillOptions(
        batch_size=batch_size,
        max_rate=max_rate,
        jobs=jobs,
        lock_timeout=config.lock_timeout,
        yield_factor=0.0 if no_yield else BackfillOptions.yield_factor,
    )


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
            taken = takeover.refuse_unadopted(conn, target.config, "apply")
            history = history_for(conn, migrations_dir, files, write=False)
            steps = apply_mod.plan(conn, target.config, shape, history)
            replaces = "".join(
                sqlparts.comment(
                    f"takes over {w.display}: saved in the audit log, restored by rollback"
                )
                + "\n"
                for w in taken
            )
            click.echo(
                replaces + PREFLIGHT_FIRST + sqlparts.render(steps) + VERIFY_FOLLOWS, nl=False
            )
            return
        confirm(
            yes,
            f"Install {target.config.trigger_name} on {target.config.source.display} and backfill "
            f"{target.config.target.display} in {target.where}",
        )
        history = history_for(conn, migrations_dir, files)
        with backfill_progress() as progress, json_when_interrupted(as_json):
            options = apply_mod.ApplyOptions(
                backfill=_backfill_options(target.config, batch_size, max_rate, jobs, no_yield),
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
                _backfill_options(target.config, batch_size, max_rate, jobs, no_yield),
                progress,
            )
    if as_json:
        print_json(result.to_dict())
    else:
        render.backfill(stdout_console(), result)
    finish(result.failed == 0)


@click.command("verify")
@db_options
@output_options
def verify_cmd(db_url: str | None, config_path: Path | None, output: Output) -> None:
    """The guide's five post-deployment checks and its success criteria. Exits 0 only when all pass.

    The registration probe signs a user up the Auth server's way inside a transaction that is
    rolled back, so nothing is left behind.
    """
    target = resolve_target(db_url, config_path)
    with connected(target) as (conn, shape):
        report = verify.verify(conn, target.config, shape)
    if output.text:
        render.verify(stdout_console(), report)
    outcomes = collect.from_findings(report.checks, collect.VERIFY)
    output.emit("verify", report.to_dict(), outcomes, exit_code(report.passed), target.anchor)
    finish(report.passed)


@click.command("rollback")
@db_options
@migrations_dir_option
@click.option("--dry-run", is_flag=True, help="Print the SQL rollback would run; change nothing.")
@yes_option
@json_option
def rollback_cmd(
    db_url: str | None,
    config_path: Path | None,
    migrations_dir: Path,
    dry_run: bool,
    yes: bool,
    as_json: bool,
) -> None:
    """Remove the sync trigger and function; every profile row is kept. Logged in the audit log.

    Works as a non-owner of auth.users (drops the function with CASCADE) and when nothing is installed.
    """
    target = resolve_target(db_url, config_path)
    with connected(target) as (conn, _shape):
        files = [migrations.render_down(target.config)]
        if dry_run:
            history = history_for(conn, migrations_dir, files, write=False)
            record = history.step(migrations.ROLLBACK_MIGRATION) if history else None
            todo = rollback.plan(conn, target.config)
            restores = "".join(
                sqlparts.comment(
                    f"puts back the app's own trigger {name} and its function, as saved by apply"
                )
                + "\n"
                for name in todo.restores
            )
            click.echo(
                restores + sqlparts.render(rollback.statements(todo, target.config, record)),
                nl=False,
            )
            return
        confirm(
            yes,
            f"Remove {target.config.trigger_name} and {target.config.function_display} from {target.where}",
        )
        history = history_for(conn, migrations_dir, files)
        result = rollback.rollback(
            conn, target.config, history.step(migrations.ROLLBACK_MIGRATION) if history else None
        )
        if result.dropped_function:
            say_recorded(history)
    if as_json:
        print_json(result.to_dict())
    else:
        render.rollback(stdout_console(), result)
