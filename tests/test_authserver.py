"""The Auth-server-like writer stores rows exactly the way GoTrue does (supabase-facts.md)."""

from __future__ import annotations

import psycopg

from conftest import scalar
from ghostguard.supabase import authserver
from ghostguard.supabase.authserver import NIL_UUID, AuthServer

TOKENS = (
    "confirmation_token",
    "recovery_token",
    "email_change_token_new",
    "email_change",
    "phone_change",
    "phone_change_token",
    "email_change_token_current",
    "reauthentication_token",
)


def _row(conn: psycopg.Connection, user_id: object) -> dict[str, object]:
    with conn.cursor(row_factory=psycopg.rows.dict_row) as cur:
        row = cur.execute("SELECT * FROM auth.users WHERE id = %s", (user_id,)).fetchone()
    assert row is not None
    return row


def test_email_signup_looks_like_the_auth_servers(
    auth: AuthServer, conn: psycopg.Connection
) -> None:
    user_id = auth.signup(authserver.email_user("ada@example.com", full_name="Ada"))
    row = _row(conn, user_id)
    assert (
        row["instance_id"] == NIL_UUID
        and row["aud"] == "authenticated"
        and row["role"] == "authenticated"
    )
    assert all(row[t] == "" for t in TOKENS)
    assert row["created_at"] is not None and row["updated_at"] is not None
    assert row["raw_app_meta_data"] == {"provider": "email", "providers": ["email"]}
    assert row["raw_user_meta_data"] == {"full_name": "Ada"}
    assert row["phone"] is None and row["is_sso_user"] is False and row["is_anonymous"] is False
    identity = conn.execute(
        "SELECT provider, email FROM auth.identities WHERE user_id = %s", (user_id,)
    ).fetchone()
    assert identity == ("email", "ada@example.com")
    assert scalar(conn, "SELECT count(*) FROM auth.audit_log_entries") == 1


def test_signup_is_one_transaction_insert_then_role_update(
    auth: AuthServer, conn: psycopg.Connection
) -> None:
    """An AFTER INSERT trigger sees role '' (set by a later UPDATE in the same transaction)."""
    conn.execute("CREATE TABLE public.seen (role text, app jsonb)")
    conn.execute(
        "CREATE FUNCTION public.spy() RETURNS trigger LANGUAGE plpgsql SECURITY DEFINER SET search_path = '' "
        "AS $$ BEGIN INSERT INTO public.seen VALUES (NEW.role, NEW.raw_app_meta_data); RETURN NULL; END $$"
    )
    conn.execute(
        "CREATE TRIGGER spy AFTER INSERT ON auth.users FOR EACH ROW EXECUTE FUNCTION public.spy()"
    )
    auth.admin_create(authserver.email_user("boss@example.com"), {"roles": ["staff"]})
    assert conn.execute("SELECT role, app FROM public.seen").fetchall() == [("", {})]
    assert scalar(conn, "SELECT raw_app_meta_data->'roles' FROM auth.users") == ["staff"]


def test_phone_anonymous_and_oauth_kinds(auth: AuthServer, conn: psycopg.Connection) -> None:
    phone = _row(conn, auth.signup(authserver.phone_user("15550001111")))
    assert (
        phone["email"] is None and phone["phone"] == "15550001111" and phone["phone_confirmed_at"]
    )
    anon = _row(conn, auth.signup(authserver.anonymous_user()))
    assert anon["email"] is None and anon["phone"] is None and anon["is_anonymous"] is True
    assert scalar(conn, "SELECT count(*) FROM auth.identities WHERE user_id = %s", anon["id"]) == 0
    google = _row(
        conn, auth.signup(authserver.google_user("g@x.example", "Grace", "https://p/g.png"))
    )
    assert google["raw_user_meta_data"]["name"] == "Grace"  # type: ignore[index]
    assert google["raw_user_meta_data"]["picture"] == "https://p/g.png"  # type: ignore[index]
    github = _row(
        conn, auth.signup(authserver.github_user("l@x.example", "torvalds", "https://a/l"))
    )
    assert github["raw_user_meta_data"]["user_name"] == "torvalds"  # type: ignore[index]
    apple = _row(conn, auth.signup(authserver.apple_user(None)))
    assert apple["raw_user_meta_data"] == {} and apple["email"] is None


def test_sso_users_may_share_an_email(auth: AuthServer, conn: psycopg.Connection) -> None:
    auth.signup(authserver.email_user("same@example.com"))
    auth.signup(authserver.sso_user("same@example.com"))
    assert scalar(conn, "SELECT count(*) FROM auth.users WHERE email = 'same@example.com'") == 2
    try:
        auth.signup(authserver.email_user("same@example.com"))
    except psycopg.errors.UniqueViolation:
        pass
    else:
        raise AssertionError(
            "two non-SSO users with one email must violate users_email_partial_key"
        )


def test_sign_in_email_change_soft_and_hard_delete(
    auth: AuthServer, conn: psycopg.Connection
) -> None:
    user_id = auth.signup(authserver.email_user("old@example.com", full_name="Old"))
    auth.sign_in(user_id)
    assert _row(conn, user_id)["last_sign_in_at"] is not None
    auth.confirm_email_change(user_id, "new@example.com")
    assert _row(conn, user_id)["email"] == "new@example.com"
    auth.soft_delete(user_id)
    row = _row(conn, user_id)
    assert (
        row["deleted_at"] is not None
        and row["email"] != "new@example.com"
        and "@" not in str(row["email"])
    )
    assert (
        row["raw_user_meta_data"] == {}
        and row["raw_app_meta_data"] == {}
        and row["encrypted_password"] == ""
    )
    auth.hard_delete(user_id)
    assert scalar(conn, "SELECT count(*) FROM auth.users WHERE id = %s", user_id) == 0
    assert scalar(conn, "SELECT count(*) FROM auth.identities WHERE user_id = %s", user_id) == 0


def test_bulk_signups_are_separate_transactions(auth: AuthServer, conn: psycopg.Connection) -> None:
    n = auth.signup_many(authserver.email_user(f"u{i}@bulk.example") for i in range(50))
    assert n == 50
    assert scalar(conn, "SELECT count(DISTINCT xmin::text) FROM auth.users") == 50
