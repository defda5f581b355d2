"""Issue 4: profiles follow the user's whole life, and a failing profile write never blocks the
Auth server. Every path goes through the Auth-server-like writer, connected as supabase_auth_admin."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import psycopg
import pytest
from psycopg import sql

from conftest import Database, ghost_count, run, scalar
from ghostguard.supabase import authserver
from ghostguard.supabase.authserver import AuthServer


def _apply(database: Database, *extra: str) -> None:
    result = run("apply", "--yes", *extra, db=database)
    assert result.exit_code == 0, result.output


def _profile(conn: psycopg.Connection, user_id: uuid.UUID, *columns: str) -> tuple[object, ...]:
    row = conn.execute(
        f"SELECT {', '.join(columns)} FROM public.users WHERE id = %s",  # test-only, fixed names
        (user_id,),
    ).fetchone()
    assert row is not None, f"no profile for {user_id}"
    return tuple(row)


def _failures(conn: psycopg.Connection) -> list[tuple[object, ...]]:
    return conn.execute(
        "SELECT user_id, operation, sqlstate, resolved_at IS NOT NULL "
        "FROM public.profile_sync_failures ORDER BY id"
    ).fetchall()


def _config(tmp_path: Path, mapping: str) -> str:
    path = tmp_path / "ghostguard.toml"
    path.write_text(mapping)
    return str(path)


def test_email_change_and_metadata_change_follow(
    database: Database, auth: AuthServer, conn: psycopg.Connection
) -> None:
    _apply(database)
    user = auth.signup(authserver.email_user("old@example.com", full_name="Old Name"))
    stamp = _profile(conn, user, "updated_at")[0]
    auth.confirm_email_change(user, "new@example.com")
    auth.update_user_metadata(user, {"full_name": "New Name", "avatar_url": "https://a/n.png"})
    email, name, avatar, updated = _profile(
        conn, user, "email", "full_name", "avatar_url", "updated_at"
    )
    assert (email, name, avatar) == ("new@example.com", "New Name", "https://a/n.png")
    assert updated > stamp  # type: ignore[operator]
    assert _failures(conn) == []


def test_a_sign_in_does_no_profile_work(
    database: Database, auth: AuthServer, conn: psycopg.Connection
) -> None:
    _apply(database)
    user = auth.signup(authserver.email_user("in@example.com", full_name="In"))
    before = _profile(conn, user, "xmin::text", "xmax::text")
    auth.sign_in(user)
    auth.sign_in(user)
    # Not even a row lock: ON CONFLICT DO UPDATE ... WHERE false would still set xmax.
    assert _profile(conn, user, "xmin::text", "xmax::text") == before
    definition = scalar(
        conn,
        "SELECT pg_get_triggerdef(oid) FROM pg_trigger WHERE tgname = 'on_auth_user_updated'",
    )
    assert "AFTER UPDATE OF email, raw_user_meta_data, deleted_at ON auth.users" in str(definition)
    assert "WHEN (" in str(definition) and "last_sign_in_at" not in str(definition)


def test_an_anonymous_user_who_converts_gets_the_email(
    database: Database, auth: AuthServer, conn: psycopg.Connection
) -> None:
    _apply(database)
    user = auth.signup(authserver.anonymous_user())
    assert _profile(conn, user, "email") == (None,)
    auth.convert_anonymous(user, "converted@example.com")
    assert _profile(conn, user, "email") == ("converted@example.com",)


def test_phone_change_follows_and_columns_can_opt_out(
    database: Database, auth: AuthServer, conn: psycopg.Connection, tmp_path: Path
) -> None:
    conn.execute("ALTER TABLE public.users ADD COLUMN phone text")
    cfg = _config(
        tmp_path,
        "[mapping]\n"
        'email = "email"\n'
        'phone = "phone"\n'
        'full_name = { metadata = ["full_name", "name"], update = false }\n'
        'created_at = { column = "created_at", update = false }\n',
    )
    _apply(database, "--config", cfg)
    user = auth.signup(authserver.phone_user("15550002222"))
    auth.update_user_metadata(user, {"full_name": "Ignored Later"})
    auth.confirm_phone_change(user, "15550003333")
    assert _profile(conn, user, "phone", "full_name") == ("15550003333", None)


def test_admin_create_with_app_metadata_in_a_second_update(
    database: Database, auth: AuthServer, conn: psycopg.Connection, tmp_path: Path
) -> None:
    conn.execute("ALTER TABLE public.users ADD COLUMN plan text")
    cfg = _config(
        tmp_path,
        '[mapping]\nemail = "email"\nplan = { metadata = ["plan"], from = "raw_app_meta_data" }\n',
    )
    _apply(database, "--config", cfg)
    user = auth.admin_create(authserver.email_user("invited@example.com"), {"plan": "pro"})
    assert _profile(conn, user, "email", "plan") == ("invited@example.com", "pro")


def test_soft_delete_marks_the_profile_and_never_copies_the_hash(
    database: Database, auth: AuthServer, conn: psycopg.Connection
) -> None:
    _apply(database)
    user = auth.signup(authserver.email_user("leaving@example.com", full_name="Leaving"))
    auth.soft_delete(user)
    email, name, deleted = _profile(conn, user, "email", "full_name", "deleted_at")
    hashed = scalar(conn, "SELECT email FROM auth.users WHERE id = %s", user)
    assert deleted is not None and (email, name) == ("leaving@example.com", "Leaving")
    assert email != hashed
    assert _failures(conn) == []


def test_hard_delete_without_a_foreign_key_marks_the_profile_deleted(
    database: Database, auth: AuthServer, conn: psycopg.Connection
) -> None:
    _apply(database)
    user = auth.signup(authserver.email_user("gone@example.com"))
    auth.hard_delete(user)
    assert _profile(conn, user, "deleted_at")[0] is not None  # kept, marked


def test_hard_delete_with_a_cascading_foreign_key_removes_the_profile(
    database: Database, auth: AuthServer, conn: psycopg.Connection
) -> None:
    conn.execute(
        "ALTER TABLE public.users ADD CONSTRAINT users_id_fkey FOREIGN KEY (id) "
        "REFERENCES auth.users (id) ON DELETE CASCADE"
    )
    _apply(database)
    triggers = {r[0] for r in conn.execute("SELECT tgname FROM pg_trigger WHERE NOT tgisinternal")}
    assert triggers == {"on_auth_user_created", "on_auth_user_updated"}  # the key handles deletes
    user = auth.signup(authserver.email_user("cascade@example.com"))
    auth.hard_delete(user)
    assert scalar(conn, "SELECT count(*) FROM public.users WHERE id = %s", user) == 0
    assert _failures(conn) == []


def test_scan_names_a_foreign_key_that_makes_deletes_fail_with_the_fix(
    database: Database, auth: AuthServer, conn: psycopg.Connection, admin: psycopg.Connection
) -> None:
    _apply(database)
    conn.execute(
        "CREATE TABLE public.orders (id serial PRIMARY KEY, user_id uuid NOT NULL REFERENCES auth.users)"
    )
    user = auth.signup(authserver.email_user("buyer@example.com"))
    conn.execute("INSERT INTO public.orders (user_id) VALUES (%s)", (user,))
    with pytest.raises(psycopg.errors.ForeignKeyViolation):
        auth.hard_delete(user)
    result = run("scan", db=database)
    assert "foreign key public.orders.orders_user_id_fkey is ON DELETE NO ACTION" in result.stdout
    data = json.loads(run("scan", "--json", db=database).stdout)
    (key,) = data["blocking_foreign_keys"]
    assert "ON DELETE CASCADE NOT VALID" in key["fix"]
    with conn.transaction():
        for statement in key["fix"].split(";\n"):
            if statement.strip():
                conn.execute(statement)  # the fix, exactly as printed
    auth.hard_delete(user)
    assert scalar(conn, "SELECT count(*) FROM public.orders") == 0
    assert json.loads(run("scan", "--json", db=database).stdout)["blocking_foreign_keys"] == []


@pytest.mark.parametrize(
    ("column", "why"),
    [
        ("user_id uuid NOT NULL REFERENCES auth.users ON DELETE SET NULL",
         "ON DELETE SET NULL on a NOT NULL column"),
        ("user_id uuid NOT NULL REFERENCES auth.users ON DELETE SET DEFAULT",
         "ON DELETE SET DEFAULT on a NOT NULL column without a default"),
    ],
)  # fmt: skip
def test_set_null_or_default_into_a_not_null_link_fails_deletes_and_is_named(
    database: Database, auth: AuthServer, conn: psycopg.Connection, column: str, why: str
) -> None:
    _apply(database)
    conn.execute(f"CREATE TABLE public.orders (id serial PRIMARY KEY, {column})")
    user = auth.signup(authserver.email_user("buyer@example.com"))
    conn.execute("INSERT INTO public.orders (user_id) VALUES (%s)", (user,))
    with pytest.raises(psycopg.errors.NotNullViolation):
        auth.hard_delete(user)  # what doctor and scan must call a failing delete
    doctor = json.loads(run("doctor", "--json", db=database).stdout)
    (finding,) = [
        f for f in doctor["findings"]
        if f["name"] == "deletes_cascade" and f["object"] == "public.orders.orders_user_id_fkey"
    ]  # fmt: skip
    assert finding["passed"] is False
    assert finding["detail"] == f'{why}: deleting a user fails ("Database error deleting user")'
    (key,) = json.loads(run("scan", "--json", db=database).stdout)["blocking_foreign_keys"]
    assert key["why"] == why and "ON DELETE CASCADE NOT VALID" in key["fix"]
    with conn.transaction():
        for statement in key["fix"].split(";\n"):
            if statement.strip():
                conn.execute(statement)  # the fix, exactly as printed
    auth.hard_delete(user)
    assert scalar(conn, "SELECT count(*) FROM public.orders") == 0


def test_failing_profile_writes_never_block_signups_and_repair_fixes_them(
    database: Database, auth: AuthServer, conn: psycopg.Connection
) -> None:
    _apply(database)
    conn.execute("ALTER TABLE public.users ADD CONSTRAINT named CHECK (full_name IS NOT NULL)")
    named = [
        auth.signup(authserver.email_user(f"n{i}@example.com", full_name=f"N {i}"))
        for i in range(3)
    ]
    nameless = [auth.signup(authserver.email_user(f"x{i}@example.com")) for i in range(2)]
    assert scalar(conn, "SELECT count(*) FROM auth.users") == 5  # every signup succeeded
    assert ghost_count(conn) == 2
    assert _failures(conn) == [(str(u), "INSERT", "23514", False) for u in nameless]
    message = scalar(conn, "SELECT message FROM public.profile_sync_failures LIMIT 1")
    assert 'violates check constraint "named"' in str(message)

    scan = run("scan", db=database)
    assert scan.exit_code == 1 and "2 unresolved" in scan.stdout
    verify = json.loads(run("verify", "--json", db=database).stdout)
    failures_check = next(c for c in verify["checks"] if c["name"] == "sync_failures")
    assert failures_check["passed"] is False

    still = run("repair", "--yes", "--json", db=database)  # cause not fixed yet
    assert still.exit_code == 1
    assert len(json.loads(still.stdout)["still_failing"]) == 2
    assert scalar(conn, "SELECT min(attempts) FROM public.profile_sync_failures") == 1

    conn.execute("ALTER TABLE public.users DROP CONSTRAINT named")
    fixed = run("repair", "--yes", "--json", db=database)
    assert fixed.exit_code == 0, fixed.output
    assert json.loads(fixed.stdout) == {
        "users_repaired": 2,
        "failures_resolved": 2,
        "still_failing": [],
    }
    assert ghost_count(conn) == 0 and len(named) == 3
    assert [f[3] for f in _failures(conn)] == [True, True]
    assert run("repair", "--yes", db=database).stdout == "no unresolved profile sync failures\n"
    assert run("verify", db=database).exit_code == 0


def test_an_update_that_fails_is_recorded_not_raised(
    database: Database, auth: AuthServer, conn: psycopg.Connection
) -> None:
    _apply(database)
    conn.execute("CREATE UNIQUE INDEX users_email_key ON public.users (email)")
    first = auth.signup(authserver.email_user("first@example.com"))
    second = auth.signup(authserver.email_user("second@example.com"))
    # The app let the second user claim this address in their profile.
    conn.execute("UPDATE public.users SET email = 'taken@example.com' WHERE id = %s", (second,))
    auth.confirm_email_change(first, "taken@example.com")  # the auth side succeeds
    assert scalar(conn, "SELECT email FROM auth.users WHERE id = %s", first) == "taken@example.com"
    assert _failures(conn) == [(str(first), "UPDATE", "23505", False)]


def test_an_import_is_one_set_based_statement_and_bad_rows_fall_back_alone(
    database: Database, auth: AuthServer, conn: psycopg.Connection
) -> None:
    _apply(database)
    assert authserver.import_users(auth.conn, 100_000) == 100_000
    assert ghost_count(conn) == 0
    assert scalar(conn, "SELECT count(*) FROM public.users") == 100_000
    # A statement-level trigger with a transition table: one call for the whole import.
    assert scalar(
        conn,
        "SELECT tgtype & 1 = 0 FROM pg_trigger WHERE tgname = 'on_auth_user_created'",
    )
    # Some rows of the next import break a profile constraint: only those fall back and fail.
    conn.execute("ALTER TABLE public.users ADD CONSTRAINT no_bad CHECK (email NOT LIKE 'bad%')")
    assert authserver.import_users(auth.conn, 1_000, prefix="bad", first=200_001) == 1_000
    assert authserver.import_users(auth.conn, 1_000, prefix="good", first=300_001) == 1_000
    failed = scalar(conn, "SELECT count(*) FROM public.profile_sync_failures")
    assert failed == 800  # the 80% with an email; phone and anonymous rows got their profile
    assert ghost_count(conn) == 800


def test_a_few_bad_rows_in_a_big_import_cost_only_their_own_profiles(
    database: Database, auth: AuthServer, conn: psycopg.Connection
) -> None:
    """The set fails, then 1,000-row chunks are retried set-based; only the 3 chunks holding a bad
    row go row by row, and only the 3 bad rows end up without a profile (recorded)."""
    _apply(database)
    bad = ("mix1000@example.com", "mix5000@example.com", "mix9000@example.com")
    conn.execute(
        sql.SQL(
            "ALTER TABLE public.users ADD CONSTRAINT not_these CHECK (email <> ALL ({}))"
        ).format(sql.Literal(list(bad)))
    )
    assert authserver.import_users(auth.conn, 10_000, prefix="mix") == 10_000
    assert scalar(conn, "SELECT count(*) FROM public.users") == 10_000 - 3
    failed = conn.execute(
        "SELECT au.email, f.operation, f.sqlstate FROM public.profile_sync_failures f "
        "JOIN auth.users au ON au.id::text = f.user_id ORDER BY au.email"
    ).fetchall()
    assert failed == [(email, "INSERT", "23514") for email in bad]


def test_provider_metadata_fallbacks(
    database: Database, auth: AuthServer, conn: psycopg.Connection
) -> None:
    _apply(database)
    google = auth.signup(authserver.google_user("g@example.com", "Grace H", "https://pic/g.png"))
    github = auth.signup(authserver.github_user("l@example.com", "torvalds", "https://av/l.png"))
    apple = auth.signup(authserver.apple_user(None))
    phone = auth.signup(authserver.phone_user("15550004444"))
    assert _profile(conn, google, "full_name", "avatar_url") == ("Grace H", "https://pic/g.png")
    assert _profile(conn, github, "full_name", "avatar_url") == ("torvalds", "https://av/l.png")
    assert _profile(conn, apple, "email", "full_name") == (None, None)
    assert _profile(conn, phone, "email") == (None,)


def test_a_privilege_from_user_metadata_is_refused(database: Database, tmp_path: Path) -> None:
    cfg = _config(tmp_path, '[mapping]\nrole = { metadata = ["role"] }\n')
    result = run("scan", "--config", cfg, db=database)
    assert result.exit_code == 2
    assert "mapping.role reads raw_user_meta_data, which every user can change" in result.stderr
    assert 'from = "raw_app_meta_data"' in result.stderr


def test_orphan_profiles_are_reported_and_marked_deleted_never_removed(
    database: Database, auth: AuthServer, conn: psycopg.Connection
) -> None:
    _apply(database)
    auth.signup(authserver.email_user("kept@example.com"))
    orphans = [uuid.uuid4() for _ in range(3)]
    for orphan in orphans:
        conn.execute(
            "INSERT INTO public.users (id, email) VALUES (%s, 'orphan@example.com')", (orphan,)
        )
    report = run("orphans", "--json", db=database)
    assert report.exit_code == 1
    data = json.loads(report.stdout)
    assert (data["orphans"], data["unmarked"]) == (3, 3)
    assert sorted(data["sample"]) == sorted(map(str, orphans))
    assert run("orphans", "--mark-deleted", db=database).exit_code == 3  # not confirmed: refused
    marked = run("orphans", "--mark-deleted", "--yes", db=database)
    assert marked.exit_code == 0, marked.output
    assert "marked 3 orphan profiles deleted" in marked.stdout
    assert scalar(conn, "SELECT count(*) FROM public.users") == 4
    assert scalar(conn, "SELECT count(*) FROM public.users WHERE deleted_at IS NOT NULL") == 3
    assert run("orphans", db=database).exit_code == 0


def test_rollback_removes_all_three_triggers_and_keeps_failures_and_profiles(
    database: Database, auth: AuthServer, conn: psycopg.Connection
) -> None:
    _apply(database)
    auth.signup(authserver.email_user("stay@example.com"))
    assert run("rollback", "--yes", db=database).exit_code == 0
    assert scalar(conn, "SELECT count(*) FROM pg_trigger WHERE NOT tgisinternal") == 0
    assert scalar(conn, "SELECT count(*) FROM public.users") == 1
    assert scalar(conn, "SELECT count(*) FROM public.profile_sync_failures") == 0


GUIDE_STYLE_TRIGGER = """
CREATE FUNCTION public.handle_new_user() RETURNS trigger LANGUAGE plpgsql SECURITY DEFINER
SET search_path = '' AS $$
BEGIN
  INSERT INTO public.users (id, email) VALUES (NEW.id, NEW.email) ON CONFLICT (id) DO NOTHING;
  RETURN NEW;
END $$;
CREATE TRIGGER on_auth_user_created AFTER INSERT ON auth.users
  FOR EACH ROW EXECUTE FUNCTION public.handle_new_user();
"""


def test_apply_upgrades_a_hand_made_row_trigger_in_place(
    database: Database, auth: AuthServer, conn: psycopg.Connection
) -> None:
    """Teams that followed the guide by hand have a row trigger with the same names."""
    conn.execute(GUIDE_STYLE_TRIGGER)
    before = auth.signup(authserver.email_user("before@example.com", full_name="Before"))
    refused = run("apply", "--yes", db=database)  # never replaced without being told to
    assert refused.exit_code == 3
    assert "trigger on_auth_user_created (calls public.handle_new_user(); " in refused.stderr
    Path("ghostguard.toml").write_text('[adopt]\ntriggers = ["on_auth_user_created"]\n')
    _apply(database)
    level = scalar(conn, "SELECT tgtype & 1 FROM pg_trigger WHERE tgname = 'on_auth_user_created'")
    assert level == 0  # now once per statement
    after = auth.signup(authserver.email_user("after@example.com", full_name="After"))
    assert _profile(conn, after, "email", "full_name") == ("after@example.com", "After")
    auth.update_user_metadata(before, {"full_name": "Before, Updated"})
    assert _profile(conn, before, "full_name") == ("Before, Updated",)


def test_api_roles_cannot_read_the_failures_table(
    database: Database, admin: psycopg.Connection
) -> None:
    _apply(database)
    for role in ("anon", "authenticated", "service_role"):
        assert (
            scalar(
                admin,
                "SELECT has_table_privilege(%s, 'public.profile_sync_failures', 'SELECT')",
                role,
            )
            is False
        )
    assert (
        scalar(
            admin,
            "SELECT relrowsecurity FROM pg_class WHERE oid = 'public.profile_sync_failures'::regclass",
        )
        is True
    )
