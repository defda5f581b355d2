"""Foreign keys to the auth table that make deleting a user fail, and the SQL that fixes them."""

from __future__ import annotations

from psycopg import sql

from ghostguard.catalog import ForeignKey
from ghostguard.config import Config
from ghostguard.sqlparts import (
    Step,
    ident,
    render,
    source,
)


def fix_blocking_foreign_key(fk: ForeignKey, config: Config) -> str:
    """SQL that makes a foreign key to the auth table stop failing user deletes.

    Nullable columns get ON DELETE SET NULL (the row stays, unlinked), others ON DELETE CASCADE.
    NOT VALID then VALIDATE: the ADD takes its lock briefly, the check runs without blocking writes.
    """
    action = sql.SQL("SET NULL" if fk.nullable else "CASCADE")
    table = ident(fk.schema, fk.table)
    name = ident(fk.name)
    steps = [
        Step(
            f"{fk.display}: deleting a user fails while this key says {fk.deletes_fail}",
            sql.SQL(
                "ALTER TABLE {table} DROP CONSTRAINT {name},\n"
                "  ADD CONSTRAINT {name} FOREIGN KEY ({cols}) REFERENCES {source} ({refs})\n"
                "  ON DELETE {action} NOT VALID"
            ).format(
                table=table,
                name=name,
                cols=sql.SQL(", ").join(map(ident, fk.columns)),
                source=source(config),
                refs=sql.SQL(", ").join(map(ident, fk.ref_columns)),
                action=action,
            ),
        ),
        Step(
            "check the existing rows without blocking writes",
            sql.SQL("ALTER TABLE {} VALIDATE CONSTRAINT {}").format(table, name),
        ),
    ]
    return render(steps)
