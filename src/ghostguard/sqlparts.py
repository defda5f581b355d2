"""Pieces every generated statement is built from: quoted names and the profile row expressions."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, LiteralString, cast

from psycopg import sql

from ghostguard.config import Config

if TYPE_CHECKING:  # the catalog composes with these pieces too: no import circle at run time
    from ghostguard.catalog import Shape

DOLLAR_TAG = "ghostguard"  # the body's quote: $ghostguard$, or $ghostguard_N$ if the body holds it


Query = sql.SQL | sql.Composed  # what psycopg can execute: never a plain str built by hand


@dataclass(frozen=True)
class Step:
    """One statement with a short title; plans are lists of steps."""

    title: str
    statement: Query

    def render(self) -> str:
        return self.statement.as_string(None)


def verbatim(text: object) -> sql.SQL:
    """SQL text that is not written in our source: a constraint expression the server printed, or
    the config's escape hatch after it was parsed as exactly one expression. The only two ways
    such text becomes SQL."""
    return sql.SQL(cast(LiteralString, text))


def expression(text: object, row: sql.Composable) -> sql.Composable:
    """The escape hatch: the config's SQL over the auth row, exposed to it as `au`. The text was
    parsed as exactly one expression when the config was read and is compiled against the catalog
    by catalog.resolve before anything runs: the one place config text becomes SQL."""
    return sql.SQL("(SELECT ({}) FROM (SELECT ({}).*) au)").format(verbatim(text), row)


def dollar_quoted(body: sql.Composable) -> sql.Composed:
    """`body` between dollar quotes whose tag does not occur in it: text the server printed (a
    CHECK expression, a default, a name) can never end the quote and run as statements of its own,
    whether apply executes it or `psql -f` runs the migration file."""
    text = body.as_string(None)
    tag, n = DOLLAR_TAG, 0
    while f"${tag}$" in text:
        n += 1
        tag = f"{DOLLAR_TAG}_{n}"
    quote = verbatim(f"${tag}$")
    return sql.Composed([quote, body, quote])


def do_block(body: sql.Composable) -> sql.Composed:
    """`DO` with `body` dollar-quoted (see `dollar_quoted`)."""
    return sql.Composed([sql.SQL("DO "), dollar_quoted(body)])


def for_parameters(part: sql.Composable) -> sql.SQL:
    """`part` inside a statement run with parameters: psycopg reads every `%` there as a
    placeholder, so a `%` the SQL itself means (a LIKE pattern in a CHECK, a literal) is doubled."""
    text: object = part.as_string(None).replace("%", "%%")
    return verbatim(text)


def comment(text: str) -> str:
    """`text` as one SQL line comment: a line break in a name it mentions cannot end the
    comment and start a statement."""
    return "-- " + " ".join(text.splitlines())


def render(steps: list[Step]) -> str:
    """SQL text for a list of steps: each titled with a comment and ended with a semicolon."""
    return "\n\n".join(f"{comment(s.title)}\n{s.render()};" for s in steps) + "\n"


def failures(config: Config) -> sql.Identifier:
    return ident(config.failures.schema, config.failures.table)


def ident(*names: str) -> sql.Identifier:
    return sql.Identifier(*names)


def name_literal(name: sql.Composable) -> sql.Literal:
    """A quoted name as a text value, for `::regclass`, `to_regclass()` and the like: the server
    reads it back exactly as the name (quotes and all)."""
    return sql.Literal(name.as_string(None))


def source(config: Config) -> sql.Identifier:
    return ident(config.source.schema, config.source.table)


def target(config: Config) -> sql.Identifier:
    return ident(config.target.schema, config.target.table)


def audit(config: Config) -> sql.Identifier:
    return ident(config.audit.schema, config.audit.table)


def function(config: Config) -> sql.Identifier:
    return ident(config.function_schema, config.function_name)


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
        Step(
            "and its identity sequence: an API role that may setval it to the maximum stops "
            "every later insert (default privileges grant sequences too)",
            do_block(
                sql.SQL(
                    "\nDECLARE s regclass;\nBEGIN\n"
                    "  FOR s IN SELECT d.objid::regclass FROM pg_catalog.pg_depend d\n"
                    "           JOIN pg_catalog.pg_class q ON q.oid = d.objid AND q.relkind = 'S'\n"
                    "           WHERE d.classid = 'pg_catalog.pg_class'::regclass\n"
                    "             AND d.refobjid = {table}::regclass AND d.deptype IN ('a', 'i') LOOP\n"
                    "    EXECUTE pg_catalog.format({revoke}, s);\n"
                    "  END LOOP;\n"
                    "END\n"
                ).format(
                    table=name_literal(table),
                    revoke=sql.Literal(
                        "REVOKE ALL ON SEQUENCE %s FROM " + grantees(shape).as_string(None)
                    ),
                )
            ),
        ),
    ]


def ghost_condition(config: Config, auth_alias: str = "au") -> sql.Composed:
    """`NOT EXISTS` anti-join: an auth row with no profile. Uses the target's unique key index."""
    return sql.SQL(
        "NOT EXISTS (SELECT 1 FROM {target} pu WHERE pu.{tkey} = {alias}.{skey})"
    ).format(
        target=target(config),
        tkey=ident(config.target.key),
        alias=ident(auth_alias),
        skey=ident(config.source.key),
    )


def unless_linked(
    config: Config, shape: Shape, auth_key: sql.Composable
) -> tuple[sql.Composable, sql.Composable]:
    """(WHERE clause, ON CONFLICT clause) that keep an insert from adding a second profile for
    the auth row whose key is `auth_key`. A unique link column gets `ON CONFLICT DO NOTHING`;
    a link without a unique index gets `WHERE NOT EXISTS` (a user has a profile when one row
    links to it; a concurrent write could still add a second one, which scan counts)."""
    if shape.key_unique:
        return sql.SQL(""), sql.SQL("ON CONFLICT ({}) DO NOTHING").format(ident(config.target.key))
    return (
        sql.SQL("WHERE NOT EXISTS (SELECT 1 FROM {} pu WHERE pu.{} = {})").format(
            target(config), ident(config.target.key), auth_key
        ),
        sql.SQL(""),
    )


def ghost_keys(config: Config) -> sql.Composed:
    """Keys of auth rows with no profile, as a set difference.

    EXCEPT is hashed or sorted, never a nested loop, so it stays linear even when the profile
    table's statistics are stale (an anti-join against a freshly analyzed empty table is planned as
    a nested loop over a sequential scan and turns quadratic as the table fills).
    """
    return sql.SQL("SELECT {skey} FROM {source} EXCEPT SELECT {tkey} FROM {target}").format(
        skey=ident(config.source.key),
        source=source(config),
        tkey=ident(config.target.key),
        target=target(config),
    )
