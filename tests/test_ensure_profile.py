"""The app-side fallback: `ensure_profile()`, called through the Data API by a signed-in user,
creates that user's own missing profile from the same mapping as the trigger, counts it as healed
on read, and does nothing for anon, nor for claims that name no live session of their user."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import psycopg
import pytest

from conftest import Database, run, scalar
from ghostguard.supabase import authserver
from ghostguard.supabase.authserver import AuthServer
from monitoring import running_monitor, wait_for

CONFIG = "[app]\nensure_profile = true\n"


def _session(admin: psycopg.Connection, user_id: uuid.UUID) -> uuid.UUID:
    session = uuid.uuid4()
    admin.execute(
        "INSERT INTO auth.sessions (id, user_id, created_at, updated_at, aal) "
        "VALUES (%s, %s, now(), now(), 'aal1')",
        (session, user_id),
    )
    return session


def _as_data_api(conn: psycopg.Connection, role: str, claims: dict[str, str]) -> object:
    """`supabase.rpc('ensure_profile')` as PostgREST runs it: the role and the JWT's claims."""
    with conn.transaction():
        conn.execute("SELECT set_config('request.jwt.claims', %s, true)", (json.dumps(claims),))
        conn.execute(psycopg.sql.SQL("SET LOCAL ROLE {}").format(psycopg.sql.Identifier(role)))
        row = conn.execute("SELECT public.ensure_profile()").fetchone()
    return row[0] if row else None


def test_a_ghost_heals_itself_on_first_read_and_nobody_else_can(
    database: Database, conn: psycopg.Connection, admin: psycopg.Connection, auth: AuthServer,
    tmp_path: Path,
) -> None:  # fmt: skip
    (tmp_path / "ghostguard.toml").write_text(CONFIG)
    assert (
        run("apply", "--yes", "--config", str(tmp_path / "ghostguard.toml"), db=database).exit_code
        == 0
    )
    ghost = auth.signup(authserver.email_user("ghost@x.invalid", full_name="Gone Ghost"))
    other = auth.signup(authserver.email_user("other@x.invalid", full_name="Other One"))
    conn.execute("DELETE FROM public.users WHERE id = ANY(%s)", ([ghost, other],))
    mine = _session(admin, ghost)
    claims = {"sub": str(ghost), "role": "authenticated", "session_id": str(mine)}

    assert _as_data_api(conn, "authenticated", claims) is True
    assert scalar(conn, "SELECT full_name FROM public.users WHERE id = %s", ghost) == "Gone Ghost"
    assert scalar(conn, "SELECT email FROM public.users WHERE id = %s", ghost) == "ghost@x.invalid"
    assert _as_data_api(conn, "authenticated", claims) is False  # idempotent
    healed = conn.execute(
        "SELECT status, details ->> 'user_id' FROM public.cleanup_audit_log "
        "WHERE job_name = 'ensure_profile'"
    ).fetchall()
    assert healed == [("healed_on_read", str(ghost))]
    with running_monitor(database.url, interval=0.2, full_every=1.0) as mon:  # the gauge counts it
        wait_for(lambda: mon.metric("ghostguard_healed_on_read"), lambda v: v == 1)

    forged = {"sub": str(other), "role": "authenticated", "session_id": str(mine)}
    with pytest.raises(psycopg.errors.InsufficientPrivilege, match="only a signed-in user"):
        _as_data_api(conn, "authenticated", forged)
    with pytest.raises(
        psycopg.errors.InsufficientPrivilege, match="permission denied for function"
    ):
        _as_data_api(conn, "anon", {"role": "anon"})
    assert scalar(conn, "SELECT count(*) FROM public.users WHERE id = %s", other) == 0

    assert (
        run(
            "rollback", "--yes", "--config", str(tmp_path / "ghostguard.toml"), db=database
        ).exit_code
        == 0
    )
    assert scalar(conn, "SELECT to_regprocedure('public.ensure_profile()') IS NULL") is True


def test_the_migration_file_installs_it_when_the_config_asks(
    database: Database, tmp_path: Path
) -> None:
    default = run("migrations", "--stdout", "--dir", str(tmp_path / "plain"), db=database)
    assert default.exit_code == 0, default.output
    assert "ensure_profile" not in default.stdout
    config = tmp_path / "asked.toml"  # not ./ghostguard.toml: the default run reads that one
    config.write_text(CONFIG)
    asked = run(
        "migrations", "--stdout", "--config", str(config), "--dir", str(tmp_path / "asked"),
        db=database,
    )  # fmt: skip
    assert asked.exit_code == 0, asked.output
    assert 'CREATE OR REPLACE FUNCTION "public"."ensure_profile"()' in asked.stdout
    assert 'GRANT EXECUTE ON FUNCTION "public"."ensure_profile"() TO authenticated' in asked.stdout
