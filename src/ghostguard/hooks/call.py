"""Calling a hook the way the Auth server does: as supabase_auth_admin, inside a transaction with
`statement_timeout` at the hook timeout, `SELECT <schema>.<function>($1)` with the event as jsonb,
then reading the jsonb it returns (supabase/auth internal/hooks/hookspgfunc). A returned
`{"error": {"http_code", "message"}}` with a message is the hook's refusal; for the custom access
token hook every required claim must be in the returned `claims` or the token is refused."""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass
from typing import Any, cast

import psycopg
from psycopg import sql
from psycopg.types.json import Jsonb

from ghostguard.checks.probe import can_become_auth_server
from ghostguard.hooks.found import AuthHook
from ghostguard.runner import primary_message
from ghostguard.supabase.authserver import AUTH_ROLE

HOOK_TIMEOUT = "2s"  # GOTRUE_HOOK timeout default
REQUIRED_CLAIMS = (
    "iss", "aud", "exp", "iat", "sub", "role", "aal", "session_id", "email", "phone",
    "is_anonymous",
)  # fmt: skip
OK, ERROR, MISSING, REJECTED = "ok", "error", "claims missing", "rejected"
NOT_RUN = "not run"  # the user it needs could not be made (the matrix says why)


@dataclass(frozen=True)
class HookCall:
    hook: str
    verdict: str  # OK, ERROR, MISSING or REJECTED (a well-formed refusal)
    detail: str = ""

    @property
    def ok(self) -> bool:
        return self.verdict in (OK, REJECTED, NOT_RUN)

    def describe(self) -> str:
        return self.verdict + (f": {self.detail}" if self.detail else "")


class HookRefused(Exception):
    """A before-user-created hook refused the signup (well formed): the Auth server answers with
    the hook's message and creates nobody."""


def _metadata(name: str) -> dict[str, Any]:
    return {"uuid": str(uuid.uuid4()), "time": time.strftime("%Y-%m-%dT%H:%M:%SZ"), "name": name,
            "ip_address": "127.0.0.1"}  # fmt: skip


def _object(value: object) -> dict[str, Any] | None:
    """A JSON object as a dict (None for anything else)."""
    return cast(dict[str, Any], value) if isinstance(value, dict) else None


def _run(conn: psycopg.Connection, hook: AuthHook, event: dict[str, Any]) -> object:
    """The hook's output (parsed jsonb), in a savepoint; its errors propagate."""
    assert hook.function is not None
    with conn.transaction():
        conn.execute("SELECT pg_catalog.set_config('statement_timeout', %s, true)", (HOOK_TIMEOUT,))
        row = conn.execute(
            sql.SQL("SELECT {}(%s)").format(
                sql.Identifier(hook.function.schema, hook.function.name)
            ),
            (Jsonb(event),),
        ).fetchone()
        conn.execute("SELECT pg_catalog.set_config('statement_timeout', '0', true)")
    return row[0] if row else None


def _refusal(output: object) -> str | None:
    error = _object((_object(output) or {}).get("error"))
    message = str(error.get("message") or "") if error else ""
    return message or None


def access_token(conn: psycopg.Connection, hook: AuthHook, user_id: uuid.UUID) -> HookCall:
    """The custom access token hook for a user who just signed in (password method)."""
    if hook.function is None:
        return HookCall(hook.hook, ERROR, f"{hook.uri} is not a function this database has")
    row = conn.execute(
        "SELECT email, phone, raw_app_meta_data, raw_user_meta_data, is_anonymous "
        "FROM auth.users WHERE id = %s",
        (user_id,),
    ).fetchone()
    if row is None:
        return HookCall(hook.hook, ERROR, "the user is gone")
    now = int(time.time())
    claims: dict[str, Any] = {
        "iss": "http://127.0.0.1:54321/auth/v1", "aud": "authenticated", "exp": now + 3600,
        "iat": now, "sub": str(user_id), "email": row[0] or "", "phone": row[1] or "",
        "app_metadata": row[2] or {}, "user_metadata": row[3] or {}, "role": "authenticated",
        "aal": "aal1", "amr": [{"method": "password", "timestamp": now}],
        "session_id": str(uuid.uuid4()), "is_anonymous": bool(row[4]),
    }  # fmt: skip
    event: dict[str, Any] = {
        "metadata": _metadata("custom-access-token"), "user_id": str(user_id),
        "claims": claims, "authentication_method": "password",
    }  # fmt: skip
    try:
        output = _run(conn, hook, event)
    except psycopg.Error as exc:
        return HookCall(
            hook.hook, ERROR, f"Error invoking access token hook: {primary_message(exc)}"
        )
    refused = _refusal(output)
    if refused:
        return HookCall(hook.hook, ERROR, f"the hook refused the token: {refused}")
    returned = _object((_object(output) or {}).get("claims"))
    if returned is None:
        return HookCall(hook.hook, MISSING, "no claims in its output")
    missing = [c for c in REQUIRED_CLAIMS if c not in returned]
    if missing:
        return HookCall(hook.hook, MISSING, ", ".join(missing))
    role = returned.get("user_role") or returned.get("app_role")
    return HookCall(hook.hook, OK, f"user_role {role}" if role else "")


def before_user_created(conn: psycopg.Connection, hook: AuthHook, user: dict[str, Any]) -> None:
    """The before-user-created hook for a signup about to be written: returns when it allows it,
    raises HookRefused (well formed) or a psycopg/ValueError (the signup fails with a 500)."""
    if hook.function is None:
        raise ValueError(f"{hook.uri} is not a function this database has")
    output = _run(conn, hook, {"metadata": _metadata("before-user-created"), "user": user})
    if output is not None and _object(output) is None:
        raise ValueError(f"the hook returned {type(output).__name__}, not a JSON object")
    refused = _refusal(output)
    if refused:
        raise HookRefused(refused)


def token_rolled_back(conn: psycopg.Connection, hook: AuthHook, user_id: uuid.UUID) -> HookCall:
    """The custom access token hook for an existing user, in a transaction that is rolled back,
    as supabase_auth_admin when this connection may become it (scan and doctor's ghost check)."""
    with conn.transaction(force_rollback=True):
        if can_become_auth_server(conn):
            conn.execute(sql.SQL("SET LOCAL ROLE {}").format(sql.Identifier(AUTH_ROLE)))
        return access_token(conn, hook, user_id)
