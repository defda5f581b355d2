"""Benchmark: what the sync trigger costs the Auth server, in one run, for three setups:

    none        no trigger on auth.users
    plain       the usual row trigger: AFTER INSERT FOR EACH ROW, one INSERT ... ON CONFLICT DO NOTHING
    ghostguard  ghostguard's triggers (set-based insert, failures recorded, updates and deletes)

    python benchmarks/trigger.py [--clients 4] [--seconds 8] [--rounds 5] [--import-rows 100000] [--pg-bin DIR]

(a) K concurrent Auth-server-like signup clients for S seconds: signups/s and p99 latency.
(b) one INSERT of N users into auth.users (an import): seconds, each after a CHECKPOINT so that
    no import pays for another's dirty pages. The floor: the same number of profile rows written
    alone (one INSERT ... SELECT into public.users, key order, no trigger involved). Any trigger that
    creates the profiles inside the import costs at least none + floor.
Setups are measured in interleaved rounds (none, plain, ghostguard, none, ...) and the median round
is reported, so a noisy minute on the shared machine hits all three alike.
Targets: ghostguard's signup throughput >= 0.9x plain's; its import time <= 1.3x none's.
"""

from __future__ import annotations

import multiprocessing as mp
import statistics
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import psycopg

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import arguments, fresh_database, percentile, sandbox  # noqa: E402

from ghostguard import catalog  # noqa: E402
from ghostguard.config import Config  # noqa: E402
from ghostguard.deploy import ApplyOptions, install  # noqa: E402
from ghostguard.sandbox import Sandbox  # noqa: E402
from ghostguard.sandbox.server import SUPERUSER  # noqa: E402
from ghostguard.supabase import authserver

PLAIN_TRIGGER = """
CREATE FUNCTION public.handle_new_user() RETURNS trigger LANGUAGE plpgsql SECURITY DEFINER
SET search_path = '' AS $$
BEGIN
  INSERT INTO public.users (id, email, full_name, avatar_url, created_at)
  VALUES (NEW.id, NEW.email,
          coalesce(NEW.raw_user_meta_data ->> 'full_name', NEW.raw_user_meta_data ->> 'name'),
          coalesce(NEW.raw_user_meta_data ->> 'avatar_url', NEW.raw_user_meta_data ->> 'picture'),
          NEW.created_at)
  ON CONFLICT (id) DO NOTHING;
  RETURN NEW;
END $$;
CREATE TRIGGER on_auth_user_created AFTER INSERT ON auth.users
  FOR EACH ROW EXECUTE FUNCTION public.handle_new_user();
"""
SETUPS = ("none", "plain", "ghostguard")


def set_up(url: str, setup: str) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        if setup == "plain":
            conn.execute(PLAIN_TRIGGER)
        elif setup == "ghostguard":
            config = Config()
            install(conn, config, catalog.resolve(conn, config), ApplyOptions())


def signup_client(auth_url: str, seconds: float, out: mp.Queue) -> None:  # type: ignore[type-arg]
    latencies: list[float] = []
    with psycopg.connect(auth_url, autocommit=True) as conn:
        writer = authserver.AuthServer(conn)
        deadline = time.perf_counter() + seconds
        while time.perf_counter() < deadline:
            user = authserver.email_user(f"b-{uuid.uuid4().hex}@example.com", full_name="Bench")
            started = time.perf_counter()
            writer.signup(user)
            latencies.append(time.perf_counter() - started)
    out.put(latencies)


def signups(auth_url: str, clients: int, seconds: float) -> tuple[float, float]:
    """(signups per second, p99 seconds) of `clients` processes signing up for `seconds`."""
    ctx = mp.get_context("fork")
    out: mp.Queue = ctx.Queue()  # type: ignore[type-arg]
    procs = [
        ctx.Process(target=signup_client, args=(auth_url, seconds, out)) for _ in range(clients)
    ]
    for proc in procs:
        proc.start()
    latencies = [lat for _ in procs for lat in out.get()]
    for proc in procs:
        proc.join()
    return len(latencies) / seconds, percentile(latencies, 99)


PROFILE_ROWS = """
INSERT INTO public.users (id, email, full_name, avatar_url, created_at)
SELECT id, email, full_name, NULL, now() FROM (
  SELECT gen_random_uuid() AS id, 'floor' || g || '@example.com' AS email,
         CASE WHEN g %% 3 = 0 THEN 'User ' || g END AS full_name
  FROM generate_series(1, %(rows)s) g) s
ORDER BY id
"""


def checkpoint(box: Sandbox) -> None:
    with psycopg.connect(box.url("template1", SUPERUSER), autocommit=True) as admin:
        admin.execute("CHECKPOINT")


def timed(url: str, statement: Callable[[psycopg.Connection], object]) -> float:
    with psycopg.connect(url, autocommit=True) as conn:
        started = time.perf_counter()
        statement(conn)
        return time.perf_counter() - started


def one_import(auth_url: str, rows: int, first: int) -> float:
    return timed(
        auth_url,
        lambda conn: authserver.import_users(conn, rows, prefix=f"imp{first}-", first=first),
    )


def profile_rows_alone(url: str, rows: int) -> float:
    """The floor: writing `rows` profile rows with no import and no trigger around them."""
    return timed(url, lambda conn: conn.execute(PROFILE_ROWS, {"rows": rows}))


def main() -> None:
    parser = arguments(__doc__ or "")
    parser.add_argument("--clients", type=int, default=4, help="concurrent signup clients")
    parser.add_argument("--seconds", type=float, default=8.0, help="seconds of signups per round")
    parser.add_argument("--rounds", type=int, default=5, help="interleaved rounds per setup")
    parser.add_argument("--import-rows", type=int, default=100_000, help="rows in one import")
    args = parser.parse_args()
    box = sandbox(args)
    urls = {setup: fresh_database(box, f"trig_{setup}") for setup in SETUPS}
    auth_urls = {setup: box.url(f"trig_{setup}", authserver.AUTH_ROLE) for setup in SETUPS}
    for setup, url in urls.items():
        set_up(url, setup)
    print(
        f"PostgreSQL {box.status().version}: {args.clients} signup clients x {args.seconds:.0f}s, "
        f"{args.import_rows:,}-row import, {args.rounds} interleaved rounds",
        flush=True,
    )
    rates: dict[str, list[float]] = {s: [] for s in SETUPS}
    p99s: dict[str, list[float]] = {s: [] for s in SETUPS}
    imports: dict[str, list[float]] = {s: [] for s in SETUPS}
    floors: list[float] = []
    for round_no in range(args.rounds):
        for setup in SETUPS:
            rate, p99 = signups(auth_urls[setup], args.clients, args.seconds)
            rates[setup].append(rate)
            p99s[setup].append(p99)
        for setup in SETUPS:
            first = 10_000_000 * (round_no + 1)
            checkpoint(box)
            imports[setup].append(one_import(auth_urls[setup], args.import_rows, first))
        checkpoint(box)
        floors.append(profile_rows_alone(urls["none"], args.import_rows))
        print(f"  round {round_no + 1} done", flush=True)
    with psycopg.connect(urls["ghostguard"], autocommit=True) as conn:
        ghosts = conn.execute(
            "SELECT count(*) FROM auth.users au WHERE NOT EXISTS "
            "(SELECT 1 FROM public.users pu WHERE pu.id = au.id)"
        ).fetchone()
    rate = {s: statistics.median(v) for s, v in rates.items()}
    p99 = {s: statistics.median(v) for s, v in p99s.items()}
    imp = {s: statistics.median(v) for s, v in imports.items()}
    print()
    print(f"| setup | signups/s | signup p99 | import of {args.import_rows:,} rows |")
    print("|---|---|---|---|")
    for setup in SETUPS:
        print(f"| {setup} | {rate[setup]:,.0f} | {p99[setup] * 1000:.1f} ms | {imp[setup]:.2f} s |")
    print()
    print(
        f"ghostguard / plain signup throughput: {rate['ghostguard'] / rate['plain']:.2f} (target >= 0.9)"
    )
    print(f"ghostguard / none import time: {imp['ghostguard'] / imp['none']:.2f} (target <= 1.3)")
    print(f"plain / none import time: {imp['plain'] / imp['none']:.2f}")
    floor = statistics.median(floors)
    print(
        f"floor: {args.import_rows:,} profile rows written alone {floor:.2f} s; "
        f"(none + floor) / none: {(imp['none'] + floor) / imp['none']:.2f}; "
        f"ghostguard / (none + floor): {imp['ghostguard'] / (imp['none'] + floor):.2f}"
    )
    print(f"ghosts left in the ghostguard database: {ghosts[0] if ghosts else '?'}")


if __name__ == "__main__":
    main()
