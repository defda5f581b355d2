"""A table's row security: whether it is on, and its policies. Doctor judges them; the app's-view
check reads them to know which fix to print."""

from __future__ import annotations

from dataclasses import dataclass

import psycopg

from ghostguard import sqlfiles
from ghostguard.config import TableRef

_SQL = sqlfiles.statements(__name__, "policies.sql")


@dataclass(frozen=True)
class Policy:
    name: str
    command: str  # r (SELECT), a, w, d, * (ALL)
    roles: tuple[str, ...]  # ('public',) when the policy names no role
    using: str | None

    @property
    def lets_signed_in_users_select(self) -> bool:
        return self.command in ("r", "*") and bool({"public", "authenticated"} & set(self.roles))


def policies(conn: psycopg.Connection, table: TableRef) -> list[Policy]:
    return [
        Policy(name, command, tuple(roles), using)
        for name, command, roles, using in conn.execute(
            _SQL["policies"], (table.schema, table.table)
        )
    ]


def row_security(conn: psycopg.Connection, table: TableRef) -> bool:
    """RLS is on (False also when the table is missing)."""
    row = conn.execute(_SQL["row_security"], (table.schema, table.table)).fetchone()
    return bool(row and row[0])
