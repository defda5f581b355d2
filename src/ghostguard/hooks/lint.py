"""Doctor's checks of the project's auth hooks, the way it checks the sync function: the Auth
server runs a hook as supabase_auth_admin with `search_path = auth`, so a hook must qualify its
names or pin a search_path, be executable by supabase_auth_admin (and by nobody the Data API runs
as), be able to read every table it reads as that role (schema USAGE, SELECT, an RLS policy), never
update the signing-in user (the Auth server's documented cause of hook_timeout), and never take a
claim from user metadata, which every user writes."""

from __future__ import annotations

import re
from dataclasses import dataclass

import psycopg

from ghostguard import plpgsql, sqlfiles
from ghostguard.checks.finding import ERROR, WARN, Finding, ok, problem
from ghostguard.config import Config
from ghostguard.hooks import adopt
from ghostguard.hooks.found import AFTER_USER_CREATED, AuthHook, HookFunction

USER_METADATA = re.compile(r"user_metadata|raw_user_meta_data", re.IGNORECASE)


@dataclass(frozen=True)
class HookFacts:
    hook: AuthHook
    function: HookFunction
    auth_admin_may_run: bool
    executable_by: tuple[str, ...]  # PUBLIC, anon, authenticated: should be none
    unqualified: tuple[str, ...]  # table names resolved by search_path, none pinned
    unreadable: tuple[str, ...]  # `table: why` for tables supabase_auth_admin cannot read
    updates_users: bool
    from_user_metadata: bool


def _pinned(function: HookFunction) -> list[str]:
    return plpgsql.schemas_of(function.search_path)


def _resolve(name: str, function: HookFunction) -> tuple[str, str]:
    if "." in name:
        schema, table = name.split(".", 1)
        return schema, table
    return (_pinned(function) or ["auth"])[0], name  # the Auth server's search_path is auth


def _unreadable(conn: psycopg.Connection, function: HookFunction) -> tuple[str, ...]:
    found: list[str] = []
    for name in dict.fromkeys(function.reads()):
        schema, table = _resolve(name, function)
        row = conn.execute(
            sqlfiles.text(__name__, "hooks.sql", "table_access"), (schema, table)
        ).fetchone()
        where = f"{schema}.{table}"
        if row is None:
            found.append(f"{where}: no such table (as supabase_auth_admin resolves it)")
        elif not row[0]:
            found.append(f"{where}: no USAGE on schema {schema}")
        elif not row[1]:
            found.append(f"{where}: no SELECT")
        elif not row[2] and not row[3]:
            found.append(f"{where}: RLS on and no SELECT policy for supabase_auth_admin")
    return tuple(found)


def read(conn: psycopg.Connection, hooks: list[AuthHook]) -> list[HookFacts]:
    facts: list[HookFacts] = []
    for hook in hooks:
        function = hook.function
        if function is None:
            continue
        grants = conn.execute(
            sqlfiles.text(__name__, "hooks.sql", "grants"), (function.schema, function.name)
        ).fetchone()
        parsed = function.parsed
        unqualified = (
            () if isinstance(parsed, str) or _pinned(function) else tuple(parsed.unqualified())
        )
        facts.append(
            HookFacts(
                hook,
                function,
                bool(grants and grants[0]),
                tuple(grants[1]) if grants else (),
                unqualified,
                _unreadable(conn, function),
                any(w in ("auth.users", "users") for w in function.writes()),
                bool(USER_METADATA.search(function.body)),
            )
        )
    return facts


def findings(facts: list[HookFacts], config: Config) -> list[Finding]:
    found: list[Finding] = []
    for f in facts:
        reads = ", ".join(f.function.reads()) or "no table"
        writes = ", ".join(f.function.writes()) or "no table"
        source = (
            "config.toml" if f.hook.configured else "the database (EXECUTE to supabase_auth_admin)"
        )
        found.append(
            ok("auth_hook", WARN, f.hook.display, f"from {source}; reads {reads}; writes {writes}")
        )
        found += [_search_path(f), _execute(f), _reads(f)]
        obj = f.hook.display
        if f.updates_users:
            found.append(
                problem(
                    "hook_updates_user",
                    ERROR,
                    obj,
                    "updates auth.users: the Auth server holds that row during the hook, so it "
                    "times out (hook_timeout)",
                    "move the write out of the hook (a trigger, or the app)",
                )
            )
        written = [w for w in f.function.writes() if w not in ("auth.users", "users")]
        if f.hook.hook == AFTER_USER_CREATED and written:
            found.append(
                problem(
                    "hook_after_user_created_writes",
                    ERROR,
                    obj,
                    f"writes {', '.join(written)} after the signup commits: admin-created users "
                    "and some auto-confirmed signups never call it (ghosts), OAuth sign-ins call "
                    "it again (duplicate work)",
                    "create profiles in a trigger on auth.users (`ghostguard apply`), with the "
                    "hook's mapping in ghostguard.toml [mapping]: "
                    + ("; ".join(adopt.mapping_lines(f.function, config)) or "(none it sets)")
                    + "; keep the hook for what may be late or repeated",
                )
            )
        if f.from_user_metadata:
            found.append(
                problem(
                    "hook_claim_from_user_metadata",
                    WARN,
                    obj,
                    "reads user metadata, which every user writes: no claim that grants anything "
                    "may come from it",
                    "take such claims from app_metadata or a table the app owns",
                )
            )
    return found


def _search_path(f: HookFacts) -> Finding:
    obj, fn = f.hook.display, f.function.display
    if not f.unqualified:
        return ok("hook_search_path", ERROR, obj, "names qualified or search_path pinned")
    return problem(
        "hook_search_path",
        ERROR,
        obj,
        f"unqualified {', '.join(f.unqualified)} resolve in auth (the Auth server's search_path):"
        " the hook fails at every sign-in",
        f"qualify them, or ALTER FUNCTION {fn} SET search_path = ''",
    )


def _execute(f: HookFacts) -> Finding:
    obj, fn = f.hook.display, f.function.display
    if not f.auth_admin_may_run:
        return problem(
            "hook_execute",
            ERROR,
            obj,
            "supabase_auth_admin may not run it",
            f"GRANT EXECUTE ON FUNCTION {fn} TO supabase_auth_admin;",
        )
    if f.executable_by:
        roles = ", ".join(f.executable_by)
        return problem(
            "hook_execute",
            WARN,
            obj,
            f"EXECUTE granted to {roles}: the Data API may call it",
            f"REVOKE EXECUTE ON FUNCTION {fn} FROM {roles};",
        )
    return ok("hook_execute", ERROR, obj, "supabase_auth_admin only")


def _reads(f: HookFacts) -> Finding:
    obj = f.hook.display
    if not f.unreadable:
        return ok("hook_reads_granted", ERROR, obj, "supabase_auth_admin can read what it reads")
    return problem(
        "hook_reads_granted",
        ERROR,
        obj,
        "supabase_auth_admin cannot read: " + "; ".join(f.unreadable),
        "GRANT USAGE ON SCHEMA <schema> TO supabase_auth_admin; GRANT SELECT ON <table> TO "
        "supabase_auth_admin; with RLS: CREATE POLICY ... FOR SELECT TO supabase_auth_admin "
        "USING (true)",
    )
