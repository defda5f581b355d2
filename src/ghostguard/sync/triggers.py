"""The three triggers on the auth table that call the sync function, and which of them a config needs."""

from __future__ import annotations

from psycopg import sql

from ghostguard.catalog import Shape
from ghostguard.config import Config
from ghostguard.sqlparts import (
    Step,
    function,
    ident,
    source,
)
from ghostguard.sync.function import TRANSITION
from ghostguard.sync.mapping import following, value


def insert_trigger(config: Config) -> Step:
    return Step(
        f"the trigger the guide names, once per INSERT statement on {config.source.display} "
        "(set-based: an import of many rows is one profile statement)",
        sql.SQL(
            "CREATE OR REPLACE TRIGGER {name}\n"
            "  AFTER INSERT ON {source}\n"
            "  REFERENCING NEW TABLE AS {transition}\n"
            "  FOR EACH STATEMENT EXECUTE FUNCTION {fn}()"
        ).format(
            name=ident(config.trigger_name),
            source=source(config),
            transition=ident(TRANSITION),
            fn=function(config),
        ),
    )


def watched_columns(config: Config, shape: Shape) -> list[str]:
    """Auth columns whose change can change a profile: what the UPDATE trigger listens to."""
    columns: list[str] = []
    for src in following(config).values():
        primary = src.column if src.column is not None else src.metadata_column
        for name in [primary, *sorted(src.auth_columns() - {primary, config.source.key})]:
            if name not in columns:
                columns.append(name)
    if shape.source_soft_delete and "deleted_at" not in columns:
        columns.append("deleted_at")
    return columns


def _changed(config: Config, shape: Shape) -> sql.Composable:
    """True when a value the profile takes from the row differs between OLD and NEW."""
    tests: list[sql.Composable] = [
        sql.SQL("({}) IS DISTINCT FROM ({})").format(
            value(src, sql.SQL("OLD"), shape, column, checks=False),
            value(src, sql.SQL("NEW"), shape, column, checks=False),
        )
        for column, src in following(config).items()
    ]
    if shape.source_soft_delete:
        tests.append(sql.SQL("OLD.deleted_at IS DISTINCT FROM NEW.deleted_at"))
    return sql.SQL("\n     OR ").join(tests)


def update_trigger(config: Config, shape: Shape) -> Step | None:
    """None when no profile column follows updates (and there is no soft delete to follow)."""
    columns = watched_columns(config, shape)
    if not columns:
        return None
    return Step(
        f"profiles follow updates of {config.source.display}: only UPDATE OF the mapped columns, "
        "only WHEN a mapped value changed (a sign-in does no profile work)",
        sql.SQL(
            "CREATE OR REPLACE TRIGGER {name}\n"
            "  AFTER UPDATE OF {columns} ON {source}\n"
            "  FOR EACH ROW\n"
            "  WHEN ({changed})\n"
            "  EXECUTE FUNCTION {fn}()"
        ).format(
            name=ident(config.update_trigger_name),
            columns=sql.SQL(", ").join(map(ident, columns)),
            source=source(config),
            changed=_changed(config, shape),
            fn=function(config),
        ),
    )


def delete_trigger(config: Config, shape: Shape) -> Step | None:
    """None when the profile's foreign key already acts on delete, or there is nothing to mark."""
    if shape.fk_handles_deletes or not shape.target_soft_delete:
        return None
    return Step(
        f"a hard-deleted {config.source.display} row marks its profile deleted (never removes it)",
        sql.SQL(
            "CREATE OR REPLACE TRIGGER {name}\n"
            "  AFTER DELETE ON {source}\n"
            "  FOR EACH ROW EXECUTE FUNCTION {fn}()"
        ).format(
            name=ident(config.delete_trigger_name), source=source(config), fn=function(config)
        ),
    )


def expected_triggers(config: Config, shape: Shape) -> list[str]:
    """The names of the triggers `triggers` creates for this config and these tables."""
    optional = (
        (config.update_trigger_name, update_trigger(config, shape)),
        (config.delete_trigger_name, delete_trigger(config, shape)),
    )
    return [config.trigger_name, *(name for name, step in optional if step is not None)]


def triggers(config: Config, shape: Shape) -> list[Step]:
    return [
        step
        for step in (
            insert_trigger(config),
            update_trigger(config, shape),
            delete_trigger(config, shape),
        )
        if step is not None
    ]
