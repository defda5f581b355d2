"""Plan = apply, proven: `--dry-run` prints exactly the statements `apply` and `rollback` execute
(on every connection, values aside), and the migration files hold exactly their transactions."""

from __future__ import annotations

import re
from pathlib import Path

import psycopg
import pytest

from conftest import Database, Recorder, run
from ghostguard.supabase import authserver

QUOTED = re.compile(r"'(?:[^']|'')*'")
STEP = re.compile(r"^-- (?P<title>[^\n]*)\n(?P<sql>[A-Za-z(].*?);\n(?=\n-- |\Z)", re.S | re.M)
HISTORY = (
    "CREATE SCHEMA supabase_migrations; CREATE TABLE supabase_migrations.schema_migrations "
    "(version text PRIMARY KEY, statements text[], name text)"
)


def folded(text: str) -> str:
    return " ".join(text.split()).rstrip(";")


def values_aside(text: str) -> str:
    """The statement with its quoted values replaced: what apply ran and what the plan printed may
    differ only there (a migration version stamped a second later, say)."""
    return QUOTED.sub("?", folded(text))


def printed(text: str) -> list[tuple[str, str]]:
    """(title, statement) of each step in rendered SQL (a dry run or a migration file)."""
    return [(m["title"], m["sql"]) for m in STEP.finditer(text)]


def transaction(executed: list[str]) -> list[str]:
    """The statements from the first SET lock_timeout to the RESET after it (what a migration holds)."""
    texts = [folded(s) for s in executed]
    start = next(i for i, s in enumerate(texts) if s.startswith("SET lock_timeout = "))
    end = texts.index("RESET lock_timeout", start)
    return texts[start : end + 1]


@pytest.mark.parametrize("bad_rows", [False, True], ids=["clean", "rows breaking a CHECK"])
def test_apply_dry_run_prints_exactly_what_apply_executes(
    database: Database, conn: psycopg.Connection, recorder: Recorder, tmp_path: Path, bad_rows: bool
) -> None:
    conn.execute(HISTORY)
    if bad_rows:  # every email ending in 7@ breaks it (over two columns: NULL cannot fix it)
        conn.execute(
            "ALTER TABLE public.users ADD CONSTRAINT no_sevens "
            "CHECK (email IS NULL OR email NOT LIKE '%7@example.com' OR id IS NULL)"
        )
    migrations_dir = tmp_path / "supabase" / "migrations"
    migrations_dir.mkdir(parents=True)
    with psycopg.connect(database.auth_url, autocommit=True) as auth_conn:
        authserver.import_users(auth_conn, 1_500)  # ghosts enough for several batches
    recorder.take()

    dry = run("apply", "--dry-run", db=database)
    assert dry.exit_code == 0, dry.output
    dry_reads = recorder.take()
    steps = printed(dry.stdout)
    assert dry.stdout.rstrip().endswith("a registration probe that rolls back")
    assert not any(migrations_dir.iterdir()), "a dry run writes no migration file"
    assert conn.execute("SELECT to_regclass('public.cleanup_audit_log')").fetchone() == (None,)
    recorder.take()  # that check was the test's own

    applied = run("apply", "--yes", "--batch-size", "500", "--jobs", "1", db=database)
    assert applied.exit_code == (1 if bad_rows else 0), applied.output
    executed = recorder.take()
    assert run("verify", db=database).exit_code == (1 if bad_rows else 0)
    reads = {values_aside(s) for s in recorder.take() + dry_reads}

    plan = {values_aside(sql) for _, sql in steps}
    ran = {values_aside(s) for s in executed}
    not_printed = sorted(ran - plan - reads)
    assert not not_printed, f"apply ran statements its dry run does not print: {not_printed}"
    not_run = [title for title, sql in steps if values_aside(sql) not in ran]
    gives_up = (
        "backfill: close the audit row as failed, with the checkpoint the next run resumes from "
        "(only when a batch gives up)"
    )
    salvage = [
        title for title, _ in steps if title.endswith("(only when a batch fails on a row's data)")
    ]
    assert len(salvage) == 6
    summary = (
        "unresolved backfill failures by constraint (only when some users could not get a profile)"
    )
    # With a bad row in every window, each window after the first goes straight to the salvage.
    later_batches = "backfill: one batch (run repeatedly, each in its own short transaction)"
    assert not_run == ([later_batches, gives_up] if bad_rows else [*salvage, gives_up, summary])
    titles = [title for title, _ in steps]
    assert titles[0].startswith("one ghostguard run at a time")
    assert titles[-1] == "release the advisory lock"
    assert sum("record migration" in t for t in titles) == 2  # the Supabase migration history

    # Migration 1 is apply's install transaction, statement for statement, values included.
    (install_file,) = migrations_dir.glob("*_create_user_sync_trigger.sql")
    in_file = [folded(sql) for _, sql in printed(install_file.read_text())]
    assert in_file == transaction(executed)
    assert len(in_file) >= 14


def test_rollback_dry_run_prints_exactly_what_rollback_executes(
    database: Database, conn: psycopg.Connection, recorder: Recorder, tmp_path: Path
) -> None:
    conn.execute(HISTORY)
    (tmp_path / "supabase" / "migrations").mkdir(parents=True)
    assert run("apply", "--yes", db=database).exit_code == 0
    recorder.take()

    dry = run("rollback", "--dry-run", db=database)
    assert dry.exit_code == 0, dry.output
    reads = {values_aside(s) for s in recorder.take()}
    steps = printed(dry.stdout)
    assert conn.execute("SELECT to_regprocedure('public.handle_new_user()')").fetchone() != (None,)
    recorder.take()  # that check was the test's own

    done = run("rollback", "--yes", db=database)
    assert done.exit_code == 0, done.output
    executed = recorder.take()
    plan = {values_aside(sql) for _, sql in steps}
    ran = {values_aside(s) for s in executed}
    assert not sorted(ran - plan - reads), "rollback ran statements its dry run does not print"
    assert [title for title, sql in steps if values_aside(sql) not in ran] == []
    assert any("record migration" in title for title, _ in steps)

    # The rollback migration is the same transaction.
    down = run("migrations", "--down", "--stdout", db=database)
    in_file = [folded(sql) for _, sql in printed(down.stdout.split("=====\n", 1)[1])]
    assert in_file == transaction(executed)
