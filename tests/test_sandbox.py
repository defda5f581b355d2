"""The sandbox reproduces hosted Supabase's roles, ownership, grants and auth.users (supabase-facts.md)."""

from __future__ import annotations

import json
import uuid

import psycopg
import pytest

from conftest import Database, run, scalar
from ghostguard.sandbox import Sandbox, supabase

AUTH_USERS_COLUMNS = [
    "instance_id", "id", "aud", "role", "email", "encrypted_password", "email_confirmed_at",
    "invited_at", "confirmation_token", "confirmation_sent_at", "recovery_token", "recovery_sent_at",
    "email_change_token_new", "email_change", "email_change_sent_at", "last_sign_in_at",
    "raw_app_meta_data", "raw_user_meta_data", "is_super_admin", "created_at", "updated_at", "phone",
    "phone_confirmed_at", "phone_change", "phone_change_token", "phone_change_sent_at", "confirmed_at",
    "email_change_token_current", "email_change_confirm_status", "banned_until",
    "reauthentication_token", "reauthentication_sent_at", "is_sso_user", "deleted_at", "is_anonymous",
]  # fmt: skip


def test_only_supabase_admin_is_superuser_and_postgres_has_the_hosted_attributes(
    conn: psycopg.Connection,
) -> None:
    supers = conn.execute("SELECT rolname FROM pg_roles WHERE rolsuper").fetchall()
    assert supers == [("supabase_admin",)]
    row = conn.execute(
        "SELECT rolsuper, rolcreaterole, rolcreatedb, rolreplication, rolbypassrls, rolconfig "
        "FROM pg_roles WHERE rolname = 'postgres'"
    ).fetchone()
    assert row == (False, True, True, True, True, ['search_path="$user", public, extensions'])
    members = conn.execute(
        "SELECT r.rolname FROM pg_auth_members m JOIN pg_roles r ON r.oid = m.roleid "
        "JOIN pg_roles u ON u.oid = m.member WHERE u.rolname = 'postgres' ORDER BY 1"
    ).fetchall()
    # supabase_storage_admin: policies on storage.objects, which migrations write as postgres
    assert members == [
        ("anon",),
        ("authenticated",),
        ("service_role",),
        ("supabase_storage_admin",),
    ]
    assert scalar(conn, "SELECT current_user") == "postgres"
    assert (
        scalar(
            conn,
            "SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname = current_database()",
        )
        == "postgres"
    )


def test_auth_admin_owns_auth_tables_and_schema_belongs_to_supabase_admin(
    conn: psycopg.Connection,
) -> None:
    assert scalar(conn, "SELECT rolconfig FROM pg_roles WHERE rolname = 'supabase_auth_admin'") == [
        "search_path=auth"
    ]
    assert (
        scalar(conn, "SELECT rolinherit FROM pg_roles WHERE rolname = 'supabase_auth_admin'")
        is False
    )
    owners = conn.execute(
        "SELECT relname, pg_get_userbyid(relowner) FROM pg_class WHERE relnamespace = 'auth'::regnamespace "
        "AND relkind = 'r' ORDER BY 1"
    ).fetchall()
    assert ("users", "supabase_auth_admin") in owners and (
        "identities",
        "supabase_auth_admin",
    ) in owners
    assert (
        scalar(conn, "SELECT pg_get_userbyid(nspowner) FROM pg_namespace WHERE nspname = 'auth'")
        == "supabase_admin"
    )
    assert scalar(conn, "SELECT has_schema_privilege('postgres', 'auth', 'USAGE')") is True
    assert scalar(conn, "SELECT has_schema_privilege('postgres', 'auth', 'CREATE')") is False
    assert (
        scalar(conn, "SELECT has_schema_privilege('supabase_auth_admin', 'public', 'CREATE')")
        is False
    )
    assert (
        scalar(conn, "SELECT has_table_privilege('supabase_auth_admin', 'public.users', 'INSERT')")
        is False
    )


def test_postgres_privileges_on_auth_users_are_exactly_the_hosted_ones(
    conn: psycopg.Connection,
) -> None:
    privileges = conn.execute(
        "SELECT privilege_type FROM information_schema.role_table_grants "
        "WHERE table_schema = 'auth' AND table_name = 'users' AND grantee = 'postgres' ORDER BY 1"
    ).fetchall()
    assert [p for (p,) in privileges] == [
        "DELETE",
        "INSERT",
        "REFERENCES",
        "SELECT",
        "TRIGGER",
        "TRUNCATE",
        "UPDATE",
    ]
    for role in ("anon", "authenticated", "service_role"):
        assert (
            scalar(conn, f"SELECT has_table_privilege('{role}', 'auth.users', 'SELECT')") is False
        )
    assert (
        scalar(conn, "SELECT relrowsecurity FROM pg_class WHERE oid = 'auth.users'::regclass")
        is True
    )
    assert (
        scalar(conn, "SELECT count(*) FROM pg_policy WHERE polrelid = 'auth.users'::regclass") == 0
    )


def test_auth_users_has_every_column_and_index_of_the_facts_sheet(conn: psycopg.Connection) -> None:
    columns = conn.execute(
        "SELECT attname FROM pg_attribute WHERE attrelid = 'auth.users'::regclass AND attnum > 0 "
        "AND NOT attisdropped ORDER BY attnum"
    ).fetchall()
    assert [c for (c,) in columns] == AUTH_USERS_COLUMNS
    assert (
        scalar(
            conn,
            "SELECT attgenerated FROM pg_attribute WHERE attrelid = 'auth.users'::regclass "
            "AND attname = 'confirmed_at'",
        )
        == "s"
    )
    indexes = {
        name
        for (name,) in conn.execute(
            "SELECT indexrelid::regclass::text FROM pg_index WHERE indrelid = 'auth.users'::regclass"
        ).fetchall()
    }
    assert {
        "auth.users_pkey",
        "auth.users_email_partial_key",
        "auth.users_phone_key",
        "auth.users_instance_id_email_idx",
        "auth.users_instance_id_idx",
        "auth.users_is_anonymous_idx",
        "auth.confirmation_token_idx",
        "auth.recovery_token_idx",
        "auth.email_change_token_current_idx",
        "auth.email_change_token_new_idx",
        "auth.reauthentication_token_idx",
    } <= indexes
    partial = scalar(conn, "SELECT pg_get_indexdef('auth.users_email_partial_key'::regclass)")
    assert "WHERE (is_sso_user = false)" in str(partial)


def test_non_owner_postgres_can_create_and_drop_but_not_disable_a_trigger(
    conn: psycopg.Connection,
) -> None:
    """As on hosted projects: CREATE TRIGGER by its grant, DROP TRIGGER through supautils (the
    sandbox's guard), ALTER TABLE ... DISABLE TRIGGER refused to a non-owner."""
    conn.execute(
        "CREATE FUNCTION public.noop() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RETURN NULL; END $$"
    )
    conn.execute(
        "CREATE TRIGGER t AFTER INSERT ON auth.users FOR EACH ROW EXECUTE FUNCTION public.noop()"
    )
    with pytest.raises(psycopg.errors.InsufficientPrivilege, match="must be owner of table users"):
        conn.execute("ALTER TABLE auth.users DISABLE TRIGGER t")
    conn.execute("DROP TRIGGER t ON auth.users")
    assert scalar(conn, "SELECT count(*) FROM pg_trigger WHERE tgname = 't'") == 0
    owner = "SELECT relowner::regrole::text FROM pg_class WHERE oid = 'auth.users'::regclass"
    assert scalar(conn, owner) == "supabase_auth_admin"


def test_guide_profile_table_with_rls_and_the_2026_default_grants(
    conn: psycopg.Connection, sandbox: Sandbox
) -> None:
    """Today's hosted default: a new public table is not granted to the API roles (functions
    still are); the guide's table has the grants an app writes. --legacy-grants: the old ones."""
    assert (
        scalar(conn, "SELECT relrowsecurity FROM pg_class WHERE oid = 'public.users'::regclass")
        is True
    )
    policies = conn.execute(
        "SELECT polname, polcmd FROM pg_policy WHERE polrelid = 'public.users'::regclass ORDER BY 1"
    ).fetchall()
    assert [cmd for _, cmd in policies] == ["w", "r"]
    grants = "SELECT has_table_privilege(%s, %s, 'SELECT')"
    assert [scalar(conn, grants, r, "public.users") for r in API_ROLES] == [False, True, True]
    conn.execute("CREATE TABLE public.fresh (id int)")
    conn.execute("CREATE FUNCTION public.f() RETURNS int LANGUAGE sql AS 'SELECT 1'")
    assert [scalar(conn, grants, r, "public.fresh") for r in API_ROLES] == [False] * 3
    assert scalar(conn, "SELECT has_function_privilege('anon', 'public.f()', 'EXECUTE')") is True
    claims = '{"sub": "00000000-0000-4000-8000-000000000001", "role": "authenticated"}'
    conn.execute("SELECT set_config('request.jwt.claims', %s, false)", (claims,))
    assert conn.execute(
        "SELECT auth.uid()::text, auth.role(), auth.jwt() ->> 'role'"
    ).fetchone() == (
        "00000000-0000-4000-8000-000000000001",
        "authenticated",
        "authenticated",
    )

    url = sandbox.fresh_database("legacy_grants_test", legacy_grants=True)
    with psycopg.connect(url, autocommit=True) as legacy:
        legacy.execute("CREATE TABLE public.fresh (id int)")
        assert [scalar(legacy, grants, r, "public.fresh") for r in API_ROLES] == [True] * 3
    sandbox.drop_database("legacy_grants_test")
    home = str(sandbox.server.home)
    assert (
        json.loads(run("sandbox", "start", "--data-dir", home, "--json").stdout)["legacy_grants"]
        is False
    )
    legacy = run("sandbox", "start", "--legacy-grants", "--data-dir", home, "--json")
    assert json.loads(legacy.stdout)["legacy_grants"] is True
    with psycopg.connect(sandbox.url("postgres", "supabase_admin"), autocommit=True) as admin:
        admin.execute(  # back to today's defaults for the other tests
            "ALTER DEFAULT PRIVILEGES FOR ROLE postgres IN SCHEMA public "
            "REVOKE ALL ON TABLES FROM anon, authenticated, service_role; "
            "ALTER DEFAULT PRIVILEGES FOR ROLE postgres IN SCHEMA public "
            "REVOKE ALL ON SEQUENCES FROM anon, authenticated, service_role; "
            "ALTER DEFAULT PRIVILEGES FOR ROLE supabase_admin IN SCHEMA public "
            "REVOKE ALL ON TABLES FROM postgres, anon, authenticated, service_role; "
            "REVOKE ALL ON public.users FROM anon"
        )
    assert sandbox.legacy_grants() is False


API_ROLES = ("anon", "authenticated", "service_role")


def test_second_start_reuses_the_running_server(sandbox: Sandbox, database: Database) -> None:
    version_file = sandbox.server.data_dir / "PG_VERSION"
    before = (sandbox.status().port, version_file.stat().st_mtime_ns)
    status = sandbox.start()
    assert status.running and (status.port, version_file.stat().st_mtime_ns) == before


def test_sandbox_cli_status_and_url(sandbox: Sandbox) -> None:
    home = str(sandbox.server.home)
    result = run("sandbox", "status", "--data-dir", home, "--json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["running"] is True and data["url"] == sandbox.url()
    assert "@" in data["url"] and ":" not in data["url"].split("//")[1].split("@")[0]  # no password
    url = run(
        "sandbox", "url", "--data-dir", home, "--database", "x", "--user", "supabase_auth_admin"
    )
    assert url.stdout.strip() == sandbox.url("x", "supabase_auth_admin")


def test_sandbox_status_of_a_missing_sandbox_exits_1(tmp_path) -> None:  # type: ignore[no-untyped-def]
    result = run("sandbox", "status", "--data-dir", str(tmp_path / "none"))
    assert result.exit_code == 1
    assert result.stdout.startswith("stopped: not initialized")
    never = run("sandbox", "url", "--data-dir", str(tmp_path / "none"))
    assert never.exit_code == 2
    assert (
        never.stderr.strip()
        == "error: the sandbox has never been started: run `ghostguard sandbox start`"
    )


def test_a_sandbox_whose_recorded_binaries_are_gone_uses_the_embedded_ones(tmp_path) -> None:  # type: ignore[no-untyped-def]
    import json as _json

    from ghostguard.sandbox.server import Server, embedded_bin_dir

    server = Server(tmp_path / "box")
    server.home.mkdir()
    server.state_file.write_text(_json.dumps({"bin_dir": str(tmp_path / "deleted-venv" / "bin")}))
    assert server.bin_dir == embedded_bin_dir()


def test_a_sandbox_made_by_an_older_version_gets_a_new_template_on_start(sandbox: Sandbox) -> None:
    """A user's sandbox outlives upgrades: the template of an older setup is rebuilt, not kept."""
    admin_url = sandbox.url("template1", "supabase_admin")
    with psycopg.connect(admin_url, autocommit=True) as admin:
        admin.execute(
            psycopg.sql.SQL("COMMENT ON DATABASE {} IS 'ghostguard-supabase-v0'").format(
                psycopg.sql.Identifier(supabase.TEMPLATE_DB)
            )
        )
        assert not supabase.template_ready(admin)
    sandbox.start()
    with psycopg.connect(admin_url, autocommit=True) as admin:
        assert supabase.template_ready(admin)
        assert scalar(
            admin,
            "SELECT datistemplate FROM pg_database WHERE datname = %s",
            supabase.TEMPLATE_DB,
        )


def test_pgcrypto_and_uuid_ossp_are_in_extensions_as_on_hosted_projects(
    conn: psycopg.Connection, pg_major: int
) -> None:
    """Every hosted project has both in `extensions`, and migrations call them. Debian's 15 has the
    real ones; the embedded 18 was built without them and gets ghostguard's SQL stand-ins, which
    must give the same values where the values are defined (v3 UUIDs, digests, HMACs) and the
    same shapes elsewhere."""
    installed = dict(
        conn.execute(
            "SELECT e.extname, n.nspname FROM pg_extension e "
            "JOIN pg_namespace n ON n.oid = e.extnamespace WHERE e.extname <> 'plpgsql'"
        ).fetchall()
    )
    hosted = {
        "pgcrypto": "extensions",
        "uuid-ossp": "extensions",
        "pg_stat_statements": "extensions",
    }
    stand_ins = {"pgjwt": "extensions", "pg_graphql": "graphql", "pgsodium": "pgsodium"}
    stand_ins["supabase_vault"] = "vault"
    assert installed == hosted | (stand_ins if pg_major >= 18 else {})
    conn.execute('CREATE EXTENSION IF NOT EXISTS "uuid-ossp"')  # a migration's line: a no-op
    conn.execute("CREATE EXTENSION IF NOT EXISTS pgcrypto WITH SCHEMA extensions")
    conn.execute("SET search_path = ''")  # as inside a SECURITY DEFINER function
    row = conn.execute(
        "SELECT extensions.uuid_generate_v3(extensions.uuid_ns_dns(), 'www.example.com'), "
        "encode(extensions.digest('abc', 'sha256'), 'hex'), "
        "encode(extensions.hmac('The quick brown fox jumps over the lazy dog', 'key', 'sha256'), 'hex'), "
        "extensions.uuid_generate_v4()::text ~ '^.{8}-.{4}-4.{3}-[89ab]', "
        "extensions.uuid_generate_v1mc()::text ~ '^.{8}-.{4}-1.{3}-[89ab]', "
        "length(extensions.gen_random_bytes(40)), extensions.gen_random_uuid() IS NOT NULL"
    ).fetchone()
    assert row == (
        uuid.UUID("5df41881-3aed-3515-88a7-2f4a814cf09e"),
        "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad",
        "f7bc83f430538424b13298e6aa6fb143ef4d59a14946175997479dbc2d1a3cd8",
        True,
        True,
        40,
        True,
    )
    stored, again, other = conn.execute(
        "SELECT h, extensions.crypt('secret', h), extensions.crypt('guess', h) "
        "FROM (SELECT extensions.crypt('secret', extensions.gen_salt('bf')) AS h) AS hashed"
    ).fetchone() or (None, None, None)
    assert str(stored).startswith("$2a$06$") and len(str(stored)) == 60
    assert again == stored and other != stored
    comments = scalar(
        conn,
        "SELECT string_agg(obj_description(oid, 'pg_extension'), ' | ') FROM pg_extension "
        "WHERE extname IN ('pgcrypto', 'uuid-ossp')",
    )
    assert ("ghostguard stand-in" in str(comments)) == (pg_major >= 18)


def test_the_extensions_hosted_projects_come_with_answer_as_there(
    conn: psycopg.Connection, pg_major: int
) -> None:
    """A dump of a hosted project starts with `CREATE EXTENSION IF NOT EXISTS` for each; on the
    embedded 18 they are stand-ins that do what projects call them for: pgjwt signs (the value of
    jwt.io's example), Vault keeps a secret, GraphQL answers with an error."""
    for line in (
        'CREATE EXTENSION IF NOT EXISTS "pgsodium" WITH SCHEMA "pgsodium"',
        'CREATE EXTENSION IF NOT EXISTS "pg_graphql" WITH SCHEMA "graphql"',
        'CREATE EXTENSION IF NOT EXISTS "pgjwt" WITH SCHEMA "extensions"',
        'CREATE EXTENSION IF NOT EXISTS "supabase_vault" WITH SCHEMA "vault"',
    ):
        if pg_major >= 18:
            conn.execute(line)
        else:
            with pytest.raises(psycopg.errors.FeatureNotSupported):
                conn.execute(line)
    if pg_major < 18:
        return
    token = scalar(
        conn,
        'SELECT extensions.sign(\'{"sub":"1234567890","name":"John Doe",'
        "\"iat\":1516239022}'::json, 'your-256-bit-secret')",
    )
    assert token == (
        "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIiwibmFtZSI6IkpvaG4gRG9lIiwi"
        "aWF0IjoxNTE2MjM5MDIyfQ.SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c"
    )
    assert scalar(conn, "SELECT valid FROM extensions.verify(%s, 'your-256-bit-secret')", token)
    assert not scalar(conn, "SELECT valid FROM extensions.verify(%s, 'guess')", token)
    conn.execute("SELECT vault.create_secret('service-key', 'edge_functions_key')")
    assert (
        scalar(
            conn,
            "SELECT decrypted_secret FROM vault.decrypted_secrets WHERE name = 'edge_functions_key'",
        )
        == "service-key"
    )
    answer = scalar(conn, "SELECT graphql_public.graphql(query := '{ profiles { id } }')")
    assert answer == {"errors": [{"message": "the ghostguard sandbox has no GraphQL"}]}
