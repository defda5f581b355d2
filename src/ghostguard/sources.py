"""Where a profile column's value comes from, as ghostguard.toml says it: the first source (an auth
column, metadata keys, or one SQL expression), fallbacks, and a collision rule; read and checked
here, turned into SQL by sync/mapping.py."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, cast

import pgparse

from ghostguard.errors import ConfigError

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

COLUMN, META, APP, LITERAL, DERIVED_VALUE = "column", "meta", "app", "literal", "derived"


@dataclass(frozen=True)
class Fallback:
    """One fallback source, read once from how ghostguard.toml spells it (`meta:nickname`,
    `app:plan`, `literal:member`, a DERIVED name, an auth column) into what it is."""

    kind: str  # COLUMN, META, APP, LITERAL or DERIVED_VALUE
    value: str  # the column, the key, the text or the derived value's name

    @classmethod
    def parse(cls, text: str) -> Fallback:
        if text in DERIVED:
            return cls(DERIVED_VALUE, text)
        kind, sep, rest = text.partition(":")
        if sep and kind in (META, APP, LITERAL):
            return cls(kind, rest)
        return cls(COLUMN, text)

    def __str__(self) -> str:
        """As ghostguard.toml writes it."""
        return f"{self.kind}:{self.value}" if self.kind in (META, APP, LITERAL) else self.value

    @property
    def placeholder(self) -> bool:
        return self.kind == DERIVED_VALUE and self.value in PLACEHOLDERS

    @property
    def is_text(self) -> bool:
        """Metadata keys, literals and derived handles are text; auth columns keep their type."""
        return self.kind in (META, APP, LITERAL) or (
            self.kind == DERIVED_VALUE and self.value in ("email_local", "id_handle")
        )

    def auth_column(self) -> str | None:
        """The auth column it reads (None for a literal)."""
        if self.kind == DERIVED_VALUE:
            return "email" if self.value == "email_local" else "id"
        return {META: USER_WRITABLE_METADATA, APP: APP_METADATA, LITERAL: None}.get(
            self.kind, self.value
        )


def fallbacks(*texts: str) -> tuple[Fallback, ...]:
    return tuple(Fallback.parse(t) for t in texts)


@dataclass(frozen=True)
class ColumnSource:
    """Where one profile column's value comes from: an auth column, or metadata keys tried in order,
    then `fallbacks` in order (first non-empty wins): auth columns, `meta:key` (user metadata),
    `app:key` (app metadata), a derived value (DERIVED) or `literal:text`."""

    column: str | None = None
    metadata: tuple[str, ...] = ()
    metadata_column: str = "raw_user_meta_data"
    follow_updates: bool = True  # the profile column follows later changes of the auth row
    fallbacks: tuple[Fallback, ...] = ()
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
        return ", then ".join([first, *map(str, self.fallbacks)])

    @property
    def never_null(self) -> bool:
        """A fallback always gives a value (a placeholder or a literal)."""
        return any(f.placeholder or f.kind == LITERAL for f in self.fallbacks)

    def auth_columns(self) -> set[str]:
        """The auth columns the value is read from (an UPDATE of one may change it); an
        expression's are not tracked (it is set once: update = false)."""
        read: set[str] = (
            set()
            if self.expression is not None
            else {self.column if self.column is not None else self.metadata_column}
        )
        read |= {c for f in self.fallbacks if (c := f.auth_column()) is not None}
        return read


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

# What a user may rightly say about themselves, so a profile column of this name (and a text type)
# may be filled from raw_user_meta_data without asking: names, handles, pictures, a bio, where and
# how they live. Anything else seen there (is_staff, credits, approved, account_type, ...) may be a
# privilege the user grants themselves at signup and again with supabase.auth.updateUser({data}):
# init leaves it to the owner, and doctor flags a trigger that writes it. Compared without case,
# underscores or dashes (fullName, full_name and full-name alike).
PROFILE_DATA_NAMES = frozenset(
    {
        "name", "fullname", "displayname", "firstname", "givenname", "middlename", "lastname",
        "familyname", "surname", "username", "preferredusername", "nickname", "handle",
        "screenname", "login", "avatar", "avatarurl", "picture", "photo", "photourl", "image",
        "imageurl", "bio", "about", "headline", "tagline", "description", "locale", "language",
        "lang", "timezone", "tz", "phone", "phonenumber", "mobile", "website", "url", "blog",
        "location", "city", "country", "company", "jobtitle", "pronouns",
    }
)  # fmt: skip
PROFILE_DATA_TYPES = ("text", "citext", "character varying", "varchar", "character")


def is_profile_data(column: str, column_type: str | None = None) -> bool:
    """The column holds what a user may say about themselves (see PROFILE_DATA_NAMES), of a
    text type when the type is known."""
    key = "".join(ch for ch in column.lower() if ch.isalnum())
    textual = column_type is None or column_type.split("(")[0].strip() in PROFILE_DATA_TYPES
    return key in PROFILE_DATA_NAMES and textual


def reads_user_metadata(expression: str, row_names: tuple[str, ...] = ("au", "new")) -> bool:
    """The SQL expression reads raw_user_meta_data: a column reference of any case or quoting,
    the whole row (`to_jsonb(au)`, `new.*`), or the name as a string. Read from PostgreSQL's own
    parse tree, not the text (`au.RAW_USER_META_DATA` is the same column); an expression that
    does not parse is judged by its text, without case."""
    try:
        tree: object = pgparse.parse(f"SELECT ({expression})")
    except pgparse.PGQueryError:
        return USER_WRITABLE_METADATA in expression.lower()
    return _mentions_user_metadata(tree, row_names)


def _mentions_user_metadata(node: object, row_names: tuple[str, ...]) -> bool:
    if isinstance(node, list):
        return any(_mentions_user_metadata(n, row_names) for n in cast(list[object], node))
    if not isinstance(node, dict):
        return False
    items = cast(dict[str, object], node)
    ref = items.get("ColumnRef")
    if isinstance(ref, dict):
        fields = cast(list[dict[str, Any]], cast(dict[str, Any], ref).get("fields", []))
        names = [str(f["String"]["sval"]).lower() for f in fields if "String" in f]
        whole_row = any("A_Star" in f for f in fields) or (
            len(fields) == 1 and names and names[0] in row_names
        )
        if whole_row or USER_WRITABLE_METADATA in names:
            return True
    sval = items.get("sval")
    if isinstance(sval, str) and sval.lower() == USER_WRITABLE_METADATA:
        return True
    return any(_mentions_user_metadata(v, row_names) for v in items.values())


APP_METADATA = "raw_app_meta_data"  # written by the service role and the Auth server only


def require_name(where: str, value: Any) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ConfigError(f"{where} must be a non-empty string")
    if "$" in value or any(ord(ch) < 0x20 or ord(ch) == 0x7F for ch in value):
        raise ConfigError(
            f"{where} = {value!r}: names may not contain '$', a line break or another control "
            "character"
        )
    return value


def column_source(target_column: str, value: Any) -> ColumnSource:
    where = f"mapping.{target_column}"
    if isinstance(value, str):
        return ColumnSource(column=require_name(where, value))
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
        if target_column.lower() in PRIVILEGED_NAMES and reads_user_metadata(expression):
            _refuse_privilege_from_user_metadata(target_column, ColumnSource(metadata=("sql",)))
        return source
    if "column" in raw:
        return ColumnSource(
            column=require_name(where, raw["column"]), follow_updates=follow, **extra
        )
    given: object = raw["metadata"]
    keys = cast(list[object], [given] if isinstance(given, str) else given)
    if not isinstance(given, str | list) or not keys:
        raise ConfigError(f"{where}.metadata must be a non-empty list of metadata keys")
    source = ColumnSource(
        metadata=tuple(require_name(where, k) for k in keys),
        metadata_column=require_name(where, raw.get("from", USER_WRITABLE_METADATA)),
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


def _fallbacks(target_column: str, where: str, given: object) -> tuple[Fallback, ...]:
    """`fallback = ["email_local", "meta:nickname", "literal:member"]`, checked here; auth column
    names are checked against the catalog."""
    items = cast(list[object], [given] if isinstance(given, str) else given)
    if not isinstance(given, str | list):
        raise ConfigError(f"{where}.fallback must be a list of sources")
    found: list[Fallback] = []
    for item in items:
        text = require_name(f"{where}.fallback", item)
        fallback = Fallback.parse(text)
        if fallback.kind == COLUMN and ":" in text:
            raise ConfigError(
                f"{where}.fallback: {text!r}: use meta:<key>, app:<key>, literal:<text>, an auth "
                f"column or one of {', '.join(DERIVED)}"
            )
        if fallback.kind in (META, APP) and not fallback.value:
            raise ConfigError(f"{where}.fallback: {text!r} names no key")
        if fallback.kind == META:  # user metadata: never for privilege-like columns or keys
            _refuse_privilege_from_user_metadata(
                target_column, ColumnSource(metadata=(fallback.value,))
            )
        found.append(fallback)
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
