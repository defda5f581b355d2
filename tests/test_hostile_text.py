"""No text from the server or the config can change what SQL runs: hostile text planted in a
CHECK expression, an enum label, a default, comments and names, then the migration files run with
plain `psql -f` (no transaction) execute exactly the statements ghostguard rendered."""

from __future__ import annotations

from pathlib import Path

import pgparse
import psycopg
import pytest
from psycopg import sql

from conftest import Database, run, scalar
from ghostguard import catalog, config
from ghostguard.errors import ConfigError
from ghostguard.supabase import migrations
from test_migrations import _psql  # the file as `psql -f` runs it: no transaction around it

BREAKOUT = "$ghostguard$; DROP TABLE public.canary; SELECT $ghostguard$"
BREAKOUT_1 = "$ghostguard_1$; DROP TABLE public.canary; SELECT $ghostguard_1$"
QUOTE = "'; DROP TABLE public.canary; --"


def psql_literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


SCH = '"we""ird; schema"'
TABLE = SCH + '."user ""profiles"""'
SCHEMA = f"""
CREATE TABLE public.canary (alive boolean);
CREATE SCHEMA {SCH};
CREATE TYPE public.tier AS ENUM ('free', {psql_literal(BREAKOUT)}, {psql_literal(QUOTE)});
CREATE TABLE {TABLE} (
  "Id" uuid PRIMARY KEY REFERENCES auth.users (id) ON DELETE CASCADE,
  full_name text NOT NULL
    CHECK (full_name <> {psql_literal(BREAKOUT)} AND full_name <> {psql_literal(BREAKOUT_1)}),
  tier public.tier DEFAULT {psql_literal(BREAKOUT)},
  note text DEFAULT {psql_literal(QUOTE + BREAKOUT)}
);
COMMENT ON TABLE {TABLE} IS {psql_literal(BREAKOUT)};
COMMENT ON COLUMN {TABLE}.full_name IS {psql_literal(QUOTE)};
"""


CONFIG = """
[target]
schema = 'we"ird; schema'
table = 'user "profiles"'
key = "Id"
soft_delete_column = ""

[trigger]
function = "Handle \\"New\\" User; --"
name = "on signup'; --"

[audit]
job = "job'); DROP TABLE public.canary; --"

[app]
ensure_profile = true

[mapping.full_name]
metadata = ["full_name", "x'); DROP TABLE public.canary; --"]
fallback = ["email_local", "literal:'); DROP TABLE public.canary; --"]
[mapping.tier]
metadata = ["tier"]
update = false
"""


def _kinds(text: str) -> list[str]:
    return [next(iter(s["stmt"])) for s in pgparse.parse(text)]


def _statements(path: Path) -> list[str]:
    """The statements in a file as PostgreSQL's own parser splits it (psql splits the same way)."""
    return _kinds(path.read_text())


@pytest.mark.parametrize("key", ["function", "name"])
def test_a_name_with_a_line_break_is_refused(tmp_path: Path, key: str) -> None:
    cfg = tmp_path / "ghostguard.toml"
    cfg.write_text(f'[trigger]\n{key} = "x\\nDROP TABLE public.canary; --"\n')
    with pytest.raises(ConfigError) as err:
        config.load(cfg)
    assert "a line break or another control character" in err.value.message


def test_a_title_or_header_cannot_end_its_comment() -> None:
    from ghostguard.sqlparts import Step, render

    text = render([Step("takes over x\nDROP TABLE public.canary; --", sql.SQL("SELECT 1"))])
    assert _kinds(text) == ["SelectStmt"]


def test_migration_files_run_with_plain_psql_execute_only_what_was_rendered(
    database: Database, conn: psycopg.Connection, tmp_path: Path
) -> None:
    conn.execute(SCHEMA)
    cfg = tmp_path / "ghostguard.toml"
    cfg.write_text(CONFIG)
    out, down = tmp_path / "migrations", tmp_path / "down"
    made = run("migrations", "--config", str(cfg), "--dir", str(out), db=database)
    assert made.exit_code == 0, made.output
    assert (
        run("migrations", "--config", str(cfg), "--dir", str(down), "--down", db=database).exit_code
        == 0
    )
    files = sorted(out.iterdir())
    assert len(files) == 2
    loaded = config.load(cfg)
    rendered = migrations.render(loaded, catalog.resolve(conn, loaded))
    for path, migration in zip(files, rendered, strict=True):
        # exactly the rendered statements, each one statement, and nothing else in the file
        expected = [_kinds(text) for text in migration.statements]
        assert all(len(kinds) == 1 for kinds in expected), migration.name
        assert _statements(path) == [k for kinds in expected for k in kinds], path.name
        assert "DropStmt" not in _statements(path), path.name
        assert _psql(database, path).returncode == 0
        assert scalar(conn, "SELECT to_regclass('public.canary') IS NOT NULL") is True
    fn = scalar(conn, "SELECT count(*) FROM pg_proc WHERE proname = 'Handle \"New\" User; --'")
    assert fn == 1
    assert scalar(conn, "SELECT to_regprocedure('public.ensure_profile()') IS NOT NULL") is True
    assert scalar(conn, "SELECT count(*) FROM pg_trigger WHERE tgname = 'on signup''; --'") == 1
    # and apply, scan and doctor on the same names work (nothing quoted by hand)
    for command, ok in (("scan", (0, 1)), ("doctor", (0, 1)), ("apply", (0,))):
        extra = ["--yes"] if command == "apply" else []
        result = run(command, *extra, "--config", str(cfg), db=database)
        assert result.exit_code in ok, (command, result.output)
        assert "Traceback" not in result.output
    assert scalar(conn, "SELECT to_regclass('public.canary') IS NOT NULL") is True
    (rollback,) = down.iterdir()
    # the drop is inside a DO block that checks ghostguard's marker: nothing drops at top level
    assert "DropStmt" not in _statements(rollback)
    expected = [_kinds(text) for text in migrations.render_down(loaded).statements]
    assert _statements(rollback) == [k for kinds in expected for k in kinds]
    done = _psql(database, rollback)
    assert done.returncode == 0, done.stderr
    assert scalar(conn, "SELECT to_regclass('public.canary') IS NOT NULL") is True
    assert (
        scalar(conn, "SELECT count(*) FROM pg_proc WHERE proname = 'Handle \"New\" User; --'") == 0
    )
    assert scalar(conn, "SELECT to_regprocedure('public.ensure_profile()') IS NULL") is True


def test_the_tag_moves_away_from_text_that_holds_it() -> None:
    from ghostguard.sqlparts import dollar_quoted

    body = sql.SQL("SELECT {}").format(sql.Literal(BREAKOUT + BREAKOUT_1))
    quoted = dollar_quoted(body).as_string(None)
    assert quoted.startswith("$ghostguard_2$") and quoted.endswith("$ghostguard_2$")
    parsed = pgparse.parse(f"DO {quoted}")
    assert [next(iter(s["stmt"])) for s in parsed] == ["DoStmt"]
