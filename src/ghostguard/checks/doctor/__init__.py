"""`ghostguard doctor`: catalog checks of ghostguard's objects and of the pitfalls that cost users.

Each check reads the same `Facts` (one catalog read and one pass over the auth table) and returns
findings with the same columns: check, level, passed, object, detail, fix.
"""

from __future__ import annotations

import uuid
from dataclasses import replace

import psycopg

from ghostguard.catalog import Shape
from ghostguard.checks import app_view, census, signup_kinds
from ghostguard.checks.census import snapshot
from ghostguard.checks.doctor import facts
from ghostguard.checks.doctor.checks import CHECKS
from ghostguard.checks.finding import LEVELS, Finding, FindingsReport
from ghostguard.config import Config
from ghostguard.hooks import call
from ghostguard.hooks.found import CUSTOM_ACCESS_TOKEN, AuthHook

DoctorReport = FindingsReport
__all__ = ["LEVELS", "DoctorReport", "Finding", "doctor"]


def doctor(
    conn: psycopg.Connection, config: Config, shape: Shape, hooks: list[AuthHook] | None = None
) -> DoctorReport:
    """Every check, from facts read in one read-only snapshot; then what needs a role switch or a
    write, rolled back: every kind of signup through the app's own profile trigger (when there
    is one), and the profile table as signed-in users and anon read it. `hooks`: the project's
    auth hooks (default: the hook functions the database has)."""
    with snapshot(conn):
        known = facts.read(conn, config, shape, hooks)
    if any(w.trigger and w.trigger.writes_profiles(config) for w in known.in_the_way):
        known = replace(
            known, app_signups=signup_kinds.check_or_name_holder(conn, config, shape, as_it_is=True)
        )
    if known.profile.exists:
        known = replace(known, app_view=app_view.read(conn, config))
        known = replace(known, ghost_lockouts=_ghost_lockouts(conn, config, known))
    return DoctorReport([finding for check in CHECKS for finding in check(known)])


def _ghost_lockouts(
    conn: psycopg.Connection, config: Config, known: facts.Facts
) -> list[tuple[str, str, list[str]]]:
    """Each token hook, called for a real ghost (rolled back): the ones it fails for."""
    token_hooks = [f.hook for f in known.hooks if f.hook.hook == CUSTOM_ACCESS_TOKEN]
    if not token_hooks:
        return []
    ghosts = [str(r[0]) for r in conn.execute(census.sample_ghosts(config, 5)).fetchall()]
    if not ghosts:
        return []
    found: list[tuple[str, str, list[str]]] = []
    for hook in token_hooks:
        result = call.token_rolled_back(conn, hook, uuid.UUID(ghosts[0]))
        if not result.ok:
            found.append((hook.display, result.describe(), ghosts))
    return found
