"""What a rehearsal does after the signup matrix, with a user who signed up (all rolled back, and
only ever in the rehearsal's own database): a sign-in and a delete through the Auth server's path,
and the app's view of new users' profiles through the Data API roles.

Sign-in and delete fail on what signups never touch: a trigger on UPDATE of auth.users (every
sign-in updates last_sign_in_at), a profile foreign key without ON DELETE CASCADE ("Database error
deleting user"). ghostguard never deletes from a real project's auth.users, not even rolled back:
that is why these are here and not in the preflight matrix that verify and apply run.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass

import psycopg

from ghostguard import kinds
from ghostguard.checks import app_view, signup_kinds
from ghostguard.checks.app_view import AppView
from ghostguard.checks.probe import can_become_auth_server
from ghostguard.checks.signup_kinds import (
    NO_PROFILE,
    PROFILE,
    SIGNUP_FAILED,
    CheckReport,
    address,
)
from ghostguard.config import Config
from ghostguard.supabase import authserver
from ghostguard.supabase.authserver import AuthServer

APP_VIEW = "app_view"  # the name --accept-failing takes for "new users cannot read their profile"


@dataclass(frozen=True)
class LifecycleResult:
    """A sign-in or a delete of a user who signed up, through the Auth server's path."""

    event: str  # one of LIFECYCLE
    ok: bool | None  # None: not rehearsed (the signup before it fails)
    detail: str


Signup = Callable[[AuthServer], uuid.UUID]


def _followed_by(step: Callable[[AuthServer, uuid.UUID], None]) -> Callable[[Signup], Signup]:
    """A signup, then `step` on the user it made (in the same rolled-back savepoint)."""

    def after(signup: Signup) -> Signup:
        def act(writer: AuthServer) -> uuid.UUID:
            user_id = signup(writer)
            step(writer, user_id)
            return user_id

        return act

    return after


LIFECYCLE: dict[str, Callable[[Signup], Signup]] = {
    "sign_in": _followed_by(AuthServer.sign_in),
    "delete": _followed_by(AuthServer.hard_delete),
}


def lifecycle(
    conn: psycopg.Connection, config: Config, matrix: CheckReport
) -> list[LifecycleResult]:
    """Each event after a signup of the first judged kind that ends with a profile (email when
    the project has it); not rehearsed when no kind does (the matrix says why already)."""
    judged = {k.kind: k for k in matrix.kinds}
    order = ["email", *(name for name in judged if name != "email")]
    vehicle = next(
        (judged[n] for n in order if n in judged and judged[n].outcome != SIGNUP_FAILED), None
    )
    if vehicle is None:
        return [LifecycleResult(e, None, "not rehearsed: no signup succeeds") for e in LIFECYCLE]
    signup = signup_kinds.action(kinds.BY_NAME.get(vehicle.kind) or kinds.oauth(vehicle.kind))
    as_auth = can_become_auth_server(conn)
    results: list[LifecycleResult] = []
    with conn.transaction(force_rollback=True):
        for event, after in LIFECYCLE.items():
            kind = signup_kinds.run_kind(
                conn, config, event, after(signup), True, as_auth, recorded=False
            )
            results.append(_judged(event, kind.outcome, kind.detail, vehicle.ok))
    return results


def _judged(event: str, outcome: str, detail: str, signup_has_profile: bool) -> LifecycleResult:
    if outcome == SIGNUP_FAILED:
        return LifecycleResult(event, False, f"the Auth server's write failed: {detail}")
    if event == "sign_in":
        lost = signup_has_profile and outcome != PROFILE
        return LifecycleResult(
            event, not lost, "the profile is gone after signing in" if lost else ""
        )
    stays = outcome != NO_PROFILE
    left = "the profile stays, linked to no user (its foreign key has no ON DELETE CASCADE)"
    return LifecycleResult(event, True, left if stays and signup_has_profile else "")


def app_view_of_new_users(conn: psycopg.Connection, config: Config) -> AppView:
    """Two users sign up (rolled back) and each reads their own profile the way the Data API runs
    the app's select: in a fresh folder there is nobody else to ask."""
    with conn.transaction(force_rollback=True):
        signed_up = signup_kinds.run_kind(
            conn, config, APP_VIEW, _two_readers, True, can_become_auth_server(conn), recorded=False
        )
        if signed_up.outcome == SIGNUP_FAILED:  # the matrix's email kind names why
            return AppView(True, 0, {}, 0, None, "not rehearsed: the email signup fails", "")
        return app_view.read(conn, config)


def _two_readers(writer: AuthServer) -> uuid.UUID:
    writer.signup(authserver.email_user(address("reader"), full_name="App Reader"))
    return writer.signup(authserver.email_user(address("reader"), full_name="App Reader"))
