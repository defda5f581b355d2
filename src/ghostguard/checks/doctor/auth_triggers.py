"""doctor: the pitfalls of any trigger on the auth table (ghostguard's or the app's own)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

from psycopg import sql

from ghostguard.adopt.existing import INSERT, UPDATE, AuthTrigger
from ghostguard.adopt.translate import user_metadata_beyond_profile_data
from ghostguard.checks.doctor.facts import Facts
from ghostguard.checks.finding import APPLY, ERROR, WARN, Finding, ok, problem
from ghostguard.checks.sync_state import PINNED_EMPTY, shown_search_path, statement
from ghostguard.sqlparts import ident, source
from ghostguard.sync import triggers as sync_triggers


def _function(t: AuthTrigger) -> sql.Identifier:
    return ident(t.function_schema, t.function_name)


def _each_function(f: Facts, judge: Callable[[AuthTrigger, str], Finding | None]) -> list[Finding]:
    """Judge each function behind triggers on the auth table once, naming its triggers. The
    AuthTrigger passed carries every transition table any of those triggers declares."""
    by_function: dict[str, list[AuthTrigger]] = {}
    for t in f.auth_triggers:
        by_function.setdefault(t.function, []).append(t)
    findings: list[Finding] = []
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
            statement(sql.SQL("ALTER FUNCTION {}() SECURITY DEFINER").format(_function(t)))
            + " "
            + statement(sql.SQL("ALTER FUNCTION {}() SET search_path = ''").format(_function(t)))
            + "  -- after qualifying every name",
        )

    return _each_function(f, judge)


def trigger_search_path(f: Facts) -> list[Finding]:
    def judge(t: AuthTrigger, obj: str) -> Finding:
        if t.search_path is not None:
            return ok("trigger_search_path", WARN, obj, shown_search_path(t.search_path))
        return problem(
            "trigger_search_path",
            WARN,
            obj,
            "no pinned search_path: names resolve in the Auth server's search_path (auth), "
            "Supabase linter 0011",
            statement(sql.SQL("ALTER FUNCTION {}() SET search_path = ''").format(_function(t)))
            + "  -- after qualifying every name",
        )

    return _each_function(f, judge)


def trigger_qualified_names(f: Facts) -> list[Finding]:
    def judge(t: AuthTrigger, obj: str) -> Finding | None:
        if t.language not in ("plpgsql", "sql"):
            return None
        if isinstance(t.parsed, str):
            return problem(
                "trigger_qualified_names",
                WARN,
                obj,
                f"could not read the body ({t.parsed}): check by hand that every table name is "
                "schema-qualified",
                "",
            )
        names = t.parsed.unqualified(t.transition_tables)
        if not names:
            return ok("trigger_qualified_names", ERROR, obj, "every table name is schema-qualified")
        resolves = t.search_path not in (None, *PINNED_EMPTY)
        return problem(
            "trigger_qualified_names",
            WARN if resolves else ERROR,
            obj,
            f"unqualified table names: {', '.join(names)}; "
            + (
                f"they resolve only while {shown_search_path(t.search_path)}"
                if resolves
                else "under the Auth server (search_path = auth, or search_path = '') they name auth tables "
                "or none: the write fails or goes to the wrong table"
            ),
            "qualify them: " + ", ".join(ident("public", n).as_string(None) for n in names),
        )

    return _each_function(f, judge)


def trigger_records_exceptions(f: Facts) -> list[Finding]:
    def judge(t: AuthTrigger, obj: str) -> Finding | None:
        if t.language != "plpgsql" or isinstance(t.parsed, str):
            return None  # an unreadable body is reported by trigger_qualified_names
        swallowed = t.parsed.swallowed()
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
            statement(
                sql.SQL(
                    "CREATE OR REPLACE TRIGGER {} AFTER UPDATE OF {} ON {} "
                    "FOR EACH ROW EXECUTE FUNCTION {}()"
                ).format(
                    ident(t.name),
                    sql.SQL(", ").join(map(ident, watched)),
                    source(f.config),
                    _function(t),
                )
            ),
        )

    return [finding for t in f.auth_triggers if (finding := judge(t)) is not None]


def one_profile_writer(f: Facts) -> list[Finding]:
    target = f.config.target
    writers = [
        t
        for t in f.auth_triggers
        if t.fires_on(INSERT)
        and t.is_enabled
        and not isinstance(t.parsed, str)
        and t.parsed.writes_to(target.schema, target.table, t.search_path)
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


def trigger_privilege_from_user_metadata(f: Facts) -> list[Finding]:
    """Every column a trigger writes from raw_user_meta_data that is not plainly profile data:
    an error in the app's own function, a warning in ghostguard's (its mapping is the owner's
    word in ghostguard.toml, where a privilege-like name is refused outright)."""

    def judge(t: AuthTrigger, obj: str) -> Finding:
        written = user_metadata_beyond_profile_data(t)
        level = WARN if t.ghostguards else ERROR
        if not written:
            return ok(
                "trigger_privilege_from_user_metadata",
                level,
                obj,
                "writes nothing but profile data (names, avatar, bio, ...) from raw_user_meta_data",
            )
        return problem(
            "trigger_privilege_from_user_metadata",
            level,
            obj,
            f"writes {', '.join(written)} from raw_user_meta_data, which every user sets for "
            "themselves at signup and with supabase.auth.updateUser({data}); these are not plain "
            "profile data and may grant something",
            "read them from NEW.raw_app_meta_data (only the service role and the Auth server write "
            "it), from a constant or the column's default; keep raw_user_meta_data for names, "
            "avatars and the like",
        )

    return _each_function(f, judge)


def app_trigger_signups(f: Facts) -> list[Finding]:
    """The app's own profile trigger, judged by what it does to each kind of signup (the
    preflight, run on the triggers as they are, rolled back)."""
    if f.app_signups is None or not f.app_signups.applicable:
        return []
    names = ", ".join(w.trigger.name for w in f.in_the_way if w.trigger)
    obj = f"the app's own trigger {names} on {f.config.source.display}"
    failing = [k for k in f.app_signups.kinds if not k.ok]
    if not failing:
        return [ok("app_trigger_signups", ERROR, obj, "every kind of signup gets a profile")]
    return [
        problem(
            "app_trigger_signups",
            ERROR,
            obj,
            "signups it leaves without a profile: "
            + "; ".join(f"{k.kind}: {k.detail or k.outcome}" for k in failing),
            "adopt it (`ghostguard init --force`, then `ghostguard apply --yes`): ghostguard "
            "creates the profile or records the failure, and never fails the signup",
        )
    ]
