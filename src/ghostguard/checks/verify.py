"""The guide's five post-deployment checks and its success criteria, as data."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

import psycopg

from ghostguard import audit as audit_log
from ghostguard import catalog
from ghostguard.catalog import Shape
from ghostguard.checks import app_view, signup_kinds, sync_state, trigger_time
from ghostguard.checks.census import Counts, read_census, snapshot
from ghostguard.checks.finding import ERROR, Finding, combine
from ghostguard.checks.probe import registration_probe
from ghostguard.checks.signup_kinds import CheckReport
from ghostguard.checks.sync_state import SyncState
from ghostguard.checks.trigger_time import TriggerTime
from ghostguard.config import Config
from ghostguard.sync import failures as sync_failures


@dataclass(frozen=True)
class Criterion:
    text: str
    passed: bool
    check: str


@dataclass(frozen=True)
class VerifyReport:
    checks: list[Finding]
    criteria: list[Criterion]
    probe_ran_as: str
    trigger_time: TriggerTime | None = None  # the sync trigger on a synthetic signup

    @property
    def passed(self) -> bool:
        return all(c.passed for c in self.checks)

    def to_dict(self) -> dict[str, Any]:
        return {
            "checks": [c.to_dict() for c in self.checks],
            "criteria": [vars(c) for c in self.criteria],
            "probe_ran_as": self.probe_ran_as,
            "trigger_time": self.trigger_time.to_dict() if self.trigger_time else None,
            "passed": self.passed,
        }


def _check(name: str, title: str, passed: bool, detail: str, fix: str = "") -> Finding:
    """One of the guide's checks: every one is an error when it fails."""
    return Finding(name, ERROR, passed, "", detail, fix if not passed else "", title)


def check_ghosts(ghosts: dict[str, int], recorded: int | None) -> Finding:
    """`recorded`: unresolved sync failures; a ghost among them needs its cause fixed, not a
    backfill that would fail on it again."""
    total = sum(ghosts.values())
    kinds = ", ".join(f"{n} {k}" for k, n in ghosts.items() if n)
    fix = "run `ghostguard backfill --yes` (or `ghostguard apply --yes`)"
    if recorded:
        users = f"{recorded} user" if recorded == 1 else f"{recorded} users"
        fix = (
            f"{users} could not get one (recorded, see `ghostguard check`): fix the mapping or "
            f"the constraint, then run `ghostguard repair --yes`; for the rest, {fix}"
        )
    return _check(
        "no_ghosts",
        "1. No ghost users remain",
        total == 0,
        "0 ghost users" if total == 0 else f"{total} ghost users ({kinds})",
        "" if total == 0 else fix,
    )


def check_counts(c: Counts, ghosts: int, config: Config) -> Finding:
    """auth count vs active profiles; the difference is always ghosts + soft-deleted - orphans."""
    active = c.profiles - c.soft_deleted_profiles
    detail = f"{config.source.display}: {c.auth_users}, active {config.target.display}: {active}"
    if c.auth_users != active:
        detail += (
            f"; difference {c.auth_users - active:+d} = {ghosts} ghosts + {c.soft_deleted_profiles} "
            f"soft-deleted profiles - {c.orphan_profiles} orphan profiles"
        )
    fix = (
        ""
        if ghosts == 0
        else "backfill the ghosts; orphan profiles are listed by `ghostguard scan`"
    )
    return _check("counts_match", "2. User counts match", ghosts == 0, detail, fix)


def check_trigger(state: SyncState, config: Config) -> Finding:
    """The guide's check 3, judged like every other trigger apply installs."""
    found = sync_state.trigger_installed(config.trigger_name, state.triggers, config)
    return replace(found, title=f"3. Trigger {config.trigger_name} exists and is enabled")


def check_drift(state: SyncState, config: Config, shape: Shape) -> Finding:
    """Every trigger and the function as apply installed and recorded them."""
    return combine(
        "no_drift",
        f"{config.function_display} and its triggers",
        sync_state.drift_findings(state, config, shape),
        "function and triggers match what apply recorded",
        "The function and all triggers are as ghostguard installed them",
        "run `ghostguard apply --yes` to reinstall them",
    )


def check_function(state: SyncState, config: Config, shape: Shape) -> Finding:
    fn = state.function
    return combine(
        "function_secure",
        config.function_display,
        sync_state.function_security(fn, config, shape),
        f"definer, search_path = '', owner {fn.owner if fn else ''}, no API EXECUTE",
        "Sync function is SECURITY DEFINER, search_path pinned, not callable by API roles",
        "run `ghostguard apply --yes`"
        if fn is None
        else "run `ghostguard apply --yes` to reinstall it",
    )


def check_audit(conn: psycopg.Connection, config: Config, pending: int | None) -> Finding:
    """The latest backfill succeeded, or was partial and every user it could not fill has
    since been repaired (`pending`: unresolved sync failures)."""
    title = f"4. Backfill logged in {config.audit.display}"
    cols = catalog.table_columns(conn, config.audit)
    if not cols:
        return _check(
            "backfill_logged",
            title,
            False,
            f"{config.audit.display} does not exist",
            "run `ghostguard apply --yes`",
        )
    row = conn.execute(audit_log.latest_audit(config, config.job_name)).fetchone()
    if row is None:
        return _check(
            "backfill_logged",
            title,
            False,
            f"no {config.job_name} row yet",
            "run `ghostguard backfill --yes`",
        )
    status, affected, started, _completed, error, _details = row
    detail = f"latest {config.job_name}: {status}, {affected} records, started {started:%Y-%m-%d %H:%M:%S%z}"
    if error:
        detail += f", error: {error}"
    passed = status == "success" or (status == "partial" and pending == 0)
    if status == "partial" and passed:
        detail += "; every one of them repaired since"
    return _check(
        "backfill_logged",
        title,
        passed,
        detail,
        "" if passed else "fix the error, then run `ghostguard backfill --yes`",
    )


def check_failures(pending: int | None, config: Config) -> Finding:
    """Beyond the guide: profile writes the trigger recorded as failed, not yet repaired."""
    title = "Profile sync failures resolved"
    if pending is None:
        return _check(
            "sync_failures",
            title,
            False,
            f"{config.failures.display} does not exist",
            "run `ghostguard apply --yes`",
        )
    return _check(
        "sync_failures",
        title,
        pending == 0,
        f"{pending} unresolved in {config.failures.display}",
        "" if pending == 0 else "fix the cause, then run `ghostguard repair --yes`",
    )


def check_signup_kinds(report: CheckReport, config: Config) -> Finding:
    """Beyond the guide: every kind of signup the project has gets a profile (the preflight)."""
    failing = report.failing()
    if not report.applicable:
        detail = "not applicable: the source is not Supabase's auth.users"
    elif failing:
        detail = report.describe_failing()
    else:
        detail = (
            f"{len(report.kinds)} kinds checked, each ends with a profile or is not in the project"
        )
    return Finding(
        "signup_kinds",
        ERROR,
        not failing,
        config.target.display,
        detail,
        "see `ghostguard check`; map those columns from values every kind has, or relax the "
        "constraint"
        if failing
        else "",
        "Every kind of signup this project has gets a profile",
    )


def check_app_view(view: app_view.AppView, config: Config) -> Finding:
    """Beyond the guide: a profile its user cannot read through the Data API is, to the app, a
    ghost (checked as `authenticated` with a real user's claims, rolled back)."""
    return Finding(
        "app_view",
        ERROR,
        view.passed,
        config.target.display,
        view.detail,
        view.fix if not view.passed else "",
        "Signed-in users can read their own profile (Data API)",
    )


def verify(conn: psycopg.Connection, config: Config, shape: Shape) -> VerifyReport:
    """Run every check; ghost and table counts come from one snapshot so checks 1 and 2 agree."""
    with snapshot(conn):
        ghosts, counts = read_census(conn, config, shape)
        pending = sync_failures.unresolved(conn, config)
    source_columns = set(catalog.table_columns(conn, config.source) or {})
    probe = registration_probe(conn, config, source_columns)
    state = sync_state.read_state(conn, config)
    checks = [
        check_ghosts(ghosts, pending),
        check_counts(counts, sum(ghosts.values()), config),
        check_trigger(state, config),
        check_audit(conn, config, pending),
        _check(
            "registration_probe",
            "5. New user registration creates both records",
            probe.passed,
            f"{probe.detail} (ran as {probe.ran_as})",
            ""
            if probe.passed
            else "inspect the trigger function; `ghostguard scan` shows its state",
        ),
        check_function(state, config, shape),
        check_drift(state, config, shape),
        check_failures(pending, config),
        check_signup_kinds(signup_kinds.check_or_name_holder(conn, config, shape), config),
        check_app_view(app_view.read(conn, config), config),
    ]
    by_name = {c.name: c.passed for c in checks}
    criteria = [
        Criterion("Zero ghost users remaining", by_name["no_ghosts"], "no_ghosts"),
        Criterion(
            f"{config.source.display} count matches {config.target.display} count",
            by_name["counts_match"],
            "counts_match",
        ),
        Criterion(
            "Trigger exists and is enabled", by_name["trigger_installed"], "trigger_installed"
        ),
        Criterion(
            "New user registration creates both records",
            by_name["registration_probe"],
            "registration_probe",
        ),
        Criterion(
            "No registration errors (probe signup raised none)",
            by_name["registration_probe"],
            "registration_probe",
        ),
        Criterion(
            f"Backfill logged in {config.audit.table}",
            by_name["backfill_logged"],
            "backfill_logged",
        ),
    ]
    return VerifyReport(checks, criteria, probe.ran_as, trigger_time.measure(conn, config))
