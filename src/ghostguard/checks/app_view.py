"""What the app sees through the Data API: a profile the signed-in user cannot read is, to the
app, a ghost (`supabase.from('profiles').select()` gets "permission denied" or no row).

Checked the way PostgREST runs a request: in a transaction that is always rolled back, `SET LOCAL
ROLE authenticated` with `request.jwt.claims` set for a real user, then the user's own profile is
selected; then, as that user, the other users' rows; then, as `anon`, every row. Since the 2026
hosted defaults a new public table has no grant to the API roles at all, so this fails on a
table with a profile for every user until the app grants SELECT and an own-row policy.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from typing import Any

import psycopg
from psycopg import errors, sql

from ghostguard import catalog
from ghostguard.catalog.policies import policies, row_security
from ghostguard.checks.sync_state import statement
from ghostguard.config import Config
from ghostguard.runner import primary_message
from ghostguard.sqlparts import ident, target

SAMPLE = 20  # users whose own profile is read as they would read it
READABLE, DENIED, HIDDEN, FAILED = "readable", "denied", "hidden", "failed"


@dataclass(frozen=True)
class AppView:
    applicable: bool  # the API roles exist (a Supabase project)
    sampled: int  # users with a profile checked as themselves
    own: dict[str, int]  # READABLE / DENIED / HIDDEN / FAILED -> sampled users
    others_visible: int  # other users' profiles the first sampled user can read
    anon_visible: int | None  # profiles anon can read (None: permission denied)
    detail: str
    fix: str

    @property
    def passed(self) -> bool:
        return not self.applicable or self.sampled == 0 or self.own.get(READABLE, 0) == self.sampled

    def unreadable(self, profiles: int) -> int:
        """Profiles their users cannot read, from the sample (all of them when none could)."""
        if not self.sampled:
            return 0
        return round(profiles * (self.sampled - self.own.get(READABLE, 0)) / self.sampled)

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "passed": self.passed}


def _claims(user: str | None, role: str) -> str:
    return json.dumps({"sub": user, "role": role} if user else {"role": role})


class _Failed(Exception):
    """The select failed for another reason than a missing grant (a policy that raises, …)."""


def _as(conn: psycopg.Connection, role: str, user: str | None, query: sql.Composed) -> int | None:
    """count(*) of `query` run as `role` with the user's claims; None when the role may not
    read; _Failed (with the server's message) when the select fails otherwise."""
    try:
        with conn.transaction():
            conn.execute(sql.SQL("SET LOCAL ROLE {}").format(ident(role)))
            conn.execute(
                "SELECT set_config('request.jwt.claims', %s, true)", (_claims(user, role),)
            )
            row = conn.execute(query, {"user": user}).fetchone()
            conn.execute("RESET ROLE")
    except errors.InsufficientPrivilege:
        return None
    except psycopg.Error as exc:
        raise _Failed(primary_message(exc)) from None
    return int(row[0]) if row else 0


def _own(conn: psycopg.Connection, user: str, query: sql.Composed) -> tuple[str, str]:
    """(outcome, the server's message when the select failed) for one user's own profile."""
    try:
        seen = _as(conn, "authenticated", user, query)
    except _Failed as exc:
        return FAILED, str(exc)
    return (DENIED if seen is None else READABLE if seen else HIDDEN), ""


def _seen(conn: psycopg.Connection, role: str, user: str | None, query: sql.Composed) -> int | None:
    try:
        return _as(conn, role, user, query)
    except _Failed:
        return None


def read(conn: psycopg.Connection, config: Config) -> AppView:
    """The app's view of the profile table, on an autocommit connection (nothing is left)."""
    roles = catalog.existing_roles(conn, ("anon", "authenticated"))
    if len(roles) < 2:
        return AppView(False, 0, {}, 0, None, "not a Supabase project: no API roles", "")
    if config.reads_profiles == "server":
        return AppView(
            False, 0, {}, 0, None,
            'not checked: the app reads profiles only on the server ([app] reads_profiles = "server")',
            "",
        )  # fmt: skip
    served = config.api_schemas or served_schemas(conn)
    if config.target.schema not in served:
        return AppView(
            False, 0, {}, 0, None,
            f"not served: the Data API serves {', '.join(served)}, not {config.target.schema}, so "
            f"the app cannot read {config.target.display} through supabase.from() (set [app] "
            "api_schemas if it does)",
            "",
        )  # fmt: skip
    key, table = ident(config.target.key), target(config)
    users = [
        str(r[0])
        for r in conn.execute(
            sql.SQL(
                "SELECT {key}::text FROM {table} WHERE {key} IS NOT NULL ORDER BY {key} LIMIT {n}"
            ).format(key=key, table=table, n=sql.Literal(SAMPLE))
        )
    ]
    if not users:
        return AppView(True, 0, {}, 0, None, "no user has a profile yet", "")
    own_row = sql.SQL("SELECT count(*) FROM {} WHERE {}::text = %(user)s").format(table, key)
    others = sql.SQL("SELECT count(*) FROM {} WHERE {}::text <> %(user)s").format(table, key)
    every = sql.SQL("SELECT count(*) FROM {}").format(table)
    own: dict[str, int] = {}
    failure = ""
    with conn.transaction(force_rollback=True):
        for user in users:
            outcome, message = _own(conn, user, own_row)
            own[outcome] = own.get(outcome, 0) + 1
            failure = failure or message
        others_visible = _seen(conn, "authenticated", users[0], others) or 0
        anon_visible = _seen(conn, "anon", None, every)
    return AppView(
        True,
        len(users),
        own,
        others_visible,
        anon_visible,
        _detail(own, len(users), others_visible, anon_visible, failure),
        _fix(conn, config, own),
    )


DATA_API_DEFAULT = ("public", "graphql_public")  # what a new Supabase project's API serves


def served_schemas(conn: psycopg.Connection) -> tuple[str, ...]:
    """The schemas the Data API serves: PostgREST's `pgrst.db_schemas` where the database holds
    it (a role setting of `authenticator`, how projects configure PostgREST in SQL), else
    Supabase's default."""
    row = conn.execute(
        "SELECT split_part(c, '=', 2) FROM pg_catalog.pg_db_role_setting s "
        "JOIN pg_catalog.pg_roles r ON r.oid = s.setrole, unnest(s.setconfig) c "
        "WHERE r.rolname = 'authenticator' AND starts_with(c, 'pgrst.db_schemas=') "
        "AND s.setdatabase IN (0, (SELECT oid FROM pg_catalog.pg_database "
        "WHERE datname = current_database())) ORDER BY s.setdatabase DESC LIMIT 1"
    ).fetchone()
    if row is None or not str(row[0]).strip():
        return DATA_API_DEFAULT
    return tuple(name.strip().strip('"') for name in str(row[0]).split(",") if name.strip())


def _detail(own: dict[str, int], sampled: int, others: int, anon: int | None, failure: str) -> str:
    parts = [f"{own.get(READABLE, 0)} of {sampled} sampled users can read their own profile"]
    if own.get(DENIED):
        parts.append(f"{own[DENIED]} get permission denied (no SELECT grant to authenticated)")
    if own.get(HIDDEN):
        parts.append(f"{own[HIDDEN]} see no row (RLS with no policy that lets them read their own)")
    if own.get(FAILED):
        parts.append(f"{own[FAILED]} get an error: {failure}")
    if others:
        parts.append(f"a signed-in user sees {others} other users' profiles")
    if anon:
        parts.append(f"anon (not signed in) sees {anon} profiles")
    return "; ".join(parts)


def _fix(conn: psycopg.Connection, config: Config, own: dict[str, int]) -> str:
    table = target(config)
    fixes: list[str] = []
    if own.get(DENIED):
        fixes.append(statement(sql.SQL("GRANT SELECT ON {} TO authenticated").format(table)))
    if own.get(HIDDEN) or (own.get(DENIED) and not _past_row_security(conn, config)):
        fixes.append(own_row_policy(config))
    return " ".join(fixes)


def _past_row_security(conn: psycopg.Connection, config: Config) -> bool:
    """RLS is off, or a SELECT policy applies to signed-in users: with the grant they would get
    past it (whether it shows them their own row, the missing grant keeps unknown)."""
    table = config.target
    return not row_security(conn, table) or any(
        p.lets_signed_in_users_select for p in policies(conn, table)
    )


def own_row_policy(config: Config) -> str:
    """The policy that lets each signed-in user read their own profile."""
    return statement(
        sql.SQL(
            "CREATE POLICY {} ON {} FOR SELECT TO authenticated USING ((SELECT auth.uid()) = {})"
        ).format(
            ident("Users can view their own profile"), target(config), ident(config.target.key)
        )
    )
