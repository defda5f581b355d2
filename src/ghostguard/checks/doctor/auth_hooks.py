"""doctor: the project's auth hooks, linted like the sync function (hooks/lint.py)."""

from __future__ import annotations

from ghostguard.checks.doctor.facts import Facts
from ghostguard.checks.finding import Finding
from ghostguard.hooks import lint


def hooks_linted(f: Facts) -> list[Finding]:
    return lint.findings(f.hooks)
