"""Each command's report as outcomes (formats/outcome.py): the same checks the text report shows,
with the levels the exit code judges by."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from ghostguard.checks.finding import ERROR, WARN, Finding
from ghostguard.checks.scan import ScanReport
from ghostguard.checks.signup_kinds import CheckReport, KindResult
from ghostguard.formats.outcome import Outcome
from ghostguard.hooks.call import HookCall
from ghostguard.rehearsal.after_signup import APP_VIEW
from ghostguard.rehearsal.locate import Location
from ghostguard.rehearsal.report import GHOST_TOKEN, Rehearsal

DOCTOR, VERIFY, SCAN = "doctor", "verify", "scan"
KINDS, HOOKS, MIGRATIONS, LIFECYCLE = "signup kinds", "hooks", "migrations", "lifecycle"


def from_findings(findings: Iterable[Finding], group: str) -> list[Outcome]:
    return [
        Outcome(
            f.name,
            f.level,
            f.passed,
            f"{f.title}: {f.detail}" if f.title else f.detail,
            f.fix,
            f.object,
            group=group,
        )
        for f in findings
    ]


def from_scan(report: ScanReport, fail_on: tuple[str, ...]) -> list[Outcome]:
    """Scan's conditions; those --fail-on names are errors, the others warnings."""

    def level(condition: str) -> str:
        return ERROR if condition in fail_on else WARN

    kinds = ", ".join(f"{n:,} {k}" for k, n in report.ghosts.items() if n)
    found = [
        Outcome(
            "no_ghosts",
            level("ghosts"),
            report.ghost_total == 0,
            f"{report.ghost_total:,} ghost users ({kinds})" if kinds else "no ghost users",
            "ghostguard apply --yes (or ghostguard backfill --yes once installed)",
            report.source,
            group=SCAN,
        ),
        Outcome(
            "sync_failures",
            level("failures"),
            not report.sync_failures,
            f"{report.sync_failures or 0:,} unresolved profile sync failures",
            "fix the cause, then ghostguard repair --yes",
            report.target,
            group=SCAN,
        ),
        Outcome(
            "no_drift",
            level("drift"),
            not report.drift,
            "; ".join(report.drift) or "the sync is installed as apply installs it",
            "ghostguard apply --yes",
            report.target,
            group=SCAN,
        ),
        Outcome(
            "app_view",
            level("unreadable"),
            not report.unreadable_profiles,
            f"{report.unreadable_profiles or 0:,} profiles their users cannot read through the "
            f"Data API{f' ({report.app_view})' if report.app_view else ''}",
            "ghostguard doctor shows the policy or grant to add",
            report.target,
            group=SCAN,
        ),
    ]
    found += [
        Outcome(
            "deletes_cascade",
            level("blocking-fks"),
            False,
            f"foreign key {key.name} ({key.on_delete}) makes deleting a user fail"
            + (f": {key.why}" if key.why else ""),
            key.fix,
            key.name,
            case=key.name,
            group=SCAN,
        )
        for key in report.blocking_foreign_keys
    ]
    found += [
        Outcome(
            "hook_locks_out_ghosts",
            ERROR,
            hook.for_a_ghost.startswith("ok"),
            f"{hook.hook} ({hook.function}) for a user without a profile: {hook.for_a_ghost}; "
            f"{report.locked_out:,} ghosts cannot sign in",
            "make the hook return the claims unchanged when the profile is missing",
            hook.function,
            case=hook.hook,
            group=HOOKS,
        )
        for hook in report.hooks
        if hook.for_a_ghost
    ]
    return found


def _kind(result: KindResult, accepted: tuple[str, ...], where: Location | None) -> Outcome:
    """A kind the project has (or enables) that fails is an error, unless accepted."""
    counts = result.present and result.kind not in accepted
    said = result.outcome + (f": {result.detail}" if result.detail else "")
    hooks = "; ".join(f"{h.hook}: {h.describe()}" for h in result.hooks if not h.ok)
    return Outcome(
        "signup_kind",
        ERROR if counts else WARN,
        result.ok,
        f"{result.kind} signup: {said}"
        + (f"; {hooks}" if hooks else "")
        + ("" if result.present else " (the project has no user of this kind yet)")
        + (" (accepted)" if result.kind in accepted else ""),
        ""
        if result.ok
        else "map the column from data every signup has, give it a DEFAULT, or "
        "relax the constraint (ghostguard check shows which)",
        location=where,
        case=result.kind,
        group=KINDS,
    )


def _hook_calls(calls: Iterable[HookCall], case: str, level: str = ERROR) -> list[Outcome]:
    return [
        Outcome(
            "hook_locks_out_ghosts" if case == "ghost" else "auth_hook",
            level,
            call.ok,
            f"{call.hook} for {'a user without a profile' if case == 'ghost' else case}: "
            f"{call.describe()}",
            "" if call.ok else "make the hook return the claims when the profile is missing",
            case=f"{call.hook}, {case}",
            group=HOOKS,
        )
        for call in calls
    ]


def from_check(report: CheckReport, accepted: tuple[str, ...]) -> list[Outcome]:
    found = [_kind(k, accepted, None) for k in report.kinds]
    for k in report.kinds:
        found += _hook_calls(k.hooks, k.kind)
    return found + _hook_calls(report.ghost_hooks, "ghost")


def from_rehearsal(report: Rehearsal) -> list[Outcome]:
    """Every kind the project enables counts; failures point at the migration that caused them."""
    found = [
        Outcome(
            "trigger_dropped",
            ERROR,
            False,
            f"trigger {d.trigger} (it wrote the profile table) was dropped by {d.by}",
            "recreate the trigger in a later migration, or drop the statement",
            d.trigger,
            d.at,
            case=d.trigger,
            group=MIGRATIONS,
        )
        for d in report.dropped
    ]
    if report.problem:
        found.append(Outcome("profile_table_found", ERROR, False, report.problem, group=MIGRATIONS))
    matrix = report.matrix
    if matrix is not None:
        for k in matrix.kinds:  # judged because the project enables it: as if it had users
            enabled = KindResult(k.kind, True, k.outcome, k.detail, k.hooks)
            found.append(_kind(enabled, report.accepted, report.causes.get(k.kind)))
            found += _hook_calls(k.hooks, k.kind)
        accepted = GHOST_TOKEN in report.accepted
        found += _hook_calls(matrix.ghost_hooks, "ghost", WARN if accepted else ERROR)
    found += [
        Outcome(
            "lifecycle",
            WARN if e.event in report.accepted else ERROR,
            e.ok is not False,
            f"{e.event}: {'not rehearsed' if e.ok is None else 'ok' if e.ok else 'fails'}"
            + (f" ({e.detail})" if e.detail else ""),
            case=e.event,
            group=LIFECYCLE,
        )
        for e in report.lifecycle
    ]
    if report.app_view:
        found.append(
            Outcome(
                "app_view",
                WARN if APP_VIEW in report.accepted else ERROR,
                report.app_view_passed,
                report.app_view,
                report.app_view_fix,
                report.profile_table or "",
                group=LIFECYCLE,
            )
        )
    return found + from_findings(report.findings, DOCTOR)


def from_failed_run(message: str, details: dict[str, Any]) -> list[Outcome]:
    """A rehearsal that could not reach its verdict: the migration that failed, where."""
    path = details.get("path")
    where = Location(str(path), int(details.get("line") or 1)) if path else None
    return [Outcome("migration_replays", ERROR, False, message, location=where, group=MIGRATIONS)]
