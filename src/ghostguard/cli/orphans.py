"""`ghostguard orphans`: profiles whose auth user is gone."""

from __future__ import annotations

from pathlib import Path

import click

from ghostguard import orphans as orphans_mod
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
