"""doctor: the project's auth hooks, linted like the sync function (hooks/lint.py)."""

from __future__ import annotations

from ghostguard.checks.doctor.facts import Facts
from ghostguard.checks.finding import ERROR, Finding, problem
from ghostguard.hooks import lint


def hooks_linted(f: Facts) -> list[Finding]:
    return lint.findings(f.hooks, f.config)


def hooks_lock_out_ghosts(f: Facts) -> list[Finding]:
    return [
        problem(
            "hook_locks_out_ghosts",
            ERROR,
            hook,
            f"fails for users without a profile ({what}): they cannot sign in; e.g. "
            + ", ".join(ghosts),
            "`ghostguard backfill` gives them profiles; make the hook tolerate a missing profile",
        )
        for hook, what, ghosts in f.ghost_lockouts
    ]
