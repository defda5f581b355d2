"""The backfill's options, shared by apply and backfill."""

from __future__ import annotations

import click

from ghostguard.backfill.options import BackfillOptions
from ghostguard.cli.common import (
    F,
)
from ghostguard.config import Config


def batch_options(func: F) -> F:
    """--batch-size, --max-rate, --jobs and --no-yield, for every command that runs the backfill."""
    func = click.option(
        "--jobs",
        type=click.IntRange(1, 16),
        default=BackfillOptions.jobs,
        show_default=True,
        help="Connections running batches at once while no other session is writing (one while "
        "others are, unless --no-yield).",
    )(func)
    func = click.option(
        "--no-yield",
        is_flag=True,
        help="Run at full speed even while other sessions are writing (by default the backfill "
        "pauses between batches while they do, so signups and sign-ins come first).",
    )(func)
    func = click.option(
        "--max-rate",
        type=click.FloatRange(min=1),
        metavar="ROWS_PER_S",
        help="Scan at most this many auth rows per second (default: as fast as batches allow).",
    )(func)
    func = click.option(
        "--batch-size",
        type=click.IntRange(100, 1_000_000),
        help="Fixed rows per batch (default: adaptive, aiming at 75 ms per batch transaction).",
    )(func)
    return func


def backfill_options(
    config: Config, batch_size: int | None, max_rate: float | None, jobs: int, no_yield: bool
) -> BackfillOptions:
    return BackfillOptions(
        batch_size=batch_size,
        max_rate=max_rate,
        jobs=jobs,
        lock_timeout=config.lock_timeout,
        yield_factor=0.0 if no_yield else BackfillOptions.yield_factor,
    )
