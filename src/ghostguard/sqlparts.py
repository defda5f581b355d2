"""Pieces every generated statement is built from: quoted names and the profile row expressions."""

from __future__ import annotations

from dataclasses import dataclass

from psycopg import sql

from ghostguard.catalog import Shape
from ghostguard.config import ColumnSource, Config

# Identity columns the Auth server replaces with an opaque hash on soft delete: never copy those.
SCRUBBED_ON_SOFT_DELETE = frozenset({"email", "phone"})
DOLLAR_TAG = sql.SQL("$ghostguard$")
Query = sql.SQL | sql.Composed  # what psycopg can execute: never a plain str built by hand


@dataclass(frozen=True)
class Step:
    """One statement with a short title; plans are lists of steps."""

    title: str
    statement: Query

    def render(self) -> str:
        return self.statement.as_string(None)


def render(steps: list[Step]) -> str:
    """SQL text for a list of steps: each titled with a comment and ended with a semicolon."""
    return "\n\n".join(f"-- {s.title}\n{s.render()};" for s in steps) + "\n"


def failures(config: Config) -> sql.Identifier:
    return ident(config.failures.schema, config.failures.table)


def ident(*names: str) -> sql.Identifier:
    return sql.Identifier(*names)


def source(config: Config) -> sql.Identifier:
    return ident(config.source.schema, config.source.table)


def target(config: Config) -> sql.Identifier:
    return ident(config.target.schema, config.target.table)


def audit(config: Config) -> sql.Identifier:
    return ident(config.audit.schema, config.audit.table)


def function(config: Config) -> sql.Identifier:
    return ident(config.function_schema, config.function_name)


def value(src: ColumnSource, row: sql.Composable, shape: Shape) -> sql.Composable:
    """The expression for one mapped profile column, read from an auth row (NEW or an alias)."""
    if src.column is not None:
        expr: sql.Composable = sql.SQL("{}.{}").format(row, ident(src.column))
        if src.column in SCRUBBED_ON_SOFT_DELETE and shape.source_soft_delete:
            expr = sql.SQL("CASE WHEN {row}.{deleted} IS NULL THEN {expr} END").format(
                row=row, deleted=ident("deleted_at"), expr=expr
            )
        return expr
    tries = [
        sql.SQL("NULLIF({}.{} ->> {}, '')").format(
            row, ident(src.metadata_column), sql.Literal(key)
        )
        for key in src.metadata
    ]
    return (
        tries[0] if len(tries) == 1 else sql.SQL("COALESCE({})").format(sql.SQL(", ").join(tries))
    )


def profile_columns(
    config: Config, shape: Shape, row: sql.Composable
) -> tuple[sql.Composable, sql.Composable]:
    """(column list, value list) for a profile INSERT built from an auth row."""
    names = [config.target.key]
    values: list[sql.Composable] = [sql.SQL("{}.{}").format(row, ident(config.source.key))]
    for column, src in config.mapping.items():
        names.append(column)
        values.append(value(src, row, shape))
    soft = shape.target_soft_delete
    if soft and shape.source_soft_delete and soft not in config.mapping:
        names.append(soft)
        values.append(sql.SQL("{}.{}").format(row, ident("deleted_at")))
    return sql.SQL(", ").join(map(ident, names)), sql.SQL(", ").join(values)


def grantees(shape: Shape) -> sql.Composable:
    return sql.SQL(", ").join([sql.SQL("PUBLIC"), *map(ident, shape.api_roles)])


def closed_to_api_roles(table: sql.Identifier, shape: Shape, why: str) -> list[Step]:
    """RLS on with no policies, and every privilege revoked from PUBLIC and the API roles: what
    every table ghostguard creates gets (public tables get ALL by Supabase's default privileges)."""
    return [
        Step(
            "RLS on with no policies: API roles see nothing even if a grant slips in",
            sql.SQL("ALTER TABLE {} ENABLE ROW LEVEL SECURITY").format(table),
        ),
        Step(why, sql.SQL("REVOKE ALL ON TABLE {} FROM {}").format(table, grantees(shape))),
    ]
