"""What ghostguard syncs, from where to where: defaults reproduce the deployment guide exactly."""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

import tomli_w

from ghostguard.durations import DDL_LOCK_BOUNDS, SIGNUP_LOCK_BOUNDS, parse_duration
from ghostguard.errors import ConfigError
from ghostguard.sources import (
    PRIVILEGED_NAMES,
    USER_WRITABLE_METADATA,
    ColumnSource,
    column_source,
    require_name,
)

__all__ = [
    "DEFAULT_CONFIG_FILE",
    "DEFAULT_MAPPING",
    "PRIVILEGED_NAMES",
    "USER_WRITABLE_METADATA",
    "ColumnSource",
    "Config",
    "TableRef",
    "dumps",
    "from_dict",
    "load",
    "to_dict",
]

DEFAULT_CONFIG_FILE = "ghostguard.toml"
READS_PROFILES = ("data_api", "server")


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
    # What a signup's profile write waits for a lock before it is recorded as a failure instead
    # (the sync function's own lock_timeout): a signup never queues behind a migration.
    signup_lock_timeout: str = "200ms"
    # The search_path the app's own triggers on the profile table see while the sync function
    # writes it (the function itself pins search_path = '' and qualifies every name; see
    # sync/function.py): what the app's own writes have on Supabase.
    profile_search_path: tuple[str, ...] = ("public", "extensions")
    # The app's own triggers on the auth table that apply takes over: their functions are saved
    # in the audit log and dropped in the install transaction, and rollback restores them.
    adopt: tuple[str, ...] = ()
    # How the app reads profiles: "data_api" (supabase.from() as the signed-in user: app_view is
    # checked) or "server" (only with the service role or a server connection: it is not).
    reads_profiles: str = "data_api"
    # The schemas the Data API serves; empty: the project's pgrst.db_schemas where the database
    # holds it, else Supabase's default (public, graphql_public).
    api_schemas: tuple[str, ...] = ()
    # [app] ensure_profile: install ensure_profile(), the fallback a signed-in user calls
    ensure_profile: bool = False
    # [rehearse] metadata: per signup kind, the user metadata the app sends with it at signup
    rehearse_metadata: dict[str, dict[str, Any]] = field(default_factory=dict[str, dict[str, Any]])

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
        require_name(f"{section}.{name}", value)
    return TableRef(values["schema"], values["table"], values["key"])


def from_dict(data: dict[str, Any]) -> Config:
    """Build a Config from parsed TOML, rejecting unknown keys so typos are not silently ignored."""
    known = {
        "source",
        "target",
        "trigger",
        "audit",
        "failures",
        "mapping",
        "adopt",
        "app",
        "rehearse",
    }
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
        {
            "name",
            "update_name",
            "delete_name",
            "function_schema",
            "function",
            "lock_timeout",
            "signup_lock_timeout",
            "profile_search_path",
        },
    )
    audit = _section(data, "audit", table_keys - {"key"} | {"job"})
    failures = _section(data, "failures", table_keys - {"key"})
    mapping_raw = _section(data, "mapping", None)
    adopt = _section(data, "adopt", {"triggers"}).get("triggers", [])
    path: object = trigger.get("profile_search_path", list(default.profile_search_path))
    if not isinstance(path, list):
        raise ConfigError(
            'trigger.profile_search_path must be a list of schema names, e.g. ["public", "extensions"]'
        )
    app = _section(data, "app", {"reads_profiles", "api_schemas", "ensure_profile"})
    ensure = app.get("ensure_profile", False)
    if not isinstance(ensure, bool):
        raise ConfigError("app.ensure_profile must be true or false")
    reads = app.get("reads_profiles", default.reads_profiles)
    if reads not in READS_PROFILES:
        raise ConfigError(
            f"app.reads_profiles = {reads!r}: use one of {', '.join(map(repr, READS_PROFILES))}"
        )
    schemas: object = app.get("api_schemas", [])
    if not isinstance(schemas, list):
        raise ConfigError('app.api_schemas must be a list of schema names, e.g. ["public", "api"]')
    if not isinstance(adopt, list):
        raise ConfigError('[adopt] triggers must be a list of trigger names, e.g. ["on_signup"]')
    mapping = (
        {require_name("mapping", col): column_source(col, raw) for col, raw in mapping_raw.items()}
        if "mapping" in data
        else dict(default.mapping)
    )
    soft_delete = target.get("soft_delete_column", default.soft_delete_column)
    rehearse_metadata = _rehearse_metadata(_section(data, "rehearse", {"metadata"}))
    return Config(
        source=_table(source, "source", default.source),
        target=_table(target, "target", default.target),
        trigger_name=require_name("trigger.name", trigger.get("name", default.trigger_name)),
        update_trigger_name=require_name(
            "trigger.update_name", trigger.get("update_name", default.update_trigger_name)
        ),
        delete_trigger_name=require_name(
            "trigger.delete_name", trigger.get("delete_name", default.delete_trigger_name)
        ),
        function_schema=require_name(
            "trigger.function_schema", trigger.get("function_schema", default.function_schema)
        ),
        function_name=require_name(
            "trigger.function", trigger.get("function", default.function_name)
        ),
        audit=_table(audit, "audit", default.audit),
        failures=_table(failures, "failures", default.failures),
        job_name=require_name("audit.job", audit.get("job", default.job_name)),
        mapping=mapping,
        soft_delete_column=require_name("target.soft_delete_column", soft_delete)
        if soft_delete
        else None,
        lock_timeout=parse_duration(
            "trigger.lock_timeout",
            trigger.get("lock_timeout", default.lock_timeout),
            DDL_LOCK_BOUNDS,
        ),
        signup_lock_timeout=parse_duration(
            "trigger.signup_lock_timeout",
            trigger.get("signup_lock_timeout", default.signup_lock_timeout),
            SIGNUP_LOCK_BOUNDS,
        ),
        adopt=tuple(require_name("adopt.triggers", name) for name in cast(list[object], adopt)),
        profile_search_path=tuple(
            require_name("trigger.profile_search_path", name) for name in cast(list[object], path)
        ),
        reads_profiles=str(reads),
        api_schemas=tuple(
            require_name("app.api_schemas", name) for name in cast(list[object], schemas)
        ),
        rehearse_metadata=rehearse_metadata,
        ensure_profile=ensure,
    )


def _rehearse_metadata(rehearse: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """[rehearse.metadata]: per signup kind, the user metadata the app sends with it."""
    found: object = rehearse.get("metadata", {})
    if not isinstance(found, dict) or not all(
        isinstance(v, dict) for v in cast(dict[str, object], found).values()
    ):
        raise ConfigError(
            "[rehearse.metadata] maps a signup kind to the user metadata the app sends with it, "
            'e.g. email = { username = "ada" }'
        )
    return {
        require_name("rehearse.metadata", kind): dict(cast(dict[str, Any], data))
        for kind, data in cast(dict[str, object], found).items()
    }


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
            entry["fallback"] = [str(f) for f in src.fallbacks]
        if src.on_collision:
            entry["on_collision"] = src.on_collision
        mapping[column] = entry
    target: dict[str, Any] = {
        "schema": config.target.schema,
        "table": config.target.table,
        "key": config.target.key,
        "soft_delete_column": config.soft_delete_column or "",  # "" = the table has none
    }
    data: dict[str, Any] = {
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
            "signup_lock_timeout": config.signup_lock_timeout,
            "profile_search_path": list(config.profile_search_path),
        },
        "audit": {
            "schema": config.audit.schema,
            "table": config.audit.table,
            "job": config.job_name,
        },
        "failures": {"schema": config.failures.schema, "table": config.failures.table},
        "mapping": mapping,
    }
    if config.adopt:
        data["adopt"] = {"triggers": list(config.adopt)}
    app: dict[str, Any] = {}
    if config.reads_profiles != Config.reads_profiles:
        app["reads_profiles"] = config.reads_profiles
    if config.api_schemas:
        app["api_schemas"] = list(config.api_schemas)
    if config.ensure_profile:
        app["ensure_profile"] = True
    if app:
        data["app"] = app
    if config.rehearse_metadata:
        data["rehearse"] = {"metadata": config.rehearse_metadata}
    return data


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


def sections(path: Path) -> set[str]:
    """The [sections] a config file has (after `load` has accepted it)."""
    return set(tomllib.loads(path.read_text(encoding="utf-8")))


HEADER = "# ghostguard configuration: what is synced from the auth table to the profile table.\n"


def dumps(config: Config) -> str:
    return HEADER + tomli_w.dumps(to_dict(config))
