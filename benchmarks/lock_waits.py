"""Benchmark: the longest a live signup waits while ghostguard runs against a profile table that a
migration holds (a non-concurrent CREATE INDEX, an ALTER TABLE), for check, apply, backfill,
repair and rollback.

    python benchmarks/lock_waits.py [--users 2000] [--pg-bin DIR]

For each holder and command: a fresh database with `--users` users (10% ghosts), the sync installed
first where the command needs it; one Auth-server-like client signs up users without pause the
whole time; the migration takes its lock and keeps its transaction open; the command runs (as a
user would run it, `python -m ghostguard ... --yes`); then the migration ends. Reported per case:
the command's exit code, the longest signup while it ran, and, measured in the same case just
before it, the longest signup while only the migration held the table (the reference). The bound
is what ghostguard promises: a signup waits at most [trigger] signup_lock_timeout for the profile
table and at most lock_timeout behind ghostguard's own DDL, never the migration's whole length.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import psycopg

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import arguments, fresh_database, sandbox  # noqa: E402

from ghostguard.config import Config  # noqa: E402
from ghostguard.sandbox import Sandbox  # noqa: E402
from ghostguard.sandbox.server import SUPERUSER  # noqa: E402
from ghostguard.supabase import authserver  # noqa: E402
from ghostguard.supabase.authserver import AuthServer  # noqa: E402

HOLDERS = {
    "CREATE INDEX": "CREATE INDEX bench_email_idx ON public.users (email)",
    "ALTER TABLE": "ALTER TABLE public.users ADD COLUMN bench_note text",
}
COMMANDS = ("check", "apply", "backfill", "repair", "rollback")
NEEDS_SYNC = {"backfill", "repair", "rollback"}
HOLD_BEFORE_S = 1.5  # the reference window: only the migration holds the table
DEFAULTS = Config()


def _ms(text: str) -> float:
    return float(text[:-2]) if text.endswith("ms") else float(text[:-1]) * 1000


class Signups:
    """One client signing users up back to back; the longest signup within a time window."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.done: list[tuple[float, float]] = []  # (finished at, seconds)
        self.errors: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run)
        self._thread.start()

    def _run(self) -> None:
        with psycopg.connect(self.url, autocommit=True) as conn:
            conn.execute("SET statement_timeout = '60s'")
            writer = AuthServer(conn)
            while not self._stop.is_set():
                started = time.perf_counter()
                try:
                    writer.signup(authserver.email_user(f"live-{uuid.uuid4().hex}@bench.invalid"))
                except psycopg.Error as exc:
                    self.errors.append(str(exc).splitlines()[0])
                self.done.append((time.perf_counter(), time.perf_counter() - started))

    def longest(self, since: float, until: float) -> float:
        """The longest signup that was in flight at any point of [since, until]."""
        spans = [s for end, s in self.done if end >= since and end - s <= until]
        return max(spans, default=0.0)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()


def prepare(box_url: str, admin_url: str, users: int, command: str) -> None:
    with psycopg.connect(admin_url, autocommit=True) as admin:
        authserver.import_users(admin, users, prefix="bench")
    env = {**os.environ, "DATABASE_URL": box_url}
    if command in NEEDS_SYNC:
        subprocess.run(
            [sys.executable, "-m", "ghostguard", "apply", "--yes"], env=env, check=True,
            capture_output=True,
        )  # fmt: skip
        with psycopg.connect(box_url, autocommit=True) as conn:
            # ghosts again (10%), some with a recorded failure for repair to retry
            conn.execute(
                "DELETE FROM public.users WHERE id IN (SELECT id FROM public.users "
                "ORDER BY id LIMIT %s)",
                (users // 10,),
            )
            conn.execute(
                "INSERT INTO public.profile_sync_failures (user_id, operation, sqlstate, message) "
                "SELECT id::text, 'INSERT', '55P03', 'lock timeout' FROM auth.users au "
                "WHERE NOT EXISTS (SELECT 1 FROM public.users u WHERE u.id = au.id)"
            )
    else:
        with psycopg.connect(admin_url, autocommit=True) as admin:
            admin.execute(
                "INSERT INTO public.users (id, email, created_at) SELECT id, email, created_at "
                "FROM auth.users ORDER BY id OFFSET %s",
                (users // 10,),
            )


def one_case(
    box: Sandbox, holder: str, command: str, users: int
) -> tuple[int, float, float, list[str]]:
    name = f"locks_{holder.split()[0].lower()}_{command}"
    url = fresh_database(box, name)
    admin_url = box.url(name, SUPERUSER)
    prepare(url, admin_url, users, command)
    signups = Signups(box.url(name, authserver.AUTH_ROLE))
    time.sleep(0.3)
    with psycopg.connect(url, application_name="migration") as migration:
        migration.execute(HOLDERS[holder])
        held = time.perf_counter()
        time.sleep(HOLD_BEFORE_S)
        started = time.perf_counter()
        done = subprocess.run(
            [
                sys.executable,
                "-m",
                "ghostguard",
                command,
                *(["--yes"] if command != "check" else []),
            ],
            env={**os.environ, "DATABASE_URL": url},
            capture_output=True,
            text=True,
            check=False,
        )
        ended = time.perf_counter()
        migration.rollback()
    time.sleep(0.3)
    signups.stop()
    return (
        done.returncode,
        signups.longest(started, ended),
        signups.longest(held, started),
        signups.errors,
    )


def main() -> None:
    parser = arguments(__doc__ or "")
    parser.set_defaults(users=2000)
    args = parser.parse_args()
    box = sandbox(args)
    bound = _ms(DEFAULTS.signup_lock_timeout) + _ms(DEFAULTS.lock_timeout)
    print(f"PostgreSQL {box.status().version}; {args.users:,} users; bound {bound:.0f} ms "
          f"(signup_lock_timeout {DEFAULTS.signup_lock_timeout} + lock_timeout "
          f"{DEFAULTS.lock_timeout})")  # fmt: skip
    print(f"{'held by':<13} {'command':<9} {'exit':>4} {'longest signup':>15} "
          f"{'reference':>10} {'ratio to bound':>15}")  # fmt: skip
    worst = 0.0
    for holder in HOLDERS:
        for command in COMMANDS:
            code, longest, reference, errors = one_case(box, holder, command, args.users)
            worst = max(worst, longest)
            print(
                f"{holder:<13} {command:<9} {code:>4} {longest * 1000:>12.1f} ms "
                f"{reference * 1000:>7.1f} ms {longest * 1000 / bound:>14.2f}x"
                + (f"  signup errors: {errors[:2]}" if errors else "")
            )
    print(f"longest signup wait in any case: {worst * 1000:.1f} ms = "
          f"{worst * 1000 / bound:.2f}x the bound")  # fmt: skip


if __name__ == "__main__":
    main()
