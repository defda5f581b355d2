"""`ghostguard doctor`: catalog checks with levels and exact fixes."""

from __future__ import annotations

from pathlib import Path

import click

from ghostguard.checks import doctor as doctor_mod
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


@click.command("doctor")
@db_options
@output_options
@click.option(
    "--fail-on",
    type=click.Choice(doctor_mod.LEVELS),
    default="error",
    show_default=True,
    help="Exit 1 when a check of this level or worse fails (warn: any failed check).",
)
def doctor(db_url: str | None, config_path: Path | None, output: Output, fail_on: str) -> None:
    """Read-only checks from the catalog, each with its level, the object, what is wrong and the
    exact SQL (or command) that fixes it.

    Ghostguard's own objects: installed without drift, search_path pinned, owned by postgres,
    EXECUTE revoked from API roles, audit and failure tables closed, profile RLS with own-row
    policies. Pitfalls of any trigger on the auth table: SECURITY INVOKER, no pinned search_path,
    unqualified names, swallowed exceptions, UPDATE triggers that run on every sign-in, several
    profile writers. The profile table: NOT NULL columns Auth data leaves empty, UNIQUE email with
    SSO users, CHECKs on mapped columns, a key that is not uuid; foreign keys that make user
    deletes fail; views over the auth table that API roles can read.
    """
    target = resolve_target(db_url, config_path)
    with connected(target) as (conn, shape):
        report = doctor_mod.doctor(conn, target.config, shape)
    passed = not report.failing(fail_on)
    if output.text:
        render.doctor(stdout_console(), report, target.where)
    outcomes = collect.from_findings(report.findings, collect.DOCTOR)
    output.emit("doctor", report.to_dict(), outcomes, exit_code(passed), target.anchor)
    finish(passed)
