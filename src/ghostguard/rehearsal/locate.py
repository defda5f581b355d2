"""Where in the migrations a rehearsal's finding comes from: the statement that dropped a profile
trigger, the one that made a profile column NOT NULL. CI annotations and SARIF point at that file
and line, so the pull request shows the finding on the line that caused it."""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import pgparse

from ghostguard.rehearsal.files import MigrationFile, Statement, statements


@dataclass(frozen=True)
class Location:
    """A line of a file, the path as CI tools want it: relative to the working directory."""

    path: str
    line: int = 1

    @classmethod
    def of(cls, path: Path, line: int = 1) -> Location:
        shown = Path(os.path.normpath(path))
        if shown.is_absolute() and shown.is_relative_to(Path.cwd()):
            shown = shown.relative_to(Path.cwd())
        return cls(shown.as_posix(), max(line, 1))


def _trees(text: str) -> Iterator[tuple[Statement, dict[str, Any]]]:
    for statement in statements(text):
        try:
            parsed = pgparse.parse(statement.text)
        except pgparse.PGQueryError:
            continue
        for item in parsed:
            yield statement, item["stmt"]


def _names(node: object) -> list[str]:
    """Every identifier (String sval) under a parse-tree node, in order."""
    if isinstance(node, dict):
        tree = cast(dict[str, Any], node)
        named = tree.get("String")
        if isinstance(named, dict):
            return [str(cast(dict[str, Any], named).get("sval", ""))]
        return [n for value in tree.values() for n in _names(value)]
    if isinstance(node, list):
        return [n for value in cast(list[object], node) for n in _names(value)]
    return []


def dropped_at(migration: MigrationFile, text: str, trigger: str, function: str) -> Location:
    """The statement of `migration` that dropped `trigger`: DROP TRIGGER, or DROP FUNCTION of its
    function (schema-qualified or not) with CASCADE; the file's first line when neither shows."""
    function_name = function.split("(")[0].split(".")[-1].strip('"')
    for statement, tree in _trees(text):
        drop = tree.get("DropStmt")
        if not drop:
            continue
        names = _names(drop.get("objects", []))
        kind = drop.get("removeType")
        if kind == "OBJECT_TRIGGER" and trigger in names:
            return Location.of(migration.path, statement.line)
        if kind == "OBJECT_FUNCTION" and function_name in names:
            return Location.of(migration.path, statement.line)
    return Location.of(migration.path)


def made_not_null(
    migrations: list[tuple[MigrationFile, str]], table: str, column: str
) -> Location | None:
    """The last statement that made `table.column` NOT NULL: CREATE TABLE with the column NOT
    NULL, ALTER TABLE ... ADD COLUMN ... NOT NULL, or ALTER COLUMN ... SET NOT NULL. `table` may
    be schema-qualified; the table's own name is matched."""
    relname = table.split(".")[-1].strip('"')
    found: Location | None = None
    for migration, text in migrations:
        for statement, tree in _trees(text):
            if _makes_not_null(tree, relname, column):
                found = Location.of(migration.path, statement.line)
    return found


def _makes_not_null(tree: dict[str, Any], relname: str, column: str) -> bool:
    create, alter = tree.get("CreateStmt"), tree.get("AlterTableStmt")
    if create and create.get("relation", {}).get("relname") == relname:
        return any(
            _not_null_column(element.get("ColumnDef"), column)
            for element in create.get("tableElts", [])
        )
    if alter and alter.get("relation", {}).get("relname") == relname:
        for item in alter.get("cmds", []):
            cmd = item.get("AlterTableCmd", {})
            if cmd.get("subtype") == "AT_SetNotNull" and cmd.get("name") == column:
                return True
            if cmd.get("subtype") == "AT_AddColumn" and _not_null_column(
                cmd.get("def", {}).get("ColumnDef"), column
            ):
                return True
    return False


def _not_null_column(definition: dict[str, Any] | None, column: str) -> bool:
    if not definition or definition.get("colname") != column:
        return False
    kinds = {c.get("Constraint", {}).get("contype") for c in definition.get("constraints", [])}
    return bool(kinds & {"CONSTR_NOTNULL", "CONSTR_PRIMARY"})
