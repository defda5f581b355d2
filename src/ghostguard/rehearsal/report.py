"""What a rehearsal found, as the text report and --json show it: `passed` is false whenever
the report shows an error."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ghostguard.checks.finding import Finding
from ghostguard.checks.signup_kinds import CheckReport
from ghostguard.hooks.found import AuthHook
from ghostguard.rehearsal.after_signup import APP_VIEW, LifecycleResult
from ghostguard.rehearsal.files import MigrationFile
from ghostguard.rehearsal.locate import Location
from ghostguard.rehearsal.project import Project

GHOST_TOKEN = "ghost_token"  # the token hook fails for a user without a profile


@dataclass(frozen=True)
class ProfileTrigger:
    name: str
    function: str
    writes_profiles: bool


@dataclass(frozen=True)
class Dropped:
    """A profile trigger an earlier migration made and a later one dropped, and where."""

    trigger: str
    by: str  # the file's name
    at: Location  # the statement that dropped it


@dataclass
class Rehearsal:
    migrations: list[MigrationFile]
    seeded: bool
    profile_table: str | None
    triggers: list[ProfileTrigger] = field(default_factory=list[ProfileTrigger])
    dropped: list[Dropped] = field(default_factory=list[Dropped])
    matrix: CheckReport | None = None
    lifecycle: list[LifecycleResult] = field(default_factory=list[LifecycleResult])
    accepted: tuple[str, ...] = ()
    problem: str = ""  # why the matrix could not run (no profile table, a config error)
    app_view: str = ""  # what signed-in users can read of their profile (the Data API)
    app_view_passed: bool = True  # every new user can read their own profile (or not applicable)
    app_view_fix: str = ""
    findings: list[Finding] = field(default_factory=list[Finding])  # doctor's failing errors
    # Where a failing kind's cause is in the migrations (the statement that made the column NOT NULL)
    causes: dict[str, Location] = field(default_factory=dict[str, Location])
    proposal: str = ""  # why ghostguard's own mapping for the table needs a decision first
    adoption: list[str] = field(default_factory=list[str])  # what adopting the app's trigger does
    project: Project = field(default_factory=lambda: Project(None))  # supabase/config.toml
    disabled: list[str] = field(default_factory=list[str])  # kinds config.toml leaves off
    metadata: list[str] = field(
        default_factory=list[str]
    )  # failures that hang on what the app sends
    sends: dict[str, dict[str, Any]] = field(default_factory=dict[str, dict[str, Any]])
    skipped: list[str] = field(default_factory=list[str])  # .sql files the CLI skips by name
    hooks: list[AuthHook] = field(
        default_factory=list[AuthHook]
    )  # config.toml's and the database's

    @property
    def failing(self) -> list[str]:
        """Signup kinds that end without a profile (every kind the project enables counts, less
        those accepted with --accept-failing)."""
        if self.matrix is None:
            return []
        failed = [k.kind for k in self.matrix.kinds if not k.ok]
        failed += [e.event for e in self.lifecycle if e.ok is False]
        failed += [] if self.app_view_passed else [APP_VIEW]
        failed += [GHOST_TOKEN] if any(not h.ok for h in self.matrix.ghost_hooks) else []
        return [name for name in failed if name not in self.accepted]

    @property
    def passed(self) -> bool:
        return (
            self.matrix is not None
            and self.matrix.applicable
            and not self.failing
            and not self.findings
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "migrations": [f"{m.version}_{m.name}" for m in self.migrations],
            "skipped": self.skipped,
            "seeded": self.seeded,
            "profile_table": self.profile_table,
            "triggers": [vars(t) for t in self.triggers],
            "dropped": [
                {"trigger": d.trigger, "by": d.by, "file": d.at.path, "line": d.at.line}
                for d in self.dropped
            ],
            "kinds": self.matrix.to_dict()["kinds"] if self.matrix else [],
            "disabled": self.disabled,
            "hooks": [_hook(h) for h in self.hooks],
            "ghost_hooks": self.matrix.to_dict()["ghost_hooks"] if self.matrix else [],
            "project": self.project.to_dict(),
            "sends": self.sends,
            "metadata": self.metadata,
            "lifecycle": [vars(e) for e in self.lifecycle],
            "failing": self.failing,
            "problem": self.problem,
            "app_view": self.app_view,
            "app_view_fix": self.app_view_fix,
            "doctor_errors": [f"{f.name}: {f.detail}" for f in self.findings],
            "causes": {kind: vars(at) for kind, at in self.causes.items()},
            "proposal": self.proposal,
            "adoption": self.adoption,
            "error": None,
            "passed": self.passed,
        }


def _hook(hook: AuthHook) -> dict[str, Any]:
    function = hook.function
    return {
        "hook": hook.hook,
        "uri": hook.uri,
        "function": function.display if function else None,
        "configured": hook.configured,
        "reads": function.reads() if function else [],
        "writes": function.writes() if function else [],
    }


def failed_run(message: str, details: dict[str, Any] | None = None) -> dict[str, Any]:
    """What --json prints when the rehearsal could not run to its verdict (exit 2)."""
    return {"passed": False, "error": {"message": message, **(details or {})}}
