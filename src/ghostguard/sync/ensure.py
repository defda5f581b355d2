"""`ensure_profile()`: the app-side fallback. A signed-in user calls it through the Data API
(`supabase.rpc('ensure_profile')`) and gets their own missing profile, made from the same mapping
as the trigger's, with a failure recorded the same way, never for anybody else. Every call that
actually creates a profile is a ghost the trigger, the backfill and the monitor all missed: it is
written to the audit log ("healed_on_read"), which the monitor counts.

Only the caller's own row: the user is `auth.uid()` (the JWT's `sub`), and the JWT must name a
live session of that user in auth.sessions (`session_id`, which every access token the Auth
server issues carries): claims made up without a session reach nothing. anon and PUBLIC may not
execute it."""

from __future__ import annotations

from psycopg import sql

from ghostguard.adopt.existing import MANAGED_COMMENT, MANAGED_PATTERN
from ghostguard.catalog import Shape
from ghostguard.config import Config
from ghostguard.sqlparts import Step, audit, do_block, dollar_quoted, ident, source, target
from ghostguard.sync.failures import record_failure
from ghostguard.sync.mapping import profile_columns

FUNCTION = "ensure_profile"
HEALED_JOB = "ensure_profile"
HEALED_STATUS = "healed_on_read"


def name(config: Config) -> sql.Identifier:
    return sql.Identifier(config.function_schema, FUNCTION)


def ensure_function(config: Config, shape: Shape) -> list[Step]:
    columns, values = profile_columns(config, shape, sql.SQL("au"))
    body = sql.SQL(
        "\nDECLARE\n"
        "  me uuid := auth.uid();\n"
        "  v_state text;\n"
        "  v_message text;\n"
        "  v_detail text;\n"
        "  v_context text;\n"
        "  v_constraint text;\n"
        "BEGIN\n"
        "  IF me IS NULL OR NOT EXISTS (\n"
        "       SELECT 1 FROM auth.sessions s\n"
        "       WHERE s.id = NULLIF(auth.jwt() ->> 'session_id', '')::uuid AND s.user_id = me) THEN\n"
        "    RAISE EXCEPTION 'ensure_profile: only a signed-in user, for their own profile'\n"
        "      USING ERRCODE = 'insufficient_privilege';\n"
        "  END IF;\n"
        "  IF EXISTS (SELECT 1 FROM {target} p WHERE p.{tkey} = me) THEN\n"
        "    RETURN false;\n"
        "  END IF;\n"
        "  BEGIN\n"
        "    INSERT INTO {target} ({columns})\n"
        "    SELECT {values} FROM {source} au WHERE au.{skey} = me AND au.deleted_at IS NULL\n"
        "    ON CONFLICT DO NOTHING;\n"
        "    IF NOT FOUND THEN\n"
        "      RETURN false;\n"
        "    END IF;\n"
        "    INSERT INTO {audit} (job_name, status, records_affected, completed_at, details)\n"
        "    VALUES ({job}, {status}, 1, clock_timestamp(), pg_catalog.jsonb_build_object('user_id', me));\n"
        "    RETURN true;\n"
        "  EXCEPTION WHEN OTHERS THEN\n"
        "    {record}\n"
        "    RETURN false;\n"
        "  END;\n"
        "END;\n"
    ).format(
        target=target(config),
        tkey=ident(config.target.key),
        skey=ident(config.source.key),
        source=source(config),
        columns=columns,
        values=values,
        audit=audit(config),
        job=sql.Literal(HEALED_JOB),
        status=sql.Literal(HEALED_STATUS),
        record=record_failure(config, sql.SQL("me"), "ENSURE"),
    )
    fn = name(config)
    return [
        Step(
            "ensure_profile(): a signed-in user's own missing profile, on first read",
            sql.SQL(
                "CREATE OR REPLACE FUNCTION {fn}()\nRETURNS boolean\nLANGUAGE plpgsql\n"
                "SECURITY DEFINER\nSET search_path = ''\nAS {body}"
            ).format(fn=fn, body=dollar_quoted(body)),
        ),
        Step(
            "say who manages it (rollback removes it)",
            sql.SQL("COMMENT ON FUNCTION {fn}() IS {text}").format(
                fn=fn,
                text=sql.Literal(
                    f"{MANAGED_COMMENT} creates the calling user's missing "
                    f"{config.target.display} row (healed on read)"
                ),
            ),
        ),
        Step(
            "nobody may call it but signed-in users (not PUBLIC, not anon)",
            sql.SQL("REVOKE ALL ON FUNCTION {fn}() FROM PUBLIC").format(fn=fn),
        ),
        Step(
            "signed-in users call it through the Data API",
            do_block(
                sql.SQL(
                    "BEGIN\n"
                    "  IF EXISTS (SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = 'anon') THEN\n"
                    "    REVOKE ALL ON FUNCTION {fn}() FROM anon;\n"
                    "  END IF;\n"
                    "  IF EXISTS (SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = 'authenticated')"
                    " THEN\n"
                    "    GRANT EXECUTE ON FUNCTION {fn}() TO authenticated;\n"
                    "  END IF;\n"
                    "END"
                ).format(fn=fn)
            ),
        ),
    ]


def drop_if_ours(config: Config) -> Step:
    """Rollback: ensure_profile() goes only when ghostguard installed it (its comment)."""
    fn = name(config)
    return Step(
        "remove ensure_profile() if ghostguard installed it",
        do_block(
            sql.SQL(
                "\nDECLARE f regprocedure := pg_catalog.to_regprocedure({signature});\nBEGIN\n"
                "  IF f IS NOT NULL\n"
                "     AND coalesce(pg_catalog.obj_description(f, 'pg_proc'), '') LIKE {ours} THEN\n"
                "    DROP FUNCTION {fn}();\n"
                "  END IF;\n"
                "END\n"
            ).format(
                signature=sql.Literal(fn.as_string(None) + "()"),
                ours=sql.Literal(MANAGED_PATTERN),
                fn=fn,
            )
        ),
    )


def healed_count(config: Config) -> sql.Composed:
    """Profiles ensure_profile() created: ghosts every other layer missed (the monitor's gauge)."""
    return sql.SQL(
        "SELECT count(*) FROM {audit} WHERE job_name = {job} AND status = {status}"
    ).format(audit=audit(config), job=sql.Literal(HEALED_JOB), status=sql.Literal(HEALED_STATUS))
