"""The ghostguard.toml `init` writes: each entry with init's reasons beside it as comments (the
signup kinds seen, why a fallback, why a column is left to its default or to the app), and on
`init --force` over an existing file, every value the user has there kept as it is: init adds
what is new and says where its proposal differs from what is kept."""

from __future__ import annotations

import json
import re
import tomllib
from pathlib import Path
from typing import Any, cast

import tomli_w

from ghostguard import config as config_mod
from ghostguard.errors import ConfigError
from ghostguard.initconfig import Proposal

DECIDE = "# TO DECIDE before `ghostguard apply` (init could not choose):\n"


def _one_line(note: str) -> str:
    """A note may hold text from the catalog (names): in a comment, never a line break."""
    return " ".join(note.split())


def _comment(lines: list[str]) -> str:
    return "".join(f"# {_one_line(line)}\n" for line in lines)


def _column_of(note: str, table: str, columns: set[str]) -> str | None:
    """The column a note is about (`profiles.full_name <- …`, `profiles.x: …`), or None."""
    for column in sorted(columns, key=len, reverse=True):
        if re.match(rf"{re.escape(table)}\.{re.escape(column)}(?=[ :])", note):
            return column
    return None


def render(
    proposal: Proposal, data: dict[str, Any] | None = None, kept: list[str] | None = None
) -> str:
    """The file's text: `data` (default: the proposal's config) as TOML, init's notes as comments
    above the entries they explain, the values kept from the user's file where init proposes
    otherwise, the decisions still open at the end."""
    data = data if data is not None else config_mod.to_dict(proposal.config)
    table = str(data.get("target", {}).get("table", proposal.config.target.table))
    mapped = set(data.get("mapping", {}))
    about: dict[str, list[str]] = {}
    general: list[str] = []
    unmapped: list[str] = []
    for note in proposal.notes:
        column = _column_of(note, table, mapped)
        if column is not None:
            about.setdefault(column, []).append(note)
        elif note.startswith(f"{table}."):
            unmapped.append(note)
        else:
            general.append(note)
    text = tomli_w.dumps(data)
    if kept:
        general += ["Kept from your file where init proposes otherwise:", *kept]
    text = text.replace("[target]\n", _comment(general) + "[target]\n", 1)
    for column, notes in about.items():
        header = f"[mapping.{_key(column)}]\n"
        text = text.replace(header, _comment(notes) + header, 1)
    if unmapped:
        text += "\n# Not mapped (left to the app, or to the column's DEFAULT):\n" + _comment(
            unmapped
        )
    decisions = open_decisions(proposal, data)
    if decisions:
        text += "\n" + DECIDE + "".join(f"# - {_one_line(d)}\n" for d in decisions)
    return (
        config_mod.HEADER
        + "# Written by `ghostguard init`; the comments say why. Edit freely: `init --force`\n"
        + "# keeps every value you set and only adds what is new.\n"
        + text
    )


def open_decisions(proposal: Proposal, data: dict[str, Any]) -> list[str]:
    """init's decisions less those the file has made: a column it maps now."""
    prefix = proposal.config.target.display + "."
    mapped = set(data.get("mapping", {}))
    return [
        d
        for d in proposal.decisions
        if not (d.startswith(prefix) and d[len(prefix) :].split(" ", 1)[0] in mapped)
    ]


def _key(name: str) -> str:
    """A TOML key as tomli_w writes it (bare when it can be)."""
    return (
        name if re.fullmatch(r"[A-Za-z0-9_-]+", name) else tomli_w.dumps({name: 0}).split(" =")[0]
    )


def existing(path: Path) -> dict[str, Any] | None:
    """The file's values, to keep; None when there is no file. A file that does not parse is
    refused: init never overwrites what it cannot read back."""
    if not path.exists():
        return None
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(
            f"{path} is not valid TOML ({exc}): fix it, or move it away to have init write a new one"
        ) from None


def keep_edits(
    kept: dict[str, Any], proposed: dict[str, Any], at: str = ""
) -> tuple[dict[str, Any], list[str]]:
    """`proposed` with every value `kept` has put back, and what init would have changed. Tables
    merge key by key; mapping entries merge whole (an entry is one choice); a profile table the
    user pointed elsewhere keeps the user's mapping, since init's is for another table."""
    merged: dict[str, Any] = dict(proposed)
    differs: list[str] = []
    if at == "" and kept.get("target", {}).get(
        "table", proposed.get("target", {}).get("table")
    ) != (proposed.get("target", {}).get("table")):
        merged["mapping"] = {}
    for key, value in kept.items():
        path = f"{at}.{key}" if at else key
        mine = merged.get(key)
        if isinstance(value, dict) and isinstance(mine, dict) and at != "mapping":
            merged[key], below = keep_edits(
                cast(dict[str, Any], value), cast(dict[str, Any], mine), path
            )
            differs += below
            continue
        if key in merged and mine != value:
            differs.append(f"{path}: kept yours ({_short(value)}); init proposes {_short(mine)}")
        merged[key] = value
    return merged, differs


def _short(value: Any) -> str:
    return json.dumps(value, default=str, ensure_ascii=False)
