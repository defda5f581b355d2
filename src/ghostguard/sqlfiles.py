"""Static SQL kept as package data beside the module that runs it, read once.

A `.sql` file holds named statements, each starting with a line `-- name: <name>`. They are text
shipped with the package: nothing is spliced into them (values go as parameters, names through
`psycopg.sql` placeholders), so this one place types them as `LiteralString`.
"""

from __future__ import annotations

import re
import sys
from functools import cache
from importlib import resources
from typing import LiteralString, cast

from psycopg import sql

_NAME = re.compile(r"^-- name: (\w+)\s*$", re.M)


def _package(module: str) -> str:
    loaded = sys.modules[module]
    return module if hasattr(loaded, "__path__") else (loaded.__package__ or module)


def whole(module: str, filename: str) -> LiteralString:
    """All of `filename` (beside `module`), a script of statements without names."""
    return statements(module, filename, whole_file=True)[""]


@cache
def statements(module: str, filename: str, whole_file: bool = False) -> dict[str, LiteralString]:
    """Every named statement of `filename`, which lies beside `module` (pass `__name__`);
    `whole_file`: the file as one script, under the name ''."""
    package = _package(module)
    text = resources.files(package).joinpath(filename).read_text(encoding="utf-8")
    parts = ["", "", text] if whole_file else _NAME.split(text)
    found: dict[str, LiteralString] = {}
    for name, body in zip(parts[1::2], parts[2::2], strict=True):
        if name in found:
            raise ValueError(f"{package}/{filename}: {name} is defined twice")
        found[name] = cast(LiteralString, body.strip().rstrip(";"))
    return found


def text(module: str, filename: str, name: str) -> LiteralString:
    """One named statement, to execute with parameters."""
    return statements(module, filename)[name]


def template(module: str, filename: str, name: str) -> sql.SQL:
    """One named statement with `{placeholders}` for `sql.SQL.format`."""
    return sql.SQL(statements(module, filename)[name])
