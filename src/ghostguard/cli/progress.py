"""Backfill progress on stderr: a rich bar on a terminal, plain periodic lines otherwise.

stdout stays for the result (and --json), so progress never mixes with what scripts parse.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Generator
from contextlib import contextmanager

import click
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from ghostguard.backfill.options import Progress as BackfillProgress
from ghostguard.backfill.options import ProgressCallback

INTERVAL_ENV = "GHOSTGUARD_PROGRESS_SECONDS"  # how often plain lines are printed (default 5)


def describe(p: BackfillProgress) -> str:
    share = f" ({p.share:.0%})" if p.share is not None else ""
    eta = f", ETA {p.eta:.0f}s" if p.eta is not None else ""
    return (
        f"backfill: {p.scanned:,}/{p.expected:,} auth rows scanned{share}, "
        f"{p.inserted:,} profiles created, {p.rate:,.0f} rows/s, batch {p.batch_size:,}{eta}"
    )


@contextmanager
def backfill_progress() -> Generator[ProgressCallback, None, None]:
    if sys.stderr.isatty():
        columns = (
            TextColumn("backfill"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[rate]} rows/s, {task.fields[inserted]} created"),
            TimeRemainingColumn(),
        )
        with Progress(*columns, console=Console(stderr=True)) as bar:
            task = bar.add_task("backfill", total=None, rate="0", inserted="0")

            def update(p: BackfillProgress) -> None:
                bar.update(
                    task,
                    completed=p.scanned,
                    total=p.expected or None,
                    rate=f"{p.rate:,.0f}",
                    inserted=f"{p.inserted:,}",
                )

            yield update
        return
    interval = float(os.environ.get(INTERVAL_ENV, "5"))
    last = 0.0

    def line(p: BackfillProgress) -> None:
        nonlocal last
        now = time.monotonic()
        if now - last >= interval:
            click.echo(describe(p), err=True)
            last = now

    yield line
