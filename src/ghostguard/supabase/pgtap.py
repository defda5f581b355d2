"""pgTAP tests for the Supabase workflow: what `supabase test db` (or pg_prove) runs in CI.

They check, inside one transaction that is rolled back: the function exists, is SECURITY DEFINER
with `search_path = ''`, no API role may EXECUTE it; each trigger exists, calls it and is enabled;
and a signup written the way the Auth server writes it creates a profile.
"""

from __future__ import annotations

from pathlib import Path

from psycopg import sql

from ghostguard.catalog import Shape
from ghostguard.config import Config
from ghostguard.sqlparts import comment, function, ident, source, target
from ghostguard.sync import triggers as sync_triggers

DEFAULT_DIR = Path("supabase/tests")
FILE_NAME = "ghostguard_test.sql"
PROBE_ID = "6a7d0b1e-9f1c-4c3a-8d2e-000000000001"  # fixed: the test rolls back
ROLES = ("anon", "authenticated", "service_role")


def _lit(text: str) -> sql.Literal:
    return sql.Literal(text)


def _tests(config: Config, shape: Shape) -> list[sql.Composable]:
    fn_schema, fn_name = _lit(config.function_schema), _lit(config.function_name)
    signature = _lit(function(config).as_string(None) + "()")
    src_schema, src_table = _lit(config.source.schema), _lit(config.source.table)
    tests: list[sql.Composable] = [
        sql.SQL("SELECT has_function({}, {}, ARRAY[]::name[], 'the sync function exists')").format(
            fn_schema, fn_name
        ),
        sql.SQL(
            "SELECT is_definer({}, {}, ARRAY[]::name[], 'the sync function is SECURITY DEFINER')"
        ).format(fn_schema, fn_name),
        sql.SQL(
            "SELECT ok(EXISTS (SELECT 1 FROM pg_catalog.pg_proc p, unnest(p.proconfig) c\n"
            "                  WHERE p.oid = pg_catalog.to_regprocedure({}) AND c = 'search_path=\"\"'),\n"
            "          'the sync function pins search_path to empty')"
        ).format(signature),
        sql.SQL(
            "SELECT ok(NOT EXISTS (SELECT 1 FROM pg_catalog.pg_proc p,\n"
            "                      aclexplode(coalesce(p.proacl, acldefault('f', p.proowner))) e\n"
            "                      WHERE p.oid = pg_catalog.to_regprocedure({}) AND e.grantee = 0\n"
            "                        AND e.privilege_type = 'EXECUTE'),\n"
            "          'PUBLIC may not EXECUTE the sync function')"
        ).format(signature),
    ]
    for role in ROLES:
        tests.append(
            sql.SQL(
                "SELECT ok(NOT EXISTS (SELECT 1 FROM pg_catalog.pg_roles r WHERE r.rolname = {role}\n"
                "          AND pg_catalog.has_function_privilege(r.rolname, {fn}, 'EXECUTE')),\n"
                "          {title})"
            ).format(
                role=_lit(role),
                fn=signature,
                title=_lit(f"{role} may not EXECUTE the sync function"),
            )
        )
    for name in sync_triggers.expected_triggers(config, shape):
        trigger = _lit(name)
        tests += [
            sql.SQL("SELECT has_trigger({}, {}, {}, {})").format(
                src_schema, src_table, trigger, _lit(f"trigger {name} exists")
            ),
            sql.SQL("SELECT trigger_is({}, {}, {}, {}, {}, {})").format(
                src_schema,
                src_table,
                trigger,
                fn_schema,
                fn_name,
                _lit(f"trigger {name} calls {config.function_display}"),
            ),
            sql.SQL(
                "SELECT is((SELECT t.tgenabled::text FROM pg_catalog.pg_trigger t\n"
                "           WHERE t.tgrelid = {}::regclass AND t.tgname = {}), 'O', {})"
            ).format(
                _lit(source(config).as_string(None)), trigger, _lit(f"trigger {name} is enabled")
            ),
        ]
    tests.append(
        sql.SQL(
            "SELECT ok(EXISTS (SELECT 1 FROM {target} WHERE {tkey} = {probe}::uuid),\n"
            "          'a signup written like the Auth server writes it creates a profile')"
        ).format(target=target(config), tkey=ident(config.target.key), probe=_lit(PROBE_ID))
    )
    return tests


def _signup(config: Config) -> sql.Composable:
    """The Auth server's row (Supabase's auth.users), inserted as the connecting role."""
    return sql.SQL(
        "INSERT INTO {source} (instance_id, {key}, aud, role, email, encrypted_password,\n"
        "  raw_app_meta_data, raw_user_meta_data, created_at, updated_at)\n"
        "VALUES ('00000000-0000-0000-0000-000000000000', {probe}, 'authenticated', 'authenticated',\n"
        "  'ghostguard-pgtap@example.com', '',\n"
        '  \'{{"provider": "email", "providers": ["email"]}}\', \'{{"full_name": "pgTAP"}}\',\n'
        "  now(), now())"
    ).format(source=source(config), key=ident(config.source.key), probe=_lit(PROBE_ID))


def render(config: Config, shape: Shape) -> str:
    """The whole test file: BEGIN, plan, tests, finish, ROLLBACK."""
    tests = _tests(config, shape)
    body = [
        sql.SQL("BEGIN"),
        sql.SQL("SELECT plan({})").format(sql.Literal(len(tests))),
        *tests[:-1],
        _signup(config),
        tests[-1],
        sql.SQL("SELECT * FROM finish()"),
        sql.SQL("ROLLBACK"),
    ]
    return (
        comment(f"ghostguard's pgTAP tests for {config.source.display} -> {config.target.display}.")
        + "\n"
        "-- Run: supabase test db, or pg_prove -d <database> supabase/tests/ghostguard_test.sql\n"
        "-- Needs the pgtap extension (Supabase: create extension pgtap with schema extensions).\n\n"
        + "\n".join(statement.as_string(None) + ";" for statement in body)
        + "\n"
    )


def write(directory: Path, text: str) -> tuple[Path, bool]:
    """Write the file; (path, False) when it already says the same."""
    path = directory / FILE_NAME
    if path.exists() and path.read_text() == text:
        return path, False
    directory.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path, True
