"""The sync function and its triggers: profiles follow the auth row through its whole life, and a
profile write that fails never fails the Auth server's statement; it is recorded instead.

One SECURITY DEFINER function serves three triggers (so rollback's DROP FUNCTION … CASCADE still
removes everything, and there is one function to secure):

- INSERT, once per statement, with the inserted rows as a transition table: one set-based
  `INSERT … SELECT`, so a 100k-row import costs one statement, not 100k trigger calls. Rows go in
  key order (neighbouring keys share index pages: measured ~12% faster for an import than random
  order). If that statement fails, the rows are retried in set-based chunks of 1,000, and row by
  row only inside a chunk that fails, so one bad row costs only its own profile.
- The app's own triggers on the profile table see `[trigger] profile_search_path` (public,
  extensions, then pg_temp) while it writes: an app trigger with an unqualified type or function
  resolves as it does for the app's own writes. The function still pins `search_path = ''` (the
  linter's rule; it is restored when the function returns, as a SET clause does) and qualifies
  every name it uses itself, so the wider path changes nothing of its own SQL: pg_catalog is
  searched first, pg_temp last, and no API role may create objects in those schemas.
- Every lock it waits for is bounded by its own lock_timeout ([trigger] signup_lock_timeout): a
  profile table held by a migration (CREATE INDEX, ALTER TABLE) costs a signup at most that long,
  and its profile write is recorded as a failure that `repair` and the monitor pick up.
- UPDATE, per row, only `UPDATE OF` the auth columns the mapping reads and only `WHEN` a mapped
  value (or deleted_at) really changed: a sign-in never calls the function at all.
- DELETE, per row, only when the profile table has a soft-delete column and no foreign key that
  already cascades: the profile is marked deleted, never removed.

Every write runs in its own exception block. A failure is written to the failures table (user,
operation, SQLSTATE, constraint, message, detail, time) for `ghostguard repair`; if even that write fails, a
WARNING goes to the server log. `EXCEPTION WHEN OTHERS THEN RETURN NEW` alone would hide the
new ghost; this records it.
"""

from __future__ import annotations

from psycopg import sql

from ghostguard.catalog import Shape
from ghostguard.config import Config
from ghostguard.sqlparts import (
    Step,
    dollar_quoted,
    function,
    ident,
    source,
    target,
    unless_linked,
)
from ghostguard.sync.failures import record_failure
from ghostguard.sync.mapping import mark_deleted, profile_columns, upsert_profile

TRANSITION = "ghostguard_new_rows"


def _on_update(config: Config, shape: Shape) -> sql.Composable:
    new = sql.SQL("NEW")
    upsert = upsert_profile(config, shape, new)
    if not shape.source_soft_delete:
        return sql.SQL("{};").format(upsert)
    deleted = (
        sql.SQL("{};").format(
            mark_deleted(
                config,
                shape,
                sql.SQL("NEW.{}").format(ident(config.source.key)),
                sql.SQL("NEW.deleted_at"),
            )
        )
        if shape.target_soft_delete
        else sql.SQL("NULL;")
    )
    # A soft delete replaces email and phone with a hash and empties the metadata: only the
    # deletion itself reaches the profile.
    return sql.SQL(
        "IF NEW.deleted_at IS NOT NULL THEN\n  {deleted}\nELSE\n  {upsert};\nEND IF;"
    ).format(deleted=deleted, upsert=upsert)


def _on_delete(config: Config, shape: Shape) -> sql.Composable:
    if not shape.target_soft_delete:
        return sql.SQL("NULL;")
    return sql.SQL("{};").format(
        mark_deleted(
            config, shape, sql.SQL("OLD.{}").format(ident(config.source.key)), sql.SQL("now()")
        )
    )


# Sorting an import's profile rows by key in memory instead of on disk: 100k rows need ~10 MB.
# Scoped to the function's own statements (a function-level SET), and only a limit, not an
# allocation: a one-row signup uses a few kB.
SORT_MEMORY = "32MB"


FALLBACK_CHUNK = (
    1000  # rows per set-based retry after a failed set; row by row only inside a failing chunk
)


def insert_chunk(config: Config, shape: Shape, operation: str, once: bool = False) -> sql.Composed:
    """Flush v_chunk (an array of auth rows): one set-based INSERT, or row by row if it fails,
    recording each row that fails (`once`: see `record_failure`). Needs r and v_chunk declared."""
    skey = ident(config.source.key)
    columns, chunk_values = profile_columns(config, shape, ident("n"))
    _, row_values = profile_columns(config, shape, sql.SQL("r"))
    chunk_where, conflict = unless_linked(config, shape, sql.SQL("n.{}").format(skey))
    row_where, _ = unless_linked(config, shape, sql.SQL("r.{}").format(skey))
    return sql.SQL(
        "BEGIN\n"
        "  INSERT INTO {target} ({columns})\n"
        "  SELECT {chunk_values} FROM unnest(v_chunk) n {chunk_where}\n"
        "  {conflict};\n"
        "EXCEPTION WHEN OTHERS THEN\n"
        "  FOREACH r IN ARRAY v_chunk LOOP\n"
        "    BEGIN\n"
        "      INSERT INTO {target} ({columns}) SELECT {row_values} {row_where}\n"
        "      {conflict};\n"
        "    EXCEPTION WHEN OTHERS THEN\n"
        "      {record}\n"
        "    END;\n"
        "  END LOOP;\n"
        "END;\n"
        "v_chunk := '{{}}';"
    ).format(
        target=target(config),
        columns=columns,
        chunk_values=chunk_values,
        chunk_where=chunk_where,
        row_values=row_values,
        row_where=row_where,
        conflict=conflict,
        record=record_failure(config, sql.SQL("r.{}").format(skey), operation, once),
    )


def insert_rows_declarations(config: Config) -> sql.Composed:
    """The variables `insert_rows` (and `record_failure`) use, for a DECLARE section."""
    return sql.SQL(
        "  r {source}%ROWTYPE;\n"
        "  v_chunk {source}[] := '{{}}';\n"
        "  v_state text;\n"
        "  v_message text;\n"
        "  v_detail text;\n"
        "  v_context text;\n"
        "  v_constraint text;\n"
    ).format(source=source(config))


def insert_rows(
    config: Config,
    shape: Shape,
    set_from: sql.Composable,
    order: sql.Composable,
    rows: sql.Composable,
    operation: str,
    once: bool = False,
    chunk_size: int = FALLBACK_CHUNK,
) -> sql.Composed:
    """PL/pgSQL: the profiles of auth rows `n` in `set_from` (in `order`) in one set-based INSERT; if a row
    breaks it, `rows` (the same auth rows, in key order) again in chunks, row by row only inside
    a chunk that fails, each failing row recorded (`once`: see `record_failure`). Needs
    `insert_rows_declarations` in the block's DECLARE section."""
    columns, set_values = profile_columns(config, shape, ident("n"))
    where, conflict = unless_linked(config, shape, sql.SQL("n.{}").format(ident(config.source.key)))
    chunk = insert_chunk(config, shape, operation, once)
    return sql.SQL(
        "BEGIN\n"
        "  INSERT INTO {target} ({columns})\n"
        "  SELECT {set_values} FROM {set_from} {where} {order}\n"
        "  {conflict};\n"
        "EXCEPTION WHEN lock_not_available THEN\n"
        "  -- the profile table is locked (a migration): record every row now, not a wait per row\n"
        "  FOR r IN {rows} LOOP\n"
        "    {record}\n"
        "  END LOOP;\n"
        "WHEN OTHERS THEN\n"
        "  -- a row broke the set: again in chunks, row by row only inside a chunk that fails\n"
        "  FOR r IN {rows} LOOP\n"
        "    v_chunk := v_chunk || r;\n"
        "    IF cardinality(v_chunk) >= {chunk_size} THEN\n"
        "      {chunk}\n"
        "    END IF;\n"
        "  END LOOP;\n"
        "  IF cardinality(v_chunk) > 0 THEN\n"
        "    {chunk}\n"
        "  END IF;\n"
        "END;"
    ).format(
        target=target(config),
        columns=columns,
        set_values=set_values,
        set_from=set_from,
        where=where,
        order=order,
        conflict=conflict,
        rows=rows,
        record=record_failure(
            config, sql.SQL("r.{}").format(ident(config.source.key)), operation, once
        ),
        chunk_size=sql.Literal(chunk_size),
        chunk=chunk,
    )


def app_search_path(config: Config) -> str:
    """The search_path the app's triggers on the profile table see during the sync's writes:
    the configured schemas, then pg_temp last (a temporary object can never shadow a name;
    pg_catalog stays implicitly first)."""
    names = [sql.Identifier(name).as_string(None) for name in config.profile_search_path]
    return ", ".join([*names, "pg_temp"])


def trigger_function(config: Config, shape: Shape) -> Step:
    """SECURITY DEFINER with search_path = '' and every name qualified, as Supabase's linter wants."""
    skey = ident(config.source.key)
    new_rows = sql.SQL("{} n").format(ident(TRANSITION))
    in_order = sql.SQL("ORDER BY n.{}").format(skey)
    body = sql.SQL(
        "\nDECLARE\n"
        "{declarations}"
        "BEGIN\n"
        "  -- the app's own triggers on the profile table resolve names as the app's writes do;\n"
        "  -- every name here is qualified, and the function's SET restores '' when it returns\n"
        "  PERFORM pg_catalog.set_config('search_path', {app_path}, true);\n"
        "  IF TG_OP = 'INSERT' THEN\n"
        "    {insert_rows}\n"
        "  ELSIF TG_OP = 'UPDATE' THEN\n"
        "    BEGIN\n"
        "      {on_update}\n"
        "    EXCEPTION WHEN OTHERS THEN\n"
        "      {record_update}\n"
        "    END;\n"
        "  ELSIF TG_OP = 'DELETE' THEN\n"
        "    BEGIN\n"
        "      {on_delete}\n"
        "    EXCEPTION WHEN OTHERS THEN\n"
        "      {record_delete}\n"
        "    END;\n"
        "  END IF;\n"
        "  RETURN NULL;\n"
        "END;\n"
    ).format(
        declarations=insert_rows_declarations(config),
        app_path=sql.Literal(app_search_path(config)),
        insert_rows=insert_rows(
            config,
            shape,
            new_rows,
            in_order,
            sql.SQL("SELECT * FROM {} {}").format(new_rows, in_order),
            "INSERT",
        ),
        on_update=_on_update(config, shape),
        record_update=record_failure(config, sql.SQL("NEW.{}").format(skey), "UPDATE"),
        on_delete=_on_delete(config, shape),
        record_delete=record_failure(config, sql.SQL("OLD.{}").format(skey), "DELETE"),
    )
    return Step(
        f"sync function: keeps {config.target.display} in step with {config.source.display}; "
        "a failed profile write is recorded, never raised",
        sql.SQL(
            "CREATE OR REPLACE FUNCTION {fn}()\n"
            "RETURNS trigger\n"
            "LANGUAGE plpgsql\n"
            "SECURITY DEFINER\n"
            "SET search_path = ''\n"
            "SET work_mem = {work_mem}\n"
            "SET lock_timeout = {lock_timeout}\n"
            "AS {body}"
        ).format(
            fn=function(config),
            body=dollar_quoted(body),
            work_mem=sql.Literal(SORT_MEMORY),
            lock_timeout=sql.Literal(config.signup_lock_timeout),
        ),
    )
