"""`ghostguard init`: write ghostguard.toml from the live catalog, and say what is left to decide."""

from __future__ import annotations

from pathlib import Path

import click

from ghostguard import config as config_mod
from ghostguard import db, initconfig
from ghostguard.cli.common import finish, note, resolve_target
from ghostguard.errors import Refused


@click.command("init")
@click.option(
    "--db-url",
    envvar=db.URL_ENV,
    metavar="URL",
    show_envvar=True,
    help="Database to read the catalog from (default: the embedded sandbox).",
)
@click.option(
    "--output",
    "-o",
    type=click.Path(path_type=Path, dir_okay=False),
    default=Path(config_mod.DEFAULT_CONFIG_FILE),
    show_default=True,
    help="Where to write.",
)
@click.option("--force", is_flag=True, help="Overwrite an existing file.")
def init_cmd(db_url: str | None, output: Path, force: bool) -> None:
    """Write ghostguard.toml from the live catalog: profile table, key and column mapping.

    Each choice is explained on stderr. Required (NOT NULL) columns get fallbacks so that every kind
    of signup fills them (placeholders where nothing else exists), UNIQUE ones a collision rule.
    What init cannot choose is written into the file as a marked choice, and it exits 1.
    """
    if output.exists() and not force:
        raise Refused(f"{output} already exists: pass --force to overwrite it")
    target = resolve_target(db_url, None)
    with db.connection(target.url, autocommit=True) as conn:
        proposal = initconfig.propose(conn)
    text = config_mod.dumps(proposal.config)
    if proposal.decisions:  # kept in the file, where the choice is to be made
        text += "\n# TO DECIDE before `ghostguard apply` (init could not choose):\n" + "".join(
            f"# - {d}\n" for d in proposal.decisions
        )
    output.write_text(text)
    for line in proposal.notes:
        note(line)
    click.echo(f"wrote {output}")
    if proposal.decisions:
        for decision in proposal.decisions:
            note(f"decide: {decision}")
        click.echo(
            f"{len(proposal.decisions)} choice(s) left to you, marked at the end of {output}; "
            "then run `ghostguard check`"
        )
        finish(False)
