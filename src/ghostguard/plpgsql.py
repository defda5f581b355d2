"""Reading trigger function bodies with PostgreSQL's own parser (libpg_query, through `pgparse`,
BSD-licensed): which tables a body reads and writes, what it inserts, and which exception handlers
swallow errors. Comments, string literals and nested blocks are the parser's business, not ours.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, cast

import pgparse

Node = dict[str, Any]

WARNING_LEVEL = 19  # elog level of RAISE WARNING; ERROR and a bare RAISE (re-raise) are higher
_WRITES = ("InsertStmt", "UpdateStmt", "DeleteStmt", "MergeStmt")
_ASSIGNMENT = re.compile(r"^\s*[\w.\"\[\]]+\s*:?=\s*", re.S)


class BodyError(Exception):
    """The body could not be parsed (its language, or syntax this parser does not know)."""


@dataclass(frozen=True)
class Relation:
    schema: str | None  # None: unqualified, resolved by search_path at run time
    name: str
    writes: bool


@dataclass(frozen=True)
class Insert:
    """An INSERT in the body: the table and the columns it names."""

    schema: str | None
    table: str
    columns: tuple[str, ...]


@dataclass(frozen=True)
class Body:
    statements: list[tuple[str, Node]]  # (SQL text, its parse tree) for every SQL in the body
    handlers: list[bool]  # per EXCEPTION handler: does it record or report what it caught?
    performs: tuple[str, ...] = ()  # what each PERFORM calls (outside exception handlers)

    def relations(self, local: tuple[str, ...] = ()) -> list[Relation]:
        """Tables read or written, in order, without repeats; CTEs and `local` names left out."""
        found: list[Relation] = []
        for _, tree in self.statements:
            ctes = {n["ctename"] for n in _nodes(tree, "CommonTableExpr")}
            written = {id(n["relation"]) for key in _WRITES for n in _nodes(tree, key)}
            for ref in _range_vars(tree):
                name = ref["relname"]
                schema = ref.get("schemaname")
                if schema is None and (name in ctes or name in local):
                    continue
                relation = Relation(schema, name, id(ref) in written)
                if relation not in found:
                    found.append(relation)
        return found

    def tables(self, written: bool) -> list[str]:
        """Tables it writes (`written`) or only reads: `schema.table`, or the bare name."""
        return [
            f"{r.schema}.{r.name}" if r.schema else r.name
            for r in self.relations()
            if r.writes == written
        ]

    def unqualified(self, local: tuple[str, ...] = ()) -> list[str]:
        names: list[str] = []
        for r in self.relations(local):
            if r.schema is None and r.name not in names:
                names.append(r.name)
        return names

    def swallowed(self) -> int:
        """Exception handlers that neither record (INSERT, PERFORM) nor report (RAISE WARNING or
        worse) what they caught."""
        return sum(1 for records in self.handlers if not records)

    def inserts(self) -> list[Insert]:
        found: list[Insert] = []
        for _, tree in self.statements:
            for ins in _nodes(tree, "InsertStmt"):
                rel = ins["relation"]
                columns = tuple(t["ResTarget"]["name"] for t in ins.get("cols", []))
                found.append(Insert(rel.get("schemaname"), rel["relname"], columns))
        return found

    def writes_to(self, schema: str, table: str, search_path: str | None = None) -> bool:
        """Whether the body writes the table: by its qualified name, or unqualified where the
        function's pinned `search_path` names the schema (without one, an unqualified name in a
        trigger on auth.users resolves in the Auth server's search_path: auth)."""
        pinned = schemas_of(search_path)
        return any(
            r.writes
            and r.name == table
            and (r.schema == schema or (r.schema is None and schema in pinned))
            for r in self.relations()
        )


def read(source: str, language: str) -> Body:
    """Parse a function body (`pg_proc.prosrc`) in `language` ('plpgsql' or 'sql')."""
    if language == "sql":
        return Body([(source, tree) for tree in _parse_sql(source)], [])
    if language != "plpgsql":
        raise BodyError(f"cannot read a {language} function")
    tag = "$ghostguard_body$"
    while tag in source:
        tag = tag[:-1] + "_$"
    wrapped = (
        f"CREATE FUNCTION ghostguard_read() RETURNS trigger LANGUAGE plpgsql AS {tag}{source}{tag}"
    )
    try:
        tree = pgparse.parse_pgsql(wrapped)
    except pgparse.PGQueryError as exc:
        raise BodyError(str(exc.message)) from None
    statements: list[tuple[str, Node]] = []
    for expr in _nodes(tree, "PLpgSQL_expr"):
        statements += _expression(expr)
    exceptions = list(_nodes(tree, "PLpgSQL_exception"))
    handlers = [_records(h.get("action", [])) for h in exceptions]
    in_handlers = {id(n) for h in exceptions for _, n in walk(h)}
    performs = tuple(
        str(p["expr"]["PLpgSQL_expr"].get("query", "")).removeprefix("SELECT ").strip()
        for p in _nodes(tree, "PLpgSQL_stmt_perform")
        if id(p) not in in_handlers
    )
    return Body(statements, handlers, performs)


def _parse_sql(text: str) -> list[Node]:
    try:
        parsed = pgparse.parse(text)
    except pgparse.PGQueryError as exc:
        raise BodyError(str(exc.message)) from None
    return [item["stmt"] for item in parsed if "stmt" in item]


def _expression(expr: Node) -> list[tuple[str, Node]]:
    """The SQL of one PL/pgSQL expression: a statement, or an expression read as SELECT <expr>."""
    query = str(expr.get("query", ""))
    candidates = [query] if expr.get("parseMode", 0) == 0 else []
    candidates += [f"SELECT {query}", f"SELECT {_ASSIGNMENT.sub('', query, count=1)}"]
    for text in candidates:
        try:
            return [(text, tree) for tree in _parse_sql(text)]
        except BodyError:
            continue
    return []  # e.g. a dynamic EXECUTE's string: not SQL we can read


def _records(actions: list[Node]) -> bool:
    """Whether a handler's statements (nested blocks included) record or report the error."""
    for key, node in walk(actions):
        if key == "PLpgSQL_stmt_perform":
            return True
        if key == "PLpgSQL_stmt_raise" and node.get("elog_level", 0) >= WARNING_LEVEL:
            return True
        if key == "PLpgSQL_stmt_execsql" and any(
            "InsertStmt" in tree for _, tree in _expression(node["sqlstmt"]["PLpgSQL_expr"])
        ):
            return True
    return False


def walk(node: object) -> Iterator[tuple[str, Node]]:
    """Every (node type, node) pair below `node`, depth first."""
    if isinstance(node, dict):
        for key, value in cast(Node, node).items():
            if isinstance(value, dict):
                child = cast(Node, value)
                yield key, child
                yield from walk(child)
            else:
                yield from walk(value)
    elif isinstance(node, list):
        for item in cast(list[object], node):
            yield from walk(item)


def _range_vars(tree: object) -> Iterator[Node]:
    """Table references: `RangeVar` nodes, and the bare ones a statement names as its `relation`."""
    return (
        node
        for key, node in walk(tree)
        if key == "RangeVar" or (key == "relation" and "relname" in node)
    )


def _nodes(tree: object, kind: str) -> Iterator[Node]:
    return (node for key, node in walk(tree) if key == kind)


def read_or_reason(source: str, language: str) -> Body | str:
    """The body as PostgreSQL's parser reads it, or why it could not be read."""
    try:
        return read(source, language)
    except BodyError as exc:
        return str(exc)


def schemas_of(search_path: str | None) -> list[str]:
    """The schema names a function's pinned `search_path` setting lists, in order."""
    return [s.strip().strip('"') for s in (search_path or "").split(",") if s.strip()]
