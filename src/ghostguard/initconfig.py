"""Propose a ghostguard.toml from the live catalog: which profile table, which columns map to what."""

from __future__ import annotations

from dataclasses import dataclass, replace

import psycopg

from ghostguard import catalog
from ghostguard.config import DEFAULT_MAPPING, ColumnSource, Config, TableRef
from ghostguard.errors import ConfigError

CANDIDATE_TABLES = (TableRef("public", "users"), TableRef("public", "profiles"))

# Profile column name -> where its value usually comes from (provider metadata keys in order).
KNOWN_COLUMNS: dict[str, ColumnSource] = {
    **DEFAULT_MAPPING,
    "phone": ColumnSource(column="phone"),
    "name": DEFAULT_MAPPING["full_name"],
    "display_name": DEFAULT_MAPPING["full_name"],
    "username": ColumnSource(metadata=("user_name", "preferred_username", "nickname")),
    "user_name": ColumnSource(metadata=("user_name", "preferred_username", "nickname")),
    "picture": DEFAULT_MAPPING["avatar_url"],
}


@dataclass(frozen=True)
class Proposal:
    config: Config
    notes: list[str]


def propose(conn: psycopg.Connection, base: Config | None = None) -> Proposal:
    """Find the profile table and map its columns by name; validated before it is returned."""
    base = base or Config()
    notes: list[str] = []
    target = next((t for t in CANDIDATE_TABLES if catalog.table_columns(conn, t)), None)
    if target is None:
        raise ConfigError(
            "no profile table found (looked for public.users, public.profiles): create it, "
            "or write ghostguard.toml by hand with [target] schema/table/key"
        )
    columns = catalog.table_columns(conn, target) or {}
    notes.append(f"profile table: {target.display} (key {target.key})")
    mapping = {name: src for name, src in KNOWN_COLUMNS.items() if name in columns}
    for name, src in mapping.items():
        notes.append(f"{target.table}.{name} <- {src.describe()}")
    soft = "deleted_at" if "deleted_at" in columns else None
    if soft:
        notes.append(f"{target.table}.deleted_at <- set when the auth user is soft-deleted")
    config = replace(base, target=target, mapping=mapping, soft_delete_column=soft)
    catalog.resolve(conn, config)
    return Proposal(config, notes)
