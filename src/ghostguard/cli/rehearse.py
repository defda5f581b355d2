"""`ghostguard rehearse`: replay the project's migrations into the sandbox and judge signups."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click
import psycopg
from rich.console import Console
from rich.text import Text

from ghostguard import config as config_mod
from ghostguard.cli import render
from ghostguard.cli.check import accept_failing_option_for
from ghostguard.cli.common import Output, exit_code, finish, output_options, stdout_console
from ghostguard.cli.sandbox import data_dir_option
from ghostguard.config import DEFAULT_CONFIG_FILE, Config
from ghostguard.errors import ConfigError, ExitCode, GhostguardError
from ghostguard.formats import Location, collect
from ghostguard.kinds import NAMES
from ghostguard.rehearsal import ReplayFailed, project, rehearse
from ghostguard.rehearsal.after_signup import APP_VIEW, LIFECYCLE
from ghostguard.rehearsal.report import Rehearsal, failed_run
from ghostguard.runner import primary_message
from ghostguard.sandbox import Sandbox

accept_failing_option = accept_failing_option_for(
    (*NAMES, *LIFECYCLE, APP_VIEW),
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
    type=click.Path(path_type=Path),
    help="PostgreSQL bin directory for the sandbox (e.g. $(pg_config --bindir)): another major "
    "version, or the real pgcrypto and uuid-ossp instead of the embedded server's stand-ins.",
)
@click.option(
    "--legacy-grants",
    is_flag=True,
    help="Rehearse with the default privileges hosted projects had before 2026 (new public "
    "tables granted to anon, authenticated and service_role), for a project created then.",
)
@click.option(
    "--supabase-config",
    "supabase_config",
    type=click.Path(path_type=Path, dir_okay=False),
    help="The project's config.toml: the signup kinds it enables are judged, the others listed "
    "as disabled (default: config.toml beside the migrations folder, when there is one).",
)
@click.option(
    "--every-kind",
    is_flag=True,
    help="Judge every signup kind, without reading config.toml.",
)
@accept_failing_option
@output_options
def rehearse_cmd(
    directory: Path,
    seed: Path | None,
    config_path: Path | None,
    data_dir: Path | None,
    pg_bin: Path | None,
    legacy_grants: bool,
    supabase_config: Path | None,
    every_kind: bool,
    accept_failing: tuple[str, ...],
    output: Output,
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

    The project's supabase/config.toml (beside the migrations folder, or --supabase-config) says
    which signup kinds it enables: those are judged, the others listed as disabled; without one,
    every kind. What the app sends at signup goes in ghostguard.toml's [rehearse.metadata].

    Exit 0 when every signup kind ends with a profile its user can read, sign-in and delete
    work and doctor finds no error; 1 when not (or no profile table was found); 2 when a
    migration fails (the file, line, statement and error, in one line) or the input is unusable
    (a file that is not UTF-8, two files with one version). With --json a JSON document is
    printed on every exit code: on 2 its `error` holds file, line, statement and error. So is
    every other --format: SARIF, annotations and JUnit locate a failure in the migration file
    and line that caused it (the one that dropped the trigger, made the column NOT NULL, failed).
    """
    try:
        if pg_bin is not None and not (pg_bin / "postgres").is_file():
            raise ConfigError(
                f"--pg-bin {pg_bin}: no postgres binary there; pass the bin directory of a "
                "PostgreSQL installation, e.g. $(pg_config --bindir)"
            )
        config, sends = _ghostguard_toml(config_path)
        found = None if every_kind else (supabase_config or project.beside(directory))
        report = rehearse(
            Sandbox(data_dir, pg_bin),
            directory,
            seed,
            config,
            accept_failing,
            legacy_grants,
            project.load(found),
            sends,
        )
    except GhostguardError as exc:  # CI uploads the file whatever happened: say why, and where
        details = exc.details if isinstance(exc, ReplayFailed) else {}
        _emit_failed(output, exc.message, details, int(exc.exit_code))
        raise
    except psycopg.Error as exc:  # the sandbox itself failed: still a document
        _emit_failed(output, f"database error: {primary_message(exc)}", {}, int(ExitCode.ERROR))
        raise
    if output.text:
        _render(report, accept_failing)
    outcomes = collect.from_rehearsal(report)
    anchor = Location.of(report.migrations[-1].path) if report.migrations else None
    output.emit("rehearse", report.to_dict(), outcomes, exit_code(report.passed), anchor)
    finish(report.passed)


def _emit_failed(output: Output, message: str, details: dict[str, Any], code: int) -> None:
    outcomes = collect.from_failed_run(message, details)
    output.emit("rehearse", failed_run(message, details), outcomes, code)


def _ghostguard_toml(path: Path | None) -> tuple[Config | None, dict[str, dict[str, object]]]:
    """(the config, the metadata the app sends): a ghostguard.toml without [target] only says
    what the app sends ([rehearse]); the profile table is then found as init would."""
    path = path or (Path(DEFAULT_CONFIG_FILE) if Path(DEFAULT_CONFIG_FILE).exists() else None)
    if path is None:
        return None, {}
    loaded = config_mod.load(path)
    if "target" not in config_mod.sections(path):
        return None, loaded.rehearse_metadata
    return loaded, loaded.rehearse_metadata


def _render(report: Rehearsal, accepted: tuple[str, ...]) -> None:
    console = stdout_console()
    console.print(
        f"rehearsed {len(report.migrations)} migration(s)"
        + (" and the seed" if report.seeded else "")
        + f" in the sandbox; profile table: {report.profile_table or 'none found'}",
        markup=False,
    )
    if report.skipped:
        console.print(
            Text(
                f"skipped (the Supabase CLI skips them too: names must be <version>_<name>.sql): "
                f"{', '.join(report.skipped)}",
                style="yellow",
            )
        )
    for t in report.triggers:
        what = "writes the profile table" if t.writes_profiles else "does not write profiles"
        console.print(f"trigger {t.name} on auth.users: calls {t.function}, {what}", markup=False)
    if not any(t.writes_profiles for t in report.triggers):
        console.print(Text("no trigger on auth.users writes the profile table", style="bold red"))
    for dropped in report.dropped:
        console.print(
            Text(
                f"trigger {dropped.trigger} was dropped by {dropped.by} (line {dropped.at.line})",
                style="bold yellow",
            )
        )
    if report.problem:
        console.print(Text(report.problem, style="bold red"))
    _render_project(console, report)
    if report.matrix is not None:
        render.check(console, report.matrix, accepted)
    for note in report.metadata:
        console.print(Text(f"metadata: {note}", style="yellow"))
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
        console.print(Text(f"doctor error: {finding.name}: {finding.detail}", style="bold red"))
    for line in report.adoption:
        console.print(f"adoption: {line}", markup=False)
    failing = report.failing
    if failing:
        console.print(
            Text(f"signups that end without a profile: {', '.join(failing)}", style="bold red")
        )
    elif report.passed:
        console.print(Text("every kind of signup ends with a profile", style="bold green"))


def _render_project(console: Console, report: Rehearsal) -> None:
    """What the project's config.toml says: the kinds it leaves off, confirmation, hooks."""
    known = report.project
    if not known.read:
        console.print("no supabase/config.toml: every signup kind is judged", markup=False)
        return
    confirm = "on" if known.email_confirmations else "off"
    console.print(f"{known.path}: email confirmation {confirm}", markup=False)
    if report.disabled:
        console.print(f"disabled in config: {', '.join(report.disabled)}", markup=False)
        console.print(
            "  (SAML SSO is set up outside config.toml; --every-kind judges every kind)",
            markup=False,
        )
    for hook in known.hooks():
        console.print(f"auth hook {hook.name}: {hook.uri}", markup=False)
