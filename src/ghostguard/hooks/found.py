"""Supabase Auth hooks in Postgres-function form: the project's config.toml names them
(`[auth.hook.<name>] enabled = true`, `uri = "pg-functions://postgres/<schema>/<function>"`), and
the database shows them as `(jsonb) RETURNS jsonb` functions granted to supabase_auth_admin. The
Auth server calls them as supabase_auth_admin, one jsonb in, one jsonb out (facts sheet, "Auth
hooks"; supabase/auth internal/hooks)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cached_property

import psycopg

from ghostguard import plpgsql, sqlfiles

CUSTOM_ACCESS_TOKEN = "custom_access_token"
BEFORE_USER_CREATED = "before_user_created"
AFTER_USER_CREATED = "after_user_created"
# A function found only in the database is named after the hook its name suggests.
_NAMED_LIKE = (
    (re.compile(r"access_token|custom_claims|jwt_claims|token_hook"), CUSTOM_ACCESS_TOKEN),
    (re.compile(r"before_user_created|before_signup|before_sign_up"), BEFORE_USER_CREATED),
    (re.compile(r"after_user_created|after_signup|after_sign_up"), AFTER_USER_CREATED),
)
PG_FUNCTION_URI = re.compile(r"^pg-functions://[^/]+/([^/]+)/([^/]+)$")


@dataclass(frozen=True)
class HookFunction:
    schema: str
    name: str
    language: str
    security_definer: bool
    search_path: str | None
    body: str

    @property
    def display(self) -> str:
        return f"{self.schema}.{self.name}(jsonb)"

    @cached_property
    def parsed(self) -> plpgsql.Body | str:
        return plpgsql.read_or_reason(self.body, self.language)

    def reads(self) -> list[str]:
        return [] if isinstance(self.parsed, str) else self.parsed.tables(written=False)

    def writes(self) -> list[str]:
        return [] if isinstance(self.parsed, str) else self.parsed.tables(written=True)


@dataclass(frozen=True)
class AuthHook:
    hook: str  # the extensibility point: custom_access_token, before_user_created, ...
    uri: str
    function: HookFunction | None  # None: an HTTP hook, or a function that does not exist
    configured: bool  # named in config.toml (else only the database says)

    @property
    def display(self) -> str:
        target = self.function.display if self.function else self.uri
        return f"{self.hook} hook {target}"


def _function(row: tuple[object, ...]) -> HookFunction:
    return HookFunction(
        str(row[0]), str(row[1]), str(row[2]), bool(row[3]),
        None if row[4] is None else str(row[4]), str(row[5]),
    )  # fmt: skip


def named(conn: psycopg.Connection, hook: str, uri: str) -> AuthHook:
    """A hook config.toml names, with its function when the uri is a Postgres one that exists."""
    match = PG_FUNCTION_URI.match(uri)
    row = (
        conn.execute(
            sqlfiles.text(__name__, "hooks.sql", "hook_functions"),
            {"schema": match[1], "name": match[2]},
        ).fetchone()
        if match
        else None
    )
    return AuthHook(hook, uri, _function(row) if row else None, configured=True)


def in_database(conn: psycopg.Connection) -> list[AuthHook]:
    """Hook-shaped functions granted to supabase_auth_admin, named by what their name suggests."""
    found: list[AuthHook] = []
    every = {"schema": None, "name": None}
    for row in conn.execute(sqlfiles.text(__name__, "hooks.sql", "hook_functions"), every):
        function = _function(row)
        hook = next((h for pattern, h in _NAMED_LIKE if pattern.search(function.name)), "hook")
        uri = f"pg-functions://postgres/{function.schema}/{function.name}"
        found.append(AuthHook(hook, uri, function, configured=False))
    return found


def every_hook(conn: psycopg.Connection, configured: list[tuple[str, str]]) -> list[AuthHook]:
    """config.toml's hooks (`(name, uri)`), then the database's others."""
    hooks = [named(conn, name, uri) for name, uri in configured]
    known = {h.uri for h in hooks}
    return hooks + [h for h in in_database(conn) if h.uri not in known]
