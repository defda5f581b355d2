-- Who holds ghostguard's advisory lock, and who holds locks on the tables (ghostguard.locks).

-- name: lock_holder
SELECT a.pid, a.usename, a.application_name, now() - a.backend_start, left(a.query, 80)
FROM pg_catalog.pg_locks l JOIN pg_catalog.pg_stat_activity a ON a.pid = l.pid
WHERE l.locktype = 'advisory' AND l.granted AND l.classid = %s::oid AND l.objid = %s::oid
  AND l.objsubid = 2


-- name: table_lock_holders
SELECT a.pid, a.usename, a.application_name, a.state, date_trunc('second', now() - a.xact_start),
       to_char(a.query_start, 'YYYY-MM-DD HH24:MI:SS TZ'),
       string_agg(DISTINCT l.mode || ' on ' || n.nspname || '.' || c.relname, ', '),
       left(regexp_replace(coalesce(a.query, ''), '\s+', ' ', 'g'), 100)
FROM pg_catalog.pg_locks l
JOIN pg_catalog.pg_class c ON c.oid = l.relation
JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
JOIN pg_catalog.pg_stat_activity a ON a.pid = l.pid
WHERE l.granted AND l.pid <> pg_backend_pid()
  AND (n.nspname, c.relname) IN (SELECT * FROM unnest(%s::text[], %s::text[]))
GROUP BY a.pid, a.usename, a.application_name, a.state, a.xact_start, a.query_start, a.query
ORDER BY a.xact_start NULLS LAST
