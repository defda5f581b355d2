-- What doctor reads from the catalog (ghostguard.checks.doctor.facts). %% is a literal %.

-- name: protection
SELECT c.relrowsecurity,
       ARRAY(SELECT r FROM unnest(%(roles)s::text[]) r WHERE pg_catalog.has_table_privilege(r, c.oid, 'SELECT')),
       -- roles that may advance (nextval/setval) a sequence the table owns (an identity column's)
       ARRAY(SELECT DISTINCT r FROM unnest(%(roles)s::text[]) r, pg_catalog.pg_depend d
             WHERE d.classid = 'pg_catalog.pg_class'::regclass AND d.refobjid = c.oid
               AND d.deptype IN ('a', 'i')
               AND (SELECT s.relkind FROM pg_catalog.pg_class s WHERE s.oid = d.objid) = 'S'
               AND pg_catalog.has_sequence_privilege(r, d.objid, 'USAGE, UPDATE'))
FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname = %(schema)s AND c.relname = %(table)s

-- name: unique_columns
SELECT a.attname FROM pg_catalog.pg_index i
JOIN pg_catalog.pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = i.indkey[0]
WHERE i.indrelid = pg_catalog.to_regclass(pg_catalog.format('%%I.%%I', %s::text, %s::text))
  AND i.indisunique AND i.indnkeyatts = 1 AND i.indexprs IS NULL

-- name: checks
SELECT a.attname, pg_catalog.pg_get_constraintdef(con.oid)
FROM pg_catalog.pg_constraint con
JOIN pg_catalog.pg_attribute a ON a.attrelid = con.conrelid AND a.attnum = ANY (con.conkey)
WHERE con.contype = 'c'
  AND con.conrelid = pg_catalog.to_regclass(pg_catalog.format('%%I.%%I', %s::text, %s::text))

-- name: views
SELECT DISTINCT pg_catalog.format('%%I.%%I', n.nspname, v.relname), n.nspname, v.relname,
       coalesce((SELECT o.option_value FROM pg_catalog.pg_options_to_table(v.reloptions) o
                 WHERE o.option_name = 'security_invoker'), 'false') IN ('true', 'on', '1'),
       ARRAY(SELECT r FROM unnest(%s::text[]) r WHERE pg_catalog.has_table_privilege(r, v.oid, 'SELECT'))
FROM pg_catalog.pg_depend d
JOIN pg_catalog.pg_rewrite rw ON rw.oid = d.objid
JOIN pg_catalog.pg_class v ON v.oid = rw.ev_class
JOIN pg_catalog.pg_namespace n ON n.oid = v.relnamespace
WHERE d.classid = 'pg_catalog.pg_rewrite'::regclass
  AND d.refobjid = pg_catalog.to_regclass(pg_catalog.format('%%I.%%I', %s::text, %s::text))
  AND v.oid <> d.refobjid AND v.relkind IN ('v', 'm') AND n.nspname = ANY (%s)
ORDER BY 1
