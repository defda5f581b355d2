"""Heuristics over a trigger function's source: unqualified table names and swallowed exceptions.

PostgreSQL has no parser for PL/pgSQL that a role like `postgres` can call, so these read the
source text with comments and string literals blanked out. They are lint heuristics (what a
reviewer would flag), never used to decide what ghostguard itself runs.
"""

from __future__ import annotations

import re

_COMMENTS_AND_STRINGS = re.compile(r"--[^\n]*|/\*.*?\*/|'(?:[^']|'')*'", re.S)
_NAME = r'(?:"[^"]+"|[A-Za-z_][\w$]*)'
_RELATION = re.compile(
    rf"\b(?P<kw>INSERT\s+INTO|UPDATE|DELETE\s+FROM|FROM|JOIN)\s+(?:ONLY\s+)?"
    rf"(?P<name>{_NAME}(?:\s*\.\s*{_NAME})?)(?P<call>\s*\()?",
    re.I,
)
_NOT_RELATIONS = {
    "set",
    "of",
    "only",
    "lateral",
    "select",
    "values",
    "nowait",
    "skip",
    "new",
    "old",
    "where",
}
_NOT_A_TABLE_BEFORE = {
    "distinct",
    "epoch",
    "year",
    "month",
    "day",
    "hour",
    "minute",
    "second",
    "both",
    "leading",
    "trailing",
}
_CTE = re.compile(
    rf"(?:\bWITH\s+(?:RECURSIVE\s+)?|,\s*)(?P<name>{_NAME})\s+AS\s*(?:NOT\s+)?(?:MATERIALIZED\s+)?\(",
    re.I,
)
_HANDLER = re.compile(r"\bEXCEPTION\s+WHEN\b(?P<handler>.*?)(?=\bEND\b|\Z)", re.I | re.S)
_RECORDS = re.compile(r"\b(?:INSERT|PERFORM)\b|\bRAISE\b(?!\s+(?:NOTICE|INFO|DEBUG)\b)", re.I)


def code_only(body: str) -> str:
    """The source with comments and string literals replaced by a space."""
    return _COMMENTS_AND_STRINGS.sub(" ", body)


def _unquote(name: str) -> str:
    return name[1:-1] if name.startswith('"') else name.lower()


def unqualified_relations(body: str, transition_tables: tuple[str, ...] = ()) -> list[str]:
    """Table names read or written without a schema, in order of appearance, without repeats."""
    code = code_only(body)
    local = {_unquote(m.group("name")) for m in _CTE.finditer(code)} | set(transition_tables)
    found: list[str] = []
    for match in _RELATION.finditer(code):
        name = match.group("name")
        reads = match.group("kw").upper() in ("FROM", "JOIN")
        if "." in name or (reads and match.group("call")):  # FROM f(...): a function
            continue
        before = code[: match.start()].split()
        if (
            match.group("kw").upper() == "FROM"
            and before
            and before[-1].lower() in _NOT_A_TABLE_BEFORE
        ):
            continue
        plain = _unquote(name)
        if plain.lower() in _NOT_RELATIONS or plain in local or plain in found:
            continue
        found.append(plain)
    return found


def swallowed_exceptions(body: str) -> int:
    """Exception handlers that neither record (INSERT, PERFORM) nor report (RAISE) what they caught."""
    return sum(
        1 for m in _HANDLER.finditer(code_only(body)) if not _RECORDS.search(m.group("handler"))
    )
