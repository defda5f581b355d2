"""Measure: the share of real migration folders that `ghostguard rehearse` replays (issue 15).

    python benchmarks/replay_share.py DIR [--pg-bin BIN] [--data-dir SANDBOX] [--legacy-grants]

DIR holds one folder per project, each with `supabase/migrations/` (public projects' folders,
collected by hand: they are not ours to commit, so none is in this repository). Each is replayed
into a fresh sandbox database; the line per project says whether every file applied (and then the
rehearsal's verdict: the profile table, the kinds without a profile) or the one-line error of the
file that stopped it. The last line is the share that replayed, on this server.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from ghostguard import rehearse
from ghostguard.errors import GhostguardError
from ghostguard.sandbox import Sandbox


def _verdict(report: rehearse.Rehearsal) -> str:
    if report.profile_table is None:
        return "replayed; no profile table"
    failing = ", ".join(report.failing) or "none"
    return f"replayed; profile table {report.profile_table}; failing: {failing}"


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
    folders = sorted(p for p in args.projects.iterdir() if (p / "supabase" / "migrations").is_dir())
    replayed = 0
    started = time.perf_counter()
    for folder in folders:
        files = len(rehearse.migration_files(folder / "supabase" / "migrations"))
        try:
            report = rehearse.rehearse(
                sandbox, folder / "supabase" / "migrations", legacy_grants=args.legacy_grants
            )
        except GhostguardError as exc:
            print(f"{folder.name} ({files} files): FAILED {exc.message}")
            continue
        replayed += 1
        print(f"{folder.name} ({files} files): {_verdict(report)}")
    version = sandbox.status().version
    print(
        f"replayed {replayed} of {len(folders)} folders ({replayed / max(len(folders), 1):.0%}) "
        f"on PostgreSQL {version} in {time.perf_counter() - started:.1f} s"
    )


if __name__ == "__main__":
    main()
