"""How a profile row is made from an auth row: the mapped column expressions and the upsert."""

from __future__ import annotations

from typing import LiteralString

from psycopg import sql

from ghostguard.catalog import Shape
from ghostguard.config import USER_WRITABLE_METADATA, ColumnSource, Config
from ghostguard.sources import APP, APP_METADATA, DERIVED_VALUE, LITERAL, META, Fallback
from ghostguard.sqlparts import expression, for_parameters, ident, source, target, verbatim

# Identity columns the Auth server replaces with an opaque hash on soft delete: never copy those.
SCRUBBED_ON_SOFT_DELETE = frozenset({"email", "phone"})


def _column(row: sql.Composable, name: str, shape: Shape) -> sql.Composable:
    """An auth column; email and phone hidden once the user is soft-deleted (they hold a hash)."""
    expr: sql.Composable = sql.SQL("{}.{}").format(row, ident(name))
    if name in SCRUBBED_ON_SOFT_DELETE and shape.source_soft_delete:
        expr = sql.SQL("CASE WHEN {row}.{deleted} IS NULL THEN {expr} END").format(
            row=row, deleted=ident("deleted_at"), expr=expr
        )
    return expr


def _key(row: sql.Composable, metadata: str, key: str, as_json: bool = False) -> sql.Composable:
    """A metadata key: its text, empty as NULL; or its json value (for a jsonb column)."""
    if as_json:
        return sql.SQL("NULLIF({}.{} -> {}, 'null'::jsonb)").format(
            row, ident(metadata), sql.Literal(key)
        )
    return sql.SQL("NULLIF({}.{} ->> {}, '')").format(row, ident(metadata), sql.Literal(key))


def _fallback(f: Fallback, row: sql.Composable, shape: Shape, as_json: bool) -> sql.Composable:
    """One fallback source (a DERIVED value, a metadata key, a literal, or an auth column)."""
    hex_id = sql.SQL("replace({}.{}::text, '-', '')").format(row, ident("id"))
    if f.kind == DERIVED_VALUE and f.value == "email_local":
        return sql.SQL("NULLIF(split_part({}, '@', 1), '')").format(_column(row, "email", shape))
    if f.kind == DERIVED_VALUE and f.value == "id_handle":
        return sql.SQL("'user_' || left({}, 8)").format(hex_id)
    if f.kind == DERIVED_VALUE:  # placeholder_email
        return sql.SQL("{}.{}::text || '@placeholder.invalid'").format(row, ident("id"))
    if f.kind == LITERAL:
        literal = sql.Literal(f.value)
        return sql.SQL("{}::jsonb").format(literal) if as_json else literal
    if f.kind in (META, APP):
        metadata = USER_WRITABLE_METADATA if f.kind == META else APP_METADATA
        return _key(row, metadata, f.value, as_json)
    return _column(row, f.value, shape)


# Column types a text value (a metadata key, a literal) is cast to only when it has their form, so
# that a value that would not cast falls through to the next source instead of failing the write.
_CASTS: dict[str, tuple[sql.SQL, sql.SQL, str]] = {
    "boolean": (sql.SQL("boolean"), sql.SQL("~*"), "^(t|f|true|false|y|yes|n|no|on|off|1|0)$"),
    "smallint": (sql.SQL("smallint"), sql.SQL("~"), "^[+-]?[0-9]{1,4}$"),
    "integer": (sql.SQL("integer"), sql.SQL("~"), "^[+-]?[0-9]{1,9}$"),
    "bigint": (sql.SQL("bigint"), sql.SQL("~"), "^[+-]?[0-9]{1,18}$"),
    "numeric": (sql.SQL("numeric"), sql.SQL("~"), "^[+-]?([0-9]+[.]?[0-9]*|[.][0-9]+)$"),
    "date": (sql.SQL("date"), sql.SQL("~"), "^[0-9]{4}-[0-9]{2}-[0-9]{2}$"),
    "timestamp with time zone": (
        sql.SQL("timestamptz"),
        sql.SQL("~"),
        "^[0-9]{4}-[0-9]{2}-[0-9]{2}([ T][0-9:.]+)?(Z|[+-][0-9:]+)?$",
    ),
    "uuid": (sql.SQL("uuid"), sql.SQL("~*"), "^[0-9a-f]{8}(-[0-9a-f]{4}){3}-[0-9a-f]{12}$"),
}
CASTABLE_TYPES = frozenset(_CASTS)
TEXT = ("pg_catalog", "text")  # a column whose type the shape does not hold (init's sample)


def value(
    src: ColumnSource,
    row: sql.Composable,
    shape: Shape,
    column: str | None = None,
    checks: bool = True,
) -> sql.Composable:
    """The expression for one mapped profile column, read from an auth row (NEW or an alias):
    the first non-empty source. For an enum column a value counts only when it is a label; for a
    jsonb column metadata is taken as json; for boolean, number, date, timestamptz and uuid columns
    a text value only when it has their form. Otherwise the next source is tried, and the write
    never fails on a value that does not cast. With `checks`, a source that is not the last also
    counts only when the column's one-column CHECK constraints hold for it; the last is written as
    it is, so a value nothing can fix is recorded with its constraint, not silently emptied,
    except in a nullable column, where NULL fixes it. When every source is empty the column gets
    its DEFAULT (the server's own expression), not an explicit NULL. (A trigger's WHEN takes
    `checks=False`: it may not hold the subquery checks need, nor compare volatile defaults.)"""
    column_type = shape.type_of(column) if column is not None else None
    as_json = column_type in ("jsonb", "json")
    if src.expression is not None:
        tries: list[tuple[sql.Composable, bool]] = [(expression(src.expression, row), False)]
    elif src.column is not None:
        tries = [(_column(row, src.column, shape), False)]
    else:
        tries = [
            (_key(row, src.metadata_column, key, as_json), not as_json) for key in src.metadata
        ]
    tries += [(_fallback(f, row, shape, as_json), f.is_text) for f in src.fallbacks]
    default = shape.default_of(column) if column is not None and checks else None
    if default is not None:  # every source empty: the column's DEFAULT, not an explicit NULL
        tries.append((verbatim(default), False))
    # Every source but the last gives way when it breaks a CHECK; so does the last of a
    # nullable column (NULL is a fixable row; a NOT NULL column's last value is recorded).
    checked = (
        len(tries) if column is not None and column in shape.nullable_columns else len(tries) - 1
    )
    if default is not None:
        checked = len(tries) - 1  # the DEFAULT itself is written as it is
    enum = shape.enum_of(column) if column is not None else None
    cast = _CASTS.get(column_type or "")
    exprs: list[sql.Composable] = []
    for n, (expr, is_text) in enumerate(tries, 1):
        if enum is not None:
            expr = sql.SQL(
                "CASE WHEN ({v})::text = ANY (enum_range(NULL::{t})::text[]) THEN ({v})::{t} END"
            ).format(v=expr, t=ident(*enum))
        elif cast is not None and is_text:
            type_sql, op, pattern = cast
            expr = sql.SQL("CASE WHEN ({v}) {op} {p} THEN ({v})::{t} END").format(
                v=expr, op=op, p=sql.Literal(pattern), t=type_sql
            )
        if column is not None and checks and n <= checked:
            expr = _within_checks(expr, column, shape)
        exprs.append(expr)
    if len(exprs) == 1:
        return exprs[0]
    if enum is None:  # COALESCE(au.email, au.id): varchar and uuid meet in the column's type
        type_name = (shape.type_name_of(column) if column is not None else None) or TEXT
        exprs = [sql.SQL("({})::{}").format(e, ident(*type_name)) for e in exprs]
    return sql.SQL("COALESCE({})").format(sql.SQL(", ").join(exprs))


def _within_checks(expr: sql.Composable, column: str, shape: Shape) -> sql.Composable:
    """`expr` when the column's one-column CHECK constraints hold for it (or say NULL, as CHECK
    does), else NULL so the next source is tried. The constraint text is the server's own
    (pg_get_expr); the value is bound to the column's name in a one-row subquery."""
    checks = shape.checks_of(column)
    type_name = shape.type_name_of(column)
    if not checks or type_name is None:
        return expr
    holds = sql.SQL(" AND ").join(sql.SQL("({})").format(verbatim(c)) for c in checks)
    return sql.SQL(
        "CASE WHEN (SELECT {holds} FROM (SELECT ({v})::{t} AS {col}) ghostguard_check) "
        "IS NOT FALSE THEN {v} END"
    ).format(holds=holds, v=expr, t=ident(*type_name), col=ident(column))


def collision_safe(
    config: Config, shape: Shape, column: str, expr: sql.Composable, row: sql.Composable
) -> sql.Composable:
    """A UNIQUE column's value when another profile already holds it: suffixed with the user id's
    first hex digits (`on_collision = "suffix"`) or left empty (`"null"`). Compared in the
    column's own type, so a citext column sees `Kim@x` and `kim@x` as the same value."""
    rule = config.mapping[column].on_collision
    if rule is None:
        return expr
    type_name = shape.type_name_of(column)
    as_column: sql.Composable = expr
    equals: sql.Composable = sql.SQL("=")
    if type_name is not None:
        as_column = sql.SQL("({})::{}").format(expr, ident(*type_name))
        if type_name[0] != "pg_catalog":
            # The function's search_path is empty: an extension type's `=` (citext's) is found
            # only by its schema, else the comparison falls back to text's, case-sensitive.
            equals = sql.SQL("OPERATOR({}.=)").format(ident(type_name[0]))
    taken = sql.SQL(
        "EXISTS (SELECT 1 FROM {target} taken WHERE taken.{col} {equals} {expr} "
        "AND taken.{tkey} IS DISTINCT FROM {row}.{skey})"
    ).format(
        target=target(config),
        col=ident(column),
        equals=equals,
        expr=as_column,
        tkey=ident(config.target.key),
        row=row,
        skey=ident(config.source.key),
    )
    instead = (
        sql.SQL("{} || '_' || left(replace({}.{}::text, '-', ''), 6)").format(
            expr, row, ident(config.source.key)
        )
        if rule == "suffix"
        else sql.SQL("NULL")
    )
    return sql.SQL("CASE WHEN {} THEN {} ELSE {} END").format(taken, instead, expr)


def profile_values(
    config: Config, shape: Shape, row: sql.Composable
) -> list[tuple[str, sql.Composable]]:
    """Each profile column a new profile gets, with its expression over an auth row."""
    pairs: list[tuple[str, sql.Composable]] = [
        (config.target.key, sql.SQL("{}.{}").format(row, ident(config.source.key)))
    ]
    pairs += [
        (column, collision_safe(config, shape, column, value(src, row, shape, column), row))
        for column, src in config.mapping.items()
    ]
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
    config: Config,
    shape: Shape,
    row: sql.Composable,
    where: sql.Composable | None = None,
    parameters: bool = False,
) -> sql.Composed:
    """Create the profile from an auth row, or bring its following columns up to date (writing
    only when something differs, so a no-op update leaves no dead row).

    `row` is NEW in the trigger; with `where`, it is the alias of the auth table filtered by it.
    `parameters`: the statement runs with parameters (see `for_parameters`).
    """
    columns, values = profile_columns(config, shape, row)
    if parameters:
        values = for_parameters(values)
    rows = (
        sql.SQL("VALUES ({})").format(values)
        if where is None
        else sql.SQL("SELECT {} FROM {} {} WHERE {}").format(values, source(config), row, where)
    )
    changing = _upsert_set(config, shape)
    return _update_or_insert(config, shape, columns, rows, changing)


def _columns_of(alias: LiteralString, columns: list[str]) -> sql.Composed:
    return sql.SQL(", ").join(sql.SQL("{}.{}").format(sql.SQL(alias), ident(c)) for c in columns)


def _update_or_insert(
    config: Config,
    shape: Shape,
    columns: sql.Composable,
    rows: sql.Composable,
    changing: list[str],
) -> sql.Composed:
    """`upsert_profile`: update every profile linked to the user that differs, and insert one
    only when none links to it. Not `INSERT … ON CONFLICT DO UPDATE`, which fires the app's
    BEFORE INSERT triggers on the profile table for every update (the app's own UPDATE does
    not); a unique link still gets `ON CONFLICT DO NOTHING` against a concurrent insert."""
    key = ident(config.target.key)
    update = (
        sql.SQL(
            ", changed AS (\n  UPDATE {target} pu SET {sets}{touch} FROM incoming i\n"
            "  WHERE pu.{key} = i.{key} AND ({old}) IS DISTINCT FROM ({new}))"
        ).format(
            target=target(config),
            sets=sql.SQL(", ").join(sql.SQL("{0} = i.{0}").format(ident(c)) for c in changing),
            touch=touch_updated_at(shape),
            key=key,
            old=_columns_of("pu", changing),
            new=_columns_of("i", changing),
        )
        if changing
        else sql.SQL("")
    )
    return sql.SQL(
        "WITH incoming ({columns}) AS (\n  {rows}\n){update}\n"
        "INSERT INTO {target} ({columns})\n"
        "  SELECT * FROM incoming i\n"
        "  WHERE NOT EXISTS (SELECT 1 FROM {target} pu WHERE pu.{key} = i.{key}){conflict}"
    ).format(
        columns=columns,
        rows=rows,
        update=update,
        target=target(config),
        key=key,
        conflict=sql.SQL("\n  ON CONFLICT ({}) DO NOTHING").format(key)
        if shape.key_unique
        else sql.SQL(""),
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


# What each placeholder fallback writes, as a pattern over the column's text.
PLACEHOLDER_PATTERNS = {
    "placeholder_email": r"^[0-9a-f-]{36}@placeholder\.invalid$",
    "id_handle": r"^user_[0-9a-f]{8}(_[0-9a-f]{6})?$",
}


def placeholder_count(config: Config) -> sql.Composed | None:
    """Profiles holding a placeholder in a column whose mapping falls back to one (None: no
    mapping does). The app can ask those users to complete their profile."""
    tests = [
        sql.SQL("{}::text ~ {}").format(ident(column), sql.Literal(PLACEHOLDER_PATTERNS[f]))
        for column, src in config.mapping.items()
        for f in (f.value for f in src.fallbacks if f.placeholder)
        if f in PLACEHOLDER_PATTERNS
    ]
    if not tests:
        return None
    return sql.SQL("SELECT count(*) FROM {} WHERE {}").format(
        target(config), sql.SQL(" OR ").join(tests)
    )
