"""The app's own trigger function, translated into ghostguard.toml mapping entries.

The INSERT into the profile table is read from the parse tree (plpgsql.py), column by column:
`new.<column>`, `new.raw_user_meta_data ->> 'key'` (and app metadata), `coalesce(…)` chains,
`split_part(new.email, '@', 1)`, casts, `nullif(…, '')`, constants and `now()` become sources and
fallbacks. Anything else over `new` becomes the escape hatch (`sql = "…"`, the same text with `au`
for `new`), which the config loader parses and the catalog compiles. A column that cannot be
carried over (it reads something other than the new row, or gives a privilege from user metadata)
is named as a choice to make.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING

import psycopg

from ghostguard import plpgsql
from ghostguard.adopt.existing import INSERT, UPDATE, AuthTrigger, auth_triggers
from ghostguard.config import ColumnSource, Config
from ghostguard.plpgsql import Node, walk
from ghostguard.sources import (
    APP,
    APP_METADATA,
    COLUMN,
    DERIVED_VALUE,
    LITERAL,
    META,
    PRIVILEGED_NAMES,
    USER_WRITABLE_METADATA,
    Fallback,
    is_profile_data,
    reads_user_metadata,
)

if TYPE_CHECKING:
    from ghostguard.hooks.found import HookFunction

_METADATA = {USER_WRITABLE_METADATA: "meta", APP_METADATA: "app"}
_NEW = re.compile(r'"?new"?', re.I)
_WHERE = re.compile(r"\s+where\s", re.I)


@dataclass(frozen=True)
class Kept:
    """A profile column the original writes: the adopted mapping must write it too, and keep
    it in step on UPDATE when the original does (`follows`)."""

    trigger: str
    column: str
    follows: bool


@dataclass(frozen=True)
class Translation:
    """What one trigger's INSERT (and its UPDATEs of the profile) becomes."""

    trigger: str
    function: str
    mapping: dict[str, ColumnSource] = field(default_factory=dict[str, ColumnSource])
    notes: list[str] = field(default_factory=list[str])
    decisions: list[str] = field(default_factory=list[str])  # what init could not carry over
    kept: list[Kept] = field(default_factory=list[Kept])  # what the adoption must keep
    unreadable: bool = False  # it writes profiles in a way ghostguard cannot read


Source = tuple[str, str]  # (kind, value): column, meta, app, literal, email_local, now


@dataclass(frozen=True)
class Adoption:
    """The app's triggers that write the profile table, translated: what init proposes."""

    triggers: tuple[str, ...] = ()
    mapping: dict[str, ColumnSource] = field(default_factory=dict[str, ColumnSource])
    notes: list[str] = field(default_factory=list[str])
    decisions: list[str] = field(default_factory=list[str])
    kept: list[Kept] = field(default_factory=list[Kept])
    unreadable: list[str] = field(default_factory=list[str])  # triggers

    def lost(self, config: Config) -> list[str]:
        """What taking these triggers over with `config`'s mapping would drop: a column the
        original writes that the mapping does not, a column it keeps in step on UPDATE that the
        mapping sets once, a profile write it cannot read. Empty: adoption keeps everything."""
        table = config.target.display
        found = [
            f"trigger {name} writes {table} in a way ghostguard cannot read"
            for name in self.unreadable
            if name in config.adopt
        ]
        for k in self.kept:
            if k.trigger not in config.adopt:
                continue
            mapped = config.mapping.get(k.column)
            if mapped is None:
                found.append(f"trigger {k.trigger} writes {table}.{k.column}, which is not mapped")
            elif k.follows and not mapped.follow_updates:
                found.append(
                    f"trigger {k.trigger} keeps {table}.{k.column} in step on UPDATE, but the "
                    "mapping sets it once (update = false)"
                )
        return found


def adoption(conn: psycopg.Connection, config: Config) -> Adoption:
    """Every trigger on the auth table that ghostguard did not install and that writes the
    profile table, translated; the first to fill a column wins."""
    apps = [t for t in auth_triggers(conn, config.source) if not t.ghostguards]
    writers = [t for t in apps if t.writes_profiles(config)]
    found = Adoption(tuple(t.name for t in writers))
    for t in apps:
        if t not in writers:
            writes = ", ".join(t.writes()) or "no table"
            found.notes.append(
                f"trigger {t.name} ({t.function}) writes {writes}, not "
                f"{config.target.display}: left alone"
            )
    for t in writers:
        found.notes.append(
            f"adopting trigger {t.name} ({t.function}): it writes {config.target.display}; apply "
            "saves it and takes it over, `ghostguard rollback` puts it back"
        )
        other = t.other_work(config)
        if other:
            found.decisions.append(
                f"trigger {t.name}: {t.function} also {'; '.join(other)}; ghostguard takes over "
                "only the profile write and refuses to drop that work: move it into its own "
                "trigger first"
            )
        translated = translate(t, config)
        for column, source in translated.mapping.items():
            have = found.mapping.get(column)
            if have is None:
                found.mapping[column] = source
            elif _same_value(have, source):  # one app's INSERT and UPDATE triggers: both kept
                found.mapping[column] = replace(
                    have, follow_updates=have.follow_updates or source.follow_updates
                )
            else:
                found.decisions.append(
                    f"{config.target.table}.{column}: {t.name} sets it to {source.describe()}, "
                    f"another adopted trigger to {have.describe()}: map it by hand"
                )
        found.notes.extend(translated.notes)
        found.decisions.extend(translated.decisions)
        found.kept.extend(translated.kept)
        if translated.unreadable:
            found.unreadable.append(t.name)
    return found


def _same_value(a: ColumnSource, b: ColumnSource) -> bool:
    return replace(a, follow_updates=True) == replace(b, follow_updates=True)


def translate(trigger: AuthTrigger, config: Config) -> Translation:
    """The trigger's INSERT into the profile table as mapping entries, with a note per column."""
    found = _profile_insert(trigger, config)
    updates = _profile_updates(trigger, config)
    if found is None and updates is None:
        return Translation(
            trigger.name,
            trigger.function,
            decisions=[
                f"trigger {trigger.name} ({trigger.function}) writes {config.target.display}, but "
                "not with an INSERT or UPDATE ghostguard can read: map the columns by hand"
            ],
            unreadable=True,
        )
    out = Translation(trigger.name, trigger.function)
    text, pairs, following = found or ("", [], set[str]())
    table = config.target.table
    for column, node in pairs:
        once = column not in following
        chain = _sources(node)
        if column == config.target.key:
            if chain != [("column", config.source.key)]:
                out.decisions.append(
                    f"{table}.{column}: the original links it to {_slice(text, node)!r}, not "
                    f"new.{config.source.key}"
                )
            continue
        privileged = column.lower() in PRIVILEGED_NAMES and (
            any(kind == "meta" for kind, _ in chain or [])
            or USER_WRITABLE_METADATA in _slice(text, node)
        )
        if privileged:
            out.decisions.append(
                f"{table}.{column}: the original reads it from {USER_WRITABLE_METADATA}: any user "
                "can give themselves this at signup. Map it from raw_app_meta_data "
                '(from = "raw_app_meta_data") or a literal; not carried over'
            )
            continue
        out.kept.append(Kept(trigger.name, column, not once))
        source = _column_source(chain, once) if chain is not None else None
        if source is None:
            expression = _escape_hatch(text, node) if once else None
            if expression is None:
                out.decisions.append(
                    f"{table}.{column}: the original sets it to {_slice(text, node)!r}, which "
                    + (
                        "reads more than the new auth row"
                        if once
                        else "ghostguard cannot keep in step on UPDATE"
                    )
                    + ": map it by hand"
                )
                continue
            source = ColumnSource(expression=expression, follow_updates=False)
        out.mapping[column] = source
        out.notes.append(
            f"{table}.{column} <- {source.describe()} (from {trigger.name}: {_slice(text, node)})"
        )
    for text, column, node in updates or []:
        _carry_update(out, trigger, config, text, column, node)
    if found is not None and not following and out.mapping:
        out.notes.append(
            f"{trigger.name}'s INSERT sets its columns once (update = false): remove that to keep "
            "them in step with the auth row"
        )
    return out


def _carry_update(
    out: Translation, trigger: AuthTrigger, config: Config, text: str, column: str, node: Node
) -> None:
    """One `UPDATE <profile> SET column = … WHERE key = new.key` of the original: the column
    follows the auth row (update = true), from the same sources."""
    table = config.target.table
    out.kept.append(Kept(trigger.name, column, True))
    shown = _WHERE.split(_slice(text, node), maxsplit=1)[0]  # the last SET runs into WHERE
    chain = _sources(node)
    source = _column_source(list(chain), False) if chain is not None else None
    if source is None:
        out.decisions.append(
            f"{table}.{column}: the original's UPDATE sets it to {shown!r}, which "
            "ghostguard cannot keep in step: map it by hand (update = true)"
        )
        return
    have = out.mapping.get(column)
    if have is not None and not _same_value(have, source):
        out.decisions.append(
            f"{table}.{column}: the original inserts {have.describe()} but updates it to "
            f"{source.describe()}: map it by hand"
        )
        return
    out.mapping[column] = source if have is None else replace(have, follow_updates=True)
    out.notes.append(
        f"{table}.{column} <- {source.describe()}, kept in step on UPDATE (from {trigger.name}: "
        f"SET {column} = {shown})" + ("" if have is not None else "; now also set at signup")
    )


def _is_target(trigger: AuthTrigger, config: Config, rel: Node) -> bool:
    pinned = plpgsql.schemas_of(trigger.search_path)
    schema = rel.get("schemaname")
    return rel["relname"] == config.target.table and (
        schema == config.target.schema or (schema is None and config.target.schema in pinned)
    )


def _profile_insert(
    trigger: AuthTrigger, config: Config
) -> tuple[str, list[tuple[str, Node]], set[str]] | None:
    """The INSERT into the profile table: its SQL text, (column, value node) pairs, and the
    columns it keeps in step on UPDATE: all of them when the trigger fires on UPDATE too with a
    plain INSERT, those of `ON CONFLICT DO UPDATE SET` when it upserts, none with DO NOTHING."""
    if isinstance(trigger.parsed, str) or not trigger.fires_on(INSERT):
        return None
    for text, tree in trigger.parsed.statements:
        insert = tree.get("InsertStmt")
        if insert is None or not _is_target(trigger, config, insert["relation"]):
            continue
        pairs = _assignments("InsertStmt", insert)
        if not pairs:
            continue
        if not trigger.fires_on(UPDATE):
            return text, pairs, set()
        conflict = insert.get("onConflictClause")
        if conflict is None:
            return text, pairs, {column for column, _ in pairs}
        updated = {
            t["ResTarget"]["name"]
            for t in conflict.get("targetList", [])
            if conflict.get("action") == "ONCONFLICT_UPDATE"
        }
        return text, pairs, updated
    return None


def _profile_updates(trigger: AuthTrigger, config: Config) -> list[tuple[str, str, Node]] | None:
    """(text, column, value node) of every `UPDATE <profile> SET … WHERE <key> = new.<key>` the
    function runs when it fires on UPDATE; None when it has none (or one of another form)."""
    if isinstance(trigger.parsed, str) or not trigger.fires_on(UPDATE):
        return None
    found: list[tuple[str, str, Node]] = []
    for text, tree in trigger.parsed.statements:
        update = tree.get("UpdateStmt")
        if update is None or not _is_target(trigger, config, update["relation"]):
            continue
        if not _by_key(update.get("whereClause"), config):
            return None
        found += [(text, column, node) for column, node in _assignments("UpdateStmt", update)]
    return found or None


def _by_key(where: Node | None, config: Config) -> bool:
    """`WHERE <profile key> = new.<auth key>` (either way round)."""
    if where is None or "A_Expr" not in where or _names(where["A_Expr"].get("name", [])) != ["="]:
        return False
    sides = [where["A_Expr"].get("lexpr", {}), where["A_Expr"].get("rexpr", {})]
    refs = [_names(side.get("ColumnRef", {}).get("fields", [])) for side in sides]
    new_key = [("new", config.source.key)]
    as_pairs = [tuple(n.lower() if i == 0 else n for i, n in enumerate(r)) for r in refs]
    return any(
        list(as_pairs[i][-2:]) == list(new_key[0]) and as_pairs[1 - i][-1:] == (config.target.key,)
        for i in (0, 1)
    )


def written(trigger: AuthTrigger | HookFunction) -> list[tuple[str, str, str]]:
    """(table, column, expression) for every column the function sets with INSERT or UPDATE."""
    if isinstance(trigger.parsed, str):
        return []
    found: list[tuple[str, str, str]] = []
    for text, tree in trigger.parsed.statements:
        for kind, stmt in tree.items():
            if kind not in ("InsertStmt", "UpdateStmt"):
                continue
            rel = stmt["relation"]
            table = (
                f"{rel['schemaname']}.{rel['relname']}" if "schemaname" in rel else rel["relname"]
            )
            found += [(table, c, _slice(text, node)) for c, node in _assignments(kind, stmt)]
    return found


def user_metadata_beyond_profile_data(trigger: AuthTrigger) -> list[str]:
    """`table.column` for every column the function writes (INSERT or UPDATE) from
    raw_user_meta_data, which every user sets for themselves, that is not plainly profile data
    (sources.PROFILE_DATA_NAMES): is_staff, credits, approved, role, ..."""
    return [
        f"{table}.{column}"
        for table, column, expression in written(trigger)
        if not is_profile_data(column) and reads_user_metadata(expression)
    ]


def _assignments(kind: str, stmt: Node) -> list[tuple[str, Node]]:
    """(column, value node) pairs of an INSERT … VALUES/SELECT or an UPDATE … SET."""
    if kind == "UpdateStmt":
        return [(t["ResTarget"]["name"], t["ResTarget"]["val"]) for t in stmt.get("targetList", [])]
    columns = [t["ResTarget"]["name"] for t in stmt.get("cols", [])]
    select = stmt.get("selectStmt", {}).get("SelectStmt", {})
    if select.get("valuesLists"):
        values: list[Node] = select["valuesLists"][0]["List"]["items"]
    else:
        values = [t["ResTarget"]["val"] for t in select.get("targetList", [])]
    return list(zip(columns, values, strict=True)) if len(columns) == len(values) else []


def _sources(node: Node) -> list[Source] | None:
    """The node as an ordered list of sources (first non-empty wins), or None when it is more."""
    kind, body = next(iter(node.items()))
    if kind == "ColumnRef":
        names = _names(body.get("fields", []))
        return [("column", names[1])] if len(names) == 2 and names[0].lower() == "new" else None
    if kind == "A_Expr" and body.get("kind") == "AEXPR_OP":
        op = _names(body.get("name", []))
        left = body.get("lexpr", {}).get("ColumnRef")
        key = _string(body.get("rexpr", {}))
        if op in (["->>"], ["->"]) and left and key is not None:
            names = _names(left.get("fields", []))
            if len(names) == 2 and names[0].lower() == "new" and names[1] in _METADATA:
                return [(_METADATA[names[1]], key)]
        return None
    if kind == "A_Expr" and body.get("kind") == "AEXPR_NULLIF":
        return _sources(body["lexpr"]) if _string(body.get("rexpr", {})) == "" else None
    if kind == "CoalesceExpr":
        chain: list[Source] = []
        for arg in body.get("args", []):
            part = _sources(arg)
            if part is None:
                return None
            chain += part
        return chain
    if kind == "TypeCast":
        return _sources(body["arg"])
    if kind == "FuncCall":
        name = _names(body.get("funcname", []))[-1].lower()
        args = body.get("args", [])
        if name == "now" and not args:
            return [("now", "")]
        if name == "split_part" and len(args) == 3 and _sources(args[0]) == [("column", "email")]:
            if _string(args[1]) == "@" and args[2].get("A_Const", {}).get("ival") == {"ival": 1}:
                return [("email_local", "")]
        return None
    if kind == "SQLValueFunction" and body.get("op") in (
        "SVFOP_CURRENT_TIMESTAMP",
        "SVFOP_LOCALTIMESTAMP",
    ):
        return [("now", "")]
    if kind == "A_Const":
        if body.get("isnull"):
            return []
        value = _constant(body)
        return [("literal", value)] if value is not None else None
    return None


def _column_source(chain: list[Source], once: bool) -> ColumnSource | None:
    """Sources as a ColumnSource: an auth column or metadata keys first, the rest as fallbacks.
    None when the first is something else (the escape hatch carries it)."""
    if not chain or chain[0][0] not in ("column", "meta", "app"):
        return None
    first_kind = chain[0][0]
    rest = chain[1:]
    if first_kind == "column":
        primary = ColumnSource(column=chain[0][1])
    else:
        keys: list[str] = []
        while chain and chain[0][0] == first_kind:
            keys.append(chain.pop(0)[1])
        rest = chain
        primary = ColumnSource(
            metadata=tuple(keys),
            metadata_column=USER_WRITABLE_METADATA if first_kind == "meta" else APP_METADATA,
        )
    found: list[Fallback] = []
    for kind, value in rest:
        if kind == "now":
            return None
        found.append(
            Fallback(DERIVED_VALUE, kind)
            if kind == "email_local"
            else Fallback(kind if kind in (COLUMN, META, APP) else LITERAL, value)
        )
    return ColumnSource(
        column=primary.column,
        metadata=primary.metadata,
        metadata_column=primary.metadata_column,
        fallbacks=tuple(found),
        follow_updates=not once,
    )


def _escape_hatch(text: str, node: Node) -> str | None:
    """The expression's own text with `au` for `new`, when every column it reads is new's."""
    refs = [r for _, r in walk(node) if _is_column_ref(r)]
    if any(_names(r.get("fields", []))[0].lower() != "new" for r in refs):
        return None
    start, piece = _span(text, node)
    for ref in sorted(refs, key=lambda r: -int(r["location"])):
        at = _char_at(text, int(ref["location"])) - start
        match = _NEW.match(piece, at)
        if match is None:
            return None
        piece = piece[:at] + "au" + piece[match.end() :]
    return piece


def _slice(text: str, node: Node) -> str:
    return " ".join(_span(text, node)[1].split())


def _span(text: str, node: Node) -> tuple[int, str]:
    """Where the expression starts in `text`, and its text: from its first token to the comma or
    closing parenthesis that ends it, parentheses balanced."""
    locations = _locations(node)
    start = _char_at(text, min(locations)) if locations else 0
    depth, quote, end = 0, "", len(text)
    for i in range(start, len(text)):
        ch = text[i]
        if quote:
            quote = "" if ch == quote else quote
        elif ch in "'\"":
            quote = ch
        elif ch == "(":
            depth += 1
        elif ch == ")":
            if depth == 0:
                end = i
                break
            depth -= 1
        elif ch == "," and depth == 0:
            end = i
            break
    return start, text[start:end].strip()


def _char_at(text: str, location: int) -> int:
    """The parser's locations count UTF-8 bytes; a comment like `-- créer` before the expression
    would shift a character index."""
    return len(text.encode()[:location].decode(errors="ignore"))


def _locations(node: Node) -> list[int]:
    found = [n.get("location") for _, n in walk(node)]
    return [v for v in found if isinstance(v, int) and v >= 0]


def _is_column_ref(node: Node) -> bool:
    return "fields" in node and "location" in node and isinstance(node["fields"], list)


def _names(fields: list[Node]) -> list[str]:
    return [str(f["String"]["sval"]) for f in fields if "String" in f]


def _string(node: Node) -> str | None:
    const = node.get("A_Const")
    if const is None or "sval" not in const:
        return None
    return str(const["sval"].get("sval", ""))


def _constant(const: Node) -> str | None:
    if "sval" in const:
        return str(const["sval"].get("sval", ""))
    if "ival" in const:
        return str(const["ival"].get("ival", 0))
    if "boolval" in const:
        return "true" if const["boolval"].get("boolval", False) else "false"
    if "fval" in const:
        return str(const["fval"].get("fval", "0"))
    return None


NEW_ID = {"new.id", 'new."id"'}


def profile_inserts(trigger: AuthTrigger) -> list[tuple[str | None, str, str]]:
    """(schema or None, table, key column) for every table the function INSERTs a row into
    keyed by the new user's id (`NEW.id`): what the trigger means by a profile."""
    if isinstance(trigger.parsed, str):
        return []
    found: list[tuple[str | None, str, str]] = []
    for text, tree in trigger.parsed.statements:
        stmt = tree.get("InsertStmt")
        if stmt is None:
            continue
        rel = stmt["relation"]
        for column, node in _assignments("InsertStmt", stmt):
            if "".join(_slice(text, node).lower().split()) in NEW_ID:
                entry = (rel.get("schemaname"), rel["relname"], column)
                if entry not in found:
                    found.append(entry)
    return found
