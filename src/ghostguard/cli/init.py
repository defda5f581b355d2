"""`ghostguard init`: write ghostguard.toml from the live catalog, and say what is left to decide."""

from __future__ import annotations

from pathlib import Path

import click

from ghostguard import catalog, db, initconfig, initfile
from ghostguard import config as config_mod
from ghostguard.cli.common import finish, note, resolve_target
from ghostguard.errors import ConfigError, Refused


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
@click.option(
    "--force",
    is_flag=True,
    help="Write over an existing file, keeping every value set in it (init adds what is new).",
)
def init_cmd(db_url: str | None, output: Path, force: bool) -> None:
    """Write ghostguard.toml from the live catalog: profile table, key and column mapping.

    Each choice is explained beside its entry, as comments in the file (and on stderr). Required
    (NOT NULL) columns get fallbacks so that every kind of signup fills them (placeholders where
    nothing else exists), UNIQUE ones a collision rule. What init cannot choose is written into
    the file as a marked choice, and it exits 1. With --force over an existing file, every value
    set there is kept (init says where it would propose otherwise) and only what is new is added.
    """
    if output.exists() and not force:
        raise Refused(f"{output} already exists: pass --force to update it (your values are kept)")
    kept = initfile.existing(output)
    target = resolve_target(db_url, None)
    with db.connection(target.url, autocommit=True) as conn:
        proposal = initconfig.propose(conn)
        data, differs = initfile.keep_edits(kept or {}, config_mod.to_dict(proposal.config))
        decisions = initfile.open_decisions(proposal, data)
        if kept is not None and not decisions:
            try:
                catalog.resolve(conn, config_mod.from_dict(data))
            except ConfigError as exc:
                raise ConfigError(
                    f"{output}: its values with init's do not fit this database ({exc.message}); "
                    "nothing was written: fix that value, or move the file away for a new one"
                ) from None
    output.write_text(initfile.render(proposal, data, differs))
    for line in [*proposal.notes, *differs]:
        note(line)
    click.echo(f"wrote {output}")
    if decisions:
        for decision in decisions:
            note(f"decide: {decision}")
        click.echo(
            f"{len(decisions)} choice(s) left to you, marked at the end of {output}; "
            "then run `ghostguard check`"
        )
        finish(False)
