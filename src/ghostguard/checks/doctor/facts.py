"""What the doctor reads from the catalog (and one pass over the auth table), once per run."""

from __future__ import annotations

from dataclasses import dataclass, field

import psycopg
from psycopg import sql

from ghostguard import catalog, sqlfiles
from ghostguard.adopt import existing, takeover
from ghostguard.adopt.existing import AuthTrigger
from ghostguard.adopt.takeover import InTheWay
from ghostguard.catalog import API_ROLES, Column, ForeignKey, FunctionState, Shape, TriggerState
from ghostguard.catalog.policies import Policy, policies
from ghostguard.checks import link_index
from ghostguard.checks.app_view import AppView
from ghostguard.checks.link_index import LinkIndex
from ghostguard.checks.signup_kinds import CheckReport
from ghostguard.config import Config, TableRef
from ghostguard.hooks import found
from ghostguard.hooks import lint as hook_lint
from ghostguard.hooks.found import AuthHook
from ghostguard.hooks.lint import HookFacts
from ghostguard.sqlparts import source
from ghostguard.sync import drift as sync_drift
from ghostguard.sync.drift import Fingerprint
from ghostguard.sync.mapping import value

_SQL = sqlfiles.statements(__name__, "facts.sql")
EXPOSED_SCHEMAS = ("public", "graphql_public")  # what Supabase's Data API serves by default


@dataclass(frozen=True)
class Protection:
    """Whether a table is closed to the API roles."""

    table: TableRef
    exists: bool
    rls: bool = False
    readable_by: tuple[str, ...] = ()
    sequence_usable_by: tuple[str, ...] = ()  # may nextval/setval its identity sequence


@dataclass(frozen=True)
class ExposedView:
    name: str
    schema: str
    relname: str
    security_invoker: bool
    readable_by: tuple[str, ...]


@dataclass(frozen=True)
class Facts:
    config: Config
    shape: Shape
    triggers: list[TriggerState]
    auth_triggers: list[AuthTrigger]
    function: FunctionState | None
    installed: Fingerprint | None
    audit: Protection
    failures: Protection
    profile: Protection
    policies: list[Policy]
    profile_columns: dict[str, Column]
    unique_columns: set[str]
    checks: dict[str, list[str]]  # profile column -> CHECK constraint definitions on it
    foreign_keys: list[ForeignKey]
    views: list[ExposedView]
    nulls: dict[str, int]  # NOT NULL profile column -> auth rows whose mapped value is NULL
    duplicate_sso_emails: int
    sso_users: int
    roles: set[str] = field(default_factory=set[str])
    link_index: LinkIndex | None = None  # the link column's missing unique index
    hooks: list[HookFacts] = field(default_factory=list[HookFacts])  # the project's auth hooks
    # (hook, what it did, ghost ids): a token hook that fails for ghosts keeps them from signing in
    ghost_lockouts: list[tuple[str, str, list[str]]] = field(
        default_factory=list[tuple[str, str, list[str]]]
    )
    # The app's own triggers apply would replace or run beside (takeover.in_the_way).
    in_the_way: list[InTheWay] = field(default_factory=list[InTheWay])
    # Every signup kind through the triggers as they are, when the app's own writes profiles
    # (run after the snapshot: it writes, rolled back).
    app_signups: CheckReport | None = None
    app_view: AppView | None = None  # the profile table as the Data API serves it (after too)


def _protection(conn: psycopg.Connection, table: TableRef, roles: list[str]) -> Protection:
    row = conn.execute(
        _SQL["protection"], {"roles": roles, "schema": table.schema, "table": table.table}
    ).fetchone()
    if row is None:
        return Protection(table, False)
    return Protection(table, True, bool(row[0]), tuple(row[1]), tuple(row[2]))


def _auth_profile(
    conn: psycopg.Connection, config: Config, shape: Shape, not_null: list[str]
) -> tuple[dict[str, int], int, int]:
    """One pass over the auth table: rows whose mapped value is NULL for each NOT NULL profile
    column, duplicate emails among SSO users, and SSO users."""
    counts: list[sql.Composable] = [
        sql.SQL("count(*) FILTER (WHERE ({}) IS NULL)").format(
            value(config.mapping[c], sql.SQL("au"), shape, c)
        )
        for c in not_null
    ]
    sso = "is_sso_user" in shape.kind_columns
    counts.append(
        sql.SQL(
            "count(au.email) FILTER (WHERE au.is_sso_user) - count(DISTINCT au.email) "
            "FILTER (WHERE au.is_sso_user)"
        )
        if sso
        else sql.SQL("0")
    )
    counts.append(sql.SQL("count(*) FILTER (WHERE au.is_sso_user)") if sso else sql.SQL("0"))
    row = conn.execute(
        sql.SQL("SELECT {} FROM {} au").format(sql.SQL(", ").join(counts), source(config))
    ).fetchone()
    values = [int(v) for v in row] if row else [0] * len(counts)
    return dict(zip(not_null, values, strict=False)), values[-2], values[-1]


def read(
    conn: psycopg.Connection, config: Config, shape: Shape, hooks: list[AuthHook] | None = None
) -> Facts:
    """`hooks`: the project's auth hooks (config.toml's); None: the database's hook functions."""
    roles = [r for r in catalog.existing_roles(conn, API_ROLES)]
    target = config.target
    columns = catalog.table_columns(conn, target) or {}
    not_null = [c for c in config.mapping if c in columns and columns[c].not_null]
    nulls, duplicate_sso, sso_users = _auth_profile(conn, config, shape, not_null)
    checks: dict[str, list[str]] = {}
    for column, definition in conn.execute(
        _SQL["checks"], (target.schema, target.table)
    ).fetchall():
        checks.setdefault(column, []).append(definition)
    every = existing.auth_triggers(conn, config.source)
    return Facts(
        config=config,
        shape=shape,
        triggers=catalog.triggers_on(conn, config.source),
        auth_triggers=every,
        function=catalog.function_state(conn, config),
        installed=sync_drift.installed_fingerprint(conn, config),
        audit=_protection(conn, config.audit, roles),
        failures=_protection(conn, config.failures, roles),
        profile=_protection(conn, target, roles),
        policies=policies(conn, target),
        profile_columns=columns,
        unique_columns={
            r[0] for r in conn.execute(_SQL["unique_columns"], (target.schema, target.table))
        },
        checks=checks,
        foreign_keys=catalog.foreign_keys_to(conn, config.source),
        views=[
            ExposedView(name, schema, relname, invoker, tuple(readers))
            for name, schema, relname, invoker, readers in conn.execute(
                _SQL["views"],
                (roles, config.source.schema, config.source.table, list(EXPOSED_SCHEMAS)),
            )
        ],
        nulls=nulls,
        duplicate_sso_emails=duplicate_sso,
        sso_users=sso_users,
        roles=set(catalog.existing_roles(conn, ("postgres",))),
        link_index=None if shape.key_unique else link_index.read(conn, config),
        in_the_way=takeover.in_the_way(conn, config, every),
        hooks=hook_lint.read(conn, found.in_database(conn) if hooks is None else hooks),
    )
