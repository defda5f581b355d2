"""The guide's five post-deployment checks and its success criteria, as data."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import psycopg

from ghostguard import audit as audit_log
from ghostguard import catalog
from ghostguard.catalog import Shape
from ghostguard.checks.census import Counts, read_census, snapshot
from ghostguard.checks.probe import registration_probe
from ghostguard.config import Config
from ghostguard.sync import failures as sync_failures
from ghostguard.sync.drift import read_drift


@dataclass(frozen=True)
class Check:
    """One named result: same columns for every check, so they render and serialize alike."""

    name: str
    title: str
    passed: bool
    detail: str
    remediation: str = ""


@dataclass(frozen=True)
class Criterion:
    text: str
    passed: bool
    check: str


@dataclass(frozen=True)
class VerifyReport:
    checks: list[Check]
    criteria: list[Criterion]
    probe_ran_as: str

    @property
    def passed(self) -> bool:
        return all(c.passed for c in self.checks)

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "passed": self.passed}


def check_ghosts(ghosts: dict[str, int]) -> Check:
    total = sum(ghosts.values())
    kinds = ", ".join(f"{n} {k}" for k, n in ghosts.items() if n)
    return Check(
        "no_ghosts",
        "1. No ghost users remain",
        total == 0,
        "0 ghost users" if total == 0 else f"{total} ghost users ({kinds})",
        "" if total == 0 else "run `ghostguard backfill --yes` (or `ghostguard apply --yes`)",
    )


def check_counts(c: Counts, ghosts: int, config: Config) -> Check:
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
    return Check("counts_match", "2. User counts match", ghosts == 0, detail, fix)


def check_trigger(conn: psycopg.Connection, config: Config) -> Check:
    trig = catalog.our_trigger(catalog.triggers_on(conn, config.source), config)
    title = f"3. Trigger {config.trigger_name} exists and is enabled"
    fix = "run `ghostguard apply --yes`"
    if trig is None:
        return Check(
            "trigger_installed",
            title,
            False,
            f"no trigger {config.trigger_name} on {config.source.display}",
            fix,
        )
    if not trig.is_enabled:
        return Check(
            "trigger_installed",
            title,
            False,
            f"{trig.name} is disabled (tgenabled={trig.enabled})",
            f"ask the table owner to run ALTER TABLE {config.source.display} ENABLE TRIGGER {trig.name}",
        )
    if not trig.calls(config):
        detail = f"{trig.name} calls {trig.function}, not {config.function_display}"
        return Check("trigger_installed", title, False, detail, fix)
    return Check(
        "trigger_installed",
        title,
        True,
        f"{trig.name} | enabled={trig.enabled} | {trig.table} | calls {trig.function}",
    )


def check_drift(conn: psycopg.Connection, config: Config, shape: Shape) -> Check:
    """Every trigger and the function as apply installed and recorded them."""
    found = read_drift(conn, config, shape)
    return Check(
        "no_drift",
        "The function and all triggers are as ghostguard installed them",
        not found,
        "; ".join(found) if found else "function and triggers match what apply recorded",
        "run `ghostguard apply --yes` to reinstall them" if found else "",
    )


def check_function(conn: psycopg.Connection, config: Config) -> Check:
    fn = catalog.function_state(conn, config)
    title = "Sync function is SECURITY DEFINER, search_path pinned, not callable by API roles"
    if fn is None:
        return Check(
            "function_secure",
            title,
            False,
            f"{config.function_display} does not exist",
            "run `ghostguard apply --yes`",
        )
    problems = []
    if not fn.security_definer:
        problems.append("not SECURITY DEFINER")
    if fn.search_path not in ('""', "''"):
        problems.append(f"search_path is {fn.search_path or 'not pinned'}")
    if fn.executable_by:
        problems.append(f"EXECUTE granted to {', '.join(fn.executable_by)}")
    return Check(
        "function_secure",
        title,
        not problems,
        "; ".join(problems) or f"definer, search_path='', owner {fn.owner}, no API EXECUTE",
        "" if not problems else "run `ghostguard apply --yes` to reinstall it",
    )


def check_audit(conn: psycopg.Connection, config: Config) -> Check:
    title = f"4. Backfill logged in {config.audit.display}"
    cols = catalog.table_columns(conn, config.audit)
    if not cols:
        return Check(
            "backfill_logged",
            title,
            False,
            f"{config.audit.display} does not exist",
            "run `ghostguard apply --yes`",
        )
    row = conn.execute(audit_log.latest_audit(config, config.job_name)).fetchone()
    if row is None:
        return Check(
            "backfill_logged",
            title,
            False,
            f"no {config.job_name} row yet",
            "run `ghostguard backfill --yes`",
        )
    status, affected, started, completed, error, _details = row
    detail = f"latest {config.job_name}: {status}, {affected} records, started {started:%Y-%m-%d %H:%M:%S%z}"
    if error:
        detail += f", error: {error}"
    return Check(
        "backfill_logged",
        title,
        status == "success",
        detail,
        "" if status == "success" else "fix the error, then run `ghostguard backfill --yes`",
    )


def check_failures(conn: psycopg.Connection, config: Config) -> Check:
    """Beyond the guide: profile writes the trigger recorded as failed, not yet repaired."""
    pending = sync_failures.unresolved(conn, config)
    title = "Profile sync failures resolved"
    if pending is None:
        return Check(
            "sync_failures",
            title,
            False,
            f"{config.failures.display} does not exist",
            "run `ghostguard apply --yes`",
        )
    return Check(
        "sync_failures",
        title,
        pending == 0,
        f"{pending} unresolved in {config.failures.display}",
        "" if pending == 0 else "fix the cause, then run `ghostguard repair --yes`",
    )


def verify(conn: psycopg.Connection, config: Config, shape: Shape) -> VerifyReport:
    """Run every check; ghost and table counts come from one snapshot so checks 1 and 2 agree."""
    with snapshot(conn):
        ghosts, counts = read_census(conn, config, shape)
    source_columns = set(catalog.table_columns(conn, config.source) or {})
    probe = registration_probe(conn, config, source_columns)
    checks = [
        check_ghosts(ghosts),
        check_counts(counts, sum(ghosts.values()), config),
        check_trigger(conn, config),
        check_audit(conn, config),
        Check(
            "registration_probe",
            "5. New user registration creates both records",
            probe.passed,
            f"{probe.detail} (ran as {probe.ran_as})",
            ""
            if probe.passed
            else "inspect the trigger function; `ghostguard scan` shows its state",
        ),
        check_function(conn, config),
        check_drift(conn, config, shape),
        check_failures(conn, config),
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
    return VerifyReport(checks, criteria, probe.ran_as)
