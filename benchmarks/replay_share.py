"""Measure: the share of real migration folders that `ghostguard rehearse` replays, and how long a
rehearsal takes (issues 15 and 22).

    python benchmarks/replay_share.py DIR [--pg-bin BIN] [--data-dir SANDBOX] [--legacy-grants]

DIR holds one folder per project, each with `supabase/migrations/` and, when the project has one,
`supabase/config.toml` (public projects' folders, collected by hand: they are not ours to commit,
so none is in this repository). Each is rehearsed into a fresh sandbox database as
`ghostguard rehearse` does it (config.toml decides the kinds); the line per project gives the
verdict (the profile table, the kinds without a profile, doctor's errors) or the one-line error of
the file that stopped it, and the time. The last lines: the share that replayed, and the
rehearsal time (median, max) on this server. Whether a verdict is right is judged by reading the
SQL (docs/benchmarks.md records that reading).
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

from ghostguard import rehearsal
from ghostguard.errors import GhostguardError
from ghostguard.rehearsal import project
from ghostguard.sandbox import Sandbox


def _verdict(report: rehearsal.Rehearsal) -> str:
    if report.profile_table is None:
        return f"replayed; no profile table ({report.problem})"
    failing = ", ".join(report.failing) or "none"
    doctor = f"; doctor: {'; '.join(report.findings)}" if report.findings else ""
    disabled = f"; disabled in config: {', '.join(report.disabled)}" if report.disabled else ""
    return (
        f"replayed; profile table {report.profile_table}; failing: {failing}{doctor}{disabled}; "
        f"passed: {report.passed}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("projects", type=Path)
    parser.add_argument("--pg-bin", type=Path)
    parser.add_argument("--data-dir", type=Path)
    parser.add_argument(
        "--legacy-grants", action="store_true", help="the pre-2026 default privileges"
    )
    args = parser.parse_args()
    sandbox = Sandbox(args.data_dir, args.pg_bin)
    sandbox.start()
    folders = sorted(p for p in args.projects.iterdir() if (p / "supabase" / "migrations").is_dir())
    replayed = 0
    times: list[float] = []
    for folder in folders:
        migrations = folder / "supabase" / "migrations"
        files = len(list(migrations.glob("*.sql")))
        started = time.perf_counter()
        try:
            report = rehearsal.rehearse(
                sandbox,
                migrations,
                legacy_grants=args.legacy_grants,
                project=project.load(project.beside(migrations)),
            )
        except GhostguardError as exc:
            times.append(time.perf_counter() - started)
            print(f"{folder.name} ({files} files, {times[-1]:.1f} s): STOPPED {exc.message}")
            continue
        times.append(time.perf_counter() - started)
        replayed += 1
        print(f"{folder.name} ({files} files, {times[-1]:.1f} s): {_verdict(report)}")
    version = sandbox.status().version
    print(
        f"replayed {replayed} of {len(folders)} folders ({replayed / max(len(folders), 1):.0%}) "
        f"on PostgreSQL {version}"
    )
    if times:
        print(f"rehearsal time: median {statistics.median(times):.2f} s, max {max(times):.2f} s")


if __name__ == "__main__":
    main()
