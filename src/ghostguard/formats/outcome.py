"""One shape for every result a command reports, whatever the output format: the check (rule),
whether it passed, how bad it is when not, what is wrong, the fix, and where (a migration's file
and line, or a database object)."""

from __future__ import annotations

from dataclasses import dataclass

from ghostguard.checks.finding import ERROR, WARN
from ghostguard.rehearsal.locate import Location

__all__ = ["ERROR", "WARN", "Location", "Outcome"]


@dataclass(frozen=True)
class Outcome:
    rule: str  # the check's name: a SARIF rule id, a JUnit test, a splinter lint name
    level: str  # ERROR (counts against the exit code) or WARN
    passed: bool
    message: str
    fix: str = ""
    object: str = ""  # the database object it is about, e.g. "public.profiles"
    location: Location | None = None  # the migration file and line, when one caused it
    case: str = ""  # one of several outcomes of a rule: the signup kind, the hook
    group: str = ""  # what the command checked it as: "doctor", "signup kinds", "hooks", ...

    @property
    def name(self) -> str:
        """The test's name: the rule, and which case of it."""
        return f"{self.rule}[{self.case}]" if self.case else self.rule

    @property
    def said(self) -> str:
        """The message, led by the object it is about when the message does not name it."""
        about = f"{self.object}: " if self.object and self.object not in self.message else ""
        return about + self.message

    @property
    def failed_error(self) -> bool:
        return not self.passed and self.level == ERROR
