"""`ghostguard --version`: the tool, the driver, and the PostgreSQL server a command would use
(DATABASE_URL's, asked with a short timeout; else the embedded sandbox's binaries)."""

from __future__ import annotations

import os
import re
import subprocess

import click
import psycopg
from psycopg import pq

from ghostguard import __version__, db
from ghostguard.errors import ConnectionFailed
from ghostguard.sandbox.server import Server


def _libpq() -> str:
    number = pq.version()
    return f"{number // 10000}.{number % 10000}"


def _server() -> str:
    url = os.environ.get(db.URL_ENV)
    if url:
        where = db.describe(url)
        try:
            with db.connection(url, autocommit=True) as conn:
                return f"PostgreSQL {conn.info.parameter_status('server_version')} at {where} ({db.URL_ENV})"
        except ConnectionFailed as exc:
            return f"not reachable: {exc.message}"
    bin_dir = Server().bin_dir
    try:
        done = subprocess.run(
            [str(bin_dir / "postgres"), "--version"],
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        )
    except OSError as exc:
        return f"embedded sandbox: cannot run {bin_dir / 'postgres'}: {exc.strerror}"
    found = re.search(r"\(PostgreSQL\) (\S+)", done.stdout) if done.returncode == 0 else None
    return f"PostgreSQL {found[1] if found else '?'}, the embedded sandbox ({bin_dir})"


def show(ctx: click.Context, _param: click.Parameter, value: bool) -> None:
    """Eager --version: print and exit before any command runs."""
    if not value or ctx.resilient_parsing:
        return
    click.echo(f"ghostguard {__version__}")
    click.echo(f"psycopg {psycopg.__version__} (libpq {_libpq()})")
    click.echo(f"server: {_server()}")
    ctx.exit(0)
