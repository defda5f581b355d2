"""Benchmark: ghostguard's batched backfill against one INSERT ... SELECT, in the same run.

    python benchmarks/backfill.py [--users 1000000] [--live 4] [--jobs 2] [--pg-bin DIR]

For 100% ghosts (a freshly created, analyzed, empty profile table) and 5% ghosts it measures
  (a)  the guide's single statement as written: INSERT ... SELECT ... WHERE NOT EXISTS ...
       ON CONFLICT DO NOTHING (capped by --reference-timeout: with an empty-analyzed profile table
       the planner picks a nested loop over a sequential scan, which is quadratic),
  (a') the same statement with enable_nestloop = off (hash anti-join: the fastest one statement),
  (b)  ghostguard's backfill engine (defaults: adaptive batches aiming at 75 ms, on --jobs
       connections while nobody else writes, one while others do).
Targets: b at least 0.8x the faster reference in rows/s; worst batch transaction <= 250 ms; with
--live K, signup p99 during the backfill <= 2x before it, and 0 lost, 0 duplicate, 0 failed signups.

Then 1% bad rows: 100% ghosts again with a CHECK constraint that 1 user in 100 breaks, spread evenly
over the key range. Target: the backfill finishes, records exactly those users, and scans at least
0.5x as many rows per second as its own clean run (b) above.
"""

from __future__ import annotations

import multiprocessing as mp
import sys
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import psycopg

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import (  # noqa: E402
    arguments,
    create_users,
    fresh_database,
    median,
    percentile,
    sandbox,
    settle_visibility,
)

from ghostguard import catalog  # noqa: E402
from ghostguard.backfill.engine import run_backfill  # noqa: E402
from ghostguard.backfill.options import BackfillOptions  # noqa: E402
from ghostguard.config import Config  # noqa: E402
from ghostguard.deploy import ApplyOptions, install  # noqa: E402
from ghostguard.supabase import authserver

GUIDE_STATEMENT = """
INSERT INTO public.users (id, email, full_name, avatar_url, created_at)
SELECT au.id, au.email, coalesce(au.raw_user_meta_data ->> 'full_name', au.raw_user_meta_data ->> 'name'),
       coalesce(au.raw_user_meta_data ->> 'avatar_url', au.raw_user_meta_data ->> 'picture'), au.created_at
FROM auth.users au
WHERE NOT EXISTS (SELECT 1 FROM public.users pu WHERE pu.id = au.id)
ON CONFLICT (id) DO NOTHING
"""
KEEP_5_PERCENT_GHOSTS = """
INSERT INTO public.users (id, email, created_at)
SELECT id, email, created_at FROM auth.users WHERE abs(hashtext(id::text)) % 100 >= 5
"""


@dataclass
class Timing:
    rows: int
    seconds: float | None  # None: did not finish within the cap
    note: str = ""

    @property
    def rate(self) -> float:
        return self.rows / self.seconds if self.seconds else 0.0


def prepare(conn: psycopg.Connection, ghosts_percent: int) -> None:
    conn.execute("TRUNCATE public.users")
    if ghosts_percent < 100:
        conn.execute(KEEP_5_PERCENT_GHOSTS)
        settle_visibility(conn, "public.users")
    conn.execute("ANALYZE public.users")


def single_statement(conn: psycopg.Connection, nestloop: bool, cap_seconds: int) -> Timing:
    plan = conn.execute("EXPLAIN " + GUIDE_STATEMENT if nestloop else "SELECT 'n/a'").fetchall()
    join = next((r[0].strip(" ->") for r in plan if "Anti Join" in r[0]), "")
    with conn.transaction():
        conn.execute("SELECT set_config('statement_timeout', %s, true)", (f"{cap_seconds}s",))
        if not nestloop:
            conn.execute("SET LOCAL enable_nestloop = off")
        started = time.perf_counter()
        try:
            rows = conn.execute(GUIDE_STATEMENT).rowcount
        except psycopg.errors.QueryCanceled:
            return Timing(
                0, None, f"did not finish in {cap_seconds}s ({join.split('(')[0].strip()})"
            )
    return Timing(rows, time.perf_counter() - started, join.split("(")[0].strip())


def signup_client(auth_url: str, stop: mp.synchronize.Event, out: mp.Queue) -> None:  # type: ignore[type-arg]
    """One Auth-server-like client: signs users up until told to stop; reports every latency."""
    samples: list[tuple[float, float, str | None]] = []
    with psycopg.connect(auth_url, autocommit=True) as conn:
        writer = authserver.AuthServer(conn)
        while not stop.is_set():
            user = authserver.email_user(f"live-{uuid.uuid4().hex}@example.com", full_name="Live")
            started = time.perf_counter()
            try:
                writer.signup(user)
                samples.append((time.time(), time.perf_counter() - started, str(user.id)))
            except psycopg.Error:
                samples.append((time.time(), time.perf_counter() - started, None))
    out.put(samples)


def main() -> None:
    parser = arguments(__doc__ or "")
    parser.add_argument(
        "--live", type=int, default=0, metavar="K", help="K concurrent signup clients"
    )
    parser.add_argument("--reference-timeout", type=int, default=60, help="cap for (a), seconds")
    parser.add_argument(
        "--live-warmup", type=float, default=10.0, help="seconds of signups before the backfill"
    )
    parser.add_argument(
        "--live-max-rate", type=float, help="--max-rate for the backfill run under live load"
    )
    parser.add_argument(
        "--jobs", type=int, default=BackfillOptions.jobs, help="backfill connections (default 2)"
    )
    args = parser.parse_args()
    box = sandbox(args)
    url = fresh_database(box, "bench")
    version = box.status().version
    print(
        f"PostgreSQL {version}, {args.users:,} auth users (set-based), live clients {args.live}, "
        f"live --max-rate {args.live_max_rate or 'none'}, backfill --jobs {args.jobs} ...",
        flush=True,
    )
    created = create_users(box.url("bench", "supabase_admin"), args.users)
    print(f"  created in {created:.1f}s", flush=True)
    config = Config()
    with psycopg.connect(url, autocommit=True) as conn:
        shape = catalog.resolve(conn, config)
        install(conn, config, shape, ApplyOptions())  # the trigger is live, as in production
        results = []
        for ghosts_percent in (100, 5):
            prepare(conn, ghosts_percent)
            plain = single_statement(conn, nestloop=True, cap_seconds=args.reference_timeout)
            prepare(conn, ghosts_percent)
            fair = single_statement(conn, nestloop=False, cap_seconds=args.reference_timeout)
            prepare(conn, ghosts_percent)
            result = run_backfill(conn, config, shape, BackfillOptions(jobs=args.jobs))
            ours = Timing(result.inserted, result.seconds)
            finished = [t for t in (plain, fair) if t.seconds]
            reference = (
                max(finished, key=lambda t: t.rate)
                if finished
                else Timing(0, None, "none finished")
            )
            live_report = None
            if args.live:
                prepare(conn, ghosts_percent)
                live = LiveClients(
                    box.url("bench", authserver.AUTH_ROLE), args.live, args.live_warmup
                )
                started = time.time()
                loaded = run_backfill(
                    conn,
                    config,
                    shape,
                    BackfillOptions(max_rate=args.live_max_rate, jobs=args.jobs),
                )
                live_report = live.finish(conn, (started, started + loaded.seconds))
                live_report["worst_batch_ms"] = loaded.worst_batch_seconds * 1000
                live_report["rows_per_s"] = loaded.inserted / loaded.seconds
                live_report["yielded_s"] = loaded.yielded_seconds
            results.append(
                (
                    ghosts_percent,
                    plain,
                    fair,
                    ours,
                    result.worst_batch_seconds,
                    result.batches,
                    reference,
                    live_report,
                )
            )
        bad = bad_rows_case(conn, config, shape, args.jobs)
    report(version, args, results)
    clean = results[0][3]
    clean_rate = clean.rows / clean.seconds if clean.seconds else float("nan")
    print(
        f"\n1% bad rows (a CHECK 1 user in 100 breaks), 100% ghosts: {bad['scanned']:,} rows scanned "
        f"in {bad['seconds']:.2f}s = {bad['rate']:,.0f} rows/s; clean run {clean_rate:,.0f} rows/s; "
        f"ratio {bad['rate'] / clean_rate:.2f} (target >= 0.5); {bad['inserted']:,} profiles, "
        f"{bad['failed']:,} users recorded once (expected {bad['expected']:,}), "
        f"{bad['ghosts_left']:,} ghosts left; worst batch {bad['worst_ms']:.0f} ms"
    )


BAD_ROW = "email LIKE '%42@example.com'"  # import_users: exactly users 42, 142, 242, ...


def bad_rows_case(
    conn: psycopg.Connection, config: Config, shape: object, jobs: int
) -> dict[str, float]:
    """The backfill over 100% ghosts of which 1% break a CHECK: it must not stop, and must record
    exactly those users."""
    prepare(conn, 100)
    conn.execute(
        f"ALTER TABLE public.users ADD CONSTRAINT bench_bad_rows CHECK (email IS NULL OR NOT ({BAD_ROW}))"
    )
    conn.execute("DELETE FROM public.profile_sync_failures")
    expected = int(conn.execute(f"SELECT count(*) FROM auth.users WHERE {BAD_ROW}").fetchone()[0])  # type: ignore[index]
    result = run_backfill(conn, config, shape, BackfillOptions(jobs=jobs))  # type: ignore[arg-type]
    recorded = int(
        conn.execute(  # type: ignore[index]
            "SELECT count(DISTINCT user_id) FROM public.profile_sync_failures WHERE operation = 'backfill'"
        ).fetchone()[0]
    )
    left = int(
        conn.execute(  # type: ignore[index]
            "SELECT count(*) FROM auth.users au WHERE NOT EXISTS (SELECT 1 FROM public.users pu WHERE pu.id = au.id)"
        ).fetchone()[0]
    )
    conn.execute("ALTER TABLE public.users DROP CONSTRAINT bench_bad_rows")
    return {
        "scanned": result.scanned,
        "seconds": result.seconds,
        "rate": result.scanned / result.seconds,
        "inserted": result.inserted,
        "failed": recorded,
        "expected": expected,
        "ghosts_left": left,
        "worst_ms": result.worst_batch_seconds * 1000,
    }


class LiveClients:
    """K signup processes running before and during the backfill."""

    def __init__(self, auth_url: str, count: int, warmup: float) -> None:
        self.count = count
        ctx = mp.get_context("fork")
        self.stop = ctx.Event()
        self.out: mp.Queue = ctx.Queue()  # type: ignore[type-arg]
        self.procs = [
            ctx.Process(target=signup_client, args=(auth_url, self.stop, self.out))
            for _ in range(count)
        ]
        for proc in self.procs:
            proc.start()
        self.before_start = time.time()
        if count:
            time.sleep(warmup)

    def finish(
        self, conn: psycopg.Connection, window: tuple[float, float]
    ) -> dict[str, float] | None:
        if not self.count:
            return None
        self.stop.set()
        samples = [s for _ in self.procs for s in self.out.get()]
        for proc in self.procs:
            proc.join()
        start, end = window
        before = [lat for t, lat, ok in samples if t < start and ok]
        during = [lat for t, lat, ok in samples if start <= t <= end and ok]
        ids = [ok for _, _, ok in samples if ok]
        found = conn.execute(
            "SELECT count(*) FROM public.users WHERE id = ANY(%s::uuid[])", (ids,)
        ).fetchone()
        dupes = conn.execute("SELECT count(*) - count(DISTINCT id) FROM public.users").fetchone()
        return {
            "signups": len(ids),
            "failed": sum(1 for *_, ok in samples if ok is None),
            "lost": len(ids) - int(found[0] if found else 0),
            "duplicates": int(dupes[0] if dupes else 0),
            "p50_before_ms": median(before) * 1000,
            "p99_before_ms": percentile(before, 99) * 1000,
            "p50_during_ms": median(during) * 1000,
            "p99_during_ms": percentile(during, 99) * 1000,
            "during_samples": len(during),
        }


def report(version: str | None, args: object, results: list[tuple]) -> None:  # type: ignore[type-arg]
    print()
    print(
        "| ghosts | (a) guide's statement | (a') same, no nested loop | (b) ghostguard | b / best(a) "
        "| worst batch | batches |"
    )
    print("|---|---|---|---|---|---|---|")
    for percent, plain, fair, ours, worst, batches, reference, _ in results:

        def cell(t: Timing) -> str:
            return (
                f"{t.rows:,} rows in {t.seconds:.2f}s = {t.rate:,.0f} rows/s"
                if t.seconds
                else t.note
            )

        ratio = ours.rate / reference.rate if reference.rate else float("nan")
        print(
            f"| {percent}% | {cell(plain)} | {cell(fair)} | {cell(ours)} | {ratio:.2f} | {worst * 1000:.0f} ms "
            f"| {batches} |"
        )
    for percent, *_, live in results:
        if live:
            ratio = live["p99_during_ms"] / live["p99_before_ms"]
            print(
                f"live signups, {percent}% ghosts: p50 {live['p50_before_ms']:.1f} -> {live['p50_during_ms']:.1f} ms,"
                f" p99 {live['p99_before_ms']:.1f} -> {live['p99_during_ms']:.1f} ms (x{ratio:.2f}); "
                f"backfill under load {live['rows_per_s']:,.0f} rows/s (yielded {live['yielded_s']:.1f}s), "
                f"worst batch {live['worst_batch_ms']:.0f} ms; "
                f"{int(live['signups']):,} signups ({int(live['during_samples']):,} during), "
                f"lost {int(live['lost'])}, duplicates {int(live['duplicates'])}, failed {int(live['failed'])}"
            )


if __name__ == "__main__":
    main()
