"""Propose a ghostguard.toml from the live catalog and the data: which profile table, which columns
map to what, and why each choice was made."""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import psycopg
from psycopg import sql

from ghostguard import catalog, plpgsql
from ghostguard.adopt import existing, translate
from ghostguard.config import (
    DEFAULT_MAPPING,
    PRIVILEGED_NAMES,
    USER_WRITABLE_METADATA,
    ColumnSource,
    Config,
    TableRef,
)
from ghostguard.errors import ConfigError
from ghostguard.signup_sample import SAMPLE_USERS, SignupSample, describe
from ghostguard.sources import Fallback, fallbacks, is_profile_data

CANDIDATE_TABLES = (
    TableRef("public", "users"),
    TableRef("public", "profiles"),
    TableRef("public", "profile"),
    TableRef("public", "accounts"),
    TableRef("public", "members"),
)
PROFILE_NAMES = {t.table for t in CANDIDATE_TABLES} | {"user_profiles", "people", "customers"}
KEY_TYPES = ("uuid", "text", "varchar")  # what can hold an auth user's id
NOT_PROFILE_SCHEMAS = ("auth", "storage", "realtime", "supabase_functions", "vault", "extensions")

# Profile column name -> where its value usually comes from (provider metadata keys in order).
KNOWN_COLUMNS: dict[str, ColumnSource] = {
    **DEFAULT_MAPPING,
    "phone": ColumnSource(column="phone"),
    "name": DEFAULT_MAPPING["full_name"],
    "display_name": DEFAULT_MAPPING["full_name"],
    "username": ColumnSource(metadata=("user_name", "preferred_username", "nickname")),
    "user_name": ColumnSource(metadata=("user_name", "preferred_username", "nickname")),
    "picture": DEFAULT_MAPPING["avatar_url"],
    **dict.fromkeys(("email_address", "contact_email", "mail"), ColumnSource(column="email")),
    **dict.fromkeys(
        ("first_name", "firstname", "given_name"),
        ColumnSource(metadata=("first_name", "given_name", "firstName")),
    ),
    **dict.fromkeys(
        ("last_name", "lastname", "family_name", "surname"),
        ColumnSource(metadata=("last_name", "family_name", "lastName")),
    ),
}


# Fallbacks by what a column holds, so that every kind of signup can fill a required column:
# phone and anonymous users have no email, magic-link and Apple users often no metadata at all.
EMAIL_LIKE = ("email", "email_address", "contact_email", "mail")
HANDLE_LIKE = ("username", "user_name", "handle", "slug", "nickname", "screen_name", "login")
NAME_LIKE = (
    "full_name", "name", "display_name", "first_name", "firstname", "given_name",
    "last_name", "lastname", "family_name", "surname",
)  # fmt: skip
TEXT_TYPES = ("text", "citext", "character varying", "varchar")


@dataclass(frozen=True)
class Proposal:
    config: Config
    notes: list[str]
    decisions: list[str] = field(default_factory=list[str])  # what init could not choose


def _fallbacks_for(name: str) -> tuple[Fallback, ...]:
    low = name.lower()
    if low in EMAIL_LIKE:
        return fallbacks("placeholder_email")
    if low in HANDLE_LIKE or low in NAME_LIKE:
        return fallbacks("email_local", "id_handle")
    return ()


def _required(column: catalog.Column) -> bool:
    """A value must be written: NOT NULL, no default, not generated."""
    return column.not_null and not column.has_default and not column.generated


def _is_text(column: catalog.Column) -> bool:
    return column.type.split("(")[0] in TEXT_TYPES


def _fit_constraints(
    name: str,
    src: ColumnSource | None,
    column: catalog.Column,
    unique: bool,
    table: str,
    sample: SignupSample,
) -> tuple[ColumnSource | None, list[str]]:
    """Add what a required or UNIQUE column needs so that every kind of signup can fill it."""
    notes: list[str] = []
    required = _required(column)
    if src is None and required and _is_text(column) and _fallbacks_for(name):
        src = ColumnSource(metadata=(name,), fallbacks=_fallbacks_for(name))
        notes.append(f"{table}.{name}: NOT NULL with no default: filled from its fallbacks")
    if src is None:
        return None, notes
    if required and not src.never_null and _is_text(column):
        empty = sample.empty_for(src, name)
        extra = tuple(f for f in _fallbacks_for(name) if f not in src.fallbacks) or fallbacks(
            "id_handle"
        )
        primary = src.describe().split(", then ")[0]
        src = replace(src, fallbacks=(*src.fallbacks, *extra))
        if empty:
            why = f"{primary} is empty for {describe(empty)} of {sample.size:,} sampled users"
        else:
            why = (
                f"{primary} is set for all {sample.size:,} sampled users"
                if sample.size
                else "no users yet"
            ) + ", but phone, anonymous and some OAuth signups leave it empty"
        notes.append(
            f"{table}.{name}: NOT NULL, and {why}: falls back to {', '.join(map(str, extra))}"
        )
    if unique and _is_text(column) and src.on_collision is None:
        rule = "suffix" if column.not_null else "null"
        handle = name.lower() in HANDLE_LIKE
        src = replace(src, on_collision=rule, follow_updates=src.follow_updates and not handle)
        notes.append(
            f"{table}.{name}: UNIQUE: a value another profile already has "
            + ("gets a suffix from the user id" if rule == "suffix" else "is left empty")
            + ("; set once (update = false), so the app may let users change it" if handle else "")
        )
    return src, notes


def written_by_triggers(conn: psycopg.Connection, source: TableRef) -> list[tuple[TableRef, str]]:
    """Tables the enabled INSERT triggers on the auth table write a row into keyed by the new
    user's id, as their parse trees say, with the trigger's name: where the project itself puts
    profiles. An unqualified name is resolved through the function's pinned search_path, then
    public; a name needing quotes ("user") is a name like any other."""
    found: list[tuple[TableRef, str]] = []
    for trigger in existing.auth_triggers(conn, source):
        if not (trigger.is_enabled and trigger.fires_on(existing.INSERT)) or trigger.ghostguards:
            continue
        pinned = plpgsql.schemas_of(trigger.search_path)
        for schema, table, key in translate.profile_inserts(trigger):
            for candidate in [schema] if schema else [*pinned, "public"]:
                ref = TableRef(candidate, table, key)
                if candidate not in NOT_PROFILE_SCHEMAS and catalog.table_columns(conn, ref):
                    if ref not in (f for f, _ in found):
                        found.append((ref, trigger.name))
                    break
    return found


def find_profile_table(conn: psycopg.Connection, source: TableRef) -> tuple[TableRef, str]:
    """The profile table and why: the table the project's own signup trigger writes (the first,
    by trigger name, when several do); else a table whose one-column key references the auth key
    (public first, then by the usual names); else the first usual name that exists."""
    written = written_by_triggers(conn, source)
    if written:
        (found, trigger), others = written[0], written[1:]
        return found, (
            f"the trigger {trigger} on {source.display} inserts its row, keyed by the new user's id"
            + (f"; also written: {', '.join(t.display for t, _ in others)}" if others else "")
        )
    links = [
        TableRef(fk.schema, fk.table, fk.columns[0])
        for fk in catalog.foreign_keys_to(conn, source)
        if fk.ref_columns == (source.key,)
        and len(fk.columns) == 1
        and fk.schema not in NOT_PROFILE_SCHEMAS
    ]
    unique = {t for t in links if catalog.is_unique_key(conn, t, t.key)}
    # A non-unique link (posts.author_id) is a profile only by its name.
    links = [t for t in links if t in unique or t.table in PROFILE_NAMES]
    order = [(t.schema, t.table) for t in CANDIDATE_TABLES]
    # A unique link first (one profile per user), then public, then the usual names.
    linked = sorted(
        links,
        key=lambda t: (
            t not in unique,
            t.schema != "public",
            order.index((t.schema, t.table)) if (t.schema, t.table) in order else len(order),
        ),
    )
    if linked:
        found = linked[0]
        return found, (
            f"its key {found.key} references {source.display}({source.key})"
            + (
                ""
                if found in unique
                else f" (no unique index on {found.key}: `ghostguard scan` says how to add one)"
            )
            + (f"; also linked: {', '.join(t.display for t in linked[1:])}" if linked[1:] else "")
        )
    for candidate in CANDIDATE_TABLES:
        key = (catalog.table_columns(conn, candidate) or {}).get(candidate.key)
        if (
            key is not None and key.type_name[1] in KEY_TYPES
        ):  # a bigint id is the app's own user list
            return candidate, f"found by name; no table's key references {source.display}"
    raise ConfigError(
        "no profile table found (no table's key references "
        f"{source.display}({source.key}), none named {', '.join(t.table for t in CANDIDATE_TABLES)}"
        " in public with a uuid or text key, no trigger on it writes one): create it, or write "
        "ghostguard.toml by hand with [target] schema/table/key"
    )


def metadata_keys(conn: psycopg.Connection, source: TableRef) -> tuple[dict[str, int], int]:
    """How many of a sample of auth rows carry each user-metadata key, and the sample size."""
    columns = catalog.table_columns(conn, source) or {}
    if USER_WRITABLE_METADATA not in columns:
        return {}, 0
    table = sql.Identifier(source.schema, source.table)
    meta = sql.Identifier(USER_WRITABLE_METADATA)
    sample = sql.SQL("(SELECT {meta} AS m FROM {table} LIMIT {n}) s").format(
        meta=meta, table=table, n=sql.Literal(SAMPLE_USERS)
    )
    size = conn.execute(sql.SQL("SELECT count(*) FROM {}").format(sample)).fetchone()
    rows = conn.execute(
        sql.SQL(
            "SELECT k, count(*) FROM {}, jsonb_object_keys(s.m) k "
            "WHERE jsonb_typeof(s.m) = 'object' GROUP BY k"
        ).format(sample)
    ).fetchall()
    return {k: int(n) for k, n in rows}, int(size[0]) if size else 0


def _seen(src: ColumnSource, seen: dict[str, int], sampled: int) -> str:
    if src.column is not None:
        return " (an auth column)"
    if not sampled:
        return " (no users yet to sample)"
    counts = ", ".join(f"{k} {seen[k]:,}" for k in src.metadata if k in seen)
    return f" (seen in {sampled:,} sampled users: {counts or 'none of these keys yet'})"


def _user_metadata_decision(
    target: TableRef, name: str, column: catalog.Column, seen: dict[str, int]
) -> str:
    """A column named like a user-metadata key that is not plainly profile data: never mapped
    from what every user writes for themselves; the owner decides, raw_app_meta_data proposed."""
    return (
        f"{target.display}.{name} ({column.type}): {USER_WRITABLE_METADATA} has a {name!r} key "
        f"({seen[name]:,} sampled users), but every user sets that metadata for themselves (at "
        "signup and with supabase.auth.updateUser), and this column may grant something: not "
        f'mapped. Map it from raw_app_meta_data ([mapping.{name}] metadata = ["{name}"], from = '
        '"raw_app_meta_data"), which only the service role writes; or, if it is harmless '
        f'profile data, from = "{USER_WRITABLE_METADATA}" by hand'
    )


def _left_as(default: str | None) -> str:
    """What a new profile holds in a column nothing maps."""
    return f"a new profile gets its DEFAULT {default}" if default else "a new profile gets NULL"


def propose(conn: psycopg.Connection, base: Config | None = None) -> Proposal:
    """Find the profile table and map its columns by name and by the metadata keys users have;
    validated against the catalog before it is returned."""
    base = base or Config()
    target, why = find_profile_table(conn, base.source)
    columns = catalog.table_columns(conn, target) or {}
    seen, sampled = metadata_keys(conn, base.source)
    sample = SignupSample(conn, base.source, catalog.supabase_shape(base))
    unique_columns = {c for c in columns if catalog.is_unique_key(conn, target, c)}
    checks = catalog.column_checks(conn, target)
    defaults = dict(catalog.column_defaults(conn, target))
    notes = [
        f"profile table: {target.display} (key {target.key}): {why}",
        f"signup kinds here: {describe(sample.kinds)} (of {sample.size:,} sampled users)"
        if sample.size
        else "signup kinds here: no users yet; every kind is provided for",
    ]
    adopted = translate.adoption(conn, replace(base, target=target))
    notes += adopted.notes
    decisions: list[str] = list(adopted.decisions)
    mapping: dict[str, ColumnSource] = {}
    soft = "deleted_at" if "deleted_at" in columns else None
    for name in columns:
        if name in (target.key, soft, "updated_at"):
            continue
        if name in adopted.mapping:
            # Only what the original could not write is added (fallbacks where its value is
            # NULL in a NOT NULL column, a collision rule where it would break UNIQUE): every
            # profile it did create comes out the same.
            fitted_source, fitted = _fit_constraints(
                name,
                adopted.mapping[name],
                columns[name],
                name in unique_columns,
                target.table,
                sample,
            )
            mapping[name] = fitted_source or adopted.mapping[name]
            notes += fitted
            continue
        if adopted.triggers and not _required(columns[name]):
            continue  # left as the adopted trigger left it
        known = KNOWN_COLUMNS.get(name)
        if name.lower() in PRIVILEGED_NAMES:
            if _required(columns[name]):
                decisions.append(
                    f"{target.display}.{name} is NOT NULL with no default and looks like a "
                    f'privilege: map it from raw_app_meta_data (from = "raw_app_meta_data", '
                    'with a fallback = ["literal:…"]) or give it a default'
                )
            if name in seen:
                notes.append(
                    f"{target.table}.{name}: not mapped: {USER_WRITABLE_METADATA} has a {name!r} key, "
                    "but every user can write it; map it from raw_app_meta_data by hand if it "
                    "belongs there"
                )
            elif not _required(columns[name]):
                notes.append(
                    f"{target.table}.{name}: not mapped: it looks like a privilege, which user "
                    f"metadata never feeds; {_left_as(defaults.get(name))}"
                )
            continue
        if known is None and name in seen:
            if not is_profile_data(name, columns[name].type):
                decisions.append(_user_metadata_decision(target, name, columns[name], seen))
                continue
            known = ColumnSource(metadata=(name,))
        elif (
            known is not None
            and known.column is None
            and name in seen
            and name not in known.metadata
        ):
            known = replace(known, metadata=(*known.metadata, name))
        known, fitted = _fit_constraints(
            name, known, columns[name], name in unique_columns, target.table, sample
        )
        notes += fitted
        if known is None:
            if _required(columns[name]):
                decisions.append(
                    f"{target.display}.{name} ({columns[name].type}) is NOT NULL with no default and "
                    f"nothing in {base.source.display} fills it: map it under [mapping.{name}] "
                    "(an auth column, meta:/app: keys, a literal) or give it a default"
                )
            else:
                notes.append(
                    f"{target.table}.{name}: nothing in {base.source.display} maps to it; left to "
                    f"the app; {_left_as(defaults.get(name))}"
                )
            continue
        mapping[name] = known
        notes.append(f"{target.table}.{name} <- {known.describe()}{_seen(known, seen, sampled)}")
        default = defaults.get(name)
        last = (
            f"then its DEFAULT {default}"
            if default is not None
            else "the last one is written as NULL (the column may be NULL)"
            if not columns[name].not_null
            else "the last one is written as it is"
        )
        notes += [
            f"{target.table}.{name}: CHECK {check}: a value that breaks it gives way to the next "
            f"source; {last}"
            for column, check in checks
            if column == name
            and (known.fallbacks or default is not None or not columns[name].not_null)
        ]
        if default is not None:
            notes.append(
                f"{target.table}.{name}: when every source is empty: its DEFAULT {default}"
            )
    if soft:
        notes.append(f"{target.table}.deleted_at <- set when the auth user is soft-deleted")
    config = replace(
        base, target=target, mapping=mapping, soft_delete_column=soft, adopt=adopted.triggers
    )
    if not decisions:
        catalog.resolve(conn, config)
    return Proposal(config, notes, decisions)
