-- The sandbox's Supabase setup (ghostguard.sandbox.supabase), run as the superuser supabase_admin.
-- Facts it reproduces: docs/supabase-facts.md.

-- name: roles
DO $roles$
BEGIN
  IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'postgres') THEN
    CREATE ROLE postgres LOGIN NOSUPERUSER CREATEROLE CREATEDB REPLICATION BYPASSRLS;
  END IF;
  IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'anon') THEN
    CREATE ROLE anon NOLOGIN NOINHERIT;
  END IF;
  IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'authenticated') THEN
    CREATE ROLE authenticated NOLOGIN NOINHERIT;
  END IF;
  IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'service_role') THEN
    CREATE ROLE service_role NOLOGIN NOINHERIT BYPASSRLS;
  END IF;
  IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'authenticator') THEN
    CREATE ROLE authenticator LOGIN NOINHERIT;
  END IF;
  IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'supabase_auth_admin') THEN
    CREATE ROLE supabase_auth_admin LOGIN NOINHERIT CREATEROLE;
  END IF;
  IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'supabase_storage_admin') THEN
    CREATE ROLE supabase_storage_admin NOLOGIN NOINHERIT CREATEROLE;
  END IF;
END
$roles$;
-- Roles hosted projects have that database dumps of them name in their grants.
DO $more$
DECLARE r text;
BEGIN
  FOREACH r IN ARRAY ARRAY['dashboard_user', 'pgsodium_keyiduser', 'pgsodium_keyholder',
                           'pgsodium_keymaker', 'supabase_functions_admin',
                           'supabase_realtime_admin', 'supabase_replication_admin',
                           'supabase_read_only_user'] LOOP
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = r) THEN
      EXECUTE format('CREATE ROLE %I NOLOGIN', r);
    END IF;
  END LOOP;
END
$more$;
ALTER ROLE postgres SET search_path = "$user", public, extensions;
ALTER ROLE supabase_auth_admin SET search_path = auth;
GRANT anon, authenticated, service_role TO authenticator;
GRANT anon, authenticated, service_role TO postgres;

-- name: database
CREATE SCHEMA IF NOT EXISTS extensions AUTHORIZATION postgres;
GRANT USAGE ON SCHEMA public, extensions TO anon, authenticated, service_role;
-- Since 2026-10-30 (new projects since 2026-05-30) new tables and sequences in public are no
-- longer granted to the API roles by default privileges; functions still are.
ALTER DEFAULT PRIVILEGES FOR ROLE postgres IN SCHEMA public
  GRANT ALL ON FUNCTIONS TO anon, authenticated, service_role;

CREATE SCHEMA auth AUTHORIZATION supabase_admin;
GRANT USAGE ON SCHEMA auth TO postgres, anon, authenticated, service_role;
GRANT USAGE, CREATE ON SCHEMA auth TO supabase_auth_admin;


-- name: services

-- The auth schema as the Auth server's migrations leave it (auth_schema.sql, run as
-- supabase_auth_admin between the two sections above), granted as hosted grants it.
GRANT SELECT, INSERT, UPDATE, DELETE, TRUNCATE, REFERENCES, TRIGGER
  ON ALL TABLES IN SCHEMA auth TO postgres, dashboard_user;
REVOKE INSERT, UPDATE, DELETE, TRUNCATE ON auth.schema_migrations FROM postgres, dashboard_user;
GRANT USAGE, SELECT, UPDATE ON ALL SEQUENCES IN SCHEMA auth TO postgres, dashboard_user;
GRANT EXECUTE ON FUNCTION auth.uid(), auth.role(), auth.jwt(), auth.email()
  TO postgres, anon, authenticated, service_role, dashboard_user;

-- Storage: the tables projects' migrations insert buckets into and write policies on (as
-- postgres, which may create policies on them), and the helpers those policies call.
CREATE SCHEMA storage AUTHORIZATION supabase_storage_admin;
GRANT USAGE ON SCHEMA storage TO postgres, anon, authenticated, service_role;
SET ROLE supabase_storage_admin;
CREATE TABLE storage.buckets (
  id text PRIMARY KEY,
  name text NOT NULL UNIQUE,
  owner uuid,
  owner_id text,
  public boolean DEFAULT false,
  avif_autodetection boolean DEFAULT false,
  file_size_limit bigint,
  allowed_mime_types text[],
  created_at timestamptz DEFAULT now(),
  updated_at timestamptz DEFAULT now()
);
CREATE TABLE storage.objects (
  id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  bucket_id text REFERENCES storage.buckets (id),
  name text,
  owner uuid,
  owner_id text,
  metadata jsonb,
  user_metadata jsonb,
  version text,
  path_tokens text[] GENERATED ALWAYS AS (string_to_array(name, '/')) STORED,
  created_at timestamptz DEFAULT now(),
  updated_at timestamptz DEFAULT now(),
  last_accessed_at timestamptz DEFAULT now()
);
ALTER TABLE storage.buckets ENABLE ROW LEVEL SECURITY;
ALTER TABLE storage.objects ENABLE ROW LEVEL SECURITY;
CREATE FUNCTION storage.foldername(name text) RETURNS text[] LANGUAGE sql IMMUTABLE AS
  $f$ SELECT (string_to_array(name, '/'))[1:array_length(string_to_array(name, '/'), 1) - 1] $f$;
CREATE FUNCTION storage.filename(name text) RETURNS text LANGUAGE sql IMMUTABLE AS
  $f$ SELECT (string_to_array(name, '/'))[array_length(string_to_array(name, '/'), 1)] $f$;
CREATE FUNCTION storage.extension(name text) RETURNS text LANGUAGE sql IMMUTABLE AS
  $f$ SELECT reverse(split_part(reverse(storage.filename(name)), '.', 1)) $f$;
GRANT ALL ON storage.buckets, storage.objects TO postgres, service_role;
GRANT SELECT, INSERT, UPDATE, DELETE ON storage.buckets, storage.objects TO anon, authenticated;
GRANT EXECUTE ON FUNCTION storage.foldername(text), storage.filename(text), storage.extension(text)
  TO postgres, anon, authenticated, service_role;
RESET ROLE;
-- Hosted, postgres may create, alter and drop policies on storage's tables without owning them
-- (Supabase's supautils grants exactly that) and nothing else: `ALTER TABLE storage.objects ...`
-- fails with "must be owner of table objects". Vanilla PostgreSQL ties policies to ownership, so
-- postgres acts as the owner here and an event trigger refuses every other change to storage's
-- tables by a role that is not their owner or a superuser, with the hosted error.
GRANT supabase_storage_admin TO postgres;
CREATE FUNCTION storage.ghostguard_owner_only() RETURNS event_trigger
LANGUAGE plpgsql SET search_path = '' AS $only$
DECLARE
  changed record;
BEGIN
  IF current_user = 'supabase_storage_admin'
     OR (SELECT r.rolsuper FROM pg_catalog.pg_roles r WHERE r.rolname = current_user) THEN
    RETURN;
  END IF;
  FOR changed IN SELECT * FROM pg_catalog.pg_event_trigger_ddl_commands() LOOP
    IF changed.classid = 'pg_catalog.pg_class'::pg_catalog.regclass
       AND changed.schema_name = 'storage'
       AND changed.command_tag NOT IN ('GRANT', 'REVOKE') THEN
      RAISE EXCEPTION 'must be owner of table %', (  -- an index's table, as the hosted error says
        SELECT c.relname FROM pg_catalog.pg_class c WHERE c.oid = COALESCE(
          (SELECT i.indrelid FROM pg_catalog.pg_index i WHERE i.indexrelid = changed.objid),
          changed.objid))
        USING ERRCODE = 'insufficient_privilege';
    END IF;
  END LOOP;
END
$only$;
CREATE EVENT TRIGGER ghostguard_storage_owner_only ON ddl_command_end
  EXECUTE FUNCTION storage.ghostguard_owner_only();

-- Database webhooks: triggers that call supabase_functions.http_request(url, method, headers,
-- params, timeout), as `supabase db pull` writes them. Hosted, it sends the request through pg_net;
-- here it records the call in supabase_functions.hooks and sends nothing.
CREATE SCHEMA supabase_functions AUTHORIZATION supabase_admin;
GRANT USAGE ON SCHEMA supabase_functions TO postgres, anon, authenticated, service_role;
CREATE TABLE supabase_functions.hooks (
  id bigserial PRIMARY KEY,
  hook_table_id integer NOT NULL,
  hook_name text NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now(),
  request_id bigint
);
GRANT SELECT ON supabase_functions.hooks TO postgres;
CREATE FUNCTION supabase_functions.http_request() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = '' AS $hook$
BEGIN
  IF TG_NARGS < 2 THEN
    RAISE EXCEPTION 'supabase_functions.http_request needs at least a url and a method';
  END IF;
  INSERT INTO supabase_functions.hooks (hook_table_id, hook_name) VALUES (TG_RELID, TG_NAME);
  RETURN NEW;
END
$hook$;
REVOKE ALL ON FUNCTION supabase_functions.http_request() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION supabase_functions.http_request()
  TO postgres, anon, authenticated, service_role;

-- Realtime: the publication migrations add tables to, owned by postgres as on hosted projects.
CREATE PUBLICATION supabase_realtime;
ALTER PUBLICATION supabase_realtime OWNER TO postgres;
-- Realtime's schema as projects' migrations use it: policies on realtime.messages (Realtime
-- Authorization, with realtime.topic()), and realtime.send / realtime.broadcast_changes called
-- from triggers. Owned by supabase_realtime_admin; postgres writes policies and drops triggers on
-- them through supautils (the guard), as on hosted projects. Messages are kept, never broadcast.
CREATE SCHEMA realtime AUTHORIZATION supabase_admin;
GRANT USAGE ON SCHEMA realtime TO postgres, anon, authenticated, service_role;
GRANT USAGE, CREATE ON SCHEMA realtime TO supabase_realtime_admin;
SET ROLE supabase_realtime_admin;
CREATE TABLE realtime.messages (
  topic text NOT NULL,
  extension text NOT NULL,
  payload jsonb,
  event text,
  private boolean DEFAULT false,
  updated_at timestamp without time zone NOT NULL DEFAULT now(),
  inserted_at timestamp without time zone NOT NULL DEFAULT now(),
  id uuid NOT NULL DEFAULT gen_random_uuid(),
  PRIMARY KEY (id, inserted_at)
);
ALTER TABLE realtime.messages ENABLE ROW LEVEL SECURITY;
CREATE TABLE realtime.subscription (
  id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  subscription_id uuid NOT NULL,
  entity regclass NOT NULL,
  claims jsonb NOT NULL,
  created_at timestamp without time zone NOT NULL DEFAULT timezone('utc', now())
);
CREATE FUNCTION realtime.topic() RETURNS text LANGUAGE sql STABLE AS
  $t$ SELECT NULLIF(pg_catalog.current_setting('realtime.topic', true), '')::text $t$;
CREATE FUNCTION realtime.send(payload jsonb, event text, topic text, private boolean DEFAULT true)
RETURNS void LANGUAGE sql SECURITY DEFINER SET search_path = '' AS $s$
  INSERT INTO realtime.messages (payload, event, topic, private, extension)
  VALUES (payload, event, topic, private, 'broadcast')
$s$;
CREATE FUNCTION realtime.broadcast_changes(
  topic_name text, event_name text, operation text, table_name text, table_schema text,
  new record, old record, level text DEFAULT 'ROW'
) RETURNS void LANGUAGE plpgsql SECURITY DEFINER SET search_path = '' AS $b$
BEGIN
  PERFORM realtime.send(
    pg_catalog.jsonb_build_object('operation', operation, 'table', table_name,
      'schema', table_schema, 'record', pg_catalog.to_jsonb(new),
      'old_record', pg_catalog.to_jsonb(old)),
    event_name, topic_name, true);
END
$b$;
RESET ROLE;
GRANT ALL ON realtime.messages, realtime.subscription TO postgres, service_role;
GRANT SELECT, INSERT, UPDATE ON realtime.messages TO anon, authenticated;
GRANT EXECUTE ON FUNCTION realtime.topic(), realtime.send(jsonb, text, text, boolean),
  realtime.broadcast_changes(text, text, text, text, text, record, record, text)
  TO postgres, anon, authenticated, service_role;

-- Extensions every hosted project comes with, in the schemas it has them in. A server built
-- without them (the embedded one) gets ghostguard's SQL stand-ins from PostgreSQL 18 on
-- (sandbox/standins.py), so a migration's `CREATE EXTENSION IF NOT EXISTS` is the no-op it is there.
CREATE SCHEMA graphql AUTHORIZATION supabase_admin;
CREATE SCHEMA graphql_public AUTHORIZATION supabase_admin;
CREATE SCHEMA pgsodium AUTHORIZATION supabase_admin;
CREATE SCHEMA vault AUTHORIZATION supabase_admin;
DO $ext$
DECLARE
  e text;
  wanted constant text[][] := ARRAY[
    ['pgcrypto', 'extensions'], ['uuid-ossp', 'extensions'], ['pg_stat_statements', 'extensions'],
    ['pgjwt', 'extensions'], ['pg_graphql', 'graphql'], ['pgsodium', 'pgsodium'],
    ['supabase_vault', 'vault']];
BEGIN
  FOR i IN 1 .. array_length(wanted, 1) LOOP
    e := wanted[i][1];
    IF EXISTS (SELECT 1 FROM pg_available_extensions WHERE name = e) THEN
      EXECUTE format('CREATE EXTENSION IF NOT EXISTS %I WITH SCHEMA %I', e, wanted[i][2]);
    END IF;
  END LOOP;
END
$ext$;
GRANT USAGE ON SCHEMA graphql, graphql_public TO postgres, anon, authenticated, service_role;
-- The Data API's GraphQL entry point (the platform's, beside pg_graphql).
CREATE FUNCTION graphql_public.graphql(
  "operationName" text DEFAULT NULL, query text DEFAULT NULL,
  variables jsonb DEFAULT NULL, extensions jsonb DEFAULT NULL
) RETURNS jsonb LANGUAGE sql STABLE SET search_path = '' AS $gql$
  SELECT '{"errors": [{"message": "the ghostguard sandbox has no GraphQL"}]}'::jsonb
$gql$;
GRANT USAGE ON SCHEMA vault TO postgres, service_role;
DO $vault$
BEGIN
  IF to_regclass('vault.secrets') IS NOT NULL THEN
    GRANT SELECT, DELETE ON vault.secrets, vault.decrypted_secrets TO postgres, service_role;
    GRANT EXECUTE ON FUNCTION vault.create_secret(text, text, text, uuid),
      vault.update_secret(uuid, text, text, text, uuid) TO postgres, service_role;
  END IF;
END
$vault$;

-- Hosted's after-create scripts: when postgres creates one of these extensions (as the superuser,
-- through supautils; here the guard), the platform grants postgres and the API roles what the
-- extension's own script does not.
CREATE FUNCTION extensions.grant_extension_access() RETURNS event_trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = '' AS $grant$
DECLARE
  created text;
BEGIN
  FOR created IN
    SELECT e.extname FROM pg_catalog.pg_event_trigger_ddl_commands() c
    JOIN pg_catalog.pg_extension e ON e.oid = c.objid
    WHERE c.object_type = 'extension'
  LOOP
    IF created = 'pg_cron' THEN
      GRANT USAGE ON SCHEMA cron TO postgres WITH GRANT OPTION;
      GRANT ALL ON ALL TABLES IN SCHEMA cron TO postgres WITH GRANT OPTION;
      GRANT ALL ON ALL SEQUENCES IN SCHEMA cron TO postgres WITH GRANT OPTION;
      GRANT ALL ON ALL FUNCTIONS IN SCHEMA cron TO postgres WITH GRANT OPTION;
    ELSIF created = 'pg_net' THEN
      GRANT USAGE ON SCHEMA net TO supabase_functions_admin, postgres, anon, authenticated,
        service_role;
      GRANT EXECUTE ON ALL FUNCTIONS IN SCHEMA net TO supabase_functions_admin, postgres, anon,
        authenticated, service_role;
    ELSIF created = 'postgres_fdw' THEN
      GRANT USAGE ON FOREIGN DATA WRAPPER postgres_fdw TO postgres WITH GRANT OPTION;
    END IF;
  END LOOP;
END
$grant$;
REVOKE ALL ON FUNCTION extensions.grant_extension_access() FROM PUBLIC;
CREATE EVENT TRIGGER grant_extension_access ON ddl_command_end
  WHEN TAG IN ('CREATE EXTENSION') EXECUTE FUNCTION extensions.grant_extension_access();

SET ROLE postgres;
CREATE TABLE public.users (
  id uuid PRIMARY KEY,
  email text,
  full_name text,
  avatar_url text,
  created_at timestamptz NOT NULL DEFAULT now(),
  updated_at timestamptz NOT NULL DEFAULT now(),
  deleted_at timestamptz
);
ALTER TABLE public.users ENABLE ROW LEVEL SECURITY;
CREATE POLICY "Users can view their own profile" ON public.users
  FOR SELECT TO authenticated USING ((SELECT auth.uid()) = id);
CREATE POLICY "Users can update their own profile" ON public.users
  FOR UPDATE TO authenticated USING ((SELECT auth.uid()) = id) WITH CHECK ((SELECT auth.uid()) = id);
-- What an app writes since the 2026 defaults: its users read and update their own row.
GRANT SELECT, UPDATE ON public.users TO authenticated;
GRANT ALL ON public.users TO service_role;
RESET ROLE;

-- name: legacy_grants
-- `sandbox start --legacy-grants`: the default privileges hosted projects had before 2026.
ALTER DEFAULT PRIVILEGES FOR ROLE postgres IN SCHEMA public
  GRANT ALL ON TABLES TO anon, authenticated, service_role;
ALTER DEFAULT PRIVILEGES FOR ROLE postgres IN SCHEMA public
  GRANT ALL ON SEQUENCES TO anon, authenticated, service_role;
ALTER DEFAULT PRIVILEGES FOR ROLE supabase_admin IN SCHEMA public
  GRANT ALL ON TABLES TO postgres, anon, authenticated, service_role;
GRANT ALL ON public.users TO anon, authenticated, service_role;
