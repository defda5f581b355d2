"""`ghostguard scan`: the read-only truth, with the conditions cron and CI fail on."""

from __future__ import annotations

from pathlib import Path

import click

from ghostguard.checks import scan as scan_mod
from ghostguard.cli import render
from ghostguard.cli.common import (
    Output,
    connected,
    db_options,
    exit_code,
    finish,
    output_options,
    resolve_target,
    stdout_console,
)
from ghostguard.formats import collect

FAIL_ON = ("ghosts", "failures", "drift", "blocking-fks", "unreadable")


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
