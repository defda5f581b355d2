"""`ghostguard doctor`: catalog checks of ghostguard's objects and of the pitfalls that cost users.

Each check reads the same `Facts` (one catalog read and one pass over the auth table) and returns
findings with the same columns: check, level, passed, object, detail, fix.
"""

from __future__ import annotations

import psycopg

from ghostguard.catalog import Shape
from ghostguard.checks.census import snapshot
from ghostguard.checks.doctor import facts
from ghostguard.checks.doctor.checks import CHECKS
from ghostguard.checks.finding import LEVELS, Finding, FindingsReport
from ghostguard.config import Config

DoctorReport = FindingsReport
__all__ = ["LEVELS", "DoctorReport", "Finding", "doctor"]


def doctor(conn: psycopg.Connection, config: Config, shape: Shape) -> DoctorReport:
    """Every check, from facts read in one read-only snapshot."""
    with snapshot(conn):
        known = facts.read(conn, config, shape)
    return DoctorReport([finding for check in CHECKS for finding in check(known)])
