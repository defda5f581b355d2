"""What a rehearsal may change outside its own database, put back when it ends.

Roles, their attributes, passwords, memberships and role settings belong to the whole cluster: a
migration's `ALTER ROLE postgres SET statement_timeout = '1ms'` or `CREATE ROLE app_reader` would
otherwise reach every later rehearsal in the same sandbox (a timeout everywhere, "role already
exists"). The state is read as the superuser before the replay and restored after it, whatever
the replay did; only differences are touched.
"""

from __future__ import annotations

from dataclasses import dataclass

import psycopg
from psycopg import sql

from ghostguard.sqlparts import Query

# Settings whose value is a list of names (stored as `"$user", public`): restored name by name.
LIST_SETTINGS = frozenset(
    {"search_path", "temp_tablespaces", "session_preload_libraries", "local_preload_libraries"}
)
# pg_authid column -> (the keyword that sets it, the one that clears it)
ATTRIBUTES = (
    ("rolinherit", sql.SQL("INHERIT"), sql.SQL("NOINHERIT")),
    ("rolcreaterole", sql.SQL("CREATEROLE"), sql.SQL("NOCREATEROLE")),
    ("rolcreatedb", sql.SQL("CREATEDB"), sql.SQL("NOCREATEDB")),
    ("rolcanlogin", sql.SQL("LOGIN"), sql.SQL("NOLOGIN")),
    ("rolreplication", sql.SQL("REPLICATION"), sql.SQL("NOREPLICATION")),
    ("rolbypassrls", sql.SQL("BYPASSRLS"), sql.SQL("NOBYPASSRLS")),
)

Setting = tuple[str, str, str, str]  # role, database ('' for every database), name, value


@dataclass(frozen=True)
class ClusterState:
    roles: dict[str, tuple[object, ...]]  # name -> attributes, connection limit, password
    memberships: frozenset[tuple[str, str, bool]]  # role, member, admin option
    settings: frozenset[Setting]


def read(conn: psycopg.Connection) -> ClusterState:
    """As the superuser (passwords are in pg_authid)."""
    columns = sql.SQL(", ").join(sql.Identifier(c) for c, _, _ in ATTRIBUTES)
    roles = {
        str(r[0]): tuple(r[1:])
        for r in conn.execute(
            sql.SQL(
                "SELECT rolname, {}, rolconnlimit, rolpassword FROM pg_catalog.pg_authid"
            ).format(columns)
        )
    }
    memberships = frozenset(
        (str(role), str(member), bool(admin))
        for role, member, admin in conn.execute(
            "SELECT r.rolname, m.rolname, a.admin_option FROM pg_catalog.pg_auth_members a "
            "JOIN pg_catalog.pg_roles r ON r.oid = a.roleid "
            "JOIN pg_catalog.pg_roles m ON m.oid = a.member"
        )
    )
    settings = frozenset(
        (str(role), str(database or ""), *str(item).split("=", 1))
        for role, database, item in conn.execute(
            "SELECT r.rolname, d.datname, unnest(s.setconfig) FROM pg_catalog.pg_db_role_setting s "
            "JOIN pg_catalog.pg_roles r ON r.oid = s.setrole "
            "LEFT JOIN pg_catalog.pg_database d ON d.oid = s.setdatabase"
        )
    )
    return ClusterState(roles, memberships, settings)  # type: ignore[arg-type]


def restore(conn: psycopg.Connection, before: ClusterState, rehearsal_url: str) -> list[str]:
    """Undo what changed since `before`; returns what was undone, for the report. Roles the
    rehearsal created lose what they own in its database (`rehearsal_url`, as the superuser:
    DROP OWNED) and are dropped."""
    now = read(conn)
    undone: list[str] = []
    created = sorted(set(now.roles) - set(before.roles))
    if created:
        with psycopg.connect(rehearsal_url, autocommit=True) as there:
            there.execute(
                sql.SQL("DROP OWNED BY {}").format(sql.SQL(", ").join(map(sql.Identifier, created)))
            )
    for statement, what in _statements(before, now, created):
        conn.execute(statement)
        undone.append(what)
    return undone


def _statements(
    before: ClusterState, now: ClusterState, created: list[str]
) -> list[tuple[Query, str]]:
    out: list[tuple[Query, str]] = []
    for role in created:
        out.append((sql.SQL("DROP ROLE {}").format(sql.Identifier(role)), f"role {role} dropped"))
    for role, member, _ in sorted(now.memberships - before.memberships):
        if role in created or member in created:
            continue
        out.append(
            (
                sql.SQL("REVOKE {} FROM {}").format(sql.Identifier(role), sql.Identifier(member)),
                f"membership of {member} in {role} revoked",
            )
        )
    for role, member, admin in sorted(before.memberships - now.memberships):
        if role in now.roles and member in now.roles:
            grant = sql.SQL("GRANT {} TO {}{}").format(
                sql.Identifier(role),
                sql.Identifier(member),
                sql.SQL(" WITH ADMIN OPTION") if admin else sql.SQL(""),
            )
            out.append((grant, f"membership of {member} in {role} given back"))
    for role, was in sorted(before.roles.items()):
        if role in now.roles and now.roles[role] != was:
            out.append((_alter_role(role, was), f"attributes of role {role} restored"))
    changed = {(r, d, k) for r, d, k, _ in now.settings ^ before.settings}
    old = {(r, d, k): v for r, d, k, v in before.settings}
    for role, database, name in sorted(changed):
        if role in created or role not in now.roles:
            continue
        scope = sql.SQL("ALTER ROLE {}{}").format(
            sql.Identifier(role),
            sql.SQL(" IN DATABASE {}").format(sql.Identifier(database))
            if database
            else sql.SQL(""),
        )
        value = old.get((role, database, name))
        if value is None:
            action = sql.SQL("{} RESET {}").format(scope, sql.Identifier(name))
        else:
            action = sql.SQL("{} SET {} TO {}").format(
                scope, sql.Identifier(name), _value(name, value)
            )
        out.append((action, f"setting {name} of role {role} restored"))
    return out


def _alter_role(role: str, was: tuple[object, ...]) -> Query:
    flags = [
        on if bool(value) else off
        for (_, on, off), value in zip(ATTRIBUTES, was[: len(ATTRIBUTES)], strict=True)
    ]
    limit, password = was[len(ATTRIBUTES)], was[len(ATTRIBUTES) + 1]
    return sql.SQL("ALTER ROLE {} WITH {} CONNECTION LIMIT {} PASSWORD {}").format(
        sql.Identifier(role),
        sql.SQL(" ").join(flags),
        sql.Literal(int(str(limit))),
        sql.Literal(password),
    )


def _value(name: str, value: str) -> sql.Composable:
    """A stored setting as SQL: a list of names name by name, anything else as one literal."""
    if name.lower() not in LIST_SETTINGS:
        return sql.Literal(value)
    names = [part.strip() for part in value.split(",") if part.strip()]
    return sql.SQL(", ").join(sql.Identifier(n[1:-1] if n.startswith('"') else n) for n in names)
