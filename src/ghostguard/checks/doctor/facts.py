"""What the doctor reads from the catalog (and one pass over the auth table), once per run."""

from __future__ import annotations

from dataclasses import dataclass, field

import psycopg
from psycopg import sql

from ghostguard import catalog
from ghostguard.catalog import API_ROLES, Column, ForeignKey, FunctionState, Shape, TriggerState
from ghostguard.config import Config, TableRef
from ghostguard.sqlparts import source
from ghostguard.sync import drift as sync_drift
from ghostguard.sync.drift import Fingerprint
from ghostguard.sync.mapping import value

EXPOSED_SCHEMAS = ("public", "graphql_public")  # what Supabase's Data API serves by default

# pg_trigger.tgtype bits
INSERT, UPDATE = 4, 16


@dataclass(frozen=True)
class AuthTrigger:
    """A trigger on the auth table with what matters about its function."""

    name: str
    enabled: str
    tgtype: int
    columns: tuple[str, ...]  # UPDATE OF ...; empty: every update
    has_when: bool
    function: str
    language: str
    security_definer: bool
    search_path: str | None
    body: str
    transition_tables: tuple[str, ...]

    def fires_on(self, event: int) -> bool:
        return bool(self.tgtype & event)

    @property
    def is_enabled(self) -> bool:
        return self.enabled in ("O", "A")


@dataclass(frozen=True)
class Protection:
    """Whether a table is closed to the API roles."""

    table: TableRef
    exists: bool
    rls: bool = False
    readable_by: tuple[str, ...] = ()


@dataclass(frozen=True)
class Policy:
    name: str
    command: str  # r (SELECT), a, w, d, * (ALL)
    roles: tuple[str, ...]
    using: str | None


@dataclass(frozen=True)
class ExposedView:
    name: str
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
    roles: set[str] = field(default_factory=set)


_AUTH_TRIGGERS = """
SELECT t.tgname, t.tgenabled, t.tgtype::int,
       ARRAY(SELECT a.attname FROM unnest(t.tgattr) k(num)
             JOIN pg_catalog.pg_attribute a ON a.attrelid = t.tgrelid AND a.attnum = k.num)::text[],
       t.tgqual IS NOT NULL,
       pg_catalog.format('%%I.%%I()', pn.nspname, p.proname), l.lanname, p.prosecdef,
       (SELECT substr(c, length('search_path=') + 1) FROM unnest(p.proconfig) c
         WHERE c LIKE 'search_path=%%'),
       coalesce(p.prosrc, ''),
       array_remove(ARRAY[t.tgoldtable::text, t.tgnewtable::text], NULL)
FROM pg_catalog.pg_trigger t
JOIN pg_catalog.pg_proc p ON p.oid = t.tgfoid
JOIN pg_catalog.pg_namespace pn ON pn.oid = p.pronamespace
JOIN pg_catalog.pg_language l ON l.oid = p.prolang
WHERE t.tgrelid = pg_catalog.to_regclass(pg_catalog.format('%%I.%%I', %s::text, %s::text))
  AND NOT t.tgisinternal
ORDER BY t.tgname
"""

_PROTECTION = """
SELECT c.relrowsecurity,
       ARRAY(SELECT r FROM unnest(%s::text[]) r WHERE pg_catalog.has_table_privilege(r, c.oid, 'SELECT'))
FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname = %s AND c.relname = %s
"""

_POLICIES = """
SELECT p.polname, p.polcmd::text,
       ARRAY(SELECT CASE WHEN r = 0 THEN 'public' ELSE pg_catalog.pg_get_userbyid(r) END
             FROM unnest(p.polroles) r)::text[],
       pg_catalog.pg_get_expr(p.polqual, p.polrelid)
FROM pg_catalog.pg_policy p
WHERE p.polrelid = pg_catalog.to_regclass(pg_catalog.format('%%I.%%I', %s::text, %s::text))
ORDER BY p.polname
"""

_UNIQUE_COLUMNS = """
SELECT a.attname FROM pg_catalog.pg_index i
JOIN pg_catalog.pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = i.indkey[0]
WHERE i.indrelid = pg_catalog.to_regclass(pg_catalog.format('%%I.%%I', %s::text, %s::text))
  AND i.indisunique AND i.indnkeyatts = 1 AND i.indexprs IS NULL
"""

_CHECKS = """
SELECT a.attname, pg_catalog.pg_get_constraintdef(con.oid)
FROM pg_catalog.pg_constraint con
JOIN pg_catalog.pg_attribute a ON a.attrelid = con.conrelid AND a.attnum = ANY (con.conkey)
WHERE con.contype = 'c'
  AND con.conrelid = pg_catalog.to_regclass(pg_catalog.format('%%I.%%I', %s::text, %s::text))
"""

_VIEWS = """
SELECT DISTINCT pg_catalog.format('%%I.%%I', n.nspname, v.relname),
       coalesce((SELECT o.option_value FROM pg_catalog.pg_options_to_table(v.reloptions) o
                 WHERE o.option_name = 'security_invoker'), 'false') IN ('true', 'on', '1'),
       ARRAY(SELECT r FROM unnest(%s::text[]) r WHERE pg_catalog.has_table_privilege(r, v.oid, 'SELECT'))
FROM pg_catalog.pg_depend d
JOIN pg_catalog.pg_rewrite rw ON rw.oid = d.objid
JOIN pg_catalog.pg_class v ON v.oid = rw.ev_class
JOIN pg_catalog.pg_namespace n ON n.oid = v.relnamespace
WHERE d.classid = 'pg_catalog.pg_rewrite'::regclass
  AND d.refobjid = pg_catalog.to_regclass(pg_catalog.format('%%I.%%I', %s::text, %s::text))
  AND v.oid <> d.refobjid AND v.relkind IN ('v', 'm') AND n.nspname = ANY (%s)
ORDER BY 1
"""


def _protection(conn: psycopg.Connection, table: TableRef, roles: list[str]) -> Protection:
    row = conn.execute(_PROTECTION, (roles, table.schema, table.table)).fetchone()
    if row is None:
        return Protection(table, False)
    return Protection(table, True, bool(row[0]), tuple(row[1]))


def _auth_profile(
    conn: psycopg.Connection, config: Config, shape: Shape, not_null: list[str]
) -> tuple[dict[str, int], int, int]:
    """One pass over the auth table: rows whose mapped value is NULL for each NOT NULL profile
    column, duplicate emails among SSO users, and SSO users."""
    counts: list[sql.Composable] = [
        sql.SQL("count(*) FILTER (WHERE ({}) IS NULL)").format(
            value(config.mapping[c], sql.SQL("au"), shape)
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


def read(conn: psycopg.Connection, config: Config, shape: Shape) -> Facts:
    roles = [r for r in catalog.existing_roles(conn, API_ROLES)]
    target = config.target
    columns = catalog.table_columns(conn, target) or {}
    not_null = [c for c in config.mapping if c in columns and columns[c].not_null]
    nulls, duplicate_sso, sso_users = _auth_profile(conn, config, shape, not_null)
    checks: dict[str, list[str]] = {}
    for column, definition in conn.execute(_CHECKS, (target.schema, target.table)).fetchall():
        checks.setdefault(column, []).append(definition)
    return Facts(
        config=config,
        shape=shape,
        triggers=catalog.triggers_on(conn, config.source),
        auth_triggers=[
            AuthTrigger(
                r[0], r[1], r[2], tuple(r[3]), r[4], r[5], r[6], r[7], r[8], r[9], tuple(r[10])
            )
            for r in conn.execute(_AUTH_TRIGGERS, (config.source.schema, config.source.table))
        ],
        function=catalog.function_state(conn, config),
        installed=sync_drift.installed_fingerprint(conn, config),
        audit=_protection(conn, config.audit, roles),
        failures=_protection(conn, config.failures, roles),
        profile=_protection(conn, target, roles),
        policies=[
            Policy(name, cmd, tuple(pol_roles), using)
            for name, cmd, pol_roles, using in conn.execute(
                _POLICIES, (target.schema, target.table)
            )
        ],
        profile_columns=columns,
        unique_columns={r[0] for r in conn.execute(_UNIQUE_COLUMNS, (target.schema, target.table))},
        checks=checks,
        foreign_keys=catalog.foreign_keys_to(conn, config.source),
        views=[
            ExposedView(name, invoker, tuple(readers))
            for name, invoker, readers in conn.execute(
                _VIEWS,
                (roles, config.source.schema, config.source.table, list(EXPOSED_SCHEMAS)),
            )
        ],
        nulls=nulls,
        duplicate_sso_emails=duplicate_sso,
        sso_users=sso_users,
        roles=set(catalog.existing_roles(conn, ("postgres",))),
    )
