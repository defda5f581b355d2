-- The sandbox-independent catalog reads of ghostguard.hooks (run as postgres).

-- name: hook_functions
-- Functions of the hook signature, (jsonb) RETURNS jsonb: the one named (%(schema)s, %(name)s),
-- or (both NULL) every one supabase_auth_admin is granted EXECUTE on by name (a hook's
-- documented grant), the database's view of the project's hooks.
SELECT n.nspname, p.proname, l.lanname, p.prosecdef,
       (SELECT substr(c, length('search_path=') + 1) FROM unnest(p.proconfig) c
         WHERE c LIKE 'search_path=%%'),
       coalesce(p.prosrc, '')
FROM pg_catalog.pg_proc p
JOIN pg_catalog.pg_namespace n ON n.oid = p.pronamespace
JOIN pg_catalog.pg_language l ON l.oid = p.prolang
WHERE p.prorettype = 'pg_catalog.jsonb'::pg_catalog.regtype
  AND p.pronargs = 1 AND p.proargtypes[0] = 'pg_catalog.jsonb'::pg_catalog.regtype
  AND CASE WHEN %(name)s::text IS NOT NULL THEN n.nspname = %(schema)s AND p.proname = %(name)s
      ELSE n.nspname NOT IN ('pg_catalog', 'information_schema', 'auth', 'extensions', 'graphql',
                             'graphql_public', 'storage', 'realtime', 'vault', 'pgsodium', 'net',
                             'cron')
        AND EXISTS (SELECT 1 FROM pg_catalog.aclexplode(p.proacl) a
                    JOIN pg_catalog.pg_roles r ON r.oid = a.grantee
                    WHERE r.rolname = 'supabase_auth_admin' AND a.privilege_type = 'EXECUTE')
      END
ORDER BY 1, 2;

-- name: grants
-- Who may run a hook function: supabase_auth_admin must; PUBLIC, anon and authenticated should not.
SELECT pg_catalog.has_function_privilege('supabase_auth_admin', f.oid, 'EXECUTE'),
       ARRAY(SELECT r FROM unnest(ARRAY['anon', 'authenticated']) r
             WHERE EXISTS (SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = r)
               AND pg_catalog.has_function_privilege(r, f.oid, 'EXECUTE'))
       || CASE WHEN f.proacl IS NULL OR EXISTS (
                 SELECT 1 FROM pg_catalog.aclexplode(f.proacl) a WHERE a.grantee = 0)
               THEN ARRAY['PUBLIC'] ELSE ARRAY[]::text[] END
FROM pg_catalog.pg_proc f
WHERE f.oid = pg_catalog.to_regprocedure(pg_catalog.format('%%I.%%I(jsonb)', %s::text, %s::text));

-- name: table_access
-- What supabase_auth_admin may read of one table: schema usage, SELECT, and whether RLS lets it
-- see rows (RLS off, or a SELECT policy for it or for PUBLIC).
SELECT pg_catalog.has_schema_privilege('supabase_auth_admin', n.oid, 'USAGE'),
       pg_catalog.has_table_privilege('supabase_auth_admin', c.oid, 'SELECT'),
       NOT c.relrowsecurity OR EXISTS (
         SELECT 1 FROM pg_catalog.pg_policy p
         WHERE p.polrelid = c.oid AND p.polcmd IN ('r', '*')
           AND (0 = ANY (p.polroles)
                OR (SELECT oid FROM pg_catalog.pg_roles WHERE rolname = 'supabase_auth_admin')
                   = ANY (p.polroles))),
       (SELECT rolbypassrls FROM pg_catalog.pg_roles WHERE rolname = 'supabase_auth_admin')
FROM pg_catalog.pg_class c
JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname = %s AND c.relname = %s;
