"""One finding model for every check: scan's drift, verify's checks and doctor's findings.

Each check returns the same columns (name, level, passed, object, detail, fix), so they are judged,
rendered and serialized alike.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict, dataclass
from typing import Any

ERROR, WARN = "error", "warn"
LEVELS = (WARN, ERROR)  # in increasing severity
APPLY = "ghostguard apply --yes"


@dataclass(frozen=True)
class Finding:
    """One checked object: passed or not, and when not, what is wrong and the exact fix."""

    name: str
    level: str  # "error" (blocks signups, makes ghosts or exposes data) or "warn"
    passed: bool
    object: str
    detail: str
    fix: str = ""  # SQL to run, or the ghostguard command that fixes it
    title: str = ""  # how a report lists it (verify's numbered guide checks); the name otherwise

    @property
    def check(self) -> str:
        return self.name

    def to_dict(self) -> dict[str, Any]:
        # `check` (doctor) and `remediation` (verify) are the names earlier versions used.
        return {**asdict(self), "check": self.name, "remediation": self.fix}


def ok(name: str, level: str, obj: str, detail: str) -> Finding:
    return Finding(name, level, True, obj, detail)


def problem(name: str, level: str, obj: str, detail: str, fix: str) -> Finding:
    return Finding(name, level, False, obj, detail, fix)


def failing(findings: Iterable[Finding], at_least: str = WARN) -> list[Finding]:
    """Failed findings of level `at_least` or more severe."""
    floor = LEVELS.index(at_least)
    return [f for f in findings if not f.passed and LEVELS.index(f.level) >= floor]


def combine(
    name: str, obj: str, parts: list[Finding], ok_detail: str, title: str = "", fix: str = ""
) -> Finding:
    """One finding that passes when every part passes: the failing parts' details, and `fix` or
    else the first failing part's fix."""
    bad = [p for p in parts if not p.passed]
    if not bad:
        return Finding(name, ERROR, True, obj, ok_detail, title=title)
    level = ERROR if any(p.level == ERROR for p in bad) else WARN
    fix = fix or next((p.fix for p in bad if p.fix), "")
    return Finding(name, level, False, obj, "; ".join(p.detail for p in bad), fix, title)


@dataclass(frozen=True)
class FindingsReport:
    findings: list[Finding]

    def failing(self, at_least: str = ERROR) -> list[Finding]:
        return failing(self.findings, at_least)

    def to_dict(self) -> dict[str, Any]:
        return {
            "findings": [f.to_dict() for f in self.findings],
            "errors": len(self.failing(ERROR)),
            "warnings": len([f for f in self.failing(WARN) if f.level == WARN]),
        }
