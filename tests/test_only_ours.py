"""Rollback only ever removes what ghostguard installed: the app's own `handle_new_user()` (the
docs' name, and ghostguard's default) survives `init`, a refused `apply`, `rollback --yes` and the
rollback migration, byte for byte."""

from __future__ import annotations

import json
from pathlib import Path

import psycopg

from conftest import Database, run
from test_migrations import _psql

DOCS_RECIPE = """
CREATE TABLE public.profiles (
  id uuid NOT NULL REFERENCES auth.users ON DELETE CASCADE,
  first_name text,
  last_name text,
  PRIMARY KEY (id)
);
ALTER TABLE public.profiles ENABLE ROW LEVEL SECURITY;
CREATE FUNCTION public.handle_new_user()
RETURNS trigger LANGUAGE plpgsql SECURITY DEFINER SET search_path = '' AS $$
BEGIN
  INSERT INTO public.profiles (id, first_name, last_name)
  VALUES (new.id, new.raw_user_meta_data ->> 'first_name', new.raw_user_meta_data ->> 'last_name');
  RETURN new;
END;
$$;
COMMENT ON FUNCTION public.handle_new_user() IS 'the app''s own';
GRANT EXECUTE ON FUNCTION public.handle_new_user() TO service_role;
CREATE TRIGGER on_auth_user_created AFTER INSERT ON auth.users
  FOR EACH ROW EXECUTE PROCEDURE public.handle_new_user();
"""


def _state(conn: psycopg.Connection) -> tuple[object, ...]:
    """The function (definition, owner, ACL, comment) and every trigger on auth.users."""
    fn = conn.execute(
        "SELECT pg_get_functiondef(p.oid), pg_get_userbyid(p.proowner), p.proacl::text, "
        "obj_description(p.oid, 'pg_proc') FROM pg_proc p "
        "WHERE p.oid = 'public.handle_new_user()'::regprocedure"
    ).fetchone()
    triggers = conn.execute(
        "SELECT tgname, pg_get_triggerdef(oid), tgenabled FROM pg_trigger "
        "WHERE tgrelid = 'auth.users'::regclass AND NOT tgisinternal ORDER BY tgname"
    ).fetchall()
    return fn, tuple(triggers)


def test_init_refused_apply_and_rollback_leave_the_apps_function_alone(
    database: Database, conn: psycopg.Connection, tmp_path: Path
) -> None:
    conn.execute(DOCS_RECIPE)
    before = _state(conn)
    assert before[0] is not None and len(before[1]) == 1
    init = run("init", "-o", str(tmp_path / "proposed.toml"), db=database)
    assert init.exit_code in (0, 1), init.output
    refused = run("apply", "--yes", db=database)  # default config: the app's trigger is in the way
    assert refused.exit_code == 3, refused.output
    rolled = run("rollback", "--yes", db=database)
    assert rolled.exit_code == 0, rolled.output
    assert rolled.stdout.startswith(
        "nothing to roll back: ghostguard's sync function is not installed"
    )
    assert "public.handle_new_user() and its triggers are not ghostguard's" in rolled.stdout
    assert _state(conn) == before
    # the rollback migration, run with plain psql, leaves it alone too
    down = tmp_path / "down"
    assert run("migrations", "--dir", str(down), "--down", db=database).exit_code == 0
    (path,) = down.iterdir()
    done = _psql(database, path)
    assert done.returncode == 0, done.stderr
    assert "is not ghostguard's: left as it is" in done.stderr  # the NOTICE
    assert _state(conn) == before


def test_rollback_still_removes_what_apply_installed(
    database: Database, conn: psycopg.Connection
) -> None:
    assert run("apply", "--yes", db=database).exit_code == 0
    assert run("rollback", "--yes", db=database).exit_code == 0
    assert conn.execute("SELECT to_regprocedure('public.handle_new_user()')").fetchone() == (None,)


def test_after_rollback_restores_the_apps_trigger_it_is_the_apps_again_not_drift(
    database: Database, conn: psycopg.Connection
) -> None:
    conn.execute(DOCS_RECIPE)
    assert run("init", db=database).exit_code in (0, 1)
    before_scan = run("scan", "--json", db=database)
    assert run("apply", "--yes", db=database).exit_code == 0  # adopts the app's trigger
    assert run("rollback", "--yes", db=database).exit_code == 0  # and puts it back
    after_scan = run("scan", "--json", db=database)
    assert after_scan.exit_code == before_scan.exit_code == 0
    drift = json.loads(after_scan.stdout)["drift"]
    assert drift == json.loads(before_scan.stdout)["drift"]  # as before apply
    assert not any("since ghostguard installed it" in line for line in drift)
    doctor = json.loads(run("doctor", "--json", db=database).stdout)
    assert not any("since ghostguard installed it" in f["detail"] for f in doctor["findings"])
