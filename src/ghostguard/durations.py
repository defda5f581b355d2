"""Durations from ghostguard.toml and the command line, parsed and bounded before they reach SQL.

A lock_timeout of "0" would mean "wait forever" and "1s -c statement_timeout=1" would add a server
option: only a number with a unit, within bounds, becomes a duration, and only its canonical
form (`250ms`, `2s`) is ever written into SQL or libpq options.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from ghostguard.errors import ConfigError

_DURATION = re.compile(r"\s*(\d+(?:\.\d+)?)\s*(ms|s|min)?\s*", re.ASCII)
_UNIT_MS = {"ms": 1.0, "s": 1000.0, "min": 60_000.0, None: 1.0}  # no unit: ms, as PostgreSQL


@dataclass(frozen=True)
class Bounds:
    least_ms: int
    most_ms: int


# Every lock ghostguard's own statements wait for (DDL, each backfill batch): long enough to get a
# lock on a busy table, never long enough to queue signups noticeably behind it.
DDL_LOCK_BOUNDS = Bounds(1, 60_000)
# What a signup's profile write may wait for a lock on the profile table before it is recorded as
# a failure (repair and the monitor pick it up): a signup must never hang behind a migration.
SIGNUP_LOCK_BOUNDS = Bounds(10, 5_000)


def canonical(ms: int) -> str:
    return f"{ms // 1000}s" if ms % 1000 == 0 else f"{ms}ms"


def parse_duration(where: str, value: object, bounds: Bounds) -> str:
    """`value` ("250ms", "1s", "2min" or a number of ms) as its canonical text, or a ConfigError
    naming `where`, what was wrong and the allowed range."""
    allowed = f"a duration like 250ms, 1s or 2min, from {canonical(bounds.least_ms)} to {canonical(bounds.most_ms)}"
    text = str(value) if isinstance(value, int | str) and not isinstance(value, bool) else None
    match = _DURATION.fullmatch(text) if text is not None else None
    if match is None:
        raise ConfigError(f"{where} = {value!r} is not {allowed}")
    ms = float(match[1]) * _UNIT_MS[match[2]]
    if ms != int(ms) or not bounds.least_ms <= ms <= bounds.most_ms:
        raise ConfigError(f"{where} = {value!r} is out of range: use {allowed}")
    return canonical(int(ms))
