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
from dataclasses import dataclass, field

import psycopg

from ghostguard.adopt.existing import INSERT, UPDATE, AuthTrigger, auth_triggers
from ghostguard.config import ColumnSource, Config
from ghostguard.plpgsql import Node, walk
from ghostguard.sources import (
    APP_METADATA,
    PRIVILEGED_NAMES,
    USER_WRITABLE_METADATA,
    is_profile_data,
    reads_user_metadata,
)

_METADATA = {USER_WRITABLE_METADATA: "meta", APP_METADATA: "app"}
_NEW = re.compile(r'"?new"?', re.I)


@dataclass(frozen=True)
class Translation:
    """What one trigger's INSERT becomes."""

    trigger: str
    function: str
    mapping: dict[str, ColumnSource] = field(default_factory=dict[str, ColumnSource])
    notes: list[str] = field(default_factory=list[str])
    decisions: list[str] = field(default_factory=list[str])  # what init could not carry over


Source = tuple[str, str]  # (kind, value): column, meta, app, literal, email_local, now


@dataclass(frozen=True)
class Adoption:
    """The app's triggers that write the profile table, translated: what init proposes."""

    triggers: tuple[str, ...] = ()
    mapping: dict[str, ColumnSource] = field(default_factory=dict[str, ColumnSource])
    notes: list[str] = field(default_factory=list[str])
    decisions: list[str] = field(default_factory=list[str])


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
            found.mapping.setdefault(column, source)
        found.notes.extend(translated.notes)
        found.decisions.extend(translated.decisions)
    return found


def translate(trigger: AuthTrigger, config: Config) -> Translation:
    """The trigger's INSERT into the profile table as mapping entries, with a note per column."""
    out = Translation(trigger.name, trigger.function)
    found = _profile_insert(trigger, config)
    if found is None:
        out.decisions.append(
            f"trigger {trigger.name} ({trigger.function}) writes {config.target.display}, but not "
            "with an INSERT ghostguard can read: map the columns by hand"
        )
        return out
    text, pairs = found
    once = not trigger.fires_on(UPDATE)
    table = config.target.table
    for column, node in pairs:
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
        source = _column_source(chain, once) if chain is not None else None
        if source is None:
            expression = _escape_hatch(text, node)
            if expression is None:
                out.decisions.append(
                    f"{table}.{column}: the original sets it to {_slice(text, node)!r}, which "
                    "reads more than the new auth row: map it by hand"
                )
                continue
            source = ColumnSource(expression=expression, follow_updates=False)
        out.mapping[column] = source
        out.notes.append(
            f"{table}.{column} <- {source.describe()} (from {trigger.name}: {_slice(text, node)})"
        )
    updated = sorted(
        {column for table, column, _ in written(trigger) if _is_profile(table, config)}
        - {column for column, _ in pairs}
    )
    if trigger.fires_on(UPDATE):
        out.notes.append(
            f"{trigger.name} also fires on UPDATE: the mapped columns follow the auth row"
            + (
                f" (its UPDATE also sets {', '.join(updated)}: map those by hand)"
                if updated
                else ""
            )
        )
    if once and out.mapping:
        out.notes.append(
            f"{trigger.name} fires on INSERT only: its columns are set once (update = false); "
            "remove that to keep them in step with the auth row"
        )
    return out


def _is_profile(table: str, config: Config) -> bool:
    return table in (config.target.display, config.target.table)


def _profile_insert(
    trigger: AuthTrigger, config: Config
) -> tuple[str, list[tuple[str, Node]]] | None:
    """The INSERT into the profile table: its SQL text and (column, value node) pairs."""
    if isinstance(trigger.parsed, str) or not trigger.fires_on(INSERT):
        return None
    pinned = [s.strip().strip('"') for s in (trigger.search_path or "").split(",")]
    for text, tree in trigger.parsed.statements:
        insert = tree.get("InsertStmt")
        if insert is None:
            continue
        rel = insert["relation"]
        schema = rel.get("schemaname")
        if rel["relname"] != config.target.table or not (
            schema == config.target.schema or (schema is None and config.target.schema in pinned)
        ):
            continue
        pairs = _assignments("InsertStmt", insert)
        if pairs:
            return text, pairs
    return None


def written(trigger: AuthTrigger) -> list[tuple[str, str, str]]:
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
    fallbacks: list[str] = []
    for kind, value in rest:
        if kind == "now":
            return None
        fallbacks.append(
            {"column": value, "meta": f"meta:{value}", "app": f"app:{value}"}.get(
                kind, "email_local" if kind == "email_local" else f"literal:{value}"
            )
        )
    return ColumnSource(
        column=primary.column,
        metadata=primary.metadata,
        metadata_column=primary.metadata_column,
        fallbacks=tuple(fallbacks),
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
