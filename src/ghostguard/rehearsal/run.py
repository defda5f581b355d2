"""`ghostguard rehearse`: the guide's "Local Testing (REQUIRED)" step without Docker.

A fresh database in the embedded sandbox (a copy of its Supabase-like template, no server
restart) gets the project's migration files the way the Supabase CLI applies them: in version
order, one transaction per file, each version recorded in
`supabase_migrations.schema_migrations`; then the seed, if any. Then what matters for ghosts:
which triggers on auth.users write the profile table after the last migration (and which
migration dropped one that an earlier one created), and every kind of signup the project's
config.toml enables, through the Auth server's path with the triggers as the migrations left them
(rolled back). It never touches a remote database.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import psycopg

from ghostguard import catalog, initconfig
from ghostguard.adopt import takeover, translate
from ghostguard.adopt.existing import auth_triggers
from ghostguard.catalog import Shape
from ghostguard.checks import signup_kinds
from ghostguard.checks.doctor import doctor, own_objects
from ghostguard.config import Config
from ghostguard.errors import ConfigError
from ghostguard.hooks import adopt as hook_adopt
from ghostguard.hooks import found
from ghostguard.hooks.found import AFTER_USER_CREATED
from ghostguard.rehearsal import after_signup, files, replay
from ghostguard.rehearsal.files import MigrationFile
from ghostguard.rehearsal.locate import Location, dropped_at, made_not_null
from ghostguard.rehearsal.project import Project
from ghostguard.rehearsal.report import Dropped, ProfileTrigger, Rehearsal
from ghostguard.sandbox import Sandbox, cluster_state
from ghostguard.sandbox.server import SUPERUSER
from ghostguard.sources import reads_user_metadata

DATABASE = "ghostguard_rehearsal"
NOT_NULL = re.compile(r'null value in column "([^"]+)"(?: of relation "([^"]+)")?')
METADATA_KEY = re.compile(r"->>\s*'([^']+)'")
# doctor's checks the rehearsal makes itself, with the kinds config.toml enables: not twice.
REHEARSED_HERE = frozenset({"app_trigger_signups", "app_view"})


def _profile_writers(conn: psycopg.Connection, config: Config | None) -> dict[str, ProfileTrigger]:
    found: dict[str, ProfileTrigger] = {}
    for t in auth_triggers(conn, Config().source):
        writes = config is not None and t.writes_profiles(config)
        found[t.name] = ProfileTrigger(t.name, t.function, writes)
    return found


def _history_table(conn: psycopg.Connection) -> None:
    conn.execute(
        "CREATE SCHEMA IF NOT EXISTS supabase_migrations; "
        "CREATE TABLE IF NOT EXISTS supabase_migrations.schema_migrations "
        "(version text PRIMARY KEY, statements text[], name text)"
    )


def _config(conn: psycopg.Connection, given: Config | None) -> tuple[Config | None, str]:
    """The project's ghostguard.toml when there is one, else what init would propose."""
    if given is not None:
        return given, ""
    try:
        return initconfig.propose(conn).config, ""
    except ConfigError as exc:
        return None, exc.message


def rehearse(
    sandbox: Sandbox,
    directory: Path,
    seed: Path | None = None,
    config: Config | None = None,
    accepted: tuple[str, ...] = (),
    legacy_grants: bool = False,
    project: Project | None = None,
    sends: dict[str, dict[str, Any]] | None = None,
) -> Rehearsal:
    """Replay the folder into a fresh sandbox database and judge what signups get.
    `legacy_grants`: the pre-2026 default privileges, for a project created before them.
    `project`: the project's supabase/config.toml (which kinds it enables); None: every kind.
    `sends`: per kind, the user metadata the app sends at signup (default: the config's)."""
    migrations = files.migration_files(directory)
    skipped = files.skipped(directory)
    texts = [files.read(m.path) for m in migrations]  # every input problem before the sandbox
    if seed is not None and not seed.is_file():
        raise ConfigError(f"seed file {seed} not found")
    seed_text = files.read(seed) if seed is not None else None
    sandbox.start()
    with psycopg.connect(sandbox.url("template1", SUPERUSER), autocommit=True) as admin:
        before = cluster_state.read(admin)
        try:
            report = _replay(
                sandbox,
                list(zip(migrations, texts, strict=True)),
                (seed, seed_text) if seed is not None and seed_text is not None else None,
                config,
                accepted,
                legacy_grants,
                project or Project(None),
                sends,
            )
            report.skipped = skipped
            return report
        finally:  # roles and role settings are the cluster's: the next rehearsal starts clean
            cluster_state.restore(admin, before, sandbox.url(DATABASE, SUPERUSER))


def _replay(
    sandbox: Sandbox,
    migrations: list[tuple[MigrationFile, str]],
    seed: tuple[Path, str] | None,
    config: Config | None,
    accepted: tuple[str, ...],
    legacy_grants: bool,
    project: Project,
    sends: dict[str, dict[str, Any]] | None,
) -> Rehearsal:
    url = sandbox.fresh_database(DATABASE, legacy_grants)
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("DROP TABLE public.users")  # the sandbox's demo table, not the project's
        _history_table(conn)
        report = Rehearsal([m for m, _ in migrations], seed is not None, None, accepted=accepted)
        report.project = project
        report.sends = dict(
            sends if sends is not None else (config.rehearse_metadata if config else {})
        )
        writers: dict[str, ProfileTrigger] = {}
        for migration, text in migrations:
            replay.run_file(conn, migration.path, text)
            conn.execute(
                "INSERT INTO supabase_migrations.schema_migrations (version, statements, name) "
                "VALUES (%s, %s, %s)",
                (migration.version, [text], migration.name),
            )
            now = _profile_writers(conn, None)
            report.dropped += [
                Dropped(name, migration.path.name, dropped_at(migration, text, name, t.function))
                for name, t in writers.items()
                if name not in now
            ]
            writers = {name: t for name, t in writers.items() if name in now} | {
                name: t for name, t in now.items() if name not in writers
            }
        if seed is not None:
            conn.execute("RESET ALL")  # what the migrations set for their session ends with them
            replay.run_file(conn, *seed)
            conn.execute("RESET ALL")  # a dump seed's `SET session_replication_role = replica`
        chosen, report.problem = _config(conn, config)
        report.triggers = list(_profile_writers(conn, chosen).values())
        if chosen is not None:
            # Signups as the Auth server makes them: as supabase_auth_admin, which postgres may not
            # become; the platform's connection may (what triggers and hooks are granted counts).
            with psycopg.connect(sandbox.url(DATABASE, SUPERUSER), autocommit=True) as platform:
                _judge_signups(conn, platform, chosen, report)
            report.causes = _causes(migrations, report)
    return report


def _causes(migrations: list[tuple[MigrationFile, str]], report: Rehearsal) -> dict[str, Location]:
    """Each failing kind whose failure is a NOT NULL column: the statement that made it so (the
    migrations are read once per column, however many kinds fail on it)."""
    found: dict[tuple[str, str], Location | None] = {}
    causes: dict[str, Location] = {}
    for kind in report.matrix.kinds if report.matrix else []:
        named = NOT_NULL.search(kind.detail) if not kind.ok else None
        if named is None:
            continue
        column = ((named[2] or report.profile_table or ""), named[1])
        if column not in found:
            found[column] = made_not_null(migrations, *column)
        if (at := found[column]) is not None:
            causes[kind.kind] = at
    return causes


def _judge_signups(
    conn: psycopg.Connection, platform: psycopg.Connection, config: Config, report: Rehearsal
) -> None:
    """Every kind the project enables, then sign-in, delete, the app's view, doctor and what
    adopting the app's trigger would change."""
    report.profile_table = config.target.display
    try:
        shape: Shape | None = catalog.resolve(conn, config)
    except ConfigError as exc:
        # ghostguard's own sync needs a decision first; the app's triggers are judged as they
        # are, which needs no mapping of ours.
        shape = None
        report.proposal = f"ghostguard's proposal needs a decision: {exc.message}"
    as_it_is = shape or catalog.supabase_shape(config)
    judged, report.disabled = report.project.judged()
    configured = [(h.name, h.uri) for h in report.project.hooks()]
    report.hooks = found.every_hook(conn, configured)
    report.matrix = signup_kinds.check(
        platform,
        config,
        as_it_is,
        as_it_is=True,
        judged=judged,
        sends=report.sends,
        confirm_email=bool(report.project.email_confirmations),
        hooks=[h for h in report.hooks if h.configured],  # what config.toml turns on runs
    )
    report.metadata = _hangs_on_metadata(conn, config, report)
    report.lifecycle = after_signup.lifecycle(platform, config, report.matrix)
    _judge(conn, config, shape, report)


def _hangs_on_metadata(conn: psycopg.Connection, config: Config, report: Rehearsal) -> list[str]:
    """Failing kinds whose failure is a NOT NULL profile column the app's trigger fills from
    user metadata: the app may send it at signup (`signUp({options: {data}})`), and the
    rehearsal then passes with it given in ghostguard.toml's [rehearse] metadata."""
    from_metadata: dict[str, list[str]] = {}
    for trigger in auth_triggers(conn, config.source):
        for table, column, expression in translate.written(trigger):
            if table in (config.target.display, config.target.table) and reads_user_metadata(
                expression
            ):
                from_metadata.setdefault(column, []).extend(METADATA_KEY.findall(expression))
    notes: list[str] = []
    for kind in report.matrix.kinds if report.matrix else []:
        named = NOT_NULL.search(kind.detail) if not kind.ok else None
        if named and named[1] in from_metadata:
            keys = ", ".join(dict.fromkeys(from_metadata[named[1]])) or "a key"
            sent = " (given, and still missing)" if kind.kind in report.sends else ""
            notes.append(
                f"{kind.kind}: {config.target.display}.{named[1]} comes from user metadata "
                f"({keys}) that the app may send at signup{sent}: if it always does, give it in "
                f"ghostguard.toml, [rehearse.metadata] {kind.kind} = {{ ... }}"
            )
    return notes


def _judge(
    conn: psycopg.Connection, config: Config, shape: Shape | None, report: Rehearsal
) -> None:
    """The app's view, doctor's errors (doctor needs ghostguard's mapping resolved; checks of
    ghostguard's own objects only once it is installed), and what adopting the app's own
    trigger would change."""
    seen = after_signup.app_view_of_new_users(conn, config)
    report.app_view, report.app_view_passed, report.app_view_fix = (
        seen.detail,
        seen.passed,
        seen.fix,
    )
    if shape is not None:
        installed = takeover.is_ghostguards(conn, config)
        left_out = REHEARSED_HERE if installed else REHEARSED_HERE | own_objects.SYNC_CHECKS
        report.findings = [
            f for f in doctor(conn, config, shape, report.hooks).failing() if f.name not in left_out
        ]
    adopted = translate.adoption(conn, config)
    report.adoption = [*adopted.notes, *(f"TO DECIDE: {d}" for d in adopted.decisions)]
    for hook in report.hooks:
        if hook.hook == AFTER_USER_CREATED and hook.function is not None:
            lines = hook_adopt.mapping_lines(hook.function, config)
            if lines:
                report.adoption.append(
                    f"{hook.display} writes {config.target.display} after the commit: make these "
                    f"profiles in the trigger instead, ghostguard.toml [mapping]: {'; '.join(lines)}"
                )
