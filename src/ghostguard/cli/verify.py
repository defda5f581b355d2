"""`ghostguard verify`: the guide's five post-deployment checks."""

from __future__ import annotations

from pathlib import Path

import click

from ghostguard.checks import verify
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
