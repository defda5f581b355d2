"""The Data API check knows what the Data API serves: a profile table in a schema it does not
serve, or an app that reads profiles only on the server, is information, not a failure."""

from __future__ import annotations

import json
from pathlib import Path

import psycopg

from conftest import Database, run
from ghostguard.supabase import authserver
from ghostguard.supabase.authserver import AuthServer

APP_SCHEMA = """
CREATE SCHEMA app;
CREATE TABLE app.users (
  id uuid PRIMARY KEY REFERENCES auth.users (id) ON DELETE CASCADE,
  email text,
  full_name text,
  avatar_url text,
  created_at timestamptz
);
"""
CONFIG = '[target]\nschema = "app"\ntable = "users"\nsoft_delete_column = ""\n'


def _app_view(result_stdout: str, key: str) -> dict[str, object]:
    data = json.loads(result_stdout)
    return next(c for c in data[key] if c["name"] == "app_view")


def test_a_schema_the_api_does_not_serve_is_information(
    database: Database, conn: psycopg.Connection, auth: AuthServer, tmp_path: Path
) -> None:
    conn.execute(APP_SCHEMA)
    auth.signup(authserver.email_user("reader@example.com"))
    cfg = tmp_path / "ghostguard.toml"
    cfg.write_text(CONFIG)
    applied = run("apply", "--yes", "--json", "--config", str(cfg), db=database)
    assert applied.exit_code == 0, applied.output
    verify = run("verify", "--json", "--config", str(cfg), db=database)
    assert verify.exit_code == 0, verify.output
    found = _app_view(verify.stdout, "checks")
    assert found["passed"] is True
    assert str(found["detail"]).startswith(
        "not served: the Data API serves public, graphql_public, not app"
    )
    # the project's own PostgREST setting, where the database holds it, is what counts
    admin = psycopg.connect(database.admin_url, autocommit=True)
    with admin:
        admin.execute(
            "ALTER ROLE authenticator IN DATABASE "
            + database.name
            + " SET pgrst.db_schemas = 'public, app'"
        )
        try:
            served = run("verify", "--json", "--config", str(cfg), db=database)
        finally:
            admin.execute(
                "ALTER ROLE authenticator IN DATABASE " + database.name + " RESET pgrst.db_schemas"
            )
    assert served.exit_code == 1  # served now, and no grant: the app cannot read its profiles
    assert _app_view(served.stdout, "checks")["passed"] is False


def test_an_app_that_reads_profiles_on_the_server_is_not_checked(
    database: Database, conn: psycopg.Connection, auth: AuthServer, tmp_path: Path
) -> None:
    conn.execute("REVOKE ALL ON public.users FROM authenticated, anon")
    auth.signup(authserver.email_user("reader@example.com"))
    cfg = tmp_path / "ghostguard.toml"
    cfg.write_text('[app]\nreads_profiles = "server"\n')
    assert run("apply", "--yes", "--config", str(cfg), db=database).exit_code == 0
    verify = run("verify", "--json", "--config", str(cfg), db=database)
    assert verify.exit_code == 0, verify.output
    assert "reads profiles only on the server" in str(_app_view(verify.stdout, "checks")["detail"])
    cfg.write_text("")  # the default: the Data API, where this table is not readable
    default = run("verify", "--json", "--config", str(cfg), db=database)
    assert default.exit_code == 1
    assert _app_view(default.stdout, "checks")["passed"] is False


def test_a_bad_reads_profiles_value_is_a_config_error(database: Database, tmp_path: Path) -> None:
    cfg = tmp_path / "ghostguard.toml"
    cfg.write_text('[app]\nreads_profiles = "sometimes"\n')
    result = run("verify", "--config", str(cfg), db=database)
    assert result.exit_code == 2
    assert "app.reads_profiles = 'sometimes': use one of 'data_api', 'server'" in result.stderr
