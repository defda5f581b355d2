"""Benchmark: what one monitor tick costs against one full anti-join scan, at N users (default
1,000,000), in the same run.

    python benchmarks/monitor.py [--users 1000000] [--rounds 7] [--pg-bin DIR]

Full scan: the guide's ghost count (one anti-join pass over both tables, nested loops off so it is
linear), and the monitor's own full reconciliation (scan's census, one full join). Tick: the
monitor's cheap reading (triggers, drift, sync failures, statistics counters, function timing,
newest backfill row). Interleaved rounds, medians. Target: a tick costs at most 1/20 of a full scan.
"""

from __future__ import annotations

import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import psycopg

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import arguments, create_users, fresh_database, sandbox  # noqa: E402

from ghostguard import catalog  # noqa: E402
from ghostguard.config import Config  # noqa: E402
from ghostguard.deploy import ApplyOptions, install  # noqa: E402
from ghostguard.monitor.readings import read_census, read_tick  # noqa: E402

GUIDE_COUNT = (
    "SELECT count(*) FROM auth.users au LEFT JOIN public.users pu ON au.id = pu.id "
    "WHERE pu.id IS NULL"
)


def seconds(action: Callable[[], object]) -> float:
    started = time.perf_counter()
    action()
    return time.perf_counter() - started


def main() -> None:
    parser = arguments(__doc__ or "")
    parser.add_argument("--rounds", type=int, default=7, help="interleaved rounds")
    args = parser.parse_args()
    box = sandbox(args)
    url = fresh_database(box, "monitoring")
    create_users(box.url("monitoring", "supabase_admin"), args.users)
    config = Config()
    with psycopg.connect(url, autocommit=True) as conn:
        shape = catalog.resolve(conn, config)
        install(conn, config, shape, ApplyOptions())
        conn.execute(  # 95% of the users have a profile
            "INSERT INTO public.users (id, email, created_at) SELECT id, email, created_at "
            "FROM auth.users WHERE abs(hashtext(id::text)) % 100 >= 5"
        )
        conn.execute("VACUUM ANALYZE public.users")

        def guide_count() -> object:
            with conn.transaction():
                conn.execute("SET LOCAL enable_nestloop = off")
                return conn.execute(GUIDE_COUNT).fetchone()

        measured: dict[str, list[float]] = {"guide": [], "census": [], "tick": []}
        for _ in range(args.rounds):
            measured["guide"].append(seconds(guide_count))
            measured["census"].append(seconds(lambda: read_census(conn, config, shape)))
            ticks = [seconds(lambda: read_tick(conn, config, shape)) for _ in range(5)]
            measured["tick"].append(statistics.median(ticks))
        ghosts = read_census(conn, config, shape).ghost_total
    median = {name: statistics.median(values) for name, values in measured.items()}
    print(
        f"PostgreSQL {box.status().version}, {args.users:,} auth users, {ghosts:,} ghosts, "
        f"{args.rounds} rounds (medians)"
    )
    print()
    print("| measurement | seconds |")
    print("|---|---|")
    print(f"| full scan: the guide's anti-join count | {median['guide']:.3f} |")
    print(f"| full reconciliation: the monitor's census (one full join) | {median['census']:.3f} |")
    print(f"| one tick | {median['tick'] * 1000:.1f} ms |")
    print()
    print(f"tick / guide's full scan: {median['tick'] / median['guide']:.4f} (target <= 0.05)")
    print(f"tick / census: {median['tick'] / median['census']:.4f}")


if __name__ == "__main__":
    main()
