"""The README's library example is a doctest, run here against a real database; the library's
plans print what the CLI's --dry-run prints."""

from __future__ import annotations

import doctest
from pathlib import Path

import psycopg
import pytest

import ghostguard
from conftest import Database, make_ghosts, run
from ghostguard.sandbox import Sandbox
from ghostguard.supabase.authserver import AuthServer
from test_rehearse import PROFILES, _folder

ROOT = Path(__file__).resolve().parent.parent


def _readme_example() -> tuple[str, int]:
    """The ```pycon block of README's Library section, and the line before it starts."""
    text = (ROOT / "README.md").read_text()
    start = text.index("```pycon\n", text.index("## Library")) + len("```pycon\n")
    return text[start : text.index("```\n", start)], text.count("\n", 0, start)


def test_the_readmes_library_example_runs_as_a_doctest(
    database: Database,
    auth: AuthServer,
    conn: psycopg.Connection,
    sandbox: Sandbox,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert len(make_ghosts(auth, conn)) == 8  # one of each kind and a soft-deleted user
    _folder(tmp_path, **{"20240101000000_profiles": PROFILES})
    monkeypatch.setenv("GHOSTGUARD_HOME", str(sandbox.server.home))
    example, line = _readme_example()
    test = doctest.DocTestParser().get_doctest(
        example, {"url": database.url}, "README.md (Library)", str(ROOT / "README.md"), line
    )
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS)
    report: list[str] = []
    runner.run(test, out=report.append)
    assert runner.failures == 0 and runner.tries == 5, "".join(report)


def test_the_library_plans_are_what_dry_run_prints(
    database: Database, auth: AuthServer, conn: psycopg.Connection
) -> None:
    make_ghosts(auth, conn)
    with ghostguard.connect(database.url) as library:
        planned = ghostguard.plan(library).text
    printed = run("apply", "--dry-run", "--migrations-dir", "none", db=database)
    assert printed.exit_code == 0, printed.output
    assert printed.stdout == planned
    assert run("apply", "--yes", db=database).exit_code == 0
    with ghostguard.connect(database.url) as library:
        config = ghostguard.Config()
        undo = ghostguard.rollback_plan(library, config).text(config)
    printed = run("rollback", "--dry-run", "--migrations-dir", "none", db=database)
    assert printed.exit_code == 0, printed.output
    assert printed.stdout == undo and "DROP FUNCTION" in undo


def test_a_mistake_is_a_ghostguard_error_with_one_line(database: Database, tmp_path: Path) -> None:
    (tmp_path / "ghostguard.toml").write_text('[target]\ntable = "nope"\n')
    config = ghostguard.load_config(tmp_path / "ghostguard.toml")
    with ghostguard.connect(database.url) as library:
        with pytest.raises(ghostguard.GhostguardError) as raised:
            ghostguard.scan(library, config)
    assert "\n" not in raised.value.message and "nope" in raised.value.message
