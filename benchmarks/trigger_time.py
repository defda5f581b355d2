"""Benchmark: what one trigger-time measurement costs (issue 14: under 5 ms a measurement).

    python benchmarks/trigger_time.py [--users 100000] [--samples 300] [--pg-bin DIR]

On a database with --users auth users and their profiles and ghostguard installed, it measures,
alternately in the same run:
  (r) the reference: one real signup through the Auth server's path (committed), and
  (m) one trigger-time measurement (EXPLAIN ANALYZE of the Auth server's INSERT, rolled back),
each as seen by the client (round trips included). Prints the median and p95 of both, the ratio
m/r, and whether the median and p95 of (m) are under 5 ms.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import psycopg

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import arguments, create_users, fresh_database, median, percentile, sandbox  # noqa: E402

from ghostguard import catalog  # noqa: E402
from ghostguard import deploy as apply_mod  # noqa: E402
from ghostguard.checks import trigger_time  # noqa: E402
from ghostguard.config import Config  # noqa: E402
from ghostguard.supabase import authserver  # noqa: E402

TARGET_MS = 5.0


def main() -> None:
    parser = arguments(__doc__ or "")
    parser.set_defaults(users=100_000)
    parser.add_argument("--samples", type=int, default=300)
    args = parser.parse_args()
    box = sandbox(args)
    url = fresh_database(box, "bench_trigger_time")
    create_users(box.url("bench_trigger_time", "supabase_admin"), args.users)
    config = Config()
    with psycopg.connect(url, autocommit=True) as conn:
        shape = catalog.resolve(conn, config)
        apply_mod.apply(conn, config, shape)
        auth_url = url.replace("postgres@", f"{authserver.AUTH_ROLE}@")
        with psycopg.connect(auth_url, autocommit=True) as auth_conn:
            writer = authserver.AuthServer(auth_conn)
            signups: list[float] = []
            measurements: list[float] = []
            trigger_ms: list[float] = []
            for n in range(args.samples):
                started = time.perf_counter()
                writer.signup(authserver.email_user(f"bench-{n}@trigger.example"))
                signups.append((time.perf_counter() - started) * 1000)
                started = time.perf_counter()
                timing = trigger_time.measure(conn, config)
                measurements.append((time.perf_counter() - started) * 1000)
                if timing and timing.trigger_ms is not None:
                    trigger_ms.append(timing.trigger_ms)
    m50, m95 = median(measurements), percentile(measurements, 95)
    r50 = median(signups)
    print(f"{args.users:,} users, {args.samples} samples each, PostgreSQL {box.status().version}")
    print(
        f"(r) one signup, committed:      median {r50:.2f} ms, p95 {percentile(signups, 95):.2f} ms"
    )
    print(f"(m) one measurement, rolled back: median {m50:.2f} ms, p95 {m95:.2f} ms")
    print(f"    the trigger's own time it reports: median {median(trigger_ms):.3f} ms")
    print(f"m/r (median): {m50 / r50:.2f}x")
    print(
        f"target: a measurement under {TARGET_MS:g} ms: median {'met' if m50 < TARGET_MS else 'NOT met'}, "
        f"p95 {'met' if m95 < TARGET_MS else 'NOT met'}"
    )


if __name__ == "__main__":
    main()
