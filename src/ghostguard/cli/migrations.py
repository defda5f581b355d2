"""`ghostguard migrations` and the Supabase CLI's migration history kept by apply and rollback."""

from __future__ import annotations

from pathlib import Path

import click
import psycopg

from ghostguard.catalog import supabase_shape
from ghostguard.cli.common import F, connected, db_options, load_config, note, resolve_target
from ghostguard.supabase import history as migration_history
from ghostguard.supabase import migrations, pgtap
from ghostguard.supabase.history import HistoryPlan


def migrations_dir_option(func: F) -> F:
    return click.option(
        "--migrations-dir",
        type=click.Path(path_type=Path, file_okay=False),
        default=migrations.DEFAULT_DIR,
        show_default=True,
        help="When the database has supabase_migrations.schema_migrations, what this command ran "
        "is recorded there with these files' versions (written here if missing).",
    )(func)


def history_for(
    conn: psycopg.Connection,
    directory: Path,
    files: list[migrations.Migration],
    write: bool = True,
) -> HistoryPlan | None:
    history = migration_history.plan(conn, directory, files, write)
    if history is not None:
        for path in history.written:
            note(f"wrote {path} (to match the migration history)")
    return history


def say_recorded(history: HistoryPlan | None) -> None:
    if history is not None:
        names = ", ".join(f"{v.version}_{v.migration.name}" for v in history.versioned)
        note(f"recorded {names} in {migration_history.TABLE.display}")


@click.command("migrations")
@db_options
@click.option(
    "--dir",
    "directory",
    type=click.Path(path_type=Path, file_okay=False),
    default=migrations.DEFAULT_DIR,
    show_default=True,
    help="Supabase migrations directory.",
)
@click.option("--stdout", "to_stdout", is_flag=True, help="Print the SQL instead of writing files.")
@click.option(
    "--offline",
    is_flag=True,
    help="Do not connect: assume a hosted Supabase project's tables and roles.",
)
@click.option(
    "--tests",
    "with_tests",
    is_flag=True,
    help=f"Also write pgTAP tests ({pgtap.FILE_NAME}) that `supabase test db` runs.",
)
@click.option(
    "--tests-dir",
    type=click.Path(path_type=Path, file_okay=False),
    default=pgtap.DEFAULT_DIR,
    show_default=True,
    help="Where --tests writes the pgTAP file.",
)
@click.option(
    "--down",
    is_flag=True,
    help="Write only the rollback migration (<timestamp>_rollback_user_sync.sql), for when you "
    "decide to roll back: `supabase db push` runs every new file.",
)
def migrations_cmd(
    db_url: str | None,
    config_path: Path | None,
    directory: Path,
    to_stdout: bool,
    offline: bool,
    with_tests: bool,
    tests_dir: Path,
    down: bool,
) -> None:
    """Write <timestamp>_create_user_sync_trigger.sql and <next>_backfill_ghost_users.sql.

    The files hold exactly the statements `apply` executes; both are re-runnable and valid under
    `psql -v ON_ERROR_STOP=1`. Unchanged files are not written twice. --tests adds pgTAP tests,
    --down writes the rollback migration instead.
    """
    if offline:
        config = load_config(config_path)
        shape = supabase_shape(config)
    else:
        target = resolve_target(db_url, config_path)
        config = target.config
        with connected(target) as (_conn, shape):
            pass
    files = [migrations.render_down(config)] if down else migrations.render(config, shape)
    tests = pgtap.render(config, shape) if with_tests else None
    if to_stdout:
        click.echo(migrations.to_stdout(files), nl=False)
        if tests is not None:
            click.echo(f"-- ===== {pgtap.FILE_NAME} =====\n{tests}", nl=False)
        return
    result = migrations.write(directory, files)
    for path in result.written:
        click.echo(f"wrote {path}")
    for path in result.up_to_date:
        click.echo(f"up to date: {path}")
    if tests is not None:
        path, written = pgtap.write(tests_dir, tests)
        click.echo(f"{'wrote' if written else 'up to date:'} {path}")
