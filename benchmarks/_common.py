"""Shared benchmark setup: a sandbox database filled set-based, the way the Auth server stores users."""

from __future__ import annotations

import argparse
import atexit
import statistics
import tempfile
import time
from pathlib import Path

import psycopg

from ghostguard.sandbox import Sandbox
from ghostguard.supabase.authserver import import_users


def arguments(description: str) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument(
        "--users", type=int, default=1_000_000, help="auth users to create (default 1,000,000)"
    )
    parser.add_argument("--pg-bin", type=Path, help="PostgreSQL bin dir (default: the embedded 18)")
    parser.add_argument(
        "--data-dir", type=Path, help="sandbox directory (default: a new temporary one)"
    )
    return parser


def sandbox(args: argparse.Namespace) -> Sandbox:
    """The benchmark's own server; a temporary one is stopped and deleted when the script exits."""
    box = Sandbox(args.data_dir or Path(tempfile.mkdtemp(prefix="ghostguard-bench-")), args.pg_bin)
    if args.data_dir is None:
        atexit.register(box.server.delete)
    box.start()
    return box


def fresh_database(box: Sandbox, name: str) -> str:
    """A Supabase-like database with production-like durability (synchronous_commit on)."""
    url = box.fresh_database(name)
    with psycopg.connect(box.url("template1", "supabase_admin"), autocommit=True) as admin:
        admin.execute(
            psycopg.sql.SQL("ALTER DATABASE {} SET synchronous_commit = on").format(
                psycopg.sql.Identifier(name)
            )
        )
    return url


def create_users(admin_url: str, count: int, chunk: int = 250_000) -> float:
    """Set-based auth users (80% email, 10% phone, 10% anonymous); returns seconds."""
    started = time.perf_counter()
    with psycopg.connect(admin_url, autocommit=True) as admin:
        for first in range(1, count + 1, chunk):
            import_users(admin, min(chunk, count - first + 1), prefix="bench", first=first)
        admin.execute("VACUUM ANALYZE auth.users")
    return time.perf_counter() - started


def settle_visibility(conn: psycopg.Connection, table: str) -> None:
    """VACUUM until the visibility map covers the table, as autovacuum leaves a production table."""
    for _ in range(5):
        conn.execute(psycopg.sql.SQL("VACUUM {}").format(psycopg.sql.SQL(table)))
        row = conn.execute(
            "SELECT relallvisible, relpages FROM pg_class WHERE oid = %s::regclass", (table,)
        ).fetchone()
        if row and row[0] >= 0.95 * row[1]:
            return
        time.sleep(0.3)


def percentile(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))]


def median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")
