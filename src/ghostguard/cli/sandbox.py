"""`ghostguard sandbox ...`: the embedded, Supabase-like local PostgreSQL."""

from __future__ import annotations

from pathlib import Path

import click

from ghostguard.cli.common import json_option, note, print_json
from ghostguard.sandbox import Sandbox, ServerStatus, default_home

data_dir_option = click.option(
    "--data-dir",
    type=click.Path(path_type=Path, file_okay=False),
    help=f"Sandbox directory (default: $GHOSTGUARD_HOME or {default_home()}).",
)


def _status_dict(sandbox: Sandbox, status: ServerStatus) -> dict[str, object]:
    return {
        "running": status.running,
        "url": sandbox.url() if status.port else None,
        "postgres_version": status.version,
        "data_dir": str(status.data_dir),
        "bin_dir": str(status.bin_dir) if status.bin_dir else None,
        "legacy_grants": sandbox.legacy_grants() if status.running and status.port else None,
    }


@click.group("sandbox")
def sandbox_group() -> None:
    """A local PostgreSQL set up like hosted Supabase (roles, auth schema, grants), for trying things.

    It listens on 127.0.0.1 only and trusts local connections: never put real data in it.
    """


@sandbox_group.command("start")
@data_dir_option
@click.option(
    "--pg-bin",
    type=click.Path(path_type=Path, file_okay=False, exists=True),
    help="PostgreSQL server bin directory to use instead of the embedded one "
    "(e.g. $(pg_config --bindir) for the system's PostgreSQL 15).",
)
@click.option(
    "--legacy-grants",
    is_flag=True,
    help="Give the database the default privileges hosted projects had before 2026 (new public "
    "tables granted to anon, authenticated and service_role). Without it, today's defaults: no "
    "such grants.",
)
@json_option
def start(data_dir: Path | None, pg_bin: Path | None, legacy_grants: bool, as_json: bool) -> None:
    """Start the sandbox (creating it on first use). Quick when already initialized or running.

    New tables in public get no grants to the API roles, as on hosted Supabase since 2026-10-30;
    --legacy-grants gives the database the older default privileges.
    """
    sandbox = Sandbox(data_dir, pg_bin)
    status = sandbox.start(legacy_grants)
    if as_json:
        print_json(_status_dict(sandbox, status))
        return
    note(f"sandbox running: PostgreSQL {status.version} in {status.data_dir}")
    click.echo(sandbox.url())


@sandbox_group.command("stop")
@data_dir_option
def stop(data_dir: Path | None) -> None:
    """Stop the sandbox server (the data is kept)."""
    stopped = Sandbox(data_dir).stop()
    click.echo("sandbox stopped" if stopped else "sandbox was not running")


@sandbox_group.command("status")
@data_dir_option
@json_option
def status(data_dir: Path | None, as_json: bool) -> None:
    """Whether the sandbox runs, where, and which PostgreSQL. Exits 1 when it is not running."""
    sandbox = Sandbox(data_dir)
    current = sandbox.status()
    if as_json:
        print_json(_status_dict(sandbox, current))
    else:
        state = "running" if current.running else "stopped"
        version = f"PostgreSQL {current.version}" if current.version else "not initialized"
        click.echo(f"{state}: {version}, data in {current.data_dir}")
    if not current.running:
        click.get_current_context().exit(1)


@sandbox_group.command("url")
@data_dir_option
@click.option("--database", default="postgres", show_default=True)
@click.option(
    "--user",
    default="postgres",
    show_default=True,
    help="Role to connect as (supabase_auth_admin to write as the Auth server).",
)
def url(data_dir: Path | None, database: str, user: str) -> None:
    """Print the sandbox's connection URL (no password: loopback trust), e.g. for DATABASE_URL."""
    click.echo(Sandbox(data_dir).url(database, user))
