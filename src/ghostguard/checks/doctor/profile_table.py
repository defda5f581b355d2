"""doctor: the profile table's columns and constraints, foreign keys to the auth table, and views
that expose it."""

from __future__ import annotations

from psycopg import sql

from ghostguard.checks import blocking_keys
from ghostguard.checks.doctor.facts import Facts
from ghostguard.checks.finding import ERROR, WARN, Finding, ok, problem
from ghostguard.checks.sync_state import statement
from ghostguard.sqlparts import ident, target

# Auth columns that are NULL for whole kinds of users (supabase-facts.md): email for phone and
# anonymous users (and some OAuth), phone for email users. Metadata keys are often absent.
SOMETIMES_NULL = ("email", "phone")


def nullable_sources(f: Facts) -> list[Finding]:
    findings: list[Finding] = []
    for column, nulls in f.nulls.items():
        obj = f"{f.config.target.display}.{column}"
        source = f.config.mapping[column]
        described = source.describe()
        alter = statement(
            sql.SQL("ALTER TABLE {} ALTER COLUMN {} DROP NOT NULL").format(
                target(f.config), ident(column)
            )
        )
        if nulls:
            detail = f"NOT NULL, but {described} is NULL for {nulls:,} auth users: their profile writes fail"
            findings.append(problem("nullable_sources", ERROR, obj, detail, alter))
        elif source.never_null:
            findings.append(
                ok("nullable_sources", ERROR, obj, f"NOT NULL, {described} always gives a value")
            )
        elif source.column is None or source.column in SOMETIMES_NULL:
            detail = (
                f"NOT NULL, but {described} can be NULL (phone, anonymous, some OAuth users "
                "or empty metadata): those signups will have no profile; add a fallback that "
                'always gives a value (e.g. fallback = ["placeholder_email"] or ["id_handle"])'
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
    findings: list[Finding] = []
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


def link_unique(f: Facts) -> list[Finding]:
    obj = f"{f.config.target.display}.{f.config.target.key}"
    if f.link_index is None:
        return [ok("link_unique", WARN, obj, "unique: one profile per user, ON CONFLICT")]
    return [problem("link_unique", WARN, obj, f.link_index.summary, f.link_index.fix)]


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
            statement(
                sql.SQL("ALTER TABLE {} ALTER COLUMN {} TYPE uuid USING {}::uuid").format(
                    target(f.config), ident(key.name), ident(key.name)
                )
            ),
        )
    ]


def deletes_cascade(f: Facts) -> list[Finding]:
    findings: list[Finding] = []
    for fk in f.foreign_keys:
        if fk.deletes_fail is not None:
            findings.append(
                problem(
                    "deletes_cascade",
                    ERROR,
                    fk.display,
                    f'{fk.deletes_fail}: deleting a user fails ("Database error deleting user")',
                    blocking_keys.fix_blocking_foreign_key(fk, f.config).strip(),
                )
            )
        else:
            findings.append(ok("deletes_cascade", ERROR, fk.display, f"ON DELETE {fk.on_delete}"))
    return findings


def no_exposed_auth_views(f: Facts) -> list[Finding]:
    findings: list[Finding] = []
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
                statement(
                    sql.SQL("REVOKE ALL ON {} FROM {}").format(
                        ident(view.schema, view.relname),
                        sql.SQL(", ").join(map(ident, view.readable_by)),
                    )
                )
                + " or "
                + statement(
                    sql.SQL("ALTER VIEW {} SET (security_invoker = on)").format(
                        ident(view.schema, view.relname)
                    )
                ),
            )
        )
    return findings


def app_view(f: Facts) -> list[Finding]:
    """The profile table as the Data API serves it: each user reads their own profile; other
    users' rows and anon's view are what the project decided (warnings, with the SQL that closes
    them if it did not)."""
    view = f.app_view
    obj = f.config.target.display
    if view is not None and not view.applicable and view.detail.startswith("not "):
        return [ok("app_view", ERROR, obj, view.detail)]  # not served, or read on the server
    if view is None or not view.applicable:
        return []
    findings = [
        ok("app_view", ERROR, obj, view.detail)
        if view.passed
        else problem("app_view", ERROR, obj, view.detail, view.fix)
    ]
    table = target(f.config)
    if view.others_visible:
        findings.append(
            problem(
                "app_view_others",
                WARN,
                obj,
                f"a signed-in user can read {view.others_visible} other users' profiles",
                "if profiles are not meant to be public, keep only an own-row SELECT policy: "
                + statement(sql.SQL("ALTER TABLE {} ENABLE ROW LEVEL SECURITY").format(table)),
            )
        )
    if view.anon_visible:
        findings.append(
            problem(
                "app_view_anon",
                WARN,
                obj,
                f"anon (not signed in) can read {view.anon_visible} profiles",
                "if that is not meant: "
                + statement(sql.SQL("REVOKE SELECT ON {} FROM anon").format(table)),
            )
        )
    return findings
