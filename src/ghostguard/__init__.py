"""ghostguard: find, repair and prevent Supabase ghost users (auth.users rows with no profile).

The library is the product; the CLI is a thin layer over it. Each operation is one call with a
typed result (api.py):

    with ghostguard.connect(url) as conn:
        report = ghostguard.scan(conn)             # ScanReport
        print(ghostguard.plan(conn).text)          # what `apply --dry-run` prints
        result = ghostguard.apply(conn)            # ApplyResult
"""

from __future__ import annotations

from contextlib import AbstractContextManager

import psycopg

__version__ = "0.1.0"

from ghostguard.api import (  # noqa: E402  (the version first: modules below read it)
    apply,
    check,
    doctor,
    load_config,
    plan,
    rehearse,
    rollback,
    rollback_plan,
    scan,
    verify,
)
from ghostguard.config import Config  # noqa: E402
from ghostguard.db import connection as _connection  # noqa: E402
from ghostguard.errors import GhostguardError  # noqa: E402


def connect(
    url: str, *, lock_timeout: str | None = None
) -> AbstractContextManager[psycopg.Connection]:
    """An autocommit connection for the length of a `with` block (what every operation takes)."""
    return _connection(url, autocommit=True, lock_timeout=lock_timeout)


__all__ = [
    "Config",
    "GhostguardError",
    "__version__",
    "apply",
    "check",
    "connect",
    "doctor",
    "load_config",
    "plan",
    "rehearse",
    "rollback",
    "rollback_plan",
    "scan",
    "verify",
]
