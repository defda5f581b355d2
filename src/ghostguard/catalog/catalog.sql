-- Catalog reads (ghostguard.catalog). Parameters are passed by psycopg; %% is a literal %.

-- name: foreign_keys_to
SELECT con.conname, n.nspname, c.relname,
       ARRAY(SELECT a.attname FROM unnest(con.conkey) WITH ORDINALITY k(num, i)
             JOIN pg_catalog.pg_attribute a ON a.attrelid = con.conrelid AND a.attnum = k.num
             ORDER BY k.i)::text[],
       ARRAY(SELECT a.attname FROM unnest(con.confkey) WITH ORDINALITY k(num, i)
             JOIN pg_catalog.pg_attribute a ON a.attrelid = con.confrelid AND a.attnum = k.num
             ORDER BY k.i)::text[],
       con.confdeltype::text,
       NOT EXISTS (SELECT 1 FROM unnest(con.conkey) k(num)
                   JOIN pg_catalog.pg_attribute a ON a.attrelid = con.conrelid AND a.attnum = k.num
                   WHERE a.attnotnull),
       NOT EXISTS (SELECT 1 FROM unnest(con.conkey) k(num)
                   JOIN pg_catalog.pg_attribute a ON a.attrelid = con.conrelid AND a.attnum = k.num
                   WHERE a.attnotnull AND NOT a.atthasdef)
FROM pg_catalog.pg_constraint con
JOIN pg_catalog.pg_class c ON c.oid = con.conrelid
JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
WHERE con.contype = 'f'
  AND con.confrelid = pg_catalog.to_regclass(pg_catalog.format('%%I.%%I', %s::text, %s::text))
ORDER BY n.nspname, c.relname, con.conname

-- name: table_columns
SELECT a.attname, pg_catalog.format_type(a.atttypid, a.atttypmod) AS type,
       a.attnotnull, a.atthasdef, a.attgenerated <> '' OR a.attidentity <> '' AS generated,
       CASE WHEN ty.typtype = 'e' THEN ARRAY[tn.nspname::text, ty.typname::text] END AS enum_type,
       ARRAY[tn.nspname::text, ty.typname::text] AS type_name
FROM pg_catalog.pg_attribute a
JOIN pg_catalog.pg_class c ON c.oid = a.attrelid
JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
JOIN pg_catalog.pg_type ty ON ty.oid = a.atttypid
JOIN pg_catalog.pg_namespace tn ON tn.oid = ty.typnamespace
WHERE n.nspname = %s AND c.relname = %s AND c.relkind IN ('r', 'p')
  AND a.attnum > 0 AND NOT a.attisdropped
ORDER BY a.attnum

-- name: column_checks
-- CHECK constraints over one column, as text that reads the same under an empty search_path
-- (the sync function's): a value that breaks one falls through to the column's next source.
SELECT a.attname, pg_catalog.pg_get_expr(c.conbin, c.conrelid)
FROM pg_catalog.pg_constraint c
JOIN pg_catalog.pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = c.conkey[1]
WHERE c.conrelid = pg_catalog.to_regclass(pg_catalog.format('%%I.%%I', %s::text, %s::text))
  AND c.contype = 'c' AND pg_catalog.cardinality(c.conkey) = 1
ORDER BY a.attname, c.conname

-- name: column_defaults
-- DEFAULT expressions of plain columns, printed like column_checks: what a mapped column gets
-- when every source is empty (an explicit NULL would bypass it). A default cannot refer to a
-- column, so it is printed without opening the table (relid 0): no lock, even behind ALTER TABLE.
SELECT a.attname, pg_catalog.pg_get_expr(d.adbin, 0)
FROM pg_catalog.pg_attrdef d
JOIN pg_catalog.pg_attribute a ON a.attrelid = d.adrelid AND a.attnum = d.adnum
WHERE d.adrelid = pg_catalog.to_regclass(pg_catalog.format('%%I.%%I', %s::text, %s::text))
  AND a.attgenerated = '' AND NOT a.attisdropped
ORDER BY a.attname

-- name: table_exists
SELECT pg_catalog.to_regclass(pg_catalog.format('%%I.%%I', %s::text, %s::text)) IS NOT NULL

-- name: is_unique_key
SELECT EXISTS (
  SELECT 1 FROM pg_catalog.pg_index i
  JOIN pg_catalog.pg_class c ON c.oid = i.indrelid
  JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
  JOIN pg_catalog.pg_attribute a ON a.attrelid = c.oid AND a.attnum = i.indkey[0]
  WHERE n.nspname = %s AND c.relname = %s AND i.indisunique AND i.indisvalid
    AND i.indnkeyatts = 1 AND i.indpred IS NULL AND i.indexprs IS NULL AND a.attname = %s)

-- name: triggers
SELECT t.tgname, t.tgenabled, tn.nspname, tc.relname, pn.nspname, p.proname,
       pg_catalog.pg_get_triggerdef(t.oid)
FROM pg_catalog.pg_trigger t
JOIN pg_catalog.pg_class tc ON tc.oid = t.tgrelid
JOIN pg_catalog.pg_namespace tn ON tn.oid = tc.relnamespace
JOIN pg_catalog.pg_proc p ON p.oid = t.tgfoid
JOIN pg_catalog.pg_namespace pn ON pn.oid = p.pronamespace
WHERE NOT t.tgisinternal AND {schema} = %(schema)s AND {name} = %(name)s {extra}
ORDER BY t.tgname

-- name: function_state
SELECT pg_catalog.format('%%I.%%I()', n.nspname, p.proname) AS name,
       p.prosecdef AS definer,
       (SELECT substr(c, length('search_path=') + 1)
          FROM unnest(p.proconfig) c WHERE c LIKE 'search_path=%%') AS search_path,
       pg_catalog.pg_get_userbyid(p.proowner) AS owner,
       ARRAY(SELECT g FROM unnest(ARRAY['PUBLIC', 'anon', 'authenticated', 'service_role']) g
             WHERE CASE WHEN g = 'PUBLIC'
                   THEN EXISTS (SELECT 1 FROM aclexplode(coalesce(p.proacl,
                                      acldefault('f', p.proowner))) e
                                WHERE e.grantee = 0 AND e.privilege_type = 'EXECUTE')
                   ELSE EXISTS (SELECT 1 FROM pg_catalog.pg_roles r WHERE r.rolname = g)
                        AND pg_catalog.has_function_privilege(g, p.oid, 'EXECUTE') END
       ) AS executable_by,
       md5(pg_catalog.pg_get_functiondef(p.oid)) AS definition_md5
FROM pg_catalog.pg_proc p
JOIN pg_catalog.pg_namespace n ON n.oid = p.pronamespace
WHERE n.nspname = %s AND p.proname = %s AND p.pronargs = 0
