"""A migrations folder as the Supabase CLI reads it: `<version>_<name>.sql` files in version
order, each read as UTF-8 and split into the statements the server would run, with the line each
starts on. Every problem with the folder itself is one line (ConfigError, exit 2)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import pgparse

from ghostguard.errors import ConfigError

FILE_NAME = re.compile(r"^(\d+)_(.+)\.sql$")
# Whitespace and comments before a statement: its line is the one its first word is on.
LEADING = re.compile(r"(?:\s+|--[^\n]*(?:\n|$)|/\*.*?\*/)*", re.DOTALL)
FILE_TRANSACTION = {"TRANS_STMT_BEGIN", "TRANS_STMT_START", "TRANS_STMT_COMMIT"}


@dataclass(frozen=True)
class MigrationFile:
    path: Path
    version: str
    name: str


@dataclass(frozen=True)
class Statement:
    text: str
    line: int  # 1-based line of the file the statement starts on


def migration_files(directory: Path) -> list[MigrationFile]:
    """`<version>_<name>.sql` files in version order, as the Supabase CLI reads them; two files
    with one version are refused naming both (the CLI would stop on its history's primary key)."""
    if not directory.is_dir():
        raise ConfigError(f"migrations directory {directory} not found: pass --migrations DIR")
    found = sorted(
        (
            MigrationFile(path, match[1], match[2])
            for path in directory.iterdir()
            if path.is_file() and (match := FILE_NAME.match(path.name))
        ),
        key=lambda m: (int(m.version), m.name),
    )
    for before, after in zip(found, found[1:], strict=False):
        if before.version == after.version:
            raise ConfigError(
                f"{before.path.name} and {after.path.name} have the same version {after.version}: "
                "the Supabase CLI records one file per version; rename one with a later timestamp"
            )
    return found


def skipped(directory: Path) -> list[str]:
    """`.sql` files the Supabase CLI skips: their names are not `<version>_<name>.sql`."""
    return sorted(
        p.name
        for p in directory.iterdir()
        if p.is_file() and p.suffix == ".sql" and not FILE_NAME.match(p.name)
    )


def read(path: Path) -> str:
    """The file's text; a file that is not UTF-8 (as the CLI reads it) is one line."""
    data = path.read_bytes()
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise ConfigError(
            f"{path.name} is not UTF-8 (byte 0x{data[exc.start]:02x} on line {line}): save it "
            "as UTF-8, as the Supabase CLI expects"
        ) from None


def statements(text: str) -> list[Statement]:
    """The file's statements as the server's parser splits them (the whole text when it does not
    parse: the server then reports the syntax error with its position), less the BEGIN and
    COMMIT that dumps and hand-written files carry: the CLI runs a file as one batch, where they
    only open and close the transaction the file runs in anyway."""
    try:
        parsed = pgparse.parse(text)
    except pgparse.PGQueryError:
        return [Statement(text, 1)]
    encoded = text.encode()  # the parser's locations count UTF-8 bytes, not characters
    found: list[Statement] = []
    for item in parsed:
        if item["stmt"].get("TransactionStmt", {}).get("kind") in FILE_TRANSACTION:
            continue  # the file's own BEGIN/COMMIT: it already runs in one transaction
        start = int(item.get("stmt_location", 0))
        length = int(item.get("stmt_len", 0)) or len(encoded) - start
        body = encoded[start : start + length].decode()
        leading = LEADING.match(body)
        line = encoded[:start].count(b"\n") + (leading[0].count("\n") if leading else 0) + 1
        found.append(Statement(body, line))
    return found or [Statement(text, 1)]


def line_at(text: str, position: int) -> int:
    """The 1-based line of a 1-based character position in `text`."""
    return text.count("\n", 0, max(position - 1, 0)) + 1


def statement_at(text: str, position: int) -> str:
    """In a file the parser could not split: the statement around `position` (1-based)."""
    if position:
        start = text.rfind(";", 0, position - 1) + 1
        end = text.find(";", position - 1)
        text = text[start : end if end >= 0 else len(text)]
    return shown(text)


def shown(statement: str) -> str:
    """A statement on one line without its comments, shortened."""
    lines = [line.split("--", 1)[0] for line in statement.strip().splitlines()]
    flat = " ".join(" ".join(lines).split()).rstrip(";").strip()
    return flat if len(flat) <= 90 else flat[:87] + "..."
