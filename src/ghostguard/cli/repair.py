"""`ghostguard repair`: retry the profile writes the trigger recorded as failed."""

from __future__ import annotations

from pathlib import Path

import click

from ghostguard import repair
from ghostguard.cli import render
from ghostguard.cli.common import (
    confirm,
    connected,
    db_options,
    finish,
    json_option,
    print_json,
    resolve_target,
    stdout_console,
    yes_option,
)
from ghostguard.sync import failures as sync_failures


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
