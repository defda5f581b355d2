"""What ghostguard syncs, from where to where: defaults reproduce the deployment guide exactly."""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

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


@dataclass(frozen=True)
class ColumnSource:
    """Where one profile column's value comes from: an auth column, or metadata keys tried in order."""

    column: str | None = None
    metadata: tuple[str, ...] = ()
    metadata_column: str = "raw_user_meta_data"

    def describe(self) -> str:
        if self.column is not None:
            return self.column
        keys = ", then ".join(f"{self.metadata_column}->>'{k}'" for k in self.metadata)
        return keys


@dataclass(frozen=True)
class Config:
    """Everything the generated SQL depends on; every name here ends up quoted with sql.Identifier."""

    source: TableRef = TableRef("auth", "users")
    target: TableRef = TableRef("public", "users")
    trigger_name: str = "on_auth_user_created"
    function_schema: str = "public"
    function_name: str = "handle_new_user"
    audit: TableRef = TableRef("public", "cleanup_audit_log")
    job_name: str = "backfill_ghost_users"
    mapping: dict[str, ColumnSource] = field(default_factory=lambda: dict(DEFAULT_MAPPING))
    soft_delete_column: str | None = "deleted_at"
    lock_timeout: str = "1s"  # every lock ghostguard waits for: DDL and each backfill batch

    @property
    def function_display(self) -> str:
        return f"{self.function_schema}.{self.function_name}()"


DEFAULT_MAPPING: dict[str, ColumnSource] = {
    "email": ColumnSource(column="email"),
    "full_name": ColumnSource(metadata=("full_name", "name")),
    "avatar_url": ColumnSource(metadata=("avatar_url", "picture")),
    "created_at": ColumnSource(column="created_at"),
}


def _section(data: dict[str, Any], name: str, allowed: set[str] | None) -> dict[str, Any]:
    """One [section] of the file; `allowed=None` accepts any key (the mapping's column names)."""
    raw = data.get(name, {})
    if not isinstance(raw, dict):
        raise ConfigError(f"[{name}] must be a table")
    unknown = set(raw) - allowed if allowed is not None else set()
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


def _column_source(target_column: str, raw: Any) -> ColumnSource:
    where = f"mapping.{target_column}"
    if isinstance(raw, str):
        return ColumnSource(column=_require_name(where, raw))
    if not isinstance(raw, dict) or ("column" in raw) == ("metadata" in raw):
        raise ConfigError(
            f'{where} must be a column name or {{ column = "..." }} or '
            '{ metadata = ["key", ...] }, exactly one of them'
        )
    if "column" in raw:
        return ColumnSource(column=_require_name(where, raw["column"]))
    keys = raw["metadata"]
    if isinstance(keys, str):
        keys = [keys]
    if not isinstance(keys, list) or not keys:
        raise ConfigError(f"{where}.metadata must be a non-empty list of metadata keys")
    return ColumnSource(
        metadata=tuple(_require_name(where, k) for k in keys),
        metadata_column=_require_name(where, raw.get("from", "raw_user_meta_data")),
    )


def from_dict(data: dict[str, Any]) -> Config:
    """Build a Config from parsed TOML, rejecting unknown keys so typos are not silently ignored."""
    known = {"source", "target", "trigger", "audit", "mapping"}
    unknown = set(data) - known
    if unknown:
        raise ConfigError(f"unknown section(s) {sorted(unknown)}; known: {sorted(known)}")
    default = Config()
    table_keys = {"schema", "table", "key"}
    source = _section(data, "source", table_keys)
    target = _section(data, "target", table_keys | {"soft_delete_column"})
    trigger = _section(data, "trigger", {"name", "function_schema", "function", "lock_timeout"})
    audit = _section(data, "audit", table_keys - {"key"} | {"job"})
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
        function_schema=_require_name(
            "trigger.function_schema", trigger.get("function_schema", default.function_schema)
        ),
        function_name=_require_name(
            "trigger.function", trigger.get("function", default.function_name)
        ),
        audit=_table(audit, "audit", default.audit),
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
        if src.column is not None:
            mapping[column] = {"column": src.column}
        else:
            entry: dict[str, Any] = {"metadata": list(src.metadata)}
            if src.metadata_column != "raw_user_meta_data":
                entry["from"] = src.metadata_column
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
            "function_schema": config.function_schema,
            "function": config.function_name,
            "lock_timeout": config.lock_timeout,
        },
        "audit": {
            "schema": config.audit.schema,
            "table": config.audit.table,
            "job": config.job_name,
        },
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
