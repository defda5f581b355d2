"""Human-readable reports (rich); the core returns data, this module only draws it."""

from __future__ import annotations

from typing import Final

from rich.console import Console
from rich.padding import Padding
from rich.table import Table
from rich.text import Text

from ghostguard.adopt.takeover import adopt_fix
from ghostguard.backfill.options import BackfillResult
from ghostguard.checks.doctor import DoctorReport
from ghostguard.checks.finding import Finding
from ghostguard.checks.scan import AppTrigger, ScanReport
from ghostguard.checks.signup_kinds import CheckReport
from ghostguard.checks.sync_state import shown_search_path
from ghostguard.checks.verify import VerifyReport
from ghostguard.deploy import ApplyResult
from ghostguard.orphans import OrphanReport
from ghostguard.repair import RepairResult
from ghostguard.sync.rollback import RollbackResult

PASS = Text("PASS", style="bold green")
FAIL = Text("FAIL", style="bold red")
SHORTEN: Final = (
    "ellipsis"  # a word wider than its column is cut with …, never broken (--json has it whole)
)


def _app_trigger(line: Text, app: AppTrigger | None) -> Text:
    """A trigger row, with what the app's own trigger writes and whether apply takes it over."""
    if app is None:
        return line
    if app.in_the_way:
        taken = "adopted, apply takes it over" if app.adopted else "apply refuses until adopted"
        line.append(f"; the app's own ({app.in_the_way}): {taken}", style="bold yellow")
    for write in app.writes:
        line.append(f"\n  writes {write}")
    return line


def _mark(ok: bool) -> Text:
    return PASS if ok else FAIL


def scan(console: Console, report: ScanReport, where: str) -> None:
    c = report.counts
    table = Table(
        title=f"ghostguard scan: {report.source} -> {report.target} ({where})",
        title_justify="left",
        show_header=False,
        box=None,
        pad_edge=False,
    )
    table.add_column(style="bold")
    table.add_column()
    table.add_row("auth users", f"{c.auth_users:,}")
    table.add_row("profiles", f"{c.profiles:,} ({c.soft_deleted_profiles:,} soft-deleted)")
    ghost_line = Text(
        f"{report.ghost_total:,}", style="bold red" if report.ghost_total else "bold green"
    )
    table.add_row("ghost users", ghost_line)
    kinds = ", ".join(f"{k.replace('_', '-')} {n:,}" for k, n in report.ghosts.items())
    table.add_row("  by kind", kinds)
    if report.sample_ghost_ids:
        table.add_row("  e.g.", ", ".join(report.sample_ghost_ids[:3]))
    table.add_row("orphan profiles", f"{c.orphan_profiles:,} (profile rows with no auth user)")
    for h in report.hooks:
        reads = f", reads {', '.join(h.reads)}" if h.reads else ""
        ghost = f"; for a ghost: {h.for_a_ghost}" if h.for_a_ghost else ""
        style = "bold red" if h.for_a_ghost and not h.for_a_ghost.startswith("ok") else ""
        table.add_row("auth hook", Text(f"{h.hook}: {h.function}{reads}{ghost}", style=style))
    if report.locked_out:
        table.add_row(
            "locked out",
            Text(
                f"{report.locked_out:,} ghosts cannot sign in: the token hook fails for them",
                style="bold red",
            ),
        )
    if report.unreadable_profiles is not None:
        unreadable = Text(
            f"{report.unreadable_profiles:,} profiles their users cannot read through the Data "
            f"API ({report.app_view})",
            style="bold red" if report.unreadable_profiles else "",
        )
        table.add_row("unreadable", unreadable)
    if report.placeholder_profiles is not None:
        table.add_row(
            "placeholders",
            f"{report.placeholder_profiles:,} profiles hold a placeholder from a fallback "
            "(an @placeholder.invalid email, a user_… handle): ask those users to complete them",
        )
    apps = {a.name: a for a in report.app_triggers}
    trig = report.trigger
    if trig is None:
        table.add_row("trigger", Text("missing", style="red"))
    else:
        state = "enabled" if trig.is_enabled else trig.state.upper()
        owner_note = "" if report.trigger_calls_ours else "  (not ghostguard's function)"
        table.add_row(
            "trigger",
            _app_trigger(
                Text(f"{trig.name} on {trig.table}: {state}, calls {trig.function}{owner_note}"),
                apps.get(trig.name),
            ),
        )
    for lifecycle in report.lifecycle_triggers:
        state = "enabled" if lifecycle.is_enabled else lifecycle.state.upper()
        table.add_row("trigger", f"{lifecycle.name}: {state}")
    if report.sync_failures is not None:
        failures = Text(
            f"{report.sync_failures:,} unresolved",
            style="bold red" if report.sync_failures else "bold green",
        )
        if report.sync_failures:
            failures.append(" (fix the cause, then `ghostguard repair --yes`)", style="")
        table.add_row("sync failures", failures)
    for other in report.other_triggers:
        table.add_row(
            "other trigger",
            _app_trigger(
                Text(f"{other.name}: calls {other.function} ({other.state})"),
                apps.get(other.name),
            ),
        )
    fn = report.function
    if fn is None:
        table.add_row("function", Text("missing", style="red"))
    else:
        definer = "SECURITY DEFINER" if fn.security_definer else "SECURITY INVOKER"
        path = shown_search_path(fn.search_path)
        grants = f"EXECUTE: {', '.join(fn.executable_by)}" if fn.executable_by else "no API EXECUTE"
        table.add_row("function", f"{fn.name}: {definer}, {path}, owner {fn.owner}, {grants}")
    console.print(table)
    unadopted = [a for a in report.app_triggers if a.in_the_way and not a.adopted]
    if unadopted:
        console.print(
            Text(
                f"the app's own trigger(s) on {report.source}: apply will not replace or double "
                "them unless told to. Fix:",
                style="bold yellow",
            )
        )
        console.print(adopt_fix([a.name for a in unadopted]), markup=False)
    for difference in [] if unadopted else report.drift:
        console.print(Text(f"drift: {difference}", style="bold yellow"))
    if report.drift and not unadopted:
        console.print(
            "fix: run `ghostguard apply --yes` (idempotent: it reinstalls what is missing)"
        )
    if report.link_index is not None:
        console.print(Text(f"\n{report.link_index.summary}. Fix:", style="bold yellow"))
        console.print(report.link_index.fix, markup=False, highlight=False)
    for key in report.blocking_foreign_keys:
        console.print(
            Text(f"\nforeign key {key.name} is {key.why}: ", style="bold yellow")
            + Text('deleting a user fails ("Database error deleting user"). Fix:')
        )
        console.print(key.fix, markup=False, highlight=False)


def verify(console: Console, report: VerifyReport) -> None:
    checks = Table(title="Post-deployment checks", title_justify="left")
    checks.add_column("check", overflow=SHORTEN)
    checks.add_column("result", no_wrap=True)
    checks.add_column("detail", overflow=SHORTEN, ratio=1)
    for check in report.checks:
        detail = check.detail + (f"\nfix: {check.fix}" if check.fix else "")
        checks.add_row(Text(check.title or check.name), _mark(check.passed), Text(detail))
    console.print(checks)
    if report.trigger_time is not None:
        console.print(f"sync trigger time: {report.trigger_time.detail}", markup=False)
    criteria = Table(title="Success criteria (deployment guide)", title_justify="left")
    criteria.add_column("criterion")
    criteria.add_column("met")
    for criterion in report.criteria:
        criteria.add_row(Text(criterion.text), _mark(criterion.passed))
    console.print(criteria)
    met = sum(c.passed for c in report.criteria)
    style = "bold green" if report.passed else "bold red"
    console.print(Text(f"{met}/{len(report.criteria)} success criteria met", style=style))


def _users(n: int) -> str:
    return f"{n:,} user" if n == 1 else f"{n:,} users"


def backfill(console: Console, result: BackfillResult) -> None:
    resumed = f", resuming run {result.resumed_from}" if result.resumed_from else ""
    console.print(f"backfilled profiles: {result.inserted:,}")
    console.print(
        f"  {result.scanned:,} auth rows scanned in {result.batches:,} batches, {result.seconds:.2f}s, "
        f"worst batch {result.worst_batch_seconds * 1000:.0f} ms, {result.retries} retries{resumed}"
    )
    if result.swept:
        console.print(f"  swept again behind the checkpoint: {result.swept:,} auth rows")
    if result.analyze_skipped:
        console.print(
            f"note: ANALYZE skipped ({result.analyze_skipped}); autovacuum analyzes the table later",
            markup=False,
        )
    if result.failed:
        console.print(
            Text(
                f"{_users(result.failed)} could not get a profile; each is recorded once in "
                f"{result.failures_table}:",
                style="bold red",
            )
        )
        for group in result.failures:
            examples = ", ".join(group.examples)
            console.print(
                f"  {group.constraint}: {_users(group.users)} (e.g. {examples})", markup=False
            )
        console.print(
            "Fix: map those columns from values that satisfy the constraint in ghostguard.toml "
            "(`ghostguard init` proposes a mapping), or relax the constraint; then run "
            "`ghostguard repair --yes`.",
            markup=False,
        )


def apply(console: Console, result: ApplyResult) -> None:
    for taken in result.adopted:
        console.print(
            f"took over {taken}: saved in the audit log; `ghostguard rollback` restores it",
            markup=False,
        )
    console.print(f"ghost users before: {result.ghosts_before:,} (recorded in the audit log)")
    console.print("sync function and triggers installed")
    backfill(console, result.backfill)
    verify(console, result.report)


def rollback(console: Console, result: RollbackResult) -> None:
    if not result.dropped_function:
        console.print("nothing to roll back: ghostguard's sync function is not installed")
    else:
        what = (
            "function and trigger"
            if result.dropped_trigger
            else "function (no trigger was attached)"
        )
        console.print(f"removed the sync {what}")
    for line in result.left_in_place:
        console.print(f"note: {line}")
    for name in result.restored:
        console.print(f"restored the app's own trigger {name} and its function, as they were")
    console.print(
        f"profiles kept: {result.profiles_kept:,}"
        + (" (rollback logged)" if result.audited else "")
    )


def repair(console: Console, result: RepairResult) -> None:
    console.print(
        f"repaired {result.users_repaired:,} users ({result.failures_resolved:,} recorded failures "
        "resolved)"
    )
    for failing in result.still_failing:
        console.print(
            Text(f"still failing: user {failing.user_id}: ", style="bold red")
            + Text(f"{failing.message} (SQLSTATE {failing.sqlstate})")
        )


def orphans(console: Console, report: OrphanReport) -> None:
    if report.marked_now:
        console.print(f"marked {report.marked_now:,} orphan profiles deleted")
    console.print(
        f"orphan profiles (no auth user): {report.orphans:,}, not marked deleted: {report.unmarked:,}"
    )
    if report.sample:
        console.print("  e.g. " + ", ".join(report.sample[:5]), markup=False)


TABLE_WIDTH = 110  # narrower terminals get doctor as a list: a table there wraps every word


def _doctor_mark(f: Finding) -> Text:
    if f.passed:
        return PASS
    error = f.level == "error"
    return Text("FAIL" if error else "WARN", style="bold red" if error else "bold yellow")


def doctor(console: Console, report: DoctorReport, where: str) -> None:
    console.print(Text(f"ghostguard doctor ({where})", style="italic"))
    if console.width >= TABLE_WIDTH:
        table = Table(show_lines=False)
        table.add_column("", no_wrap=True)
        table.add_column("check", no_wrap=True, overflow=SHORTEN)
        table.add_column("object", overflow=SHORTEN, max_width=32)
        table.add_column("finding", overflow=SHORTEN, ratio=1)
        for f in report.findings:
            table.add_row(_doctor_mark(f), f.name, f.object, f.detail)
        console.print(table)
    else:
        for f in report.findings:  # the check, then its object and finding indented under it
            console.print(Text.assemble(_doctor_mark(f), " ", (f.name, "bold")))
            body = Text(f.object + "\n", style="dim", overflow=SHORTEN)
            body.append(f.detail, style="")
            console.print(Padding(body, (0, 0, 0, 5)))
    failing = [f for f in report.findings if not f.passed]
    for f in failing:
        console.print(Text(f"fix {f.name} ({f.object}):", style="bold"))
        console.print(Padding(Text(f.fix, overflow=SHORTEN), (0, 0, 0, 2)))
    errors = sum(1 for f in failing if f.level == "error")
    console.print(
        f"{len(report.findings)} checked: {errors} errors, {len(failing) - errors} warnings"
    )


def check(console: Console, report: CheckReport, accepted: tuple[str, ...] = ()) -> None:
    if not report.applicable:
        console.print("check: not applicable: the source is not Supabase's auth.users")
        return
    table = Table(title=f"Signup kinds (ran as {report.ran_as}, rolled back)", title_justify="left")
    hooks = any(k.hooks for k in report.kinds)
    for column in (
        "kind",
        "in this project",
        "result",
        "detail",
        *(["token hook"] if hooks else []),
    ):
        table.add_column(column, overflow=SHORTEN, no_wrap=column == "kind")
    for k in report.kinds:
        mark = PASS if k.ok else (FAIL if k.present and k.kind not in accepted else Text(k.outcome))
        tokens = ["; ".join(h.describe() for h in k.hooks)] if hooks else []
        table.add_row(k.kind, "yes" if k.present else "no", mark, Text(k.detail), *tokens)
    console.print(table)
    for h in report.ghost_hooks:
        style = "" if h.ok else "bold red"
        console.print(Text(f"{h.hook} hook for a ghost (no profile): {h.describe()}", style=style))
    failing = report.failing(accepted)
    if failing:
        console.print(
            Text(
                f"{len(failing)} kind(s) this project has would end without a profile: "
                f"{', '.join(k.kind for k in failing)}",
                style="bold red",
            )
        )
        console.print(
            "Fix: map those columns from values every kind has (`ghostguard init` proposes a "
            "mapping), or relax the constraint; or accept them with --accept-failing "
            + ",".join(k.kind for k in failing),
            markup=False,
        )
