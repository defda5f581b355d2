"""`ghostguard demo`: the whole runbook on the embedded sandbox, as a short readable report."""

from __future__ import annotations

from pathlib import Path

import click
from rich.text import Text

from ghostguard import demo as demo_mod
from ghostguard.cli import render
from ghostguard.cli.common import finish, note, stdout_console
from ghostguard.cli.progress import backfill_progress
from ghostguard.sandbox import Sandbox


@click.command()
@click.option(
    "--users",
    default=10_000,
    show_default=True,
    type=click.IntRange(10, 1_000_000),
    help="How many users to sign up.",
)
@click.option(
    "--data-dir", type=click.Path(path_type=Path, file_okay=False), help="Sandbox directory."
)
@click.option(
    "--pg-bin",
    type=click.Path(path_type=Path, file_okay=False, exists=True),
    help="PostgreSQL bin directory instead of the embedded one.",
)
def demo(users: int, data_dir: Path | None, pg_bin: Path | None) -> None:
    """Start the sandbox, sign up users (about 5% ghosts), then scan -> apply -> verify.

    Resets the sandbox's `postgres` database each time, so it runs again cleanly. Progress goes
    to stderr: a line every few seconds while signing up, and the backfill's progress.
    """
    with backfill_progress() as batches:
        report = demo_mod.run(Sandbox(data_dir, pg_bin), users, note, batches)
    out = stdout_console()
    out.print(
        Text(
            f"ghostguard demo: PostgreSQL {report.postgres_version} sandbox ({report.where})",
            style="bold",
        )
    )
    out.print(
        f"1. {report.users:,} signups through the Auth server's path in {report.signup_seconds:.1f}s; "
        "the app created profiles client-side, and sometimes did not"
    )
    out.print("2. scan (before):")
    render.scan(out, report.before, report.where)
    out.print(f"3. apply ({report.apply_seconds:.2f}s, connected as postgres, not a superuser):")
    render.apply(out, report.applied)
    signed = ", ".join(
        f"{kind} {'ok' if ok else 'NO PROFILE'}" for kind, ok in report.new_signups.items()
    )
    out.print(f"4. new signups after apply: {signed}")
    out.print("5. scan (after):")
    render.scan(out, report.after, report.where)
    verdict = (
        "0 ghosts, every check passing" if report.passed else "something is still wrong (see above)"
    )
    out.print(
        Text(
            f"Result: {verdict}. Explore: `ghostguard scan` (no --db-url uses this sandbox).",
            style="bold green" if report.passed else "bold red",
        )
    )
    finish(report.passed)
