"""What a doctor check returns: the same columns for every check, so they render and serialize alike."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

LEVELS = ("warn", "error")  # in increasing severity


@dataclass(frozen=True)
class Finding:
    """One checked object: passed or not, and when not, what is wrong and the exact fix."""

    check: str
    level: str  # "error" (blocks signups, makes ghosts or exposes data) or "warn"
    passed: bool
    object: str
    detail: str
    fix: str = ""  # SQL to run, or the ghostguard command that fixes it


@dataclass(frozen=True)
class DoctorReport:
    findings: list[Finding]

    def failing(self, at_least: str = "error") -> list[Finding]:
        """Failed findings of level `at_least` or more severe."""
        floor = LEVELS.index(at_least)
        return [f for f in self.findings if not f.passed and LEVELS.index(f.level) >= floor]

    def to_dict(self) -> dict[str, Any]:
        return {
            "findings": [asdict(f) for f in self.findings],
            "errors": len(self.failing("error")),
            "warnings": len([f for f in self.failing("warn") if f.level == "warn"]),
        }


def ok(check: str, level: str, obj: str, detail: str) -> Finding:
    return Finding(check, level, True, obj, detail)


def problem(check: str, level: str, obj: str, detail: str, fix: str) -> Finding:
    return Finding(check, level, False, obj, detail, fix)
