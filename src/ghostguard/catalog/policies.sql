-- A table's row security (ghostguard.catalog.policies). %% is a literal %.

-- name: policies
SELECT p.polname, p.polcmd::text,
       ARRAY(SELECT CASE WHEN r = 0 THEN 'public' ELSE pg_catalog.pg_get_userbyid(r) END
             FROM unnest(p.polroles) r)::text[],
       pg_catalog.pg_get_expr(p.polqual, p.polrelid)
FROM pg_catalog.pg_policy p
WHERE p.polrelid = pg_catalog.to_regclass(pg_catalog.format('%%I.%%I', %s::text, %s::text))
ORDER BY p.polname

-- name: row_security
SELECT c.relrowsecurity FROM pg_catalog.pg_class c
WHERE c.oid = pg_catalog.to_regclass(pg_catalog.format('%%I.%%I', %s::text, %s::text))
