"""`ghostguard rehearse`: replay the project's migrations into the sandbox and judge signups."""

from __future__ import annotations

from pathlib import Path

import click
from rich.text import Text

from ghostguard.checks.signup_kinds import KINDS
from ghostguard.cli import render
from ghostguard.cli.check import accept_failing_option_for
from ghostguard.cli.common import finish, json_option, load_config, print_json, stdout_console
from ghostguard.cli.sandbox import data_dir_option
from ghostguard.config import DEFAULT_CONFIG_FILE
from ghostguard.sandbox import Sandbox
from ghostguard.supabase import rehearse as rehearse_mod
from ghostguard.supabase.after_signup import APP_VIEW, LIFECYCLE
from ghostguard.supabase.rehearse import Rehearsal

accept_failing_option = accept_failing_option_for(
    (*KINDS, *LIFECYCLE, APP_VIEW),
    "Signup kinds, the sign_in and delete that follow one, and app_view (new users reading their "
    "own profile) that may fail without failing the rehearsal (e.g. a project without phone "
    "signups)",
)


@click.command("rehearse")
@click.option(
    "--migrations",
    "directory",
    type=click.Path(path_type=Path, file_okay=False),
    default=Path("supabase/migrations"),
    show_default=True,
    help="The project's migrations folder (<version>_<name>.sql files).",
)
@click.option(
    "--seed",
    type=click.Path(path_type=Path, dir_okay=False),
    help="A seed file to run after the migrations (e.g. supabase/seed.sql).",
)
@click.option(
    "--config",
    "config_path",
    type=click.Path(path_type=Path, dir_okay=False),
    help=f"ghostguard.toml (default: ./{DEFAULT_CONFIG_FILE} if present, else what init proposes).",
)
@data_dir_option
@click.option(
    "--pg-bin",
    type=click.Path(path_type=Path, file_okay=False, exists=True),
    help="PostgreSQL bin directory for the sandbox (e.g. $(pg_config --bindir)): another major "
    "version, or the real pgcrypto and uuid-ossp instead of the embedded server's stand-ins.",
)
@click.option(
    "--legacy-grants",
    is_flag=True,
    help="Rehearse with the default privileges hosted projects had before 2026 (new public "
    "tables granted to anon, authenticated and service_role), for a project created then.",
)
@accept_failing_option
@json_option
def rehearse_cmd(
    directory: Path,
    seed: Path | None,
    config_path: Path | None,
    data_dir: Path | None,
    pg_bin: Path | None,
    legacy_grants: bool,
    accept_failing: tuple[str, ...],
    as_json: bool,
) -> None:
    """Rehearse the migrations locally, without Docker, and check that every signup gets a profile.

    A fresh database in the embedded sandbox gets the folder's migrations the way the Supabase CLI
    applies them (version order, one transaction per file, recorded in
    supabase_migrations.schema_migrations), then --seed. Then: the triggers on auth.users and
    which write the profile table, any trigger a later migration dropped, and every kind of
    signup through the Auth server's path, then a sign-in and a delete of a user who signed up,
    and new users reading their own profile as the Data API runs it (all rolled back). A file's
    own BEGIN and COMMIT are dropped: the file already runs in one transaction. Never touches a
    remote database.

    Exit 0 when every signup kind ends with a profile its user can read and sign-in and delete
    work; 1 when one does not (or no profile table was found); 2 when a migration fails (the
    file, the statement and the error, in one line).
    """
    config = load_config(config_path) if config_path or Path(DEFAULT_CONFIG_FILE).exists() else None
    report = rehearse_mod.rehearse(
        Sandbox(data_dir, pg_bin), directory, seed, config, accept_failing, legacy_grants
    )
    if as_json:
        print_json(report.to_dict())
    else:
        _render(report, accept_failing)
    finish(report.passed)


def _render(report: Rehearsal, accepted: tuple[str, ...]) -> None:
    console = stdout_console()
    console.print(
        f"rehearsed {len(report.migrations)} migration(s)"
        + (" and the seed" if report.seeded else "")
        + f" in the sandbox; profile table: {report.profile_table or 'none found'}",
        markup=False,
    )
    for t in report.triggers:
        what = "writes the profile table" if t.writes_profiles else "does not write profiles"
        console.print(f"trigger {t.name} on auth.users: calls {t.function}, {what}", markup=False)
    if not any(t.writes_profiles for t in report.triggers):
        console.print(Text("no trigger on auth.users writes the profile table", style="bold red"))
    for trigger, by in report.dropped:
        console.print(Text(f"trigger {trigger} was dropped by {by}", style="bold yellow"))
    if report.problem:
        console.print(Text(report.problem, style="bold red"))
    if report.matrix is not None:
        render.check(console, report.matrix, accepted)
    for event in report.lifecycle:
        verdict = {True: "ok", False: "FAILS", None: "-"}[event.ok]
        line = f"{event.event}: {verdict}" + (f" ({event.detail})" if event.detail else "")
        console.print(Text(line, style="bold red" if event.ok is False else ""))
    if report.app_view:
        style = "" if report.app_view_passed else "bold red"
        console.print(Text(f"the app's view (Data API): {report.app_view}", style=style))
    if report.app_view_fix:
        console.print(f"  fix: {report.app_view_fix}", markup=False)
    if report.proposal:
        console.print(Text(report.proposal, style="yellow"))
    for finding in report.findings:
        console.print(Text(f"doctor: {finding}", style="yellow"))
    for line in report.adoption:
        console.print(f"adoption: {line}", markup=False)
    failing = report.failing
    if failing:
        console.print(
            Text(f"signups that end without a profile: {', '.join(failing)}", style="bold red")
        )
    elif report.passed:
        console.print(Text("every kind of signup ends with a profile", style="bold green"))
