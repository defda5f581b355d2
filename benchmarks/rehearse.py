"""Benchmark: `ghostguard rehearse` on a 50-file migration folder (issue 15: "in seconds").

    python benchmarks/rehearse.py [--files 50] [--pg-bin DIR]

The folder is made of what real folders hold: the profile table and its trigger first, then
tables with RLS and policies, indexes, functions, a storage bucket with policies, realtime,
an extension, and column changes, one migration per file. Reference, in the same run: creating
the fresh database from the sandbox's template alone (what every rehearsal starts with).
Prints the wall time of the whole rehearsal (replay, triggers, the signup matrix, the app's
view, doctor) and its ratio to the reference.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from ghostguard import rehearsal  # noqa: E402
from ghostguard.sandbox import Sandbox  # noqa: E402
from test_rehearse import PLATFORM, PROFILES  # noqa: E402


def _migration(n: int) -> str:
    return (
        f"create table public.items_{n} (id bigint generated always as identity primary key, "
        f"owner uuid references auth.users on delete cascade, title text not null, "
        f"created_at timestamptz default now());\n"
        f"alter table public.items_{n} enable row level security;\n"
        f"grant select, insert on public.items_{n} to authenticated;\n"
        f'create policy "own items {n}" on public.items_{n} for all to authenticated '
        f"using ((select auth.uid()) = owner);\n"
        f"create index items_{n}_owner on public.items_{n} (owner);\n"
        f"create function public.items_{n}_count() returns bigint language sql stable "
        f"as 'select count(*) from public.items_{n}';\n"
        f"alter table public.profiles add column if not exists note_{n} text;\n"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--files", type=int, default=50)
    parser.add_argument("--pg-bin", type=Path)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    home = Path(tempfile.mkdtemp(prefix="ghostguard-bench-rehearse-"))
    box = Sandbox(home, args.pg_bin)
    box.start()
    try:
        folder = home / "migrations"
        folder.mkdir()
        (folder / "20240101000000_profiles.sql").write_text(PROFILES)
        (folder / "20240101000001_platform.sql").write_text(PLATFORM)
        for n in range(args.files - 2):
            (folder / f"2024020100{n:04d}_items_{n}.sql").write_text(_migration(n))
        references, rehearsals = [], []
        for _ in range(args.runs):
            started = time.perf_counter()
            box.fresh_database("bench_reference")
            references.append(time.perf_counter() - started)
            started = time.perf_counter()
            report = rehearsal.rehearse(box, folder)
            rehearsals.append(time.perf_counter() - started)
            assert report.passed, report.to_dict()
        best_ref, best = min(references), min(rehearsals)
        print(
            f"PostgreSQL {box.status().version}, {args.files} migration files, best of {args.runs}"
        )
        print(f"reference, a fresh database from the template: {best_ref:.2f} s")
        print(
            f"rehearse (replay, triggers, signup matrix, app's view, doctor): {best:.2f} s "
            f"({best / best_ref:.1f}x the reference)"
        )
    finally:
        box.server.delete()


if __name__ == "__main__":
    main()
