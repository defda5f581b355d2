"""doctor: ghostguard's own objects, judged by the same functions as scan and verify
(checks/sync_state.py), and the tables it creates or relies on."""

from __future__ import annotations

from psycopg import sql

from ghostguard.adopt.takeover import adopt_fix
from ghostguard.checks import sync_state
from ghostguard.checks.app_view import own_row_policy
from ghostguard.checks.doctor.facts import Facts, Protection
from ghostguard.checks.finding import ERROR, WARN, Finding, combine, ok, problem
from ghostguard.checks.sync_state import SyncState, statement
from ghostguard.sqlparts import closed_to_api_roles, ident, target

# The checks of ghostguard's sync function and triggers: meaningful once apply installed them.
# Before that, an app function that happens to have the default name is the app's, and what it
# lacks of ghostguard's is no error (rehearse leaves these out until ghostguard is installed).
SYNC_CHECKS = frozenset(
    {"sync_installed", "search_path_pinned", "definer_owner", "execute_revoked"}
)


def sync_installed(f: Facts) -> list[Finding]:
    unadopted = [w for w in f.in_the_way if w.trigger and w.trigger.name not in f.config.adopt]
    if unadopted:  # the app's own, not drift: apply would refuse it
        return [
            problem(
                "sync_installed",
                ERROR,
                f"triggers on {f.config.source.display}",
                f"the app's own {'; '.join(w.display for w in unadopted)}: not ghostguard's, and "
                "apply will not replace or double it unless told to",
                adopt_fix([w.trigger.name for w in unadopted if w.trigger]),
            )
        ]
    state = SyncState(f.triggers, f.function, f.installed)
    return [
        combine(
            "sync_installed",
            f"{f.config.function_display} and its triggers",
            sync_state.drift_findings(state, f.config, f.shape),
            "installed as apply installs them, no drift",
        )
    ]


def search_path_pinned(f: Facts) -> list[Finding]:
    return [] if f.function is None else [sync_state.search_path_pinned(f.function, f.config)]


def definer_owner(f: Facts) -> list[Finding]:
    if f.function is None or "postgres" not in f.roles:
        return []
    return [sync_state.definer_owner(f.function, f.config)]


def execute_revoked(f: Facts) -> list[Finding]:
    if f.function is None:
        return []
    return [sync_state.execute_revoked(f.function, f.config, f.shape)]


def _closed(check: str, what: str, p: Protection, f: Facts) -> list[Finding]:
    if not p.exists:
        return []
    if p.rls and not p.readable_by and not p.sequence_usable_by:
        return [ok(check, ERROR, p.table.display, f"{what}: RLS on, no API role may read it")]
    wrong = ["RLS off"] if not p.rls else []
    if p.readable_by:
        wrong.append(f"readable by {', '.join(p.readable_by)}")
    if p.sequence_usable_by:  # setval to the maximum stops every later insert
        wrong.append(f"its sequence usable by {', '.join(p.sequence_usable_by)}")
    fix = " ".join(  # the same two statements apply ran when it created the table
        statement(step.statement)
        for step in closed_to_api_roles(ident(p.table.schema, p.table.table), f.shape, what)
    )
    return [problem(check, ERROR, p.table.display, f"{what}: {'; '.join(wrong)}", fix)]


def audit_closed(f: Facts) -> list[Finding]:
    return _closed("audit_table_closed", "audit log", f.audit, f)


def failures_closed(f: Facts) -> list[Finding]:
    return _closed("failures_table_closed", "sync failures (user ids, error texts)", f.failures, f)


def profile_rls(f: Facts) -> list[Finding]:
    p, key = f.profile, f.config.target.key
    if not p.exists:
        return []
    table = target(f.config)
    own = [
        pol
        for pol in f.policies
        if pol.using
        and "auth.uid()" in pol.using
        and key in pol.using
        and pol.command in ("r", "*")
    ]
    if p.rls and own:
        return [ok("profile_rls", ERROR, p.table.display, f"RLS on; own-row policy {own[0].name}")]
    policy = own_row_policy(f.config)
    if not p.rls:
        return [
            problem(
                "profile_rls",
                ERROR,
                p.table.display,
                f"RLS off: {', '.join(p.readable_by) or 'API roles'} can read every profile "
                "(Supabase linter 0013)",
                statement(sql.SQL("ALTER TABLE {} ENABLE ROW LEVEL SECURITY").format(table))
                + " "
                + policy,
            )
        ]
    return [
        problem(
            "profile_rls",
            WARN,
            p.table.display,
            "RLS on but no own-row SELECT policy: signed-in users cannot read their own profile",
            policy,
        )
    ]
