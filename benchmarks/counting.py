"""Benchmark: how long scan and verify take at N users (default 1,000,000), in the same run as the
guide's ghost count (check 1, one anti-join pass) for reference.

    python benchmarks/counting.py [--users 1000000] [--pg-bin DIR]

The profile table is filled right before the measurement and not analyzed afterwards (its
statistics still say "empty"): the state in which an anti-join planned as a nested loop is
quadratic. scan and verify disable nested loops, so they stay linear.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import psycopg

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import arguments, create_users, fresh_database, sandbox  # noqa: E402

from ghostguard import catalog  # noqa: E402
from ghostguard.checks.scan import scan  # noqa: E402
from ghostguard.checks.verify import verify  # noqa: E402
from ghostguard.config import Config  # noqa: E402
from ghostguard.deploy import ApplyOptions, install  # noqa: E402

GUIDE_CHECK_1 = "SELECT COUNT(*) FROM auth.users au LEFT JOIN public.users pu ON au.id = pu.id WHERE pu.id IS NULL"


def timed(action: object, repeat: int = 3) -> float:
    best = float("inf")
    for _ in range(repeat):
        started = time.perf_counter()
        action()  # type: ignore[operator]
        best = min(best, time.perf_counter() - started)
    return best


def main() -> None:
    args = arguments(__doc__ or "").parse_args()
    box = sandbox(args)
    url = fresh_database(box, "counting")
    created = create_users(box.url("counting", "supabase_admin"), args.users)
    config = Config()
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("ANALYZE public.users")  # analyzed while empty ...
        shape = catalog.resolve(conn, config)
        install(conn, config, shape, ApplyOptions())
        conn.execute(  # ... then 95% of the profiles arrive, statistics untouched
            "INSERT INTO public.users (id, email, created_at) SELECT id, email, created_at "
            "FROM auth.users WHERE abs(hashtext(id::text)) % 100 >= 5"
        )

        def guide_check_1() -> (
            None
        ):  # the guide's ghost count, planned linearly: one anti-join pass
            with conn.transaction():
                conn.execute("SET LOCAL enable_nestloop = off")
                conn.execute(GUIDE_CHECK_1).fetchone()

        reference = timed(guide_check_1)
        scan_s = timed(lambda: scan(conn, config, shape))
        verify_s = timed(lambda: verify(conn, config, shape))
        ghosts = scan(conn, config, shape).ghost_total
    print(
        f"PostgreSQL {box.status().version}, {args.users:,} auth users (created in {created:.0f}s), "
        f"{ghosts:,} ghosts, profile statistics stale"
    )
    print(
        f"| guide check 1 (one anti-join) | scan | verify | scan / check 1 |\n|---|---|---|---|\n"
        f"| {reference:.2f}s | {scan_s:.2f}s | {verify_s:.2f}s | {scan_s / reference:.1f}x |"
    )


if __name__ == "__main__":
    main()
