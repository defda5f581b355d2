"""The sandbox's guard for PostgreSQL < 16: refuse what hosted Supabase refuses `postgres`.

Before 16, CREATEROLE may grant any non-superuser role, pg_execute_server_program and
pg_read_server_files included: a migration could give itself a shell on the machine. Hosted
projects refuse those grants (supautils' reserved_memberships). `guard/ghostguard_guard.c` is a
small ProcessUtility hook that refuses them with hosted's words (and COPY TO/FROM PROGRAM for
everybody); it is compiled against the server's own headers (`pg_config --includedir-server`)
the first time such a sandbox starts, and preloaded. Servers from 16 on refuse the grants
themselves (ADMIN OPTION is required), so the embedded server needs no compiler.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from importlib import resources
from pathlib import Path

from ghostguard.errors import SandboxError
from ghostguard.sandbox.conffiles import quoted, write_included

FIRST_SAFE_MAJOR = 16
LIBRARY = "ghostguard_guard.so"
CONF_FILE = "ghostguard_guard.conf"


def needed(major: int) -> bool:
    return major < FIRST_SAFE_MAJOR


def source() -> Path:
    return Path(str(resources.files(__package__ or "ghostguard.sandbox").joinpath("guard")))


def build(bin_dir: Path, out_dir: Path) -> Path:
    """Compile the guard for the server in `bin_dir` (once; again when the source changes)."""
    code = source() / "ghostguard_guard.c"
    library = out_dir / LIBRARY
    if library.exists() and library.stat().st_mtime >= code.stat().st_mtime:
        return library
    how = (
        "a server older than PostgreSQL 16 lets a migration grant itself "
        "pg_execute_server_program (hosted Supabase refuses it); the sandbox's guard against "
        "that is built with a C compiler and the server's headers"
    )
    compiler = shutil.which(os.environ.get("CC", "cc"))
    include = _include_dir(bin_dir)
    if compiler is None or include is None:
        missing = "a C compiler (cc)" if compiler is None else "the server headers"
        raise SandboxError(
            f"{how}, and {missing} is missing: install them (Debian: apt-get install gcc "
            "postgresql-server-dev-15) or rehearse on the embedded server (no --pg-bin)"
        )
    out_dir.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(
        [compiler, "-shared", "-fPIC", "-O2", "-I", str(include), "-o", str(library), str(code)],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or ["no output"])[-1]
        raise SandboxError(f"{how}, and building it failed: {last}")
    return library


def _include_dir(bin_dir: Path) -> Path | None:
    pg_config = bin_dir / "pg_config"
    if not pg_config.exists():
        return None
    done = subprocess.run(
        [str(pg_config), "--includedir-server"], capture_output=True, text=True, check=False
    )
    include = Path(done.stdout.strip())
    return include if done.returncode == 0 and (include / "postgres.h").exists() else None


def configure(data_dir: Path, library: Path) -> bool:
    """Preload the guard; True when the setting changed (the server must restart for it)."""
    setting = f"shared_preload_libraries = {quoted(str(library))}\n"
    return write_included(data_dir, CONF_FILE, "refuse what hosted refuses", setting)
