"""The `ghostguard` command line: thin commands over the library, errors handled once here."""

from __future__ import annotations

import click

from ghostguard.cli import version
from ghostguard.cli.apply import apply_cmd
from ghostguard.cli.backfill import backfill_cmd
from ghostguard.cli.check import check_cmd
from ghostguard.cli.common import GhostguardGroup
from ghostguard.cli.demo import demo
from ghostguard.cli.doctor import doctor
from ghostguard.cli.init import init_cmd
from ghostguard.cli.migrations import migrations_cmd
from ghostguard.cli.monitor import monitor
from ghostguard.cli.orphans import orphans_cmd
from ghostguard.cli.rehearse import rehearse_cmd
from ghostguard.cli.repair import repair_cmd
from ghostguard.cli.rollback import rollback_cmd
from ghostguard.cli.sandbox import sandbox_group
from ghostguard.cli.scan import scan
from ghostguard.cli.verify import verify_cmd
from ghostguard.stopping import raise_on_sigterm

EPILOG = """\b
Exit codes: 0 success; 1 something to act on (ghosts, sync failures, a failed
check, orphans); 2 error (bad input, bad config, unreachable server); 3 refused
(unconfirmed or unsafe; nothing changed); 130/143 interrupted by Ctrl-C/SIGTERM
(what was done is kept and said; run again to resume).
"""


@click.group(
    cls=GhostguardGroup, epilog=EPILOG, context_settings={"help_option_names": ["-h", "--help"]}
)
@click.option(
    "--version",
    is_flag=True,
    expose_value=False,
    is_eager=True,
    callback=version.show,
    help="Show ghostguard's version, psycopg's, and the PostgreSQL server a command would use.",
)
def cli() -> None:
    """Find, repair and prevent ghost users: auth.users rows with no public.users profile.

    Without --db-url or DATABASE_URL, commands use the embedded Supabase-like sandbox.
    """


cli.add_command(scan)
cli.add_command(migrations_cmd)
cli.add_command(check_cmd)
cli.add_command(rehearse_cmd)
cli.add_command(apply_cmd)
cli.add_command(backfill_cmd)
cli.add_command(verify_cmd)
cli.add_command(doctor)
cli.add_command(rollback_cmd)
cli.add_command(repair_cmd)
cli.add_command(orphans_cmd)
cli.add_command(init_cmd)
cli.add_command(monitor)
cli.add_command(sandbox_group)
cli.add_command(demo)


def main() -> None:
    raise_on_sigterm()
    cli(prog_name="ghostguard")
