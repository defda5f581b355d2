-- Statements for adopt/existing.py, read by name through ghostguard.sqlfiles.

-- name: auth_triggers
SELECT t.tgname, t.tgenabled, t.tgtype::int,
       ARRAY(SELECT a.attname FROM unnest(t.tgattr) k(num)
             JOIN pg_catalog.pg_attribute a ON a.attrelid = t.tgrelid AND a.attnum = k.num)::text[],
       t.tgqual IS NOT NULL,
       pg_catalog.format('%%I.%%I()', pn.nspname, p.proname), pn.nspname, p.proname, l.lanname, p.prosecdef,
       (SELECT substr(c, length('search_path=') + 1) FROM unnest(p.proconfig) c
         WHERE c LIKE 'search_path=%%'),
       coalesce(p.prosrc, ''),
       array_remove(ARRAY[t.tgoldtable::text, t.tgnewtable::text], NULL),
       coalesce(pg_catalog.obj_description(p.oid, 'pg_proc'), '') LIKE %s
FROM pg_catalog.pg_trigger t
JOIN pg_catalog.pg_proc p ON p.oid = t.tgfoid
JOIN pg_catalog.pg_namespace pn ON pn.oid = p.pronamespace
JOIN pg_catalog.pg_language l ON l.oid = p.prolang
WHERE t.tgrelid = pg_catalog.to_regclass(pg_catalog.format('%%I.%%I', %s::text, %s::text))
  AND NOT t.tgisinternal
ORDER BY t.tgname

