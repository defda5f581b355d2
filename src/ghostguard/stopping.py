"""Ctrl-C and SIGTERM as one exception, so a long run can say what it did and how to resume.

Python raises KeyboardInterrupt for SIGINT; the CLI makes SIGTERM (what `kill`, systemd and CI
runners send) raise `Stop` the same way. Both are BaseExceptions: no `except Exception` swallows
them. A command that can stop halfway (backfill, apply) turns them into `errors.Interrupted`
with what was done; the CLI exits 128 + the signal's number (130, 143).
"""

from __future__ import annotations

import signal
from types import FrameType


class Stop(BaseException):
    """SIGTERM (or another signal) arrived."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


STOPS = (KeyboardInterrupt, Stop)


def signal_number(exc: BaseException) -> int:
    return exc.signum if isinstance(exc, Stop) else int(signal.SIGINT)


def raise_on_sigterm() -> None:
    """From now on SIGTERM raises Stop in the main thread (commands with their own handling,
    such as the monitor, set theirs while they run)."""

    def stop(signum: int, _frame: FrameType | None) -> None:
        raise Stop(signum)

    signal.signal(signal.SIGTERM, stop)
