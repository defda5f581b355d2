"""What ghostguard syncs, from where to where: defaults reproduce the deployment guide exactly."""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

import pgparse
import tomli_w

from ghostguard.errors import ConfigError

DEFAULT_CONFIG_FILE = "ghostguard.toml"


@dataclass(frozen=True)
class TableRef:
    """A schema-qualified table and the key column that links auth rows to profiles."""

    schema: str
    table: str
    key: str = "id"

    @property
    def display(self) -> str:
        return f"{self.schema}.{self.table}"


# Values a fallback can derive from the auth row, for columns every kind of user must fill.
# Placeholders are obviously placeholders (an .invalid address, an id handle), so an app can find
# and ask the user to complete them; `scan` counts them.
DERIVED = {
    "email_local": "the email's local part (before @)",
    "id_handle": "a handle from the user id, user_1a2b3c4d (a placeholder)",
    "placeholder_email": "<user id>@placeholder.invalid (a placeholder)",
}
PLACEHOLDERS = frozenset({"id_handle", "placeholder_email"})
ON_COLLISION = ("suffix", "null")  # a UNIQUE column's value already taken by another profile


@dataclass(frozen=True)
class ColumnSource:
    """Where one profile column's value comes from: an auth column, or metadata keys tried in order,
    then `fallbacks` in order (first non-empty wins): auth columns, `meta:key` (user metadata),
    `app:key` (app metadata), a derived value (DERIVED) or `literal:text`."""

    column: str | None = None
    metadata: tuple[str, ...] = ()
    metadata_column: str = "raw_user_meta_data"
    follow_updates: bool = True  # the profile column follows later changes of the auth row
    fallbacks: tuple[str, ...] = ()
    on_collision: str | None = None  # "suffix": value_1a2b3c; "null": leave it empty
    # The escape hatch: one SQL expression over the auth row `au`, checked to be exactly one
    # expression when read and compiled against the live catalog before anything runs.
    expression: str | None = None

    def describe(self) -> str:
        if self.expression is not None:
            first = f"sql: {self.expression}"
        elif self.column is not None:
            first = self.column
        else:
            first = ", then ".join(f"{self.metadata_column}->>'{k}'" for k in self.metadata)
        return ", then ".join([first, *self.fallbacks])

    @property
    def never_null(self) -> bool:
        """A fallback always gives a value (a placeholder or a literal)."""
        return any(f in PLACEHOLDERS or f.startswith("literal:") for f in self.fallbacks)

    def auth_columns(self) -> set[str]:
        """The auth columns the value is read from (an UPDATE of one may change it); an
        expression's are not tracked (it is set once: update = false)."""
        read: set[str] = (
            set()
            if self.expression is not None
            else {self.column if self.column is not None else self.metadata_column}
        )
        for f in self.fallbacks:
            kind, _, _ = f.partition(":")
            if f in ("email_local", "placeholder_email", "id_handle"):
                read.add("email" if f == "email_local" else "id")
            elif kind == "meta":
                read.add(USER_WRITABLE_METADATA)
            elif kind == "app":
                read.add("raw_app_meta_data")
            elif kind != "literal":
                read.add(f)
        return read


@dataclass(frozen=True)
class Config:
    """Everything the generated SQL depends on; every name here ends up quoted with sql.Identifier."""

    source: TableRef = TableRef("auth", "users")
    target: TableRef = TableRef("public", "users")
    trigger_name: str = "on_auth_user_created"
    update_trigger_name: str = "on_auth_user_updated"
    delete_trigger_name: str = "on_auth_user_deleted"
    function_schema: str = "public"
    function_name: str = "handle_new_user"
    audit: TableRef = TableRef("public", "cleanup_audit_log")
    failures: TableRef = TableRef("public", "profile_sync_failures")
    job_name: str = "backfill_ghost_users"
    mapping: dict[str, ColumnSource] = field(default_factory=lambda: dict(DEFAULT_MAPPING))
    soft_delete_column: str | None = "deleted_at"
    lock_timeout: str = "1s"  # every lock ghostguard waits for: DDL and each backfill batch

    @property
    def function_display(self) -> str:
        return f"{self.function_schema}.{self.function_name}()"

    @property
    def trigger_names(self) -> tuple[str, str, str]:
        """Insert, update and delete triggers: all call the one sync function."""
        return (self.trigger_name, self.update_trigger_name, self.delete_trigger_name)


# Metadata keys the identity providers fill (Supabase copies the provider's claims into
# raw_user_meta_data): Google and Azure send full_name/name and picture/avatar_url, GitHub
# full_name/name, user_name and avatar_url, Apple full_name (first sign-in only) or nothing, magic
# link and phone signups nothing at all (their columns are email and phone).
DEFAULT_MAPPING: dict[str, ColumnSource] = {
    "email": ColumnSource(column="email"),
    "full_name": ColumnSource(
        metadata=("full_name", "name", "user_name", "preferred_username", "nickname")
    ),
    "avatar_url": ColumnSource(metadata=("avatar_url", "picture")),
    "created_at": ColumnSource(column="created_at", follow_updates=False),
}

# raw_user_meta_data is written by the user (supabase.auth.updateUser({ data })): a privilege
# read from it is a privilege anyone can grant themselves. Such keys must come from
# raw_app_meta_data, which only the service role and the Auth server write.
PRIVILEGED_NAMES = frozenset(
    {
        "role", "roles", "user_role", "app_role", "is_admin", "admin", "is_super_admin",
        "superuser", "tenant", "tenant_id", "org", "org_id", "organization", "organization_id",
        "team_id", "permissions", "scopes", "claims", "groups", "plan", "subscription",
    }
)  # fmt: skip
USER_WRITABLE_METADATA = "raw_user_meta_data"


def _section(data: dict[str, Any], name: str, allowed: set[str] | None) -> dict[str, Any]:
    """One [section] of the file; `allowed=None` accepts any key (the mapping's column names)."""
    found: object = data.get(name, {})
    if not isinstance(found, dict):
        raise ConfigError(f"[{name}] must be a table")
    raw = cast(dict[str, Any], found)
    unknown: set[str] = set(raw) - allowed if allowed is not None else set()
    if unknown and allowed is not None:
        raise ConfigError(
            f"[{name}] has unknown key(s) {sorted(unknown)}; allowed: {sorted(allowed)}"
        )
    return raw


def _table(raw: dict[str, Any], section: str, default: TableRef) -> TableRef:
    values = {"schema": default.schema, "table": default.table, "key": default.key}
    values.update({k: raw[k] for k in values if k in raw})
    for name, value in values.items():
        _require_name(f"{section}.{name}", value)
    return TableRef(values["schema"], values["table"], values["key"])


def _require_name(where: str, value: Any) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ConfigError(f"{where} must be a non-empty string")
    if "$" in value or "\x00" in value:
        raise ConfigError(f"{where} = {value!r}: names may not contain '$' or NUL")
    return value


def _column_source(target_column: str, value: Any) -> ColumnSource:
    where = f"mapping.{target_column}"
    if isinstance(value, str):
        return ColumnSource(column=_require_name(where, value))
    kinds = ("column", "metadata", "sql")
    if not isinstance(value, dict) or sum(k in value for k in kinds) != 1:
        raise ConfigError(
            f'{where} must be a column name or {{ column = "..." }} or '
            '{ metadata = ["key", ...] } or { sql = "<expression over au>" }, exactly one of them'
        )
    raw = cast(dict[str, Any], value)
    allowed = {"column", "metadata", "from", "update", "fallback", "on_collision", "sql"}
    unknown = set(raw) - allowed
    if unknown:
        raise ConfigError(
            f"{where} has unknown key(s) {sorted(unknown)}; allowed: {', '.join(sorted(allowed))}"
        )
    follow = raw.get("update", True)
    if not isinstance(follow, bool):
        raise ConfigError(f"{where}.update must be true or false")
    fallbacks = _fallbacks(target_column, where, raw.get("fallback", []))
    collision: object = raw.get("on_collision")
    if collision is not None and collision not in ON_COLLISION:
        raise ConfigError(f"{where}.on_collision must be one of {', '.join(ON_COLLISION)}")
    extra: dict[str, Any] = {"fallbacks": fallbacks, "on_collision": collision}
    if "sql" in raw:
        if raw.get("update", False):
            raise ConfigError(
                f"{where}: a sql expression is set once; update = true is not supported"
            )
        expression = _expression(where, raw["sql"])
        source = ColumnSource(expression=expression, follow_updates=False, **extra)
        if target_column.lower() in PRIVILEGED_NAMES and USER_WRITABLE_METADATA in expression:
            _refuse_privilege_from_user_metadata(target_column, ColumnSource(metadata=("sql",)))
        return source
    if "column" in raw:
        return ColumnSource(
            column=_require_name(where, raw["column"]), follow_updates=follow, **extra
        )
    given: object = raw["metadata"]
    keys = cast(list[object], [given] if isinstance(given, str) else given)
    if not isinstance(given, str | list) or not keys:
        raise ConfigError(f"{where}.metadata must be a non-empty list of metadata keys")
    source = ColumnSource(
        metadata=tuple(_require_name(where, k) for k in keys),
        metadata_column=_require_name(where, raw.get("from", USER_WRITABLE_METADATA)),
        follow_updates=follow,
        **extra,
    )
    _refuse_privilege_from_user_metadata(target_column, source)
    return source


def _expression(where: str, given: object) -> str:
    """Exactly one SQL expression over the auth row `au`, read by PostgreSQL's parser: nothing
    around it (no second statement, no FROM, WHERE or set operation smuggled in)."""
    if not isinstance(given, str) or not given.strip():
        raise ConfigError(f"{where}.sql must be a non-empty SQL expression")
    if "$" in given or "\x00" in given:
        raise ConfigError(f"{where}.sql may not contain '$' or NUL")
    try:
        parsed = pgparse.parse(f"SELECT ({given}) AS ghostguard_value FROM auth.users AS au")
    except pgparse.PGQueryError as exc:
        raise ConfigError(f"{where}.sql is not an SQL expression: {exc.message}") from None
    select: dict[str, Any] = parsed[0]["stmt"].get("SelectStmt", {}) if len(parsed) == 1 else {}
    targets: list[Any] = select.get("targetList", [])
    sources: list[Any] = select.get("fromClause", [])
    extra = set(select) - {"targetList", "fromClause", "limitOption", "op"}
    if (
        not select
        or extra
        or select.get("op") != "SETOP_NONE"
        or len(targets) != 1
        or len(sources) != 1
    ):
        raise ConfigError(f"{where}.sql must be one expression over the auth row au, nothing more")
    return given.strip()


def _fallbacks(target_column: str, where: str, given: object) -> tuple[str, ...]:
    """`fallback = ["email_local", "meta:nickname", "literal:member"]`, checked here; auth column
    names are checked against the catalog."""
    items = cast(list[object], [given] if isinstance(given, str) else given)
    if not isinstance(given, str | list):
        raise ConfigError(f"{where}.fallback must be a list of sources")
    found: list[str] = []
    for item in items:
        text = _require_name(f"{where}.fallback", item)
        kind, sep, rest = text.partition(":")
        if sep and kind not in ("meta", "app", "literal"):
            raise ConfigError(
                f"{where}.fallback: {text!r}: use meta:<key>, app:<key>, literal:<text>, an auth "
                f"column or one of {', '.join(DERIVED)}"
            )
        if sep and kind != "literal" and not rest:
            raise ConfigError(f"{where}.fallback: {text!r} names no key")
        if sep and kind == "meta":  # user metadata: never for privilege-like columns or keys
            _refuse_privilege_from_user_metadata(target_column, ColumnSource(metadata=(rest,)))
        found.append(text)
    return tuple(found)


def _refuse_privilege_from_user_metadata(target_column: str, source: ColumnSource) -> None:
    if source.metadata_column != USER_WRITABLE_METADATA:
        return
    risky = [k for k in (target_column, *source.metadata) if k.lower() in PRIVILEGED_NAMES]
    if risky:
        raise ConfigError(
            f"mapping.{target_column} reads {USER_WRITABLE_METADATA}, which every user can change "
            f"for themselves (supabase.auth.updateUser); {risky[0]!r} looks like a privilege: "
            'map it from raw_app_meta_data instead (from = "raw_app_meta_data")'
        )


def from_dict(data: dict[str, Any]) -> Config:
    """Build a Config from parsed TOML, rejecting unknown keys so typos are not silently ignored."""
    known = {"source", "target", "trigger", "audit", "failures", "mapping"}
    unknown = set(data) - known
    if unknown:
        raise ConfigError(f"unknown section(s) {sorted(unknown)}; known: {sorted(known)}")
    default = Config()
    table_keys = {"schema", "table", "key"}
    source = _section(data, "source", table_keys)
    target = _section(data, "target", table_keys | {"soft_delete_column"})
    trigger = _section(
        data,
        "trigger",
        {"name", "update_name", "delete_name", "function_schema", "function", "lock_timeout"},
    )
    audit = _section(data, "audit", table_keys - {"key"} | {"job"})
    failures = _section(data, "failures", table_keys - {"key"})
    mapping_raw = _section(data, "mapping", None)
    mapping = (
        {
            _require_name("mapping", col): _column_source(col, raw)
            for col, raw in mapping_raw.items()
        }
        if "mapping" in data
        else dict(default.mapping)
    )
    soft_delete = target.get("soft_delete_column", default.soft_delete_column)
    return Config(
        source=_table(source, "source", default.source),
        target=_table(target, "target", default.target),
        trigger_name=_require_name("trigger.name", trigger.get("name", default.trigger_name)),
        update_trigger_name=_require_name(
            "trigger.update_name", trigger.get("update_name", default.update_trigger_name)
        ),
        delete_trigger_name=_require_name(
            "trigger.delete_name", trigger.get("delete_name", default.delete_trigger_name)
        ),
        function_schema=_require_name(
            "trigger.function_schema", trigger.get("function_schema", default.function_schema)
        ),
        function_name=_require_name(
            "trigger.function", trigger.get("function", default.function_name)
        ),
        audit=_table(audit, "audit", default.audit),
        failures=_table(failures, "failures", default.failures),
        job_name=_require_name("audit.job", audit.get("job", default.job_name)),
        mapping=mapping,
        soft_delete_column=_require_name("target.soft_delete_column", soft_delete)
        if soft_delete
        else None,
        lock_timeout=_require_name(
            "trigger.lock_timeout", trigger.get("lock_timeout", default.lock_timeout)
        ),
    )


def to_dict(config: Config) -> dict[str, Any]:
    """The TOML shape of a Config (what `ghostguard init` writes)."""
    mapping: dict[str, Any] = {}
    for column, src in config.mapping.items():
        entry: dict[str, Any] = (
            {"sql": src.expression}
            if src.expression is not None
            else {"column": src.column}
            if src.column is not None
            else {"metadata": list(src.metadata)}
        )
        if src.column is None and src.metadata and src.metadata_column != USER_WRITABLE_METADATA:
            entry["from"] = src.metadata_column
        if not src.follow_updates and src.expression is None:
            entry["update"] = False
        if src.fallbacks:
            entry["fallback"] = list(src.fallbacks)
        if src.on_collision:
            entry["on_collision"] = src.on_collision
        mapping[column] = entry
    target: dict[str, Any] = {
        "schema": config.target.schema,
        "table": config.target.table,
        "key": config.target.key,
        "soft_delete_column": config.soft_delete_column or "",  # "" = the table has none
    }
    return {
        "source": {
            "schema": config.source.schema,
            "table": config.source.table,
            "key": config.source.key,
        },
        "target": target,
        "trigger": {
            "name": config.trigger_name,
            "update_name": config.update_trigger_name,
            "delete_name": config.delete_trigger_name,
            "function_schema": config.function_schema,
            "function": config.function_name,
            "lock_timeout": config.lock_timeout,
        },
        "audit": {
            "schema": config.audit.schema,
            "table": config.audit.table,
            "job": config.job_name,
        },
        "failures": {"schema": config.failures.schema, "table": config.failures.table},
        "mapping": mapping,
    }


def load(path: Path) -> Config:
    """Read ghostguard.toml with errors that name the file and the problem."""
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(
            f"config file {path} not found; create one with `ghostguard init`"
        ) from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path} is not valid TOML: {exc}") from None
    except OSError as exc:
        raise ConfigError(f"cannot read {path}: {exc.strerror}") from None
    try:
        return from_dict(data)
    except ConfigError as exc:
        raise ConfigError(f"{path}: {exc.message}") from None


def dumps(config: Config) -> str:
    header = (
        "# ghostguard configuration: what is synced from the auth table to the profile table.\n"
    )
    return header + tomli_w.dumps(to_dict(config))
