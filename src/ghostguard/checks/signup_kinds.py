"""The preflight (`ghostguard check`, run by apply first and by verify): every kind of signup and
lifecycle change, written the Auth server's way in one transaction that is rolled back, with the
sync installed as apply would install it. For each kind: did a profile appear, or what failure
would be recorded (SQLSTATE, constraint), or did the signup itself fail."""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import psycopg
from psycopg import sql

from ghostguard import catalog, kinds, locks
from ghostguard.adopt import takeover
from ghostguard.adopt.existing import BEFORE, INSERT, auth_triggers
from ghostguard.catalog import Shape
from ghostguard.checks import sync_state
from ghostguard.checks.probe import AUTH_COLUMNS, can_become_auth_server
from ghostguard.config import Config
from ghostguard.hooks import call, found
from ghostguard.hooks.call import HookCall
from ghostguard.hooks.found import BEFORE_USER_CREATED, CUSTOM_ACCESS_TOKEN, AuthHook
from ghostguard.kinds import SignupKind
from ghostguard.runner import primary_message, run_steps
from ghostguard.sqlparts import ident, source, target
from ghostguard.supabase import authserver
from ghostguard.supabase.authserver import AuthServer, NewUser
from ghostguard.sync import failures as sync_failures
from ghostguard.sync import install as sync_install

PROFILE, RECORDED, SIGNUP_FAILED, NO_PROFILE = "profile", "recorded", "signup failed", "no profile"
REFUSED = "refused by hook"  # the before-user-created hook said no, well formed: nobody created
LOCK_NOT_AVAILABLE = "SQLSTATE 55P03"
_KIND_COLUMNS = {"email", "phone", "is_anonymous", "deleted_at"}  # read to tell the kinds apart


def _tag() -> str:
    return uuid.uuid4().hex[:10]


def address(kind: str) -> str:
    """An email no real user has (.invalid), tagged with what it is for."""
    return f"ghostguard-check-{kind}-{_tag()}@check.invalid"


def _signup(make: Callable[[], NewUser]) -> Callable[[AuthServer], uuid.UUID]:
    return lambda writer: writer.signup(make())


def _sso_sharing_an_email(writer: AuthServer) -> uuid.UUID:
    shared = address("sso")
    writer.signup(authserver.email_user(shared, full_name="Shared Address"))
    return writer.signup(authserver.sso_user(shared))


def _admin_create(writer: AuthServer) -> uuid.UUID:
    user = authserver.email_user(address("admin"), full_name="Invited User")
    return writer.admin_create(user, {"role_hint": "invited"})


def _email_change(writer: AuthServer) -> uuid.UUID:
    user_id = writer.signup(authserver.email_user(address("before"), full_name="Changing Email"))
    writer.confirm_email_change(user_id, address("after"))
    return user_id


def _anonymous_conversion(writer: AuthServer) -> uuid.UUID:
    user_id = writer.signup(authserver.anonymous_user())
    writer.convert_anonymous(user_id, address("converted"))
    return user_id


def _soft_delete(writer: AuthServer) -> uuid.UUID:
    user_id = writer.signup(authserver.email_user(address("deleted"), full_name="Soon Gone"))
    writer.soft_delete(user_id)
    return user_id


def _azure_user() -> NewUser:
    email = address("azure")
    meta = {"iss": "https://login.microsoftonline.com", "email": email, "full_name": "Azure User"}
    return NewUser(email=email, provider="azure", user_metadata=meta, provider_id=_tag())


def _oauth_user(provider: str) -> NewUser:
    """A signup through a provider without one of its own here: the usual OIDC claims."""
    email = address(provider)
    meta = {"email": email, "full_name": f"{provider.title()} User", "avatar_url": "https://a/p"}
    return NewUser(email=email, provider=provider, user_metadata=meta, provider_id=_tag())


Action = Callable[[AuthServer], uuid.UUID]
# What the Auth server does for each kind of kinds.SIGNUP_KINDS.
ACTIONS: dict[str, Action] = {
    "email": _signup(lambda: authserver.email_user(address("email"), full_name="Email User")),
    "phone": _signup(lambda: authserver.phone_user("1555" + str(uuid.uuid4().int)[:7])),
    "anonymous": _signup(authserver.anonymous_user),
    "google": _signup(
        lambda: authserver.google_user(address("google"), "Google User", "https://g/p")
    ),
    "github": _signup(
        lambda: authserver.github_user(address("github"), "octo" + _tag(), "https://a/o")
    ),
    "apple": _signup(lambda: authserver.apple_user(None)),
    "azure": _signup(_azure_user),
    "sso_shared_email": _sso_sharing_an_email,
    "admin_create": _admin_create,
    "email_change": _email_change,
    "anonymous_conversion": _anonymous_conversion,
    "soft_delete": _soft_delete,
}
assert tuple(ACTIONS) == kinds.NAMES, "every signup kind has its action, in kinds.py's order"
KINDS = kinds.NAMES


def action(kind: SignupKind) -> Action:
    if kind.name in ACTIONS:
        return ACTIONS[kind.name]
    provider = kind.provider or kind.name
    return _signup(lambda: _oauth_user(provider))


@dataclass(frozen=True)
class KindResult:
    kind: str
    present: bool  # the project has users of this kind (a failure here is a real user's)
    outcome: str  # PROFILE, RECORDED, SIGNUP_FAILED, NO_PROFILE or REFUSED
    detail: str = ""  # the constraint and error when it did not end with a profile
    hooks: tuple[HookCall, ...] = ()  # the custom access token hook(s) for the user, after signup

    @property
    def ok(self) -> bool:
        return self.outcome in (PROFILE, REFUSED) and all(h.ok for h in self.hooks)

    @property
    def waited_on_lock(self) -> bool:
        """Its write gave up on a lock another session holds: a lock conflict, not a verdict."""
        return LOCK_NOT_AVAILABLE in self.detail


@dataclass(frozen=True)
class CheckReport:
    kinds: list[KindResult]
    ran_as: str
    installed_for_check: bool  # the sync was installed inside the rolled-back transaction
    applicable: bool = True  # False: the source is not Supabase's auth.users
    ghost_hooks: tuple[HookCall, ...] = ()  # the token hook(s) for a user without a profile

    def failing(self, accepted: tuple[str, ...] = ()) -> list[KindResult]:
        """Kinds the project has that would not end with a profile, less those accepted."""
        return [k for k in self.kinds if k.present and not k.ok and k.kind not in accepted]

    def describe_failing(self, accepted: tuple[str, ...] = ()) -> str:
        """`kind: what happened; …` for the failing kinds, as apply and verify report them."""
        return "; ".join(f"{k.kind}: {k.detail or k.outcome}" for k in self.failing(accepted))

    def to_dict(self) -> dict[str, Any]:
        return {
            "kinds": [{**asdict(k), "ok": k.ok} for k in self.kinds],
            "ran_as": self.ran_as,
            "installed_for_check": self.installed_for_check,
            "applicable": self.applicable,
            "ghost_hooks": [asdict(h) for h in self.ghost_hooks],
            "failing": [k.kind for k in self.failing()],
        }


def parse_kinds(text: str, known: tuple[str, ...] = KINDS) -> tuple[str, ...]:
    """`--accept-failing phone,anonymous`: known kind names only (ValueError names the others)."""
    names = tuple(n.strip() for n in text.split(",") if n.strip())
    unknown = [n for n in names if n not in known]
    if unknown:
        raise ValueError(f"unknown kind(s) {', '.join(unknown)}; kinds: {', '.join(known)}")
    return names


def _present(
    conn: psycopg.Connection, config: Config, judged: Sequence[SignupKind]
) -> dict[str, bool]:
    checks = sql.SQL(", ").join(
        sql.SQL("EXISTS (SELECT 1 FROM {} au WHERE {})").format(source(config), k.condition())
        for k in judged
    )
    row = conn.execute(sql.SQL("SELECT {}").format(checks)).fetchone()
    return dict(zip((k.name for k in judged), (bool(v) for v in row or ()), strict=True))


def _outcome(
    conn: psycopg.Connection, config: Config, user_id: uuid.UUID, recorded: bool = True
) -> tuple[str, str]:
    """`recorded`: the failures table exists (a failure may be recorded there)."""
    failure = (
        conn.execute(
            sync_failures.failure_of_user(config).statement, {"user": str(user_id)}
        ).fetchone()
        if recorded
        else None
    )
    if failure is not None:
        state, constraint, message, context = failure
        named = f"{constraint}: " if constraint else ""
        where = _in_app_trigger(conn, config, context)
        return RECORDED, f"{named}{message} (SQLSTATE {state}){where}"
    found = conn.execute(
        sql.SQL("SELECT count(*) FROM {} WHERE {} = %s").format(
            target(config), ident(config.target.key)
        ),
        (user_id,),
    ).fetchone()
    return (PROFILE, "") if found and found[0] else (NO_PROFILE, "")


_RAISED_IN = re.compile(r'(?:PL/pgSQL function|SQL function) "?([\w."]+?)"?\(')


def _in_app_trigger(conn: psycopg.Connection, config: Config, context: str | None) -> str:
    """`; raised in the app's trigger …` with the fix, when the error came from a trigger of the
    app's on the profile table (read from PG_EXCEPTION_CONTEXT: innermost call first), else ''.
    Such a trigger resolving a name the app's own writes find is the usual cause."""
    ours = config.function_name
    for name in _RAISED_IN.findall(context or ""):
        function = name.split(".")[-1].strip('"')
        if function == ours:
            return ""
        row = conn.execute(
            "SELECT t.tgname, p.oid::regprocedure::text FROM pg_catalog.pg_trigger t "
            "JOIN pg_catalog.pg_proc p ON p.oid = t.tgfoid WHERE NOT t.tgisinternal "
            "AND t.tgrelid = pg_catalog.to_regclass(pg_catalog.format('%%I.%%I', %s::text, %s::text)) "
            "AND p.proname = %s LIMIT 1",
            (config.target.schema, config.target.table, function),
        ).fetchone()
        if row is not None:
            return (
                f"; raised in the app's trigger {row[0]} on {config.target.display} ({row[1]}): "
                "qualify the names it uses, or pin the schemas it needs: ALTER FUNCTION "
                f"{row[1]} SET search_path = public, extensions (and any other schema it uses)"
            )
    return ""


def check_or_name_holder(
    conn: psycopg.Connection, config: Config, shape: Shape, as_it_is: bool = False
) -> CheckReport:
    """`check`, with a lock it could not get reported once (exit 2) naming the session in the way
    (apply instead retries `check` a few times first)."""
    with locks.conflicts_named(conn, [config.target, config.source], "check"):
        return check(conn, config, shape, as_it_is)


def check(
    conn: psycopg.Connection,
    config: Config,
    shape: Shape,
    as_it_is: bool = False,
    judged: Sequence[SignupKind] = kinds.SIGNUP_KINDS,
    sends: Mapping[str, Mapping[str, Any]] | None = None,
    confirm_email: bool = False,
    hooks: Sequence[AuthHook] | None = None,
) -> CheckReport:
    """Run every kind in one transaction that is always rolled back (autocommit connection):
    with ghostguard's sync as apply would install it, or (`as_it_is`) with the triggers that
    are there now, the app's own included (what doctor judges them by). `judged`: the kinds to
    run (a project's config.toml may enable more providers, or fewer kinds); `sends`: the user
    metadata the app sends at signup, per kind; `confirm_email`: email signups are confirmed
    after the signup (config.toml's enable_confirmations); `hooks`: the project's auth hooks,
    called as the Auth server calls them (before-user-created before each signup, the custom
    access token hook for each new user and for a ghost; default: the hook functions the
    database has)."""
    as_auth = can_become_auth_server(conn)
    me = conn.execute("SELECT current_user").fetchone()
    ran_as = authserver.AUTH_ROLE if as_auth else f"{me[0] if me else '?'} with search_path = auth"
    columns = set(catalog.table_columns(conn, config.source) or {})
    if config.source.display != "auth.users" or not AUTH_COLUMNS | _KIND_COLUMNS <= columns:
        return CheckReport([], ran_as, False, applicable=False)
    present = _present(conn, config, judged)
    if hooks is None:
        hooks = [
            h
            for h in found.in_database(conn)
            if h.hook in (CUSTOM_ACCESS_TOKEN, BEFORE_USER_CREATED)
        ]
    state = sync_state.read_state(conn, config)
    install = not as_it_is and bool(sync_state.drift(state, config, shape))
    results: list[KindResult] = []
    with conn.transaction(force_rollback=True):
        # The profile table first, without waiting; auth.users (the install's DDL) last, under
        # lock_timeout; the trial signups then wait for nothing longer than a signup would.
        run_steps(conn, [locks.profile_lock_first(config)])
        if install:  # as apply would install it, gone again with the rollback
            run_steps(conn, [*takeover.removal(config), *sync_install.sync_objects(config, shape)])
        conn.execute(
            "SELECT pg_catalog.set_config('lock_timeout', %s, true)", (config.signup_lock_timeout,)
        )
        recorded = install or sync_failures.failures_table_exists(conn, config)
        for kind in judged:
            sent = dict((sends or {}).get(kind.name, {}))
            result = run_kind(
                conn,
                config,
                kind.name,
                action(kind),
                present[kind.name],
                as_auth,
                recorded,
                sent,
                confirm_email,
                hooks,
            )
            if result.waited_on_lock:
                raise psycopg.errors.LockNotAvailable(result.detail)
            results.append(result)
        ghost = _ghost_token(conn, config, hooks)
    return CheckReport(results, ran_as, install, ghost_hooks=ghost)


def _ghost_token(
    conn: psycopg.Connection, config: Config, hooks: Sequence[AuthHook]
) -> tuple[HookCall, ...]:
    """The token hook(s) for a ghost: a user signs up, their profile is gone (rolled back)."""
    token_hooks = [h for h in hooks if h.hook == CUSTOM_ACCESS_TOKEN]
    if not token_hooks:
        return ()
    with conn.transaction(force_rollback=True):
        try:
            with conn.transaction():
                user_id = AuthServer(conn).signup(authserver.email_user(address("ghost")))
        except (psycopg.Error, authserver.UserNotInserted):  # the matrix says why already
            return tuple(
                call.HookCall(h.hook, call.NOT_RUN, "no signup succeeds") for h in token_hooks
            )
        conn.execute(
            sql.SQL("DELETE FROM {} WHERE {} = %s").format(
                target(config), ident(config.target.key)
            ),
            (user_id,),
        )
        return tuple(call.token_rolled_back(conn, h, user_id) for h in token_hooks)


def run_kind(
    conn: psycopg.Connection,
    config: Config,
    kind: str,
    act: Callable[[AuthServer], uuid.UUID],
    present: bool,
    as_auth: bool,
    recorded: bool = True,
    sends: dict[str, Any] | None = None,
    confirm_email: bool = False,
    hooks: Sequence[AuthHook] = (),
) -> KindResult:
    """One kind in a savepoint of the caller's rolled-back transaction, as the Auth server when
    this connection can become it: a profile, a recorded failure, none, or the error that failed
    the Auth server's own statement."""
    try:
        with conn.transaction():
            if as_auth:
                conn.execute(
                    sql.SQL("SET LOCAL ROLE {}").format(sql.Identifier(authserver.AUTH_ROLE))
                )
            user_id = act(AuthServer(conn, sends, confirm_email, _before(conn, hooks)))
            calls = tuple(
                call.access_token(conn, h, user_id) for h in hooks if h.hook == CUSTOM_ACCESS_TOKEN
            )
            conn.execute("RESET ROLE")
            outcome, detail = _outcome(conn, config, user_id, recorded)
    except psycopg.errors.LockNotAvailable:
        raise  # another session's lock: not this kind's verdict
    except call.HookRefused as refused:
        return KindResult(kind, present, REFUSED, f"before_user_created: {refused}")
    except ValueError as malformed:  # the hook's output the Auth server cannot read: a 500
        return KindResult(kind, present, SIGNUP_FAILED, f"before_user_created hook: {malformed}")
    except authserver.UserNotInserted as stopped:
        return KindResult(
            kind, present, SIGNUP_FAILED, stopped_by(conn, config, None, str(stopped))
        )
    except psycopg.Error as exc:
        message = primary_message(exc)
        return KindResult(kind, present, SIGNUP_FAILED, stopped_by(conn, config, exc, message))
    return KindResult(kind, present, outcome, detail, calls)


def _before(
    conn: psycopg.Connection, hooks: Sequence[AuthHook]
) -> Callable[[dict[str, Any]], None] | None:
    """The before-user-created hook(s), as the writer calls them before each signup."""
    before = [h for h in hooks if h.hook == BEFORE_USER_CREATED]
    if not before:
        return None

    def run(user: dict[str, Any]) -> None:
        for hook in before:
            try:
                call.before_user_created(conn, hook, user)
            except psycopg.Error as exc:  # "Error running hook URI": the signup fails
                raise ValueError(f"{hook.display} failed: {primary_message(exc)}") from None

    return run


def stopped_by(
    conn: psycopg.Connection, config: Config, exc: psycopg.Error | None, message: str
) -> str:
    """The signup's error, naming the BEFORE trigger on the auth table that stopped it: one that
    raised (its function is in the error's context) or, with no error, one that returned NULL."""
    context = (exc.diag.context or "") if exc is not None and exc.diag else ""
    raised_in = {name.split(".")[-1].strip('"') for name in _RAISED_IN.findall(context)}
    for trigger in auth_triggers(conn, config.source):
        if not (trigger.fires_on(BEFORE) and trigger.fires_on(INSERT)):
            continue
        if exc is None or trigger.function_name in raised_in:
            how = "raised" if exc is not None else "returned NULL, so the row was never inserted"
            return (
                f"stopped by the BEFORE INSERT trigger {trigger.name} on {config.source.display} "
                f"({trigger.function}), which {how}: {message}"
            )
    return message
