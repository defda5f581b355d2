"""`ghostguard rehearse`: the guide's "Local Testing (REQUIRED)" step without Docker.

A fresh database in the embedded sandbox (a copy of its Supabase-like template, no server
restart) gets the project's migration files the way the Supabase CLI applies them: in version
order, one transaction per file, each version recorded in
`supabase_migrations.schema_migrations`; then the seed, if any. Then what matters for ghosts:
which triggers on auth.users write the profile table after the last migration (and which
migration dropped one that an earlier one created), and every kind of signup through the
Auth server's path with the triggers as the migrations left them (rolled back). It never touches
a remote database.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pgparse
import psycopg
from psycopg import errors

from ghostguard import catalog, initconfig
from ghostguard.adopt import translate
from ghostguard.adopt.existing import auth_triggers
from ghostguard.catalog import Shape
from ghostguard.checks import signup_kinds
from ghostguard.checks.doctor import doctor
from ghostguard.checks.signup_kinds import CheckReport
from ghostguard.config import Config
from ghostguard.errors import ConfigError, GhostguardError
from ghostguard.runner import primary_message
from ghostguard.sandbox import Sandbox, cluster_state, standins
from ghostguard.sandbox.server import SUPERUSER
from ghostguard.sqlparts import verbatim
from ghostguard.supabase import after_signup
from ghostguard.supabase.after_signup import APP_VIEW, LifecycleResult

DATABASE = "ghostguard_rehearsal"
FILE_NAME = re.compile(r"^(\d+)_(.+)\.sql$")
# Errors that mean something the migrations expect is not there: an object made outside them (in
# the dashboard, or by a hosted service), or an extension this server was built without.
MISSING_OBJECT = (
    errors.UndefinedTable,
    errors.UndefinedObject,
    errors.UndefinedFunction,
    errors.InvalidSchemaName,
)
MISSING_EXTENSION = (errors.FeatureNotSupported, errors.UndefinedFile)
EXTENSION_NAME = re.compile(r'extension "([^"]+)"')
FILE_TRANSACTION = {"TRANS_STMT_BEGIN", "TRANS_STMT_START", "TRANS_STMT_COMMIT"}


class ReplayFailed(GhostguardError):
    """A migration (or the seed) failed: the file, the statement and the error, in one line."""


@dataclass(frozen=True)
class MigrationFile:
    path: Path
    version: str
    name: str


@dataclass(frozen=True)
class ProfileTrigger:
    name: str
    function: str
    writes_profiles: bool


@dataclass
class Rehearsal:
    migrations: list[MigrationFile]
    seeded: bool
    profile_table: str | None
    triggers: list[ProfileTrigger] = field(default_factory=list[ProfileTrigger])
    dropped: list[tuple[str, str]] = field(default_factory=list[tuple[str, str]])  # (trigger, file)
    matrix: CheckReport | None = None
    lifecycle: list[LifecycleResult] = field(default_factory=list[LifecycleResult])
    accepted: tuple[str, ...] = ()
    problem: str = ""  # why the matrix could not run (no profile table, a config error)
    app_view: str = ""  # what signed-in users can read of their profile (the Data API)
    app_view_passed: bool = True  # every new user can read their own profile (or not applicable)
    app_view_fix: str = ""
    findings: list[str] = field(default_factory=list[str])  # doctor's failing errors
    proposal: str = ""  # why ghostguard's own mapping for the table needs a decision first
    adoption: list[str] = field(default_factory=list[str])  # what adopting the app's trigger does

    @property
    def failing(self) -> list[str]:
        """Signup kinds that end without a profile (every kind counts: a project supports them
        all until it says otherwise with --accept-failing)."""
        if self.matrix is None:
            return []
        failed = [k.kind for k in self.matrix.kinds if not k.ok]
        failed += [e.event for e in self.lifecycle if e.ok is False]
        failed += [] if self.app_view_passed else [APP_VIEW]
        return [name for name in failed if name not in self.accepted]

    @property
    def passed(self) -> bool:
        return self.matrix is not None and self.matrix.applicable and not self.failing

    def to_dict(self) -> dict[str, Any]:
        return {
            "migrations": [f"{m.version}_{m.name}" for m in self.migrations],
            "seeded": self.seeded,
            "profile_table": self.profile_table,
            "triggers": [vars(t) for t in self.triggers],
            "dropped": [{"trigger": t, "by": f} for t, f in self.dropped],
            "kinds": self.matrix.to_dict()["kinds"] if self.matrix else [],
            "lifecycle": [vars(e) for e in self.lifecycle],
            "failing": self.failing,
            "problem": self.problem,
            "app_view": self.app_view,
            "app_view_fix": self.app_view_fix,
            "doctor_errors": self.findings,
            "proposal": self.proposal,
            "adoption": self.adoption,
            "passed": self.passed,
        }


def migration_files(directory: Path) -> list[MigrationFile]:
    """`<version>_<name>.sql` files in version order, as the Supabase CLI reads them."""
    if not directory.is_dir():
        raise ConfigError(f"migrations directory {directory} not found: pass --migrations DIR")
    found = [
        MigrationFile(path, match[1], match[2])
        for path in directory.iterdir()
        if path.is_file() and (match := FILE_NAME.match(path.name))
    ]
    return sorted(found, key=lambda m: (int(m.version), m.name))


def _statement_at(text: str, position: int) -> str:
    """In a file the parser could not split: the statement around `position` (1-based)."""
    if position:
        start = text.rfind(";", 0, position - 1) + 1
        end = text.find(";", position - 1)
        text = text[start : end if end >= 0 else len(text)]
    return _shown(text)


def _statements(text: str) -> list[str]:
    """The file's statements as the server's parser splits them (the whole text when it does not
    parse: the server then reports the syntax error with its position), less the BEGIN and
    COMMIT that dumps and hand-written files carry: the CLI runs a file as one batch, where they
    only open and close the transaction the file runs in anyway."""
    try:
        parsed = pgparse.parse(text)
    except pgparse.PGQueryError:
        return [text]
    encoded = text.encode()  # the parser's locations count UTF-8 bytes, not characters
    found: list[str] = []
    for item in parsed:
        if item["stmt"].get("TransactionStmt", {}).get("kind") in FILE_TRANSACTION:
            continue  # the file's own BEGIN/COMMIT: it already runs in one transaction
        start = int(item.get("stmt_location", 0))
        length = int(item.get("stmt_len", 0)) or len(encoded) - start
        found.append(encoded[start : start + length].decode())
    return found or [text]


def _shown(statement: str) -> str:
    """A statement on one line without its comments, shortened."""
    lines = [line.split("--", 1)[0] for line in statement.strip().splitlines()]
    flat = " ".join(" ".join(lines).split()).rstrip(";").strip()
    return flat if len(flat) <= 90 else flat[:87] + "..."


def _meaning(exc: psycopg.Error) -> str:
    """What a migration's error means for a rehearsal, and the way out, as the end of its line."""
    if isinstance(exc, MISSING_EXTENSION):
        named = EXTENSION_NAME.search(primary_message(exc))
        if named and named[1] in standins.names():
            return (
                "; this server has no stand-in for it (PostgreSQL 18 and later do): rehearse "
                "on the embedded server, without --pg-bin"
            )
        return (
            "; this PostgreSQL was built without it: rehearse with --pg-bin of a server that has "
            "it (e.g. $(pg_config --bindir))"
        )
    if isinstance(exc, errors.InsufficientPrivilege) and "must be owner of" in str(exc):
        return (
            "; hosted projects refuse it too: the table belongs to Supabase (on storage's tables "
            "postgres may write policies and nothing else; RLS is already on)"
        )
    if isinstance(exc, errors.ForeignKeyViolation):
        return (
            "; the row needs one no migration creates (a user made in the dashboard?): a fresh "
            "`supabase db reset` fails here too; move such rows to the seed, after what they need"
        )
    if isinstance(exc, MISSING_OBJECT):
        return (
            "; not in the sandbox: an object created outside these migrations (in the "
            "dashboard, or by a hosted service the sandbox does not reproduce)"
        )
    return ""


def _run_file(conn: psycopg.Connection, path: Path, text: str) -> None:
    """One transaction for the file, as the Supabase CLI does; statement by statement, so a
    failure names its statement."""
    statement = text
    try:
        with conn.transaction():
            for statement in _statements(text):
                conn.execute(verbatim(statement))  # the project's own SQL, as `db push` runs it
    except psycopg.Error as exc:
        position = int(exc.diag.statement_position or 0) if exc.diag else 0
        shown = _statement_at(statement, position) if statement is text else _shown(statement)
        raise ReplayFailed(
            f"{path.name}: {shown!r}: {primary_message(exc)}{_meaning(exc)}"
        ) from None


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
) -> Rehearsal:
    """Replay the folder into a fresh sandbox database and judge what signups get.
    `legacy_grants`: the pre-2026 default privileges, for a project created before them."""
    files = migration_files(directory)
    if seed is not None and not seed.is_file():
        raise ConfigError(f"seed file {seed} not found")
    sandbox.start()
    with psycopg.connect(sandbox.url("template1", SUPERUSER), autocommit=True) as admin:
        before = cluster_state.read(admin)
        try:
            return _replay(sandbox, files, seed, config, accepted, legacy_grants)
        finally:  # roles and role settings are the cluster's: the next rehearsal starts clean
            cluster_state.restore(admin, before, sandbox.url(DATABASE, SUPERUSER))


def _replay(
    sandbox: Sandbox,
    files: list[MigrationFile],
    seed: Path | None,
    config: Config | None,
    accepted: tuple[str, ...],
    legacy_grants: bool,
) -> Rehearsal:
    url = sandbox.fresh_database(DATABASE, legacy_grants)
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("DROP TABLE public.users")  # the sandbox's demo table, not the project's
        _history_table(conn)
        report = Rehearsal(files, seed is not None, None, accepted=accepted)
        writers: dict[str, ProfileTrigger] = {}
        for migration in files:
            text = migration.path.read_text(encoding="utf-8")
            _run_file(conn, migration.path, text)
            conn.execute(
                "INSERT INTO supabase_migrations.schema_migrations (version, statements, name) "
                "VALUES (%s, %s, %s)",
                (migration.version, [text], migration.name),
            )
            now = _profile_writers(conn, None)
            report.dropped += [(name, migration.path.name) for name in writers if name not in now]
            writers = {name: t for name, t in writers.items() if name in now} | {
                name: t for name, t in now.items() if name not in writers
            }
        if seed is not None:
            _run_file(conn, seed, seed.read_text(encoding="utf-8"))
        chosen, report.problem = _config(conn, config)
        report.triggers = list(_profile_writers(conn, chosen).values())
        if chosen is not None:
            report.profile_table = chosen.target.display
            try:
                shape: Shape | None = catalog.resolve(conn, chosen)
            except ConfigError as exc:
                # ghostguard's own sync needs a decision first; the app's triggers are judged as
                # they are, which needs no mapping of ours.
                shape = None
                report.proposal = f"ghostguard's proposal needs a decision: {exc.message}"
            as_it_is = shape or catalog.supabase_shape(chosen)
            report.matrix = signup_kinds.check(conn, chosen, as_it_is, as_it_is=True)
            report.lifecycle = after_signup.lifecycle(conn, chosen, report.matrix)
            _judge(conn, chosen, shape, report)
    return report


def _judge(
    conn: psycopg.Connection, config: Config, shape: Shape | None, report: Rehearsal
) -> None:
    """The app's view, doctor's errors (doctor needs ghostguard's mapping resolved), and what
    adopting the app's own trigger would change."""
    seen = after_signup.app_view_of_new_users(conn, config)
    report.app_view, report.app_view_passed, report.app_view_fix = (
        seen.detail,
        seen.passed,
        seen.fix,
    )
    if shape is not None:
        report.findings = [f"{f.name}: {f.detail}" for f in doctor(conn, config, shape).failing()]
    adopted = translate.adoption(conn, config)
    report.adoption = [*adopted.notes, *(f"TO DECIDE: {d}" for d in adopted.decisions)]
