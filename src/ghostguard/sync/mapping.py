"""How a profile row is made from an auth row: the mapped column expressions and the upsert."""

from __future__ import annotations

from psycopg import sql

from ghostguard.catalog import Shape
from ghostguard.config import ColumnSource, Config
from ghostguard.sqlparts import ident, source, target

# Identity columns the Auth server replaces with an opaque hash on soft delete: never copy those.
SCRUBBED_ON_SOFT_DELETE = frozenset({"email", "phone"})


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


def profile_values(
    config: Config, shape: Shape, row: sql.Composable
) -> list[tuple[str, sql.Composable]]:
    """Each profile column a new profile gets, with its expression over an auth row."""
    pairs: list[tuple[str, sql.Composable]] = [
        (config.target.key, sql.SQL("{}.{}").format(row, ident(config.source.key)))
    ]
    pairs += [(column, value(src, row, shape)) for column, src in config.mapping.items()]
    soft = shape.target_soft_delete
    if soft and shape.source_soft_delete and soft not in config.mapping:
        pairs.append((soft, sql.SQL("{}.{}").format(row, ident("deleted_at"))))
    return pairs


def profile_columns(
    config: Config, shape: Shape, row: sql.Composable
) -> tuple[sql.Composable, sql.Composable]:
    """(column list, value list) for a profile INSERT built from an auth row."""
    pairs = profile_values(config, shape, row)
    return (
        sql.SQL(", ").join(ident(name) for name, _ in pairs),
        sql.SQL(", ").join(expr for _, expr in pairs),
    )


def touch_updated_at(shape: Shape) -> sql.Composable:
    """`, updated_at = now()` when the profile table has an updated_at ghostguard does not map."""
    if not shape.target_updated_at:
        return sql.SQL("")
    return sql.SQL(", {} = now()").format(ident(shape.target_updated_at))


def following(config: Config) -> dict[str, ColumnSource]:
    return {col: src for col, src in config.mapping.items() if src.follow_updates}


def _upsert_set(config: Config, shape: Shape) -> list[str]:
    """Profile columns an update may change: the following mapped columns and the soft delete."""
    columns = list(following(config))
    soft = shape.target_soft_delete
    if soft and shape.source_soft_delete and soft not in config.mapping:
        columns.append(soft)
    return columns


def upsert_profile(
    config: Config, shape: Shape, row: sql.Composable, where: sql.Composable | None = None
) -> sql.Composed:
    """Create the profile from an auth row, or bring its following columns up to date (writing
    only when something differs, so a no-op update leaves no dead row).

    `row` is NEW in the trigger; with `where`, it is the alias of the auth table filtered by it.
    """
    columns, values = profile_columns(config, shape, row)
    rows = (
        sql.SQL("VALUES ({})").format(values)
        if where is None
        else sql.SQL("SELECT {} FROM {} {} WHERE {}").format(values, source(config), row, where)
    )
    changing = _upsert_set(config, shape)
    if not changing:
        conflict: sql.Composable = sql.SQL("DO NOTHING")
    else:
        sets = sql.SQL(", ").join(sql.SQL("{0} = EXCLUDED.{0}").format(ident(c)) for c in changing)
        conflict = sql.SQL(
            "DO UPDATE SET {sets}{touch}\n  WHERE ({old}) IS DISTINCT FROM ({new})"
        ).format(
            sets=sets,
            touch=touch_updated_at(shape),
            old=sql.SQL(", ").join(sql.SQL("pu.{}").format(ident(c)) for c in changing),
            new=sql.SQL(", ").join(sql.SQL("EXCLUDED.{}").format(ident(c)) for c in changing),
        )
    return sql.SQL(
        "INSERT INTO {target} AS pu ({columns})\n  {rows}\n  ON CONFLICT ({key}) {conflict}"
    ).format(
        target=target(config),
        columns=columns,
        rows=rows,
        key=ident(config.target.key),
        conflict=conflict,
    )


def mark_deleted(
    config: Config, shape: Shape, key: sql.Composable, at: sql.Composable
) -> sql.Composed:
    """Soft-delete one profile (only when it is not marked yet). Needs a soft-delete column."""
    assert shape.target_soft_delete, "mark_deleted needs the profile's soft-delete column"
    return sql.SQL(
        "UPDATE {target} SET {soft} = {at}{touch} WHERE {key} = {value} AND {soft} IS NULL"
    ).format(
        target=target(config),
        soft=ident(shape.target_soft_delete),
        at=at,
        touch=touch_updated_at(shape),
        key=ident(config.target.key),
        value=key,
    )
