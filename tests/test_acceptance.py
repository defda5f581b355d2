"""Issue 2's acceptance: on a database set up from the facts sheet by another script, as postgres,
apply -> verify passes, every signup kind gets a profile, rollback keeps profiles, apply again works."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from psycopg import sql

from conftest import Database, run, scalar
from ghostguard.sandbox import Sandbox
from ghostguard.supabase import authserver
from ghostguard.supabase.authserver import AuthServer

SETUP = Path(__file__).parent / "fixtures" / "facts_literal_setup.sql"


@pytest.fixture
def foreign_db(sandbox: Sandbox, database: Database) -> Iterator[Database]:
    """An empty database (template0) owned by postgres, set up only by the facts-literal script."""
    name = f"{database.name}_facts"
    with psycopg.connect(sandbox.url("template1", "supabase_admin"), autocommit=True) as admin:
        admin.execute(
            sql.SQL("CREATE DATABASE {} OWNER postgres TEMPLATE template0").format(
                sql.Identifier(name)
            )
        )
    with psycopg.connect(sandbox.url(name, "supabase_admin"), autocommit=True) as admin:
        admin.execute(SETUP.read_text())  # type: ignore[call-overload]
    yield Database(
        name,
        sandbox.url(name),
        sandbox.url(name, authserver.AUTH_ROLE),
        sandbox.url(name, "supabase_admin"),
        sandbox,
    )
    sandbox.drop_database(name)


def test_runbook_on_a_database_set_up_by_someone_elses_script(foreign_db: Database) -> None:
    with (
        psycopg.connect(foreign_db.auth_url, autocommit=True) as auth_conn,
        psycopg.connect(foreign_db.url, autocommit=True) as conn,
    ):
        auth = AuthServer(auth_conn)
        early = auth.signup(authserver.email_user("early@example.com", full_name="Early Bird"))

        applied = run("apply", "--yes", "--json", db=foreign_db)
        assert applied.exit_code == 0, applied.output
        report = json.loads(applied.stdout)
        assert (report["ghosts_before"], report["backfilled"]) == (1, 1)
        probe = next(c for c in report["verify"]["checks"] if c["name"] == "registration_probe")
        assert probe["detail"] == (
            "a signup created its profile (rolled back, nothing left behind; absent or not writable, "
            "skipped: audit_log_entries, identities) (ran as postgres with search_path = auth)"
        )
        assert run("verify", db=foreign_db).exit_code == 0

        kinds = {
            "email": authserver.email_user("ada@example.com", full_name="Ada"),
            "phone": authserver.phone_user("15550002222"),
            "anonymous": authserver.anonymous_user(),
            "google": authserver.google_user("g@gmail.example", "Grace", "https://p/g.png"),
            "github": authserver.github_user("l@example.com", "torvalds", "https://a/l.png"),
            "apple": authserver.apple_user(None),
            "sso": authserver.sso_user("ada@example.com"),
        }
        ids = {kind: auth.signup(user) for kind, user in kinds.items()}
        ids["admin"] = auth.admin_create(
            authserver.email_user("boss@example.com"), {"roles": ["staff"]}
        )
        ids["early"] = early
        for kind, user_id in ids.items():
            assert scalar(conn, "SELECT count(*) FROM public.users WHERE id = %s", user_id) == 1, (
                kind
            )
        assert (
            scalar(conn, "SELECT full_name FROM public.users WHERE id = %s", ids["google"])
            == "Grace"
        )

        rolled = run("rollback", "--yes", db=foreign_db)
        assert rolled.exit_code == 0, rolled.output
        assert (
            scalar(conn, "SELECT count(*) FROM pg_trigger WHERE tgname = 'on_auth_user_created'")
            == 0
        )
        assert scalar(conn, "SELECT count(*) FROM public.users") == len(ids)

        again = run("apply", "--yes", db=foreign_db)
        assert again.exit_code == 0, again.output
        assert (
            scalar(conn, "SELECT count(*) FROM pg_trigger WHERE tgname = 'on_auth_user_created'")
            == 1
        )
