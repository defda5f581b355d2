"""The sandbox's guard: what hosted Supabase's supautils allows `postgres`, and what it refuses.

Hosted projects load supautils: `postgres` may create, alter and drop the privileged extensions,
drop triggers and write policies on Supabase's own tables, and set a list of settings, all of
which vanilla PostgreSQL reserves to owners and superusers; and it may not grant itself the
reserved roles. `guard/ghostguard_guard.c` is a small ProcessUtility hook doing the same (and
refusing COPY TO/FROM PROGRAM to everybody). It is compiled against the server's own headers
(`pg_config --includedir-server`; the embedded server ships them) the first time a sandbox
starts, and preloaded.

Before PostgreSQL 16, CREATEROLE may grant any non-superuser role, pg_execute_server_program
included: a migration could give itself a shell on the machine. There the guard is required.
From 16 on the server refuses such grants itself, so without a C compiler the sandbox still
starts, without the supautils allowances (`active()` says which; rehearse names what is missing).
"""

from __future__ import annotations

import os
import shutil
import subprocess
from importlib import resources
from pathlib import Path

import psycopg

from ghostguard.errors import SandboxError
from ghostguard.sandbox.conffiles import quoted, write_included

FIRST_SAFE_MAJOR = 16
LIBRARY = "ghostguard_guard.so"
CONF_FILE = "ghostguard_guard.conf"
WITHOUT_IT = (
    "hosted Supabase allows it (supautils); the sandbox does the same with a small C module it "
    "builds when it starts, and found no C compiler: install one (Debian: apt-get install gcc) "
    "and rehearse again"
)


def required(major: int) -> bool:
    """Servers that let CREATEROLE grant any role may not run without the guard."""
    return major < FIRST_SAFE_MAJOR


def active(conn: psycopg.Connection) -> bool:
    """Whether the connected server runs with the guard preloaded."""
    row = conn.execute("SELECT current_setting('ghostguard_guard.active', true)").fetchone()
    return bool(row and row[0] == "on")


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
        "that (and supautils' allowances) is built with a C compiler and the server's headers"
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
    return write_included(data_dir, CONF_FILE, "what hosted allows and refuses", setting)


def unconfigure(data_dir: Path) -> bool:
    """No guard (no compiler, server 16+); True when it was preloaded before."""
    return write_included(data_dir, CONF_FILE, "what hosted allows and refuses", "")
