"""The sync function and its triggers: profiles follow the auth row through its whole life, and a
profile write that fails never fails the Auth server's statement; it is recorded instead.

One SECURITY DEFINER function serves three triggers (so rollback's DROP FUNCTION … CASCADE still
removes everything, and there is one function to secure):

- INSERT, once per statement, with the inserted rows as a transition table: one set-based
  `INSERT … SELECT`, so a 100k-row import costs one statement, not 100k trigger calls. Rows go in
  key order (neighbouring keys share index pages: measured ~12% faster for an import than random
  order). If that statement fails, the rows are retried in set-based chunks of 1,000, and row by
  row only inside a chunk that fails, so one bad row costs only its own profile.
- UPDATE, per row, only `UPDATE OF` the auth columns the mapping reads and only `WHEN` a mapped
  value (or deleted_at) really changed: a sign-in never calls the function at all.
- DELETE, per row, only when the profile table has a soft-delete column and no foreign key that
  already cascades: the profile is marked deleted, never removed.

Every write runs in its own exception block. A failure is written to the failures table (user,
operation, SQLSTATE, message, detail, time) for `ghostguard repair`; if even that write fails, a
WARNING goes to the server log. `EXCEPTION WHEN OTHERS THEN RETURN NEW` alone would hide the
new ghost; this records it.
"""

from __future__ import annotations

from psycopg import sql

from ghostguard.catalog import ForeignKey, Shape
from ghostguard.config import ColumnSource, Config
from ghostguard.sqlparts import (
    DOLLAR_TAG,
    Step,
    closed_to_api_roles,
    failures,
    function,
    ident,
    profile_columns,
    render,
    source,
    target,
    value,
)

TRANSITION = "ghostguard_new_rows"


def failures_table(config: Config, shape: Shape) -> list[Step]:
    """Where failed profile writes are recorded; closed to API roles like the audit log."""
    table = failures(config)
    return [
        Step(
            "profile sync failures: recorded by the trigger instead of failing a signup",
            sql.SQL(
                "CREATE TABLE IF NOT EXISTS {} (\n"
                "  id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,\n"
                "  user_id text NOT NULL,\n"
                "  operation text NOT NULL,\n"
                "  sqlstate text,\n"
                "  message text,\n"
                "  detail text,\n"
                "  occurred_at timestamptz NOT NULL DEFAULT now(),\n"
                "  attempts integer NOT NULL DEFAULT 0,\n"
                "  resolved_at timestamptz,\n"
                "  resolution text\n"
                ")"
            ).format(table),
        ),
        Step(
            "unresolved failures are looked up by user",
            sql.SQL(
                "CREATE INDEX IF NOT EXISTS {} ON {} (user_id) WHERE resolved_at IS NULL"
            ).format(ident(f"{config.failures.table}_unresolved"), table),
        ),
        *closed_to_api_roles(
            table, shape, "failure rows hold user ids and error texts: not for API roles"
        ),
    ]


def _record_failure(config: Config, key: sql.Composable, operation: str) -> sql.Composed:
    """Statements for an EXCEPTION handler: record what failed, or at least log it."""
    return sql.SQL(
        "GET STACKED DIAGNOSTICS v_state = RETURNED_SQLSTATE, v_message = MESSAGE_TEXT,\n"
        "                       v_detail = PG_EXCEPTION_DETAIL;\n"
        "BEGIN\n"
        "  INSERT INTO {failures} (user_id, operation, sqlstate, message, detail)\n"
        "  VALUES ({key}::text, {op}, v_state, v_message, NULLIF(v_detail, ''));\n"
        "EXCEPTION WHEN OTHERS THEN\n"
        "  RAISE WARNING 'ghostguard: % profile sync for % failed (%: %) and could not be recorded: %',\n"
        "    {op}, {key}, v_state, v_message, SQLERRM;\n"
        "END;"
    ).format(failures=failures(config), key=key, op=sql.Literal(operation))


def _touch(shape: Shape) -> sql.Composable:
    """`, updated_at = now()` when the profile table has an updated_at ghostguard does not map."""
    if not shape.target_updated_at:
        return sql.SQL("")
    return sql.SQL(", {} = now()").format(ident(shape.target_updated_at))


def _following(config: Config) -> dict[str, ColumnSource]:
    return {col: src for col, src in config.mapping.items() if src.follow_updates}


def _upsert_set(config: Config, shape: Shape) -> list[str]:
    """Profile columns an update may change: the following mapped columns and the soft delete."""
    columns = list(_following(config))
    soft = shape.target_soft_delete
    if soft and shape.source_soft_delete and soft not in config.mapping:
        columns.append(soft)
    return columns


def upsert_profile(
    config: Config, shape: Shape, row: sql.Composable, where: sql.Composable | None = None
) -> sql.Composed:
    """Create the profile from an auth row, or bring its following columns up to date (writing
    only when something differs, so a no-op update leaves no dead row).

    `row` is NEW in the trigger; with `where`, it is the alias of the auth table filtered by it.
    """
    columns, values = profile_columns(config, shape, row)
    rows = (
        sql.SQL("VALUES ({})").format(values)
        if where is None
        else sql.SQL("SELECT {} FROM {} {} WHERE {}").format(values, source(config), row, where)
    )
    changing = _upsert_set(config, shape)
    if not changing:
        conflict: sql.Composable = sql.SQL("DO NOTHING")
    else:
        sets = sql.SQL(", ").join(sql.SQL("{0} = EXCLUDED.{0}").format(ident(c)) for c in changing)
        conflict = sql.SQL(
            "DO UPDATE SET {sets}{touch}\n  WHERE ({old}) IS DISTINCT FROM ({new})"
        ).format(
            sets=sets,
            touch=_touch(shape),
            old=sql.SQL(", ").join(sql.SQL("pu.{}").format(ident(c)) for c in changing),
            new=sql.SQL(", ").join(sql.SQL("EXCLUDED.{}").format(ident(c)) for c in changing),
        )
    return sql.SQL(
        "INSERT INTO {target} AS pu ({columns})\n  {rows}\n  ON CONFLICT ({key}) {conflict}"
    ).format(
        target=target(config),
        columns=columns,
        rows=rows,
        key=ident(config.target.key),
        conflict=conflict,
    )


def mark_deleted(
    config: Config, shape: Shape, key: sql.Composable, at: sql.Composable
) -> sql.Composed:
    """Soft-delete one profile (only when it is not marked yet). Needs a soft-delete column."""
    assert shape.target_soft_delete, "mark_deleted needs the profile's soft-delete column"
    return sql.SQL(
        "UPDATE {target} SET {soft} = {at}{touch} WHERE {key} = {value} AND {soft} IS NULL"
    ).format(
        target=target(config),
        soft=ident(shape.target_soft_delete),
        at=at,
        touch=_touch(shape),
        key=ident(config.target.key),
        value=key,
    )


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


def _insert_chunk(config: Config, shape: Shape) -> sql.Composed:
    """Flush v_chunk (an array of auth rows): one set-based INSERT, or row by row if it fails."""
    columns, chunk_values = profile_columns(config, shape, ident("n"))
    _, row_values = profile_columns(config, shape, sql.SQL("r"))
    return sql.SQL(
        "BEGIN\n"
        "  INSERT INTO {target} ({columns})\n"
        "  SELECT {chunk_values} FROM unnest(v_chunk) n\n"
        "  ON CONFLICT ({key}) DO NOTHING;\n"
        "EXCEPTION WHEN OTHERS THEN\n"
        "  FOREACH r IN ARRAY v_chunk LOOP\n"
        "    BEGIN\n"
        "      INSERT INTO {target} ({columns}) VALUES ({row_values})\n"
        "      ON CONFLICT ({key}) DO NOTHING;\n"
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
        row_values=row_values,
        key=ident(config.target.key),
        record=_record_failure(config, sql.SQL("r.{}").format(ident(config.source.key)), "INSERT"),
    )


def trigger_function(config: Config, shape: Shape) -> Step:
    """SECURITY DEFINER with search_path = '' and every name qualified, as Supabase's linter wants."""
    columns, set_values = profile_columns(config, shape, ident("n"))
    skey = ident(config.source.key)
    chunk = _insert_chunk(config, shape)
    body = sql.SQL(
        "\nDECLARE\n"
        "  r {source}%ROWTYPE;\n"
        "  v_chunk {source}[] := '{{}}';\n"
        "  v_state text;\n"
        "  v_message text;\n"
        "  v_detail text;\n"
        "BEGIN\n"
        "  IF TG_OP = 'INSERT' THEN\n"
        "    BEGIN\n"
        "      INSERT INTO {target} ({columns})\n"
        "      SELECT {set_values} FROM {transition} n ORDER BY n.{skey}\n"
        "      ON CONFLICT ({key}) DO NOTHING;\n"
        "    EXCEPTION WHEN OTHERS THEN\n"
        "      -- a row broke the set: again in chunks, row by row only inside a chunk that fails\n"
        "      FOR r IN SELECT * FROM {transition} n ORDER BY n.{skey} LOOP\n"
        "        v_chunk := v_chunk || r;\n"
        "        IF cardinality(v_chunk) >= {chunk_size} THEN\n"
        "          {chunk}\n"
        "        END IF;\n"
        "      END LOOP;\n"
        "      IF cardinality(v_chunk) > 0 THEN\n"
        "        {chunk}\n"
        "      END IF;\n"
        "    END;\n"
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
        source=source(config),
        target=target(config),
        columns=columns,
        set_values=set_values,
        transition=ident(TRANSITION),
        key=ident(config.target.key),
        skey=skey,
        chunk_size=sql.Literal(FALLBACK_CHUNK),
        chunk=chunk,
        on_update=_on_update(config, shape),
        record_update=_record_failure(config, sql.SQL("NEW.{}").format(skey), "UPDATE"),
        on_delete=_on_delete(config, shape),
        record_delete=_record_failure(config, sql.SQL("OLD.{}").format(skey), "DELETE"),
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
            "AS {tag}{body}{tag}"
        ).format(fn=function(config), tag=DOLLAR_TAG, body=body, work_mem=sql.Literal(SORT_MEMORY)),
    )


def insert_trigger(config: Config) -> Step:
    return Step(
        f"the trigger the guide names, once per INSERT statement on {config.source.display} "
        "(set-based: an import of many rows is one profile statement)",
        sql.SQL(
            "CREATE OR REPLACE TRIGGER {name}\n"
            "  AFTER INSERT ON {source}\n"
            "  REFERENCING NEW TABLE AS {transition}\n"
            "  FOR EACH STATEMENT EXECUTE FUNCTION {fn}()"
        ).format(
            name=ident(config.trigger_name),
            source=source(config),
            transition=ident(TRANSITION),
            fn=function(config),
        ),
    )


def watched_columns(config: Config, shape: Shape) -> list[str]:
    """Auth columns whose change can change a profile: what the UPDATE trigger listens to."""
    columns: list[str] = []
    for src in _following(config).values():
        name = src.column if src.column is not None else src.metadata_column
        if name not in columns:
            columns.append(name)
    if shape.source_soft_delete and "deleted_at" not in columns:
        columns.append("deleted_at")
    return columns


def _changed(config: Config, shape: Shape) -> sql.Composable:
    """True when a value the profile takes from the row differs between OLD and NEW."""
    tests: list[sql.Composable] = [
        sql.SQL("({}) IS DISTINCT FROM ({})").format(
            value(src, sql.SQL("OLD"), shape), value(src, sql.SQL("NEW"), shape)
        )
        for src in _following(config).values()
    ]
    if shape.source_soft_delete:
        tests.append(sql.SQL("OLD.deleted_at IS DISTINCT FROM NEW.deleted_at"))
    return sql.SQL("\n     OR ").join(tests)


def update_trigger(config: Config, shape: Shape) -> Step | None:
    """None when no profile column follows updates (and there is no soft delete to follow)."""
    columns = watched_columns(config, shape)
    if not columns:
        return None
    return Step(
        f"profiles follow updates of {config.source.display}: only UPDATE OF the mapped columns, "
        "only WHEN a mapped value changed (a sign-in does no profile work)",
        sql.SQL(
            "CREATE OR REPLACE TRIGGER {name}\n"
            "  AFTER UPDATE OF {columns} ON {source}\n"
            "  FOR EACH ROW\n"
            "  WHEN ({changed})\n"
            "  EXECUTE FUNCTION {fn}()"
        ).format(
            name=ident(config.update_trigger_name),
            columns=sql.SQL(", ").join(map(ident, columns)),
            source=source(config),
            changed=_changed(config, shape),
            fn=function(config),
        ),
    )


def delete_trigger(config: Config, shape: Shape) -> Step | None:
    """None when the profile's foreign key already acts on delete, or there is nothing to mark."""
    if shape.fk_handles_deletes or not shape.target_soft_delete:
        return None
    return Step(
        f"a hard-deleted {config.source.display} row marks its profile deleted (never removes it)",
        sql.SQL(
            "CREATE OR REPLACE TRIGGER {name}\n"
            "  AFTER DELETE ON {source}\n"
            "  FOR EACH ROW EXECUTE FUNCTION {fn}()"
        ).format(
            name=ident(config.delete_trigger_name), source=source(config), fn=function(config)
        ),
    )


def expected_triggers(config: Config, shape: Shape) -> list[str]:
    """The names of the triggers `triggers` creates for this config and these tables."""
    optional = (
        (config.update_trigger_name, update_trigger(config, shape)),
        (config.delete_trigger_name, delete_trigger(config, shape)),
    )
    return [config.trigger_name, *(name for name, step in optional if step is not None)]


def triggers(config: Config, shape: Shape) -> list[Step]:
    return [
        step
        for step in (
            insert_trigger(config),
            update_trigger(config, shape),
            delete_trigger(config, shape),
        )
        if step is not None
    ]


# -- repair: retry recorded failures once their cause is fixed ------------------------------------


def unresolved_users(config: Config) -> Step:
    return Step(
        "repair: users with unresolved profile sync failures, oldest first",
        sql.SQL(
            "SELECT user_id, count(*), min(occurred_at) FROM {} WHERE resolved_at IS NULL "
            "GROUP BY user_id ORDER BY min(occurred_at)"
        ).format(failures(config)),
    )


def _key_param(shape: Shape) -> sql.Composable:
    return sql.SQL("CAST(%(user)s AS {})").format(sql.SQL(shape.source_key_type))


def auth_row_state(config: Config, shape: Shape) -> Step:
    """Params: user. One row (soft-deleted?) when the auth row exists, none when it is gone."""
    deleted = sql.SQL("au.deleted_at IS NOT NULL") if shape.source_soft_delete else sql.SQL("false")
    return Step(
        "repair: does the auth row still exist, and is it soft-deleted?",
        sql.SQL("SELECT {} FROM {} au WHERE au.{} = {}").format(
            deleted, source(config), ident(config.source.key), _key_param(shape)
        ),
    )


def repair_upsert(config: Config, shape: Shape) -> Step:
    """Params: user."""
    where = sql.SQL("au.{} = {}").format(ident(config.source.key), _key_param(shape))
    return Step(
        "repair: create or bring up to date the user's profile from the auth row as it is now",
        upsert_profile(config, shape, ident("au"), where),
    )


def repair_mark_deleted(config: Config, shape: Shape) -> Step:
    """Params: user. Marked deleted when the auth row was soft-deleted, else now."""
    at = (
        sql.SQL("coalesce((SELECT au.deleted_at FROM {} au WHERE au.{} = {}), now())").format(
            source(config), ident(config.source.key), _key_param(shape)
        )
        if shape.source_soft_delete
        else sql.SQL("now()")
    )
    return Step(
        "repair: the auth row is deleted or soft-deleted: mark the profile deleted",
        mark_deleted(config, shape, _key_param(shape), at),
    )


def _count_attempt(config: Config, title: str, changes: str) -> Step:
    """One more attempt on every unresolved failure of a user (param: user), plus `changes`."""
    return Step(
        title,
        sql.SQL(
            "UPDATE {} SET attempts = attempts + 1, {} WHERE user_id = %(user)s AND resolved_at IS NULL"
        ).format(failures(config), sql.SQL(changes)),
    )


def resolve_failures(config: Config) -> Step:
    """Params: user, resolution."""
    return _count_attempt(
        config,
        "repair: mark the user's failures resolved",
        "resolved_at = now(), resolution = %(resolution)s",
    )


def failed_again(config: Config) -> Step:
    """Params: user, sqlstate, message."""
    return _count_attempt(
        config,
        "repair: the retry failed too: count the attempt and keep the newest error",
        "sqlstate = %(sqlstate)s, message = %(message)s",
    )


def failure_of_user(config: Config) -> Step:
    """Params: user. The newest recorded failure of one user."""
    return Step(
        "the newest profile sync failure of a user",
        sql.SQL(
            "SELECT sqlstate, message FROM {} WHERE user_id = %(user)s ORDER BY id DESC LIMIT 1"
        ).format(failures(config)),
    )


def unresolved_count(config: Config) -> Step:
    return Step(
        "unresolved profile sync failures",
        sql.SQL("SELECT count(*) FROM {} WHERE resolved_at IS NULL").format(failures(config)),
    )


def failure_counts(config: Config) -> Step:
    """Unresolved failures and failures recorded in the last hour, in one pass over the table."""
    return Step(
        "profile sync failures: unresolved, and recorded in the last hour",
        sql.SQL(
            "SELECT count(*) FILTER (WHERE resolved_at IS NULL),\n"
            "       count(*) FILTER (WHERE occurred_at > now() - interval '1 hour')\n"
            "FROM {}"
        ).format(failures(config)),
    )


def mark_orphans_deleted(config: Config, shape: Shape) -> Step:
    """Profiles whose auth row is gone get deleted_at; nothing is ever removed."""
    assert shape.target_soft_delete, "marking orphans needs the profile's soft-delete column"
    soft = ident(shape.target_soft_delete)
    return Step(
        "orphans: mark profiles whose auth user no longer exists as deleted",
        sql.SQL(
            "UPDATE {target} pu SET {soft} = now(){touch}\n"
            "WHERE pu.{soft} IS NULL\n"
            "  AND NOT EXISTS (SELECT 1 FROM {source} au WHERE au.{skey} = pu.{tkey})"
        ).format(
            target=target(config),
            soft=soft,
            touch=_touch(shape),
            source=source(config),
            skey=ident(config.source.key),
            tkey=ident(config.target.key),
        ),
    )


def fix_blocking_foreign_key(fk: ForeignKey, config: Config) -> str:
    """SQL that makes a foreign key to the auth table stop failing user deletes.

    Nullable columns get ON DELETE SET NULL (the row stays, unlinked), others ON DELETE CASCADE.
    NOT VALID then VALIDATE: the ADD takes its lock briefly, the check runs without blocking writes.
    """
    action = sql.SQL("SET NULL" if fk.nullable else "CASCADE")
    table = ident(fk.schema, fk.table)
    name = ident(fk.name)
    steps = [
        Step(
            f"{fk.display}: deleting a user fails while this key says {fk.on_delete}",
            sql.SQL(
                "ALTER TABLE {table} DROP CONSTRAINT {name},\n"
                "  ADD CONSTRAINT {name} FOREIGN KEY ({cols}) REFERENCES {source} ({refs})\n"
                "  ON DELETE {action} NOT VALID"
            ).format(
                table=table,
                name=name,
                cols=sql.SQL(", ").join(map(ident, fk.columns)),
                source=source(config),
                refs=sql.SQL(", ").join(map(ident, fk.ref_columns)),
                action=action,
            ),
        ),
        Step(
            "check the existing rows without blocking writes",
            sql.SQL("ALTER TABLE {} VALIDATE CONSTRAINT {}").format(table, name),
        ),
    ]
    return render(steps)
