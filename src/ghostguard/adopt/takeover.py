"""Taking over the app's own trigger on the auth table, and giving it back.

apply never replaces, and never installs beside, a trigger or function it did not install: a
trigger named like one of ghostguard's, a function with ghostguard's function name, or any trigger
whose function writes the profile table. It refuses (exit 3, nothing changed) unless the config
names the trigger under `[adopt] triggers`. Then, in the install transaction:

1. the full definitions of the adopted triggers and of their functions (`pg_get_triggerdef`,
   `pg_get_functiondef`, enabled state, owner, ACL) are saved in the audit log, once;
2. their functions are dropped with CASCADE, which removes the triggers (a non-owner of the auth
   table, like Supabase's `postgres`, may not DROP TRIGGER there, but may drop its own function).

rollback (and the rollback migration) runs one DO block after removing ghostguard's function: it
recreates the saved functions and triggers as they were, puts back owner, EXECUTE grants and
enabled state, and marks the record restored. With nothing adopted it does nothing.
"""

from __future__ import annotations

from dataclasses import dataclass

import psycopg
from psycopg import sql

from ghostguard import catalog
from ghostguard.adopt import translate
from ghostguard.adopt.existing import MANAGED_PATTERN, AuthTrigger, auth_triggers
from ghostguard.config import Config
from ghostguard.errors import Refused
from ghostguard.sqlparts import Step, audit, do_block, name_literal, source

ADOPT_JOB = "adopt_app_sync"


@dataclass(frozen=True)
class InTheWay:
    """A trigger (or a bare function) apply would replace or run beside, and why."""

    trigger: AuthTrigger | None
    function: str
    why: str

    @property
    def display(self) -> str:
        if self.trigger is None:
            return f"function {self.function} ({self.why})"
        return f"trigger {self.trigger.name} (calls {self.function}; {self.why})"


def in_the_way(
    conn: psycopg.Connection, config: Config, triggers: list[AuthTrigger] | None = None
) -> list[InTheWay]:
    """What on the auth table is the app's and would be replaced or doubled by apply
    (`triggers`: the auth table's triggers, when the caller has read them already)."""
    found: list[InTheWay] = []
    # While ghostguard's sync is installed, a trigger of its name pointing elsewhere is drift
    # that apply mends (scan and doctor report it); before, it is the app's own.
    installed = is_ghostguards(conn, config)
    for t in auth_triggers(conn, config.source) if triggers is None else triggers:
        if t.ghostguards:
            continue
        whys = [
            why
            for why, holds in (
                (
                    "named like ghostguard's trigger",
                    t.name in config.trigger_names and not installed,
                ),
                ("ghostguard's function name", t.calls(config)),
                (f"writes {config.target.display}", t.writes_profiles(config)),
            )
            if holds
        ]
        if whys:
            found.append(InTheWay(t, t.function, ", ".join(whys)))
    ours = catalog.function_state(conn, config)
    called = any(w.trigger is not None and w.trigger.calls(config) for w in found)
    if ours is not None and not called and not installed:
        found.append(InTheWay(None, config.function_display, "ghostguard's function name"))
    return found


def is_ghostguards(conn: psycopg.Connection, config: Config) -> bool:
    row = conn.execute(
        "SELECT coalesce(pg_catalog.obj_description(pg_catalog.to_regprocedure("
        "pg_catalog.format('%%I.%%I()', %s::text, %s::text)), 'pg_proc'), '') LIKE %s",
        (config.function_schema, config.function_name, MANAGED_PATTERN),
    ).fetchone()
    return bool(row and row[0])


def adopt_fix(names: list[str]) -> str:
    """How to take over the app's triggers `names`: the config line, or init to translate them."""
    listed = ", ".join(f'"{name}"' for name in names)
    return (
        f"add [adopt] triggers = [{listed}] to ghostguard.toml (`ghostguard init --force` also "
        "translates the function into the mapping), then `ghostguard apply --yes`"
    )


def refuse_unadopted(conn: psycopg.Connection, config: Config, command: str) -> list[InTheWay]:
    """Refuse (nothing changed) while something in the way is not adopted; else return what
    will be taken over."""
    every = auth_triggers(conn, config.source)
    found = in_the_way(conn, config, every)
    lone = [w for w in found if w.trigger is None]
    if lone:
        raise Refused(
            f"{command} refused: {lone[0].display} exists and ghostguard did not install it; "
            "nothing was changed. Give ghostguard's function another name ([trigger] function "
            "in ghostguard.toml) or drop that function yourself"
        )
    unadopted = [w for w in found if w.trigger and w.trigger.name not in config.adopt]
    if unadopted:
        raise Refused(
            f"{command} refused: {'; '.join(w.display for w in unadopted)} on "
            f"{config.source.display} was not installed by ghostguard; nothing was changed. "
            "To take it over (saved, and restored by `ghostguard rollback`), "
            + adopt_fix([w.trigger.name for w in unadopted if w.trigger])
        )
    _refuse_other_work(config, found, every)
    return found


def refuse_lossy(conn: psycopg.Connection, config: Config, command: str) -> None:
    """Adoption keeps all of the original's behaviour or does not happen: refuse (nothing
    changed) while the mapping would drop something an adopted trigger does (a column it writes
    and the mapping does not, one it keeps in step on UPDATE that the mapping sets once). A
    privilege the original read from user metadata is the exception: never carried over."""
    if not config.adopt:
        return
    lost = translate.adoption(conn, config).lost(config)
    if lost:
        raise Refused(
            f"{command} refused: taking over {', '.join(config.adopt)} would drop what it does: "
            f"{'; '.join(lost)}; nothing was changed. `ghostguard init --force` proposes the "
            "mapping that keeps it, or map those columns in ghostguard.toml"
        )


def _refuse_other_work(config: Config, found: list[InTheWay], every: list[AuthTrigger]) -> None:
    """An adopted function that also writes other tables, or that triggers ghostguard does not
    adopt also call: dropping it would lose that work."""
    adopted = [w.trigger for w in found if w.trigger is not None]
    for t in adopted:
        other = t.other_work(config)
        if other:
            raise Refused(
                f"adoption refused: {t.function} (trigger {t.name}) also {'; '.join(other)}; "
                "ghostguard would not do that work. Move it into its own trigger first, then "
                "adopt this one; nothing was changed"
            )
        sharing = [s.name for s in every if s.function == t.function and s.name not in config.adopt]
        if sharing:
            raise Refused(
                f"adoption refused: {t.function} is also called by trigger "
                f"{', '.join(sharing)}; adopt those too ([adopt] triggers) or give them their own "
                "function; nothing was changed"
            )


def _adopted(config: Config) -> sql.Composed:
    """The adopted triggers on the auth table that are not ghostguard's, as a pg_trigger filter."""
    return sql.SQL(
        "t.tgrelid = {src}::regclass AND t.tgname = ANY ({names}) AND NOT t.tgisinternal\n"
        "  AND coalesce(obj_description(t.tgfoid, 'pg_proc'), '') NOT LIKE {ours}"
    ).format(
        src=name_literal(source(config)),
        names=sql.Literal(list(config.adopt)),
        ours=sql.Literal(MANAGED_PATTERN),
    )


def save_definitions(config: Config) -> Step:
    """Once per adoption: what rollback needs to put the app's triggers back exactly."""
    return Step(
        "adopt: save the app's own triggers and functions (definitions, enabled state, owner, "
        "EXECUTE grants) in the audit log, for rollback",
        do_block(
            sql.SQL(
                "\nDECLARE v_path text := current_setting('search_path');\nBEGIN\n"
                "  -- definitions printed with every name qualified, so they replay anywhere\n"
                "  PERFORM pg_catalog.set_config('search_path', '', true);\n"
                "  WITH adopted AS (SELECT t.* FROM pg_catalog.pg_trigger t WHERE {adopted}),\n"
                "  saved AS (SELECT\n"
                "    (SELECT jsonb_agg(jsonb_build_object('name', a.tgname,\n"
                "       'definition', pg_catalog.pg_get_triggerdef(a.oid), 'enabled', a.tgenabled::text,\n"
                "       'function', a.tgfoid::regprocedure::text) ORDER BY a.tgname) FROM adopted a) AS triggers,\n"
                "    (SELECT jsonb_agg(jsonb_build_object('signature', p.oid::regprocedure::text,\n"
                "       'definition', pg_catalog.pg_get_functiondef(p.oid),\n"
                "       'owner', pg_catalog.pg_get_userbyid(p.proowner), 'acl', p.proacl::text[]))\n"
                "     FROM pg_catalog.pg_proc p WHERE p.oid IN (SELECT a.tgfoid FROM adopted a)) AS functions)\n"
                "  INSERT INTO {audit} (job_name, status, records_affected, completed_at, details)\n"
                "  SELECT {job}, 'success', jsonb_array_length(s.triggers), clock_timestamp(),\n"
                "         jsonb_build_object('triggers', s.triggers, 'functions', s.functions)\n"
                "  FROM saved s WHERE s.triggers IS NOT NULL;\n"
                "  PERFORM pg_catalog.set_config('search_path', v_path, true);\n"
                "END\n"
            ).format(
                adopted=_adopted(config),
                audit=audit(config),
                job=sql.Literal(ADOPT_JOB),
            )
        ),
    )


def drop_adopted(config: Config) -> Step:
    """Drop the adopted triggers' functions with CASCADE (their triggers go with them)."""
    return Step(
        "adopt: remove the app's own triggers by dropping their functions (CASCADE), as saved above",
        do_block(
            sql.SQL(
                "\nDECLARE f regprocedure;\nBEGIN\n"
                "  FOR f IN SELECT DISTINCT t.tgfoid::regprocedure FROM pg_catalog.pg_trigger t\n"
                "           WHERE {adopted} LOOP\n"
                "    IF EXISTS (SELECT 1 FROM pg_catalog.pg_trigger o WHERE o.tgfoid = f\n"
                "               AND NOT (o.tgrelid = {src}::regclass AND o.tgname = ANY ({names}))) THEN\n"
                "      RAISE EXCEPTION 'ghostguard adopt refused: another trigger calls %', f;\n"
                "    END IF;\n"
                "    EXECUTE pg_catalog.format('DROP FUNCTION %s CASCADE', f);\n"
                "  END LOOP;\n"
                "END\n"
            ).format(
                adopted=_adopted(config),
                src=name_literal(source(config)),
                names=sql.Literal(list(config.adopt)),
            )
        ),
    )


def takeover_steps(config: Config) -> list[Step]:
    """In the install transaction: save, then remove, the adopted triggers."""
    return [save_definitions(config), *removal(config)] if config.adopt else []


def removal(config: Config) -> list[Step]:
    """The adopted triggers removed (the preflight does it too, inside its rolled-back
    transaction, so the matrix shows ghostguard's sync alone, as after apply)."""
    return [drop_adopted(config)] if config.adopt else []


def restore_adopted(config: Config) -> Step:
    """For rollback, after ghostguard's function is gone: the app's functions and triggers as
    they were. A no-op when nothing was adopted."""
    return Step(
        "put back the app's own triggers and functions that apply took over (from the audit log)",
        do_block(
            sql.SQL(
                "\nDECLARE\n  r record;\n  f jsonb;\n  t jsonb;\n  g record;\n"
                "  v_fn regprocedure;\n  v_mode text;\n"
                "BEGIN\n"
                "  IF pg_catalog.to_regclass({audit_name}) IS NULL THEN\n"
                "    RETURN;  -- never installed here: nothing was taken over\n"
                "  END IF;\n"
                "  FOR r IN SELECT id, details FROM {audit} WHERE job_name = {job}\n"
                "           AND status = 'success' ORDER BY started_at DESC LOOP\n"
                "    FOR f IN SELECT * FROM jsonb_array_elements(r.details -> 'functions') LOOP\n"
                "      IF pg_catalog.to_regprocedure(f ->> 'signature') IS NULL THEN\n"
                "        EXECUTE f ->> 'definition';\n"
                "        v_fn := pg_catalog.to_regprocedure(f ->> 'signature');\n"
                "        IF (f ->> 'owner') <> current_user THEN\n"
                "          BEGIN\n"
                "            EXECUTE pg_catalog.format('ALTER FUNCTION %s OWNER TO %I', v_fn, f ->> 'owner');\n"
                "          EXCEPTION WHEN insufficient_privilege THEN\n"
                "            RAISE WARNING 'ghostguard: % restored, but owned by % (was %)', v_fn,\n"
                "              current_user, f ->> 'owner';\n"
                "          END;\n"
                "        END IF;\n"
                "        -- EXECUTE exactly as saved, in the saved order: every entry the new function got\n"
                "        -- (the owner's included) goes first\n"
                "        FOR g IN SELECT e.grantee FROM pg_catalog.pg_proc p,\n"
                "                 pg_catalog.aclexplode(p.proacl) e WHERE p.oid = v_fn LOOP\n"
                "          EXECUTE pg_catalog.format('REVOKE ALL ON FUNCTION %s FROM %s', v_fn,\n"
                "            CASE WHEN g.grantee = 0 THEN 'PUBLIC'\n"
                "                 ELSE pg_catalog.quote_ident(pg_catalog.pg_get_userbyid(g.grantee)) END);\n"
                "        END LOOP;\n"
                "        EXECUTE pg_catalog.format('REVOKE ALL ON FUNCTION %s FROM PUBLIC', v_fn);\n"
                "        FOR g IN SELECT e.grantee, e.privilege_type FROM pg_catalog.aclexplode(ARRAY(\n"
                "                   SELECT pg_catalog.jsonb_array_elements_text(CASE\n"
                "                     WHEN pg_catalog.jsonb_typeof(f -> 'acl') = 'array' THEN f -> 'acl'\n"
                "                     ELSE pg_catalog.jsonb_build_array(\n"
                "                       f ->> 'owner' || '=X/' || (f ->> 'owner'),\n"
                "                       '=X/' || (f ->> 'owner')) END))::aclitem[]) e LOOP\n"
                "          EXECUTE pg_catalog.format('GRANT %s ON FUNCTION %s TO %s', g.privilege_type, v_fn,\n"
                "            CASE WHEN g.grantee = 0 THEN 'PUBLIC'\n"
                "                 ELSE pg_catalog.quote_ident(pg_catalog.pg_get_userbyid(g.grantee)) END);\n"
                "        END LOOP;\n"
                "      END IF;\n"
                "    END LOOP;\n"
                "    FOR t IN SELECT * FROM jsonb_array_elements(r.details -> 'triggers') LOOP\n"
                "      IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_trigger x WHERE x.tgrelid = {src}::regclass\n"
                "                     AND x.tgname = t ->> 'name') THEN\n"
                "        EXECUTE t ->> 'definition';\n"
                "      END IF;\n"
                "      v_mode := CASE t ->> 'enabled' WHEN 'D' THEN 'DISABLE' WHEN 'A' THEN 'ENABLE ALWAYS'\n"
                "                WHEN 'R' THEN 'ENABLE REPLICA' END;\n"
                "      IF v_mode IS NOT NULL THEN\n"
                "        BEGIN\n"
                "          EXECUTE pg_catalog.format('ALTER TABLE %s %s TRIGGER %I', {src}, v_mode, t ->> 'name');\n"
                "        EXCEPTION WHEN insufficient_privilege THEN\n"
                "          RAISE WARNING 'ghostguard: trigger % restored enabled; it was %', t ->> 'name', v_mode;\n"
                "        END;\n"
                "      END IF;\n"
                "    END LOOP;\n"
                "    UPDATE {audit} SET status = 'restored', completed_at = clock_timestamp() WHERE id = r.id;\n"
                "  END LOOP;\n"
                "END\n"
            ).format(
                audit=audit(config),
                audit_name=name_literal(audit(config)),
                job=sql.Literal(ADOPT_JOB),
                src=name_literal(source(config)),
            )
        ),
    )


def restorable(conn: psycopg.Connection, config: Config) -> list[str]:
    """Triggers rollback would put back (names), from the audit log."""
    if not catalog.table_columns(conn, config.audit):
        return []
    rows = conn.execute(
        sql.SQL(
            "SELECT t ->> 'name' FROM {}, jsonb_array_elements(details -> 'triggers') t "
            "WHERE job_name = {} AND status = 'success' ORDER BY 1"
        ).format(audit(config), sql.Literal(ADOPT_JOB))
    ).fetchall()
    return [str(r[0]) for r in rows]
