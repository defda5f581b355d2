"""Read what the live catalog says about the tables, trigger and function ghostguard manages."""

from __future__ import annotations

import json
from dataclasses import dataclass

import psycopg
from psycopg import sql
from psycopg.rows import dict_row

from ghostguard import sqlfiles
from ghostguard.config import Config, TableRef
from ghostguard.errors import ConfigError
from ghostguard.sources import LITERAL
from ghostguard.sqlparts import expression

_SQL = sqlfiles.statements(__name__, "catalog.sql")
API_ROLES = ("anon", "authenticated", "service_role")

# Columns of Supabase's auth.users that decide which kind of user a row is (see supabase-facts.md).
KIND_COLUMNS = ("email", "phone", "is_anonymous", "is_sso_user", "deleted_at")


@dataclass(frozen=True)
class Column:
    name: str
    type: str
    not_null: bool
    has_default: bool
    generated: bool
    enum_type: tuple[str, str] | None = None  # (schema, name) when the column is an enum
    type_name: tuple[str, str] = ("pg_catalog", "text")  # (schema, name): to cast to it by name


TRIGGER_STATES = {
    "O": "enabled",
    "A": "enabled always",
    "R": "enabled on replicas only",
    "D": "disabled",
}


@dataclass(frozen=True)
class TriggerState:
    name: str
    enabled: str  # pg_trigger.tgenabled: O (origin), A (always), R (replica), D (disabled)
    table_schema: str
    table_name: str
    function_schema: str
    function_name: str
    definition: str

    @property
    def is_enabled(self) -> bool:
        return self.enabled in ("O", "A")

    @property
    def state(self) -> str:
        """tgenabled spelled out, with the code: `enabled (O)`, `disabled (D)`, ..."""
        return f"{TRIGGER_STATES.get(self.enabled, 'unknown')} ({self.enabled})"

    @property
    def table(self) -> str:
        return f"{self.table_schema}.{self.table_name}"

    @property
    def function(self) -> str:
        return f"{self.function_schema}.{self.function_name}()"

    def calls(self, config: Config) -> bool:
        return (self.function_schema, self.function_name) == (
            config.function_schema,
            config.function_name,
        )

    def is_on(self, table: TableRef) -> bool:
        return (self.table_schema, self.table_name) == (table.schema, table.table)


@dataclass(frozen=True)
class FunctionState:
    name: str
    security_definer: bool
    search_path: str | None  # the pinned value, None when not pinned
    owner: str
    executable_by: tuple[str, ...]  # PUBLIC and API roles that hold EXECUTE
    definition_md5: str | None = None  # md5(pg_get_functiondef): compared with apply's record


@dataclass(frozen=True)
class Shape:
    """What the generated SQL needs to know about the live tables (or assumes, offline)."""

    source_soft_delete: bool
    target_soft_delete: str | None
    kind_columns: tuple[str, ...]
    api_roles: tuple[str, ...]
    # ON DELETE action of the profile's foreign key to the auth table (None: no such key). When
    # the key cascades (or sets null/default) PostgreSQL handles hard deletes itself.
    target_fk_delete: str | None = None
    target_updated_at: str | None = None  # set to now() when an update changes a profile
    source_key_type: str = (
        "uuid"  # to cast a key kept as text (failure rows) back for an index lookup
    )
    # Mapped profile columns of an enum type: (column, type schema, type name). A value that is
    # not one of the labels falls through to the next source instead of failing the write.
    enum_columns: tuple[tuple[str, str, str], ...] = ()
    # Mapped profile columns and their types (format_type, without a modifier).
    column_types: tuple[tuple[str, str], ...] = ()
    # Mapped profile columns and their types by name: (column, type schema, type name).
    type_names: tuple[tuple[str, str, str], ...] = ()
    # The profile's link column is a primary key or a full unique index. When it is not (a
    # generated id PK and a plain `user_id`), a user has a profile when at least one row links
    # to it, and writes check for that row instead of ON CONFLICT.
    key_unique: bool = True
    # CHECK constraints over one mapped column: (column, expression). A value that breaks one
    # falls through to the next source, like a value that does not cast.
    column_checks: tuple[tuple[str, str], ...] = ()
    # DEFAULT expressions of mapped columns: what a column gets when every source is empty.
    column_defaults: tuple[tuple[str, str], ...] = ()
    # Mapped columns that may be NULL: a value that breaks their CHECK is written as NULL.
    nullable_columns: tuple[str, ...] = ()

    def default_of(self, column: str) -> str | None:
        return next((e for c, e in self.column_defaults if c == column), None)

    def enum_of(self, column: str) -> tuple[str, str] | None:
        return next(((s, n) for c, s, n in self.enum_columns if c == column), None)

    def type_of(self, column: str) -> str | None:
        return next((t for c, t in self.column_types if c == column), None)

    def checks_of(self, column: str) -> list[str]:
        return [e for c, e in self.column_checks if c == column]

    def type_name_of(self, column: str) -> tuple[str, str] | None:
        return next(((s, n) for c, s, n in self.type_names if c == column), None)

    @property
    def fk_handles_deletes(self) -> bool:
        return self.target_fk_delete in ("CASCADE", "SET NULL", "SET DEFAULT")


def supabase_shape(config: Config) -> Shape:
    """The shape of a hosted Supabase project, used when no database is at hand (offline files)."""
    return Shape(
        source_soft_delete=True,
        target_soft_delete=config.soft_delete_column,
        kind_columns=KIND_COLUMNS,
        api_roles=API_ROLES,
    )


@dataclass(frozen=True)
class ForeignKey:
    """A foreign key from some table to the auth table, and what it does when a user is deleted."""

    name: str
    schema: str
    table: str
    columns: tuple[str, ...]
    ref_columns: tuple[str, ...]
    on_delete: str  # NO ACTION, RESTRICT, CASCADE, SET NULL, SET DEFAULT
    nullable: bool  # every referencing column may be NULL
    defaulted: bool = True  # every NOT NULL referencing column has a default

    @property
    def deletes_fail(self) -> str | None:
        """Why deleting a referenced user fails ("Database error deleting user"), or None:
        NO ACTION / RESTRICT, SET NULL into a NOT NULL column, SET DEFAULT into a NOT NULL
        column without a default."""
        if self.on_delete in ("NO ACTION", "RESTRICT"):
            return f"ON DELETE {self.on_delete}"
        if self.on_delete == "SET NULL" and not self.nullable:
            return "ON DELETE SET NULL on a NOT NULL column"
        if self.on_delete == "SET DEFAULT" and not self.defaulted:
            return "ON DELETE SET DEFAULT on a NOT NULL column without a default"
        return None

    @property
    def blocks_deletes(self) -> bool:
        return self.deletes_fail is not None

    @property
    def display(self) -> str:
        return f"{self.schema}.{self.table}.{self.name}"


_ON_DELETE = {
    "a": "NO ACTION",
    "r": "RESTRICT",
    "c": "CASCADE",
    "n": "SET NULL",
    "d": "SET DEFAULT",
}


def foreign_keys_to(conn: psycopg.Connection, table: TableRef) -> list[ForeignKey]:
    """Every foreign key that references `table`, from any schema."""
    rows = conn.execute(_SQL["foreign_keys_to"], (table.schema, table.table)).fetchall()
    return [
        ForeignKey(
            name, schema, rel, tuple(cols), tuple(refs), _ON_DELETE[action], nullable, defaulted
        )
        for name, schema, rel, cols, refs, action, nullable, defaulted in rows
    ]


def profile_foreign_key(keys: list[ForeignKey], config: Config) -> ForeignKey | None:
    """The profile table's key referencing the auth table's key, if there is one."""
    return next(
        (
            k
            for k in keys
            if (k.schema, k.table) == (config.target.schema, config.target.table)
            and k.columns == (config.target.key,)
            and k.ref_columns == (config.source.key,)
        ),
        None,
    )


def table_columns(conn: psycopg.Connection, table: TableRef) -> dict[str, Column] | None:
    """Columns of a table (or None when it does not exist or is not visible to us)."""
    rows = conn.execute(_SQL["table_columns"], (table.schema, table.table)).fetchall()
    if not rows:
        exists = conn.execute(_SQL["table_exists"], (table.schema, table.table)).fetchone()
        return {} if exists and exists[0] else None
    return {
        r[0]: Column(
            r[0], r[1], r[2], r[3], r[4], (r[5][0], r[5][1]) if r[5] else None, (r[6][0], r[6][1])
        )
        for r in rows
    }


def is_unique_key(conn: psycopg.Connection, table: TableRef, column: str) -> bool:
    """True when `column` alone is a primary key or a full (non-partial) unique index: ON CONFLICT needs it."""
    row = conn.execute(_SQL["is_unique_key"], (table.schema, table.table, column)).fetchone()
    return bool(row and row[0])


def _printed_qualified(
    conn: psycopg.Connection, query: str, table: TableRef
) -> list[tuple[str, str]]:
    """(column, expression) rows of a catalog query whose expressions are printed with an empty
    search_path, so every name the sync function (search_path '') needs is qualified. The
    setting is put back after."""
    previous = conn.execute("SELECT current_setting('search_path')").fetchone()
    conn.execute("SELECT set_config('search_path', '', false)")
    try:
        rows = conn.execute(_SQL[query], (table.schema, table.table)).fetchall()
    finally:
        conn.execute(
            "SELECT set_config('search_path', %s, false)", (previous[0] if previous else "",)
        )
    return [(str(column), str(expression)) for column, expression in rows]


def column_checks(conn: psycopg.Connection, table: TableRef) -> list[tuple[str, str]]:
    """CHECK constraints over a single column."""
    return _printed_qualified(conn, "column_checks", table)


def column_defaults(conn: psycopg.Connection, table: TableRef) -> list[tuple[str, str]]:
    """DEFAULT expressions of the table's plain columns."""
    return _printed_qualified(conn, "column_defaults", table)


def existing_roles(conn: psycopg.Connection, names: tuple[str, ...]) -> tuple[str, ...]:
    rows = conn.execute(
        "SELECT rolname FROM pg_catalog.pg_roles WHERE rolname = ANY(%s)", (list(names),)
    ).fetchall()
    present = {r[0] for r in rows}
    return tuple(n for n in names if n in present)


def triggers_on(conn: psycopg.Connection, table: TableRef) -> list[TriggerState]:
    """User triggers on a table, with the function each one calls."""
    query = sqlfiles.template(__name__, "catalog.sql", "triggers").format(
        schema=sql.SQL("tn.nspname"), name=sql.SQL("tc.relname"), extra=sql.SQL("")
    )
    rows = conn.execute(query, {"schema": table.schema, "name": table.table}).fetchall()
    return [TriggerState(*r) for r in rows]


def triggers_calling(conn: psycopg.Connection, config: Config) -> list[TriggerState]:
    """Every trigger, on any table, that calls our function (what DROP FUNCTION ... CASCADE would drop)."""
    query = sqlfiles.template(__name__, "catalog.sql", "triggers").format(
        schema=sql.SQL("pn.nspname"), name=sql.SQL("p.proname"), extra=sql.SQL("AND p.pronargs = 0")
    )
    rows = conn.execute(
        query, {"schema": config.function_schema, "name": config.function_name}
    ).fetchall()
    return [TriggerState(*r) for r in rows]


def function_state(conn: psycopg.Connection, config: Config) -> FunctionState | None:
    """Security-relevant properties of the trigger function with no arguments, if it exists."""
    with conn.cursor(row_factory=dict_row) as cur:
        row = cur.execute(
            _SQL["function_state"],
            (config.function_schema, config.function_name),
        ).fetchone()
    if row is None:
        return None
    return FunctionState(
        name=row["name"],
        security_definer=row["definer"],
        search_path=row["search_path"],
        owner=row["owner"],
        executable_by=tuple(row["executable_by"]),
        definition_md5=row["definition_md5"],
    )


def our_trigger(triggers: list[TriggerState], config: Config) -> TriggerState | None:
    return next((t for t in triggers if t.name == config.trigger_name), None)


def resolve(conn: psycopg.Connection, config: Config) -> Shape:
    """Validate the config against the live catalog; every problem is a ConfigError saying what to fix."""
    source_cols = _require_table(conn, config.source, "source")
    target_cols = _require_table(conn, config.target, "target (profile)")
    for ref, cols, role in (
        (config.source, source_cols, "source"),
        (config.target, target_cols, "target"),
    ):
        if ref.key not in cols:
            raise ConfigError(f"{role} key column {ref.key!r} not found in {ref.display}")
    for column, src in config.mapping.items():
        if column not in target_cols:
            raise ConfigError(f"mapping: column {column!r} not found in {config.target.display}")
        if src.expression is not None:
            _compile(conn, config, column, src.expression)
            continue
        if target_cols[column].generated:
            raise ConfigError(
                f"mapping: {config.target.display}.{column} is generated and cannot be written"
            )
        wanted = src.column if src.column is not None else src.metadata_column
        if wanted not in source_cols:
            raise ConfigError(
                f"mapping.{column}: column {wanted!r} not found in {config.source.display}"
            )
        if src.column is None and source_cols[wanted].type not in ("jsonb", "json"):
            raise ConfigError(
                f"mapping.{column}: {config.source.display}.{wanted} is not json/jsonb"
            )
        for read in sorted(src.auth_columns() - {wanted}):
            if read not in source_cols:
                raise ConfigError(
                    f"mapping.{column}.fallback: column {read!r} not found in {config.source.display}"
                )
        if target_cols[column].type in ("jsonb", "json"):
            for fallback in src.fallbacks:
                if fallback.kind == LITERAL and not _is_json(fallback.value):
                    raise ConfigError(
                        f"mapping.{column}.fallback: {str(fallback)!r} is not JSON, and "
                        f"{config.target.display}.{column} is {target_cols[column].type}"
                    )
        if src.on_collision == "null" and target_cols[column].not_null:
            raise ConfigError(
                f'mapping.{column}: on_collision = "null" but {config.target.display}.{column} '
                'is NOT NULL: use on_collision = "suffix"'
            )
    target_soft_delete = (
        config.soft_delete_column if config.soft_delete_column in target_cols else None
    )
    written = {
        config.target.key,
        *config.mapping,
        *([target_soft_delete] if target_soft_delete else []),
    }
    for col in target_cols.values():
        if col.not_null and not col.has_default and not col.generated and col.name not in written:
            raise ConfigError(
                f"{config.target.display}.{col.name} is NOT NULL with no default and no mapping: "
                f"add it under [mapping] or give it a default"
            )
    profile_fk = profile_foreign_key(foreign_keys_to(conn, config.source), config)
    return Shape(
        source_soft_delete="deleted_at" in source_cols,
        target_soft_delete=target_soft_delete,
        kind_columns=tuple(c for c in KIND_COLUMNS if c in source_cols),
        api_roles=existing_roles(conn, API_ROLES),
        target_fk_delete=profile_fk.on_delete if profile_fk else None,
        enum_columns=tuple(
            (c, *enum) for c in config.mapping if (enum := target_cols[c].enum_type) is not None
        ),
        column_types=tuple((c, target_cols[c].type.split("(")[0]) for c in config.mapping),
        type_names=tuple((c, *target_cols[c].type_name) for c in config.mapping),
        source_key_type=source_cols[config.source.key].type,
        key_unique=is_unique_key(conn, config.target, config.target.key),
        column_checks=tuple(
            (c, e) for c, e in column_checks(conn, config.target) if c in config.mapping
        ),
        column_defaults=tuple(
            (c, e) for c, e in column_defaults(conn, config.target) if c in config.mapping
        ),
        nullable_columns=tuple(c for c in config.mapping if not target_cols[c].not_null),
        target_updated_at=(
            "updated_at"
            if "updated_at" in target_cols and "updated_at" not in config.mapping
            else None
        ),
    )


def _compile(conn: psycopg.Connection, config: Config, column: str, text: str) -> None:
    """Plan the escape hatch's expression against the live auth table, in a read-only transaction
    that is rolled back: a typo or an unknown column is a one-line error before anything runs."""
    query = sql.SQL("SELECT {} FROM {} au LIMIT 0").format(
        expression(text, sql.SQL("au")), sql.Identifier(config.source.schema, config.source.table)
    )
    try:
        with conn.transaction(force_rollback=True):
            conn.execute("SET TRANSACTION READ ONLY")
            conn.execute(query)
    except psycopg.Error as exc:
        message = (exc.diag.message_primary if exc.diag else None) or str(exc)
        raise ConfigError(
            f"mapping.{column}.sql does not compile against {config.source.display}: {message}"
        ) from None


def _is_json(text: str) -> bool:
    try:
        json.loads(text)
    except ValueError:
        return False
    return True


def _require_table(conn: psycopg.Connection, ref: TableRef, role: str) -> dict[str, Column]:
    cols = table_columns(conn, ref)
    if cols is None:
        raise ConfigError(
            f"{role} table {ref.display} not found (or not visible to this role); "
            f"set [{role.split()[0]}] in ghostguard.toml"
        )
    if not cols:
        raise ConfigError(f"{role} table {ref.display} has no columns visible to this role")
    return cols
