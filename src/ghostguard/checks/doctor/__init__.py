"""`ghostguard doctor`: catalog checks of ghostguard's objects and of the pitfalls that cost users.

Each check reads the same `Facts` (one catalog read and one pass over the auth table) and returns
findings with the same columns: check, level, passed, object, detail, fix.
"""

from __future__ import annotations

from dataclasses import replace

import psycopg

from ghostguard.catalog import Shape
from ghostguard.checks import signup_kinds
from ghostguard.checks.census import snapshot
from ghostguard.checks.doctor import facts
from ghostguard.checks.doctor.checks import CHECKS
from ghostguard.checks.finding import LEVELS, Finding, FindingsReport
from ghostguard.config import Config

DoctorReport = FindingsReport
__all__ = ["LEVELS", "DoctorReport", "Finding", "doctor"]


def doctor(conn: psycopg.Connection, config: Config, shape: Shape) -> DoctorReport:
    """Every check, from facts read in one read-only snapshot; then, when the app's own trigger
    writes profiles, every kind of signup through it (written and rolled back, so not in the
    read-only snapshot)."""
    with snapshot(conn):
        known = facts.read(conn, config, shape)
    if any(w.trigger and w.trigger.writes_profiles(config) for w in known.in_the_way):
        known = replace(known, app_signups=signup_kinds.check(conn, config, shape, as_it_is=True))
    return DoctorReport([finding for check in CHECKS for finding in check(known)])
