"""rehearse replays what hosted Supabase accepts: the statements supautils allows `postgres`, the
whole auth schema a `supabase db dump` seed writes into, and hosted's after-create grants."""

from __future__ import annotations

from pathlib import Path

import psycopg

from conftest import scalar
from ghostguard.rehearsal import DATABASE
from ghostguard.sandbox import Sandbox
from test_rehearse import PROFILES, _folder, _rehearse

DROPS = "drop trigger if exists on_auth_user_created on auth.users;"
HOSTED_ONLY = """
drop trigger if exists on_auth_user_created on auth.users;
create extension if not exists moddatetime schema extensions;
create extension if not exists pg_trgm;
alter extension pg_trgm set schema extensions;
create extension if not exists postgres_fdw;
create extension if not exists pg_stat_statements with schema extensions;
alter role authenticator set pgrst.db_pre_request = 'public.check_request';
create policy "staff read users" on auth.users for select to authenticated using (false);
drop policy "staff read users" on auth.users;
"""

# What `supabase db dump --data-only` writes: replica mode first, then auth's own tables.
DUMP_SEED = """
SET session_replication_role = replica;
INSERT INTO "auth"."users" ("instance_id", "id", "aud", "role", "email", "encrypted_password",
  "email_confirmed_at", "raw_app_meta_data", "raw_user_meta_data", "created_at", "updated_at",
  "confirmation_token", "recovery_token", "email_change_token_new", "email_change",
  "is_anonymous") VALUES
  ('00000000-0000-0000-0000-000000000000', 'a1b2c3d4-0000-4000-8000-000000000001',
   'authenticated', 'authenticated', 'seeded@example.com', '', now(),
   '{"provider": "email", "providers": ["email"]}', '{"full_name": "Seeded"}', now(), now(),
   '', '', '', '', false);
INSERT INTO "auth"."identities" ("provider_id", "user_id", "identity_data", "provider",
  "created_at", "updated_at", "id") VALUES
  ('a1b2c3d4-0000-4000-8000-000000000001', 'a1b2c3d4-0000-4000-8000-000000000001',
   '{"sub": "a1b2c3d4-0000-4000-8000-000000000001", "email": "seeded@example.com"}', 'email',
   now(), now(), 'b1b2c3d4-0000-4000-8000-000000000001');
INSERT INTO "auth"."sessions" ("id", "user_id", "created_at", "updated_at", "aal") VALUES
  ('c1b2c3d4-0000-4000-8000-000000000001', 'a1b2c3d4-0000-4000-8000-000000000001', now(), now(),
   'aal1');
INSERT INTO "auth"."refresh_tokens" ("instance_id", "id", "token", "user_id", "revoked",
  "created_at", "updated_at", "parent", "session_id") VALUES
  ('00000000-0000-0000-0000-000000000000', 7, 'tok', 'a1b2c3d4-0000-4000-8000-000000000001',
   false, now(), now(), NULL, 'c1b2c3d4-0000-4000-8000-000000000001');
INSERT INTO "auth"."mfa_amr_claims" ("session_id", "created_at", "updated_at",
  "authentication_method", "id") VALUES
  ('c1b2c3d4-0000-4000-8000-000000000001', now(), now(), 'password',
   'd1b2c3d4-0000-4000-8000-000000000001');
INSERT INTO "public"."profiles" ("id", "full_name") VALUES
  ('a1b2c3d4-0000-4000-8000-000000000001', 'Seeded');
SELECT pg_catalog.setval('"auth"."refresh_tokens_id_seq"', 7, true);
RESET ALL;
"""


def test_what_supautils_allows_postgres_replays(sandbox: Sandbox, tmp_path: Path) -> None:
    folder = _folder(
        tmp_path,
        **{"20240101000000_profiles": PROFILES, "20240102000000_hosted_only": HOSTED_ONLY},
    )
    code, report = _rehearse(sandbox, folder)
    assert code == 1, report  # it replays; then the dropped trigger leaves every signup a ghost
    assert report["dropped"] == [
        {
            "trigger": "on_auth_user_created",
            "by": "20240102000000_hosted_only.sql",
            "file": "supabase/migrations/20240102000000_hosted_only.sql",
            "line": HOSTED_ONLY.splitlines().index(DROPS) + 1,
        }
    ]
    with psycopg.connect(sandbox.url(DATABASE, "supabase_admin"), autocommit=True) as admin:
        assert (
            scalar(
                admin,
                "SELECT extnamespace::regnamespace::text FROM pg_extension "
                "WHERE extname = 'pg_trgm'",
            )
            == "extensions"
        )
        assert (
            scalar(
                admin,
                "SELECT count(*) FROM pg_extension WHERE extname IN "
                "('moddatetime', 'postgres_fdw', 'pg_stat_statements')",
            )
            == 3
        )


def test_a_data_only_dump_seed_loads_into_the_whole_auth_schema(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    folder = _folder(tmp_path, **{"20240101000000_profiles": PROFILES})
    seed = tmp_path / "supabase" / "seed.sql"
    seed.write_text(DUMP_SEED)
    code, report = _rehearse(sandbox, folder, "--seed", str(seed))
    assert code == 0, report
    assert report["seeded"] is True
    with psycopg.connect(sandbox.url(DATABASE, "supabase_admin"), autocommit=True) as admin:
        assert (
            scalar(admin, "SELECT count(*) FROM auth.refresh_tokens WHERE session_id IS NOT NULL")
            == 1
        )
        assert scalar(admin, "SELECT last_value FROM auth.refresh_tokens_id_seq") == 7


def test_the_auth_schema_is_the_auth_servers_owned_and_granted_as_hosted(
    conn: psycopg.Connection,
) -> None:
    tables = {
        str(row[0])
        for row in conn.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'auth'")
    }
    assert {
        "users",
        "identities",
        "sessions",
        "refresh_tokens",
        "mfa_factors",
        "mfa_challenges",
        "mfa_amr_claims",
        "one_time_tokens",
        "flow_state",
        "saml_providers",
        "sso_providers",
        "sso_domains",
        "audit_log_entries",
        "instances",
        "schema_migrations",
        "oauth_clients",
    } <= tables
    assert (
        scalar(
            conn,
            "SELECT count(*) FROM pg_tables WHERE schemaname = 'auth' "
            "AND tableowner <> 'supabase_auth_admin'",
        )
        == 0
    )
    assert int(str(scalar(conn, "SELECT count(*) FROM auth.schema_migrations"))) > 60
    assert scalar(conn, "SELECT has_table_privilege('auth.schema_migrations', 'INSERT')") is False
    assert scalar(conn, "SELECT has_table_privilege('auth.sessions', 'SELECT')") is True
    assert scalar(conn, "SELECT has_table_privilege('anon', 'auth.sessions', 'SELECT')") is False
    assert {
        str(row[0])
        for row in conn.execute(
            "SELECT typname FROM pg_type WHERE typnamespace = 'auth'::regnamespace AND typtype = 'e'"
        )
    } >= {"aal_level", "factor_type", "factor_status", "one_time_token_type"}


JSONSCHEMA = """
create extension if not exists pg_jsonschema with schema extensions;
create table public.settings (
  id uuid primary key references auth.users on delete cascade,
  prefs jsonb not null check (extensions.jsonb_matches_schema(
    '{"type": "object", "required": ["theme"], "properties": {"theme": {"type": "string"}}}', prefs))
);
"""


def test_pg_jsonschema_checks_type_and_required_keys_on_the_embedded_server(
    sandbox: Sandbox, tmp_path: Path, pg_major: int
) -> None:
    folder = _folder(
        tmp_path, **{"20240101000000_profiles": PROFILES, "20240102000000_json": JSONSCHEMA}
    )
    code, report = _rehearse(sandbox, folder)
    if pg_major < 18:  # no extension_control_path: the line says where it replays
        assert code == 2
        assert "this server has no stand-in for it" in str(report["stderr"])
        return
    assert code == 0, report
    with psycopg.connect(sandbox.url(DATABASE, "supabase_admin"), autocommit=True) as admin:
        checks = admin.execute(
            "SELECT extensions.jsonb_matches_schema(%s, %s::jsonb)",
            ('{"type": "object", "required": ["theme"]}', '{"theme": "dark"}'),
        ).fetchone()
        missing = admin.execute(
            "SELECT extensions.jsonb_matches_schema(%s, %s::jsonb), "
            "extensions.json_matches_schema(%s, %s::json), extensions.jsonschema_is_valid(%s)",
            ('{"required": ["theme"]}', "{}", '{"type": "integer"}', "1.5", '{"type": "string"}'),
        ).fetchone()
    assert checks == (True,)
    assert missing == (False, False, True)


REALTIME = """
create policy "members read their room" on realtime.messages for select to authenticated
  using ((select realtime.topic()) = 'room:' || (select auth.uid())::text);
create function public.announce_profile() returns trigger language plpgsql security definer
set search_path = '' as $$
begin
  perform realtime.broadcast_changes('profiles', tg_op, tg_op, tg_table_name, tg_table_schema,
                                     new, old);
  return null;
end $$;
create trigger announce after insert or update on public.profiles
  for each row execute function public.announce_profile();
"""


def test_realtime_authorization_policies_and_broadcasts_replay(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    folder = _folder(
        tmp_path, **{"20240101000000_profiles": PROFILES, "20240102000000_realtime": REALTIME}
    )
    code, report = _rehearse(sandbox, folder)
    assert code == 0, report
    with psycopg.connect(sandbox.url(DATABASE, "supabase_admin"), autocommit=True) as admin:
        policies = admin.execute(
            "SELECT polname FROM pg_policy WHERE polrelid = 'realtime.messages'::regclass"
        ).fetchall()
    assert policies == [("members read their room",)]


NET_GRANTS = """
create extension if not exists pg_net with schema extensions;
grant usage on schema net to postgres, service_role;
grant execute on all functions in schema net to postgres, service_role;
"""


def test_a_dumps_grants_on_every_function_of_net_replay(
    sandbox: Sandbox, tmp_path: Path, pg_major: int
) -> None:
    folder = _folder(
        tmp_path, **{"20240101000000_profiles": PROFILES, "20240102000000_net": NET_GRANTS}
    )
    code, report = _rehearse(sandbox, folder)
    if pg_major < 18:  # no stand-ins before 18: the one line says where it replays
        assert code == 2 and "rehearse on the embedded server" in str(report["stderr"])
        return
    assert code == 0, report
