"""verify's registration probe: a real Auth-server-style signup inside a transaction that is rolled back."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

import psycopg
from psycopg import sql

from ghostguard.config import Config
from ghostguard.runner import primary_message
from ghostguard.supabase import authserver
from ghostguard.sync import failures as sync_failures

# The columns the Auth server writes; a source table without them is not Supabase's auth.users.
AUTH_COLUMNS = {
    "instance_id",
    "aud",
    "role",
    "raw_app_meta_data",
    "raw_user_meta_data",
    "is_sso_user",
}


@dataclass(frozen=True)
class ProbeResult:
    passed: bool
    applicable: bool
    ran_as: str  # "supabase_auth_admin" or "<role> with search_path = auth"
    detail: str


def can_become_auth_server(conn: psycopg.Connection) -> bool:
    row = conn.execute(
        "SELECT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = %s) "
        "AND pg_has_role(current_user, %s, 'MEMBER')",
        (authserver.AUTH_ROLE, authserver.AUTH_ROLE),
    ).fetchone()
    if not (row and row[0]):
        return False
    try:
        with conn.transaction():
            conn.execute(sql.SQL("SET LOCAL ROLE {}").format(sql.Identifier(authserver.AUTH_ROLE)))
    except psycopg.errors.InsufficientPrivilege:
        return False
    return True


def registration_probe(
    conn: psycopg.Connection, config: Config, source_columns: set[str]
) -> ProbeResult:
    """Sign a throwaway user up the Auth server's way, look for its profile, roll everything back."""
    me = conn.execute("SELECT current_user").fetchone()
    role = str(me[0]) if me else "?"
    if config.source.display != "auth.users" or not AUTH_COLUMNS <= source_columns:
        return ProbeResult(
            True, False, role, "not applicable: the source is not Supabase's auth.users"
        )
    as_auth = can_become_auth_server(conn)
    ran_as = authserver.AUTH_ROLE if as_auth else f"{role} with search_path = auth"
    user = authserver.email_user(
        f"ghostguard-probe-{uuid.uuid4().hex[:12]}@probe.invalid", full_name="ghostguard probe"
    )
    with conn.transaction(force_rollback=True):
        try:
            if as_auth:
                conn.execute(
                    sql.SQL("SET LOCAL ROLE {}").format(sql.Identifier(authserver.AUTH_ROLE))
                )
            writer = authserver.AuthServer(conn)
            writer.signup(user)
        except psycopg.Error as exc:
            return ProbeResult(
                False,
                True,
                ran_as,
                f"signup failed as the Auth server would see it: {primary_message(exc)}",
            )
        finally:
            if not conn.broken:
                conn.execute("RESET ROLE")
        found = conn.execute(
            sql.SQL("SELECT count(*) FROM {} WHERE {} = %s").format(
                sql.Identifier(config.target.schema, config.target.table),
                sql.Identifier(config.target.key),
            ),
            (user.id,),
        ).fetchone()
        recorded = None if found and found[0] >= 1 else _recorded_failure(conn, config, user.id)
    if recorded is not None:
        return ProbeResult(
            False,
            True,
            ran_as,
            f"signup succeeded, but its profile write failed (recorded in "
            f"{config.failures.display}, not raised): {recorded}",
        )
    if not found or found[0] < 1:
        return ProbeResult(
            False, True, ran_as, f"signup succeeded but no {config.target.display} row appeared"
        )
    skipped = (
        f"; absent or not writable, skipped: {', '.join(sorted(writer.skipped))}"
        if writer.skipped
        else ""
    )
    return ProbeResult(
        True,
        True,
        ran_as,
        f"a signup created its profile (rolled back, nothing left behind{skipped})",
    )


def _recorded_failure(conn: psycopg.Connection, config: Config, user_id: uuid.UUID) -> str | None:
    """The failure the trigger recorded for the probe user, if any (read before the rollback)."""
    if not sync_failures.failures_table_exists(conn, config):
        return None
    row = conn.execute(
        sync_failures.failure_of_user(config).statement, {"user": str(user_id)}
    ).fetchone()
    return None if row is None else f"{row[2]} (SQLSTATE {row[0]})"
