"""A profile table whose link to the auth user has no unique index (a generated id PK and a plain
`user_id`): supported, but each write must look for an existing profile instead of relying on
ON CONFLICT, a signup scans the table when the column has no index at all, and two writes at once
may link two profiles to one user. scan and doctor say how to add the index without blocking."""

from __future__ import annotations

from dataclasses import dataclass

import psycopg
from psycopg import sql

from ghostguard.config import Config
from ghostguard.sqlparts import ident, target


@dataclass(frozen=True)
class LinkIndex:
    """The link column's missing unique index, what stands in its way, and the SQL that adds it."""

    column: str  # schema.table.column
    indexed: bool  # some (non-unique) index starts with the column: lookups stay cheap
    users_with_several_profiles: int
    fix: str

    @property
    def summary(self) -> str:
        lookups = (
            "a plain index serves the lookups"
            if self.indexed
            else "no index at all: every signup scans the profile table"
        )
        several = self.users_with_several_profiles
        duplicates = (
            f"; {several:,} users have more than one profile: merge them first" if several else ""
        )
        return (
            f"{self.column} has no unique index ({lookups}; two writes at once may give a user "
            f"a second profile){duplicates}"
        )


def _index_name(config: Config) -> str:
    return f"{config.target.table}_{config.target.key}_key"[:63]


def fix(config: Config) -> str:
    """CREATE UNIQUE INDEX CONCURRENTLY: builds without blocking signups (run it outside a
    transaction); the next `apply` then uses ON CONFLICT."""
    return (
        sql.SQL("CREATE UNIQUE INDEX CONCURRENTLY {} ON {} ({});")
        .format(ident(_index_name(config)), target(config), ident(config.target.key))
        .as_string(None)
    )


def read(conn: psycopg.Connection, config: Config) -> LinkIndex:
    """What scan and doctor report when the link column is not unique (call only then)."""
    key = ident(config.target.key)
    several = conn.execute(
        sql.SQL(
            "SELECT count(*) FROM (SELECT 1 FROM {} WHERE {} IS NOT NULL GROUP BY {} "
            "HAVING count(*) > 1) d"
        ).format(target(config), key, key)
    ).fetchone()
    indexed = conn.execute(
        "SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_index i"
        " JOIN pg_catalog.pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = i.indkey[0]"
        " WHERE i.indrelid = %s::regclass AND i.indisvalid AND a.attname = %s)",
        (target(config).as_string(None), config.target.key),
    ).fetchone()
    return LinkIndex(
        column=f"{config.target.display}.{config.target.key}",
        indexed=bool(indexed and indexed[0]),
        users_with_several_profiles=int(several[0]) if several else 0,
        fix=fix(config),
    )
