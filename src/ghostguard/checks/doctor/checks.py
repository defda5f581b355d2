"""The doctor's checks: each reads the facts and returns findings with the same columns.

Two groups: ghostguard's own objects (installed as apply installs them, closed to API roles) and
the pitfalls users hit with any trigger on the auth table and any profile table.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

from psycopg import sql

from ghostguard.checks import blocking_keys
from ghostguard.checks.doctor.facts import INSERT, UPDATE, AuthTrigger, Facts, Protection
from ghostguard.checks.doctor.findings import Finding, ok, problem
from ghostguard.checks.doctor.plpgsql import swallowed_exceptions, unqualified_relations
from ghostguard.sqlparts import closed_to_api_roles, function, ident, target
from ghostguard.sync import drift as sync_drift
from ghostguard.sync import install as sync_install
from ghostguard.sync import triggers as sync_triggers

ERROR, WARN = "error", "warn"
APPLY = "ghostguard apply --yes"
PINNED_EMPTY = ('""', "''", "")


def _sql(statement: sql.Composable) -> str:
    return statement.as_string(None) + ";"


# -- ghostguard's own objects -----------------------------------------------------------------------


def sync_installed(f: Facts) -> list[Finding]:
    drift = sync_drift.drift(f.config, f.shape, f.triggers, f.function, f.installed)
    obj = f"{f.config.function_display} and its triggers"
    if drift:
        return [problem("sync_installed", ERROR, obj, "; ".join(drift), APPLY)]
    return [ok("sync_installed", ERROR, obj, "installed as apply installs them, no drift")]


def search_path_pinned(f: Facts) -> list[Finding]:
    fn = f.function
    if fn is None:
        return []
    if fn.search_path in PINNED_EMPTY:
        return [ok("search_path_pinned", ERROR, fn.name, "search_path = ''")]
    return [
        problem(
            "search_path_pinned",
            ERROR,
            fn.name,
            f"search_path is {fn.search_path or 'not set'}: a SECURITY DEFINER function must pin it",
            _sql(sql.SQL("ALTER FUNCTION {}() SET search_path = ''").format(function(f.config))),
        )
    ]


def definer_owner(f: Facts) -> list[Finding]:
    fn = f.function
    if fn is None or "postgres" not in f.roles:
        return []
    if fn.owner == "postgres":
        return [ok("definer_owner", WARN, fn.name, "owned by postgres")]
    return [
        problem(
            "definer_owner",
            WARN,
            fn.name,
            f"owned by {fn.owner}: a SECURITY DEFINER function runs with its owner's rights; "
            "Supabase expects postgres",
            _sql(sql.SQL("ALTER FUNCTION {}() OWNER TO postgres").format(function(f.config))),
        )
    ]


def execute_revoked(f: Facts) -> list[Finding]:
    fn = f.function
    if fn is None:
        return []
    if not fn.executable_by:
        return [ok("execute_revoked", ERROR, fn.name, "no API role may EXECUTE it")]
    return [
        problem(
            "execute_revoked",
            ERROR,
            fn.name,
            f"EXECUTE granted to {', '.join(fn.executable_by)} (Supabase linter 0028/0029)",
            sync_install.revoke_execute(f.config, f.shape).render() + ";",
        )
    ]


def _closed(check: str, what: str, p: Protection, f: Facts) -> list[Finding]:
    if not p.exists:
        return []
    if p.rls and not p.readable_by:
        return [ok(check, ERROR, p.table.display, f"{what}: RLS on, no API role may read it")]
    wrong = ["RLS off"] if not p.rls else []
    if p.readable_by:
        wrong.append(f"readable by {', '.join(p.readable_by)}")
    fix = " ".join(  # the same two statements apply ran when it created the table
        _sql(step.statement)
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
    policy = _sql(
        sql.SQL(
            "CREATE POLICY {} ON {} FOR SELECT TO authenticated USING ((SELECT auth.uid()) = {})"
        ).format(ident("Users can view their own profile"), table, ident(key))
    )
    if not p.rls:
        return [
            problem(
                "profile_rls",
                ERROR,
                p.table.display,
                f"RLS off: {', '.join(p.readable_by) or 'API roles'} can read every profile "
                "(Supabase linter 0013)",
                _sql(sql.SQL("ALTER TABLE {} ENABLE ROW LEVEL SECURITY").format(table))
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


# -- triggers on the auth table -------------------------------------------------------------------


def _each_function(f: Facts, judge: Callable[[AuthTrigger, str], Finding | None]) -> list[Finding]:
    """Judge each function behind triggers on the auth table once, naming its triggers. The
    AuthTrigger passed carries every transition table any of those triggers declares."""
    by_function: dict[str, list[AuthTrigger]] = {}
    for t in f.auth_triggers:
        by_function.setdefault(t.function, []).append(t)
    findings = []
    for fn, triggers in by_function.items():
        first = triggers[0]
        merged = replace(
            first, transition_tables=tuple(n for t in triggers for n in t.transition_tables)
        )
        obj = f"function {fn} (trigger {', '.join(t.name for t in triggers)})"
        if (finding := judge(merged, obj)) is not None:
            findings.append(finding)
    return findings


def trigger_definer(f: Facts) -> list[Finding]:
    def judge(t: AuthTrigger, obj: str) -> Finding:
        if t.security_definer:
            return ok("trigger_definer", ERROR, obj, "SECURITY DEFINER")
        return problem(
            "trigger_definer",
            ERROR,
            obj,
            "SECURITY INVOKER: it runs as the Auth server's role, which has no rights outside "
            "auth, so its profile write fails and blocks the signup",
            f"ALTER FUNCTION {t.function} SECURITY DEFINER; ALTER FUNCTION {t.function} "
            "SET search_path = '';  -- after qualifying every name",
        )

    return _each_function(f, judge)


def trigger_search_path(f: Facts) -> list[Finding]:
    def judge(t: AuthTrigger, obj: str) -> Finding:
        if t.search_path is not None:
            return ok("trigger_search_path", WARN, obj, f"search_path = {t.search_path}")
        return problem(
            "trigger_search_path",
            WARN,
            obj,
            "no pinned search_path: names resolve in the Auth server's search_path (auth), "
            "Supabase linter 0011",
            f"ALTER FUNCTION {t.function} SET search_path = '';  -- after qualifying every name",
        )

    return _each_function(f, judge)


def trigger_qualified_names(f: Facts) -> list[Finding]:
    def judge(t: AuthTrigger, obj: str) -> Finding | None:
        if t.language not in ("plpgsql", "sql"):
            return None
        names = unqualified_relations(t.body, t.transition_tables)
        if not names:
            return ok("trigger_qualified_names", ERROR, obj, "every table name is schema-qualified")
        resolves = t.search_path not in (None, *PINNED_EMPTY)
        return problem(
            "trigger_qualified_names",
            WARN if resolves else ERROR,
            obj,
            f"unqualified table names: {', '.join(names)}; "
            + (
                f"they resolve only while search_path is {t.search_path}"
                if resolves
                else "under the Auth server (search_path auth, or '') they name auth tables "
                "or none: the write fails or goes to the wrong table"
            ),
            "qualify them: " + ", ".join(f"public.{n}" for n in names),
        )

    return _each_function(f, judge)


def trigger_records_exceptions(f: Facts) -> list[Finding]:
    def judge(t: AuthTrigger, obj: str) -> Finding | None:
        if t.language != "plpgsql":
            return None
        swallowed = swallowed_exceptions(t.body)
        if not swallowed:
            return ok("trigger_records_exceptions", ERROR, obj, "no exception is swallowed")
        return problem(
            "trigger_records_exceptions",
            ERROR,
            obj,
            f"{swallowed} exception handler(s) catch errors without recording them: every "
            "failed profile write becomes a silent ghost",
            f"record the failure (INSERT into a table, or RAISE WARNING), or replace it: {APPLY}",
        )

    return _each_function(f, judge)


def trigger_skips_sign_ins(f: Facts) -> list[Finding]:
    watched = sync_triggers.watched_columns(f.config, f.shape)

    def judge(t: AuthTrigger) -> Finding | None:
        if not t.fires_on(UPDATE):
            return None
        obj = f"trigger {t.name} ({t.function})"
        if t.columns or t.has_when:
            return ok("trigger_skips_sign_ins", WARN, obj, "UPDATE OF a column list or WHEN")
        return problem(
            "trigger_skips_sign_ins",
            WARN,
            obj,
            "fires on every UPDATE of the auth row: every sign-in (last_sign_in_at) runs it",
            f"CREATE OR REPLACE TRIGGER {t.name} AFTER UPDATE OF {', '.join(watched)} ON "
            f"{f.config.source.display} FOR EACH ROW EXECUTE FUNCTION {t.function};",
        )

    return [finding for t in f.auth_triggers if (finding := judge(t)) is not None]


def one_profile_writer(f: Facts) -> list[Finding]:
    needle = (f.config.target.schema.lower(), f.config.target.table.lower())
    writers = [
        t
        for t in f.auth_triggers
        if t.fires_on(INSERT) and _mentions(t.body, *needle) and t.is_enabled
    ]
    obj = f"INSERT triggers on {f.config.source.display}"
    if len(writers) <= 1:
        return [ok("one_profile_writer", WARN, obj, f"{len(writers)} trigger writes profiles")]
    return [
        problem(
            "one_profile_writer",
            WARN,
            obj,
            f"{len(writers)} triggers write {f.config.target.display}: "
            f"{', '.join(t.name for t in writers)}; one fails or hides the other",
            "keep one: `ghostguard rollback` removes ghostguard's, or drop the others "
            "(as the table owner)",
        )
    ]


def _mentions(body: str, schema: str, table: str) -> bool:
    code = body.lower().replace('"', "")
    return f"{schema}.{table}" in code.replace(" ", "")


# -- the profile table ----------------------------------------------------------------------------


# Auth columns that are NULL for whole kinds of users (supabase-facts.md): email for phone and
# anonymous users (and some OAuth), phone for email users. Metadata keys are often absent.
SOMETIMES_NULL = ("email", "phone")


def nullable_sources(f: Facts) -> list[Finding]:
    findings = []
    for column, nulls in f.nulls.items():
        obj = f"{f.config.target.display}.{column}"
        source = f.config.mapping[column]
        described = source.describe()
        alter = _sql(
            sql.SQL("ALTER TABLE {} ALTER COLUMN {} DROP NOT NULL").format(
                target(f.config), ident(column)
            )
        )
        if nulls:
            detail = f"NOT NULL, but {described} is NULL for {nulls:,} auth users: their profile writes fail"
            findings.append(problem("nullable_sources", ERROR, obj, detail, alter))
        elif source.column is None or source.column in SOMETIMES_NULL:
            detail = (
                f"NOT NULL, but {described} can be NULL (phone, anonymous, some OAuth users "
                "or empty metadata): those signups will have no profile"
            )
            findings.append(problem("nullable_sources", WARN, obj, detail, alter))
        else:
            findings.append(
                ok("nullable_sources", ERROR, obj, f"NOT NULL, {described} is always set")
            )
    return findings


def unique_email(f: Facts) -> list[Finding]:
    columns = [
        c for c, src in f.config.mapping.items() if src.column == "email" and c in f.unique_columns
    ]
    findings = []
    for column in columns:
        obj = f"{f.config.target.display}.{column}"
        level = ERROR if f.duplicate_sso_emails else WARN
        if not f.sso_users and level == WARN:
            findings.append(ok("unique_email", WARN, obj, "UNIQUE, and no SSO users yet"))
            continue
        findings.append(
            problem(
                "unique_email",
                level,
                obj,
                f"UNIQUE, but SSO users may share an email with another account "
                f"({f.sso_users:,} SSO users, {f.duplicate_sso_emails:,} shared emails)",
                "drop the unique constraint or index on it (keep a plain index)",
            )
        )
    return findings


def checks_on_mapped(f: Facts) -> list[Finding]:
    return [
        problem(
            "checks_on_mapped",
            WARN,
            f"{f.config.target.display}.{column}",
            f"{definition}: provider data ({f.config.mapping[column].describe()}) can violate it "
            "and the profile write then fails",
            "relax the constraint, or map the column from a value that always satisfies it",
        )
        for column, definitions in f.checks.items()
        if column in f.config.mapping
        for definition in definitions
    ]


def profile_key_uuid(f: Facts) -> list[Finding]:
    key = f.profile_columns.get(f.config.target.key)
    if key is None:
        return []
    obj = f"{f.config.target.display}.{key.name}"
    if key.type == f.shape.source_key_type:
        return [ok("profile_key_uuid", ERROR, obj, f"{key.type}, like the auth key")]
    return [
        problem(
            "profile_key_uuid",
            ERROR,
            obj,
            f"{key.type}, but the auth key is {f.shape.source_key_type}",
            _sql(
                sql.SQL("ALTER TABLE {} ALTER COLUMN {} TYPE uuid USING {}::uuid").format(
                    target(f.config), ident(key.name), ident(key.name)
                )
            ),
        )
    ]


def deletes_cascade(f: Facts) -> list[Finding]:
    findings = []
    for fk in f.foreign_keys:
        if fk.blocks_deletes:
            findings.append(
                problem(
                    "deletes_cascade",
                    ERROR,
                    fk.display,
                    f'ON DELETE {fk.on_delete}: deleting a user fails ("Database error deleting user")',
                    blocking_keys.fix_blocking_foreign_key(fk, f.config).strip(),
                )
            )
        else:
            findings.append(ok("deletes_cascade", ERROR, fk.display, f"ON DELETE {fk.on_delete}"))
    return findings


def no_exposed_auth_views(f: Facts) -> list[Finding]:
    findings = []
    for view in f.views:
        exposed = view.readable_by and not view.security_invoker
        if not exposed:
            findings.append(
                ok("no_exposed_auth_views", ERROR, view.name, "not readable by API roles")
            )
            continue
        findings.append(
            problem(
                "no_exposed_auth_views",
                ERROR,
                view.name,
                f"a view over {f.config.source.display} in an exposed schema, readable by "
                f"{', '.join(view.readable_by)}: it leaks auth data (Supabase linter 0002/0010)",
                f"REVOKE ALL ON {view.name} FROM {', '.join(view.readable_by)}; or "
                f"ALTER VIEW {view.name} SET (security_invoker = on);",
            )
        )
    return findings


CHECKS: list[Callable[[Facts], list[Finding]]] = [
    sync_installed,
    search_path_pinned,
    definer_owner,
    execute_revoked,
    audit_closed,
    failures_closed,
    profile_rls,
    trigger_definer,
    trigger_search_path,
    trigger_qualified_names,
    trigger_records_exceptions,
    trigger_skips_sign_ins,
    one_profile_writer,
    nullable_sources,
    unique_email,
    checks_on_mapped,
    profile_key_uuid,
    deletes_cascade,
    no_exposed_auth_views,
]
