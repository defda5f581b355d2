"""`ghostguard rollback`: remove what ghostguard installed, or print the plan."""

from __future__ import annotations

from pathlib import Path

import click

from ghostguard.cli import render
from ghostguard.cli.common import (
    confirm,
    connected,
    db_options,
    json_option,
    print_json,
    resolve_target,
    stdout_console,
    yes_option,
)
from ghostguard.cli.migrations import history_for, migrations_dir_option, say_recorded
from ghostguard.supabase import migrations
from ghostguard.sync import rollback


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
            click.echo(rollback.plan(conn, target.config).text(target.config, record), nl=False)
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
