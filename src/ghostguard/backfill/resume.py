"""Whether a backfill run continues an earlier one, decided from the newest run's audit row."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Resumption:
    """What the newest earlier run means for this one (see `resumption`)."""

    mark_interrupted: bool  # it was `running` but its session is gone
    resume: bool  # continue from its checkpoint
    old_id: str | None = None
    checkpoint: str | None = None


def resumption(last: tuple[Any, ...] | None) -> Resumption:
    """Decide from `backfill_last_run`'s row: a dead running run is marked interrupted; a dead or
    failed run with a checkpoint is resumed from it; a finished one is not."""
    if last is None:
        return Resumption(False, False)
    old_id, status, checkpoint, alive = last
    dead = status == "running" and not alive
    resume = (dead or status == "failed") and checkpoint is not None
    return Resumption(dead, resume, str(old_id), checkpoint)
