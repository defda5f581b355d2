"""`ghostguard check`: every kind of signup the Auth server's way, rolled back, as a matrix."""

from __future__ import annotations

import json
from typing import Any

import psycopg

from conftest import Database, make_ghosts, run, scalar
from ghostguard.checks.signup_kinds import KINDS
from ghostguard.supabase.authserver import AuthServer


def _matrix(stdout: str) -> dict[str, tuple[bool, str, str]]:
    data: dict[str, Any] = json.loads(stdout)
    return {k["kind"]: (k["present"], k["outcome"], k["detail"]) for k in data["kinds"]}


def _footprint(conn: psycopg.Connection) -> tuple[object, ...]:
    row = conn.execute(
        "SELECT (SELECT count(*) FROM auth.users), (SELECT count(*) FROM auth.identities), "
        "(SELECT count(*) FROM public.users), to_regprocedure('public.handle_new_user()') IS NULL, "
        "to_regclass('public.profile_sync_failures') IS NULL"
    ).fetchone()
    assert row is not None
    return tuple(row)


def test_every_kind_gets_a_profile_on_the_guide_table_and_nothing_is_left(
    database: Database, auth: AuthServer, conn: psycopg.Connection
) -> None:
    make_ghosts(auth, conn)
    before = _footprint(conn)
    result = run("check", "--json", db=database)
    assert result.exit_code == 0, result.output
    matrix = _matrix(result.stdout)
    assert list(matrix) == list(KINDS)
    assert {kind: outcome for kind, (_, outcome, _) in matrix.items()} == dict.fromkeys(
        KINDS, "profile"
    )
    # make_ghosts signed up email, phone, anonymous, SSO, Google, GitHub, Apple and soft-deleted users
    assert {kind for kind, (present, _, _) in matrix.items() if not present} == {"azure"}
    assert json.loads(result.stdout)["installed_for_check"] is True  # nothing installed yet
    after = _footprint(conn)
    assert after == before  # no user, no profile, no function, no failures table


def test_a_not_null_email_fails_the_kinds_without_one_and_apply_refuses(
    database: Database, auth: AuthServer, conn: psycopg.Connection
) -> None:
    make_ghosts(auth, conn)
    conn.execute("ALTER TABLE public.users ALTER COLUMN email SET NOT NULL")
    result = run("check", "--json", db=database)
    assert result.exit_code == 1
    matrix = _matrix(result.stdout)
    not_null = (
        'null value in column "email" of relation "users" violates not-null constraint '
        "(SQLSTATE 23502)"
    )
    failing = {kind: row for kind, row in matrix.items() if row[1] != "profile"}
    assert {kind: row[1] for kind, row in failing.items()} == dict.fromkeys(
        ("phone", "anonymous", "apple", "anonymous_conversion"), "recorded"
    )
    assert all(row[2].endswith(not_null) for row in failing.values())
    assert json.loads(result.stdout)["failing"] == [
        "phone",
        "anonymous",
        "apple",
        "anonymous_conversion",
    ]

    human = run("check", db=database)
    assert human.exit_code == 1
    assert "4 kind(s) this project has would end without a profile: phone, anonymous, apple, " in (
        human.stdout
    )
    accepted = run(
        "check", "--accept-failing", "phone,anonymous,apple,anonymous_conversion", db=database
    )
    assert accepted.exit_code == 0

    refused = run("apply", "--yes", db=database)
    assert refused.exit_code == 3
    assert "--accept-failing phone,anonymous,apple,anonymous_conversion" in refused.stderr
    assert scalar(conn, "SELECT to_regprocedure('public.handle_new_user()') IS NULL") is True


def test_verify_reports_the_kinds_that_fail_after_the_table_changed(
    database: Database, auth: AuthServer, conn: psycopg.Connection
) -> None:
    make_ghosts(auth, conn)
    assert run("apply", "--yes", db=database).exit_code == 0
    conn.execute(
        "ALTER TABLE public.users ADD CONSTRAINT named CHECK (full_name IS NOT NULL) NOT VALID"
    )
    result = run("verify", "--json", db=database)
    assert result.exit_code == 1
    kinds = next(c for c in json.loads(result.stdout)["checks"] if c["name"] == "signup_kinds")
    assert not kinds["passed"] and kinds["level"] == "error"
    # phone, anonymous, Apple and admin-invited-without-name users carry no name in metadata
    assert kinds["detail"].startswith("phone: named: new row for relation")
    assert "installed_for_check" not in kinds  # the installed sync was used, nothing reinstalled
    check = run("check", "--json", db=database)
    assert json.loads(check.stdout)["installed_for_check"] is False


def test_an_unknown_kind_is_a_clear_error(database: Database) -> None:
    result = run("check", "--accept-failing", "fax", db=database)
    assert result.exit_code == 2
    assert "unknown kind(s) fax; kinds: email, phone, anonymous" in result.stderr
    assert "Traceback" not in result.output
