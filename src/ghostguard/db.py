"""Resolve, describe and open database connections without ever showing a password."""

from __future__ import annotations

from collections.abc import Generator
from contextlib import contextmanager

import psycopg
from psycopg import conninfo

from ghostguard.errors import ConnectionFailed
from ghostguard.secrets import mask

APPLICATION_NAME = "ghostguard"
URL_ENV = "DATABASE_URL"


def _refuse_unencoded_password(url: str) -> None:
    """A URL whose password holds a raw '/' or '@' is read by libpq with part of the password as
    the host, port or database, which its errors then print: refuse it before anything is
    parsed or printed, saying how to write it."""
    scheme, sep, rest = url.partition("://")
    if not sep or not scheme.lower().startswith("postgres"):
        return
    head = rest.split("?", 1)[0]
    userinfo = head.rsplit("@", 1)[0] if "@" in head else ""
    password = userinfo.split(":", 1)[1] if ":" in userinfo else ""
    if "/" in password or "@" in password:
        raise ConnectionFailed(
            "invalid database URL: its password holds a raw '/' or '@'; percent-encode them "
            "(/ as %2F, @ as %40, : as %3A) or pass the password in PGPASSWORD"
        )


def parse(url: str) -> dict[str, str]:
    """Split a URL or keyword conninfo into parts, with an error that never echoes the input."""
    _refuse_unencoded_password(url)
    try:
        return {k: str(v) for k, v in conninfo.conninfo_to_dict(url).items() if v is not None}
    except psycopg.ProgrammingError:
        raise ConnectionFailed(
            "invalid database URL: expected one like postgresql://user@host:5432/dbname "
            "or 'host=... dbname=...'"
        ) from None


def describe(url: str) -> str:
    """A password-free one-line description of where a URL points, for reports; what the URL
    leaves to libpq's defaults (PGHOST, PGUSER, ...) is said to be the default, never invented."""
    parts = parse(url)
    host = parts.get("host")
    port = f":{parts['port']}" if "port" in parts else ""
    if host is None:
        where = f"(default host){port}"
    elif host.startswith("/"):
        where = f"{host} (socket{', port ' + parts['port'] if 'port' in parts else ''})"
    else:
        where = f"{host}{port}"
    user = parts.get("user", "(default user)")
    return f"{user}@{where}/{parts.get('dbname', '(default database)')}"


def with_user(url: str, user: str) -> str:
    """The same server and database, as another role (used for the Auth-server-like writer)."""
    parts = parse(url)
    parts["user"] = user
    parts.pop("password", None)
    return conninfo.make_conninfo(**parts)


def open_connection(
    url: str,
    *,
    autocommit: bool = False,
    connect_timeout: int = 10,
    lock_timeout: str | None = None,
) -> psycopg.Connection:
    """Connect, turning every failure into a one-line ConnectionFailed with no password in it.

    `lock_timeout` becomes the session's default (a connection option, so RESET keeps it): no
    statement ghostguard runs, read or write, can wait forever behind another session's lock.
    """
    options = parse(url).get("options", "")
    if lock_timeout is not None:
        options = f"{options} -c lock_timeout={lock_timeout}".strip()
    target = conninfo.make_conninfo(url, options=options) if options else url
    try:
        return psycopg.connect(
            target,
            autocommit=autocommit,
            connect_timeout=connect_timeout,
            application_name=APPLICATION_NAME,
        )
    except psycopg.OperationalError as exc:
        password = parse(url).get("password")
        text = str(exc).replace(password, "***") if password else str(exc)
        # libpq's first line says what failed ("... failed: Connection refused"), the next one
        # guesses why ("Is the server running ..."): keep the first, and the guess after it.
        lines = [line.strip() for line in mask(text).strip().splitlines() if line.strip()]
        first = lines[0].removeprefix("connection failed: ") if lines else "no reason given"
        detail = f"{first} ({lines[1]})" if len(lines) > 1 else first
        raise ConnectionFailed(
            f"cannot connect to {mask(describe(url))}: {detail}; check --db-url / {URL_ENV}"
        ) from None


@contextmanager
def connection(
    url: str, *, autocommit: bool = False, lock_timeout: str | None = None
) -> Generator[psycopg.Connection, None, None]:
    """Open a connection for the length of a block and always close it."""
    conn = open_connection(url, autocommit=autocommit, lock_timeout=lock_timeout)
    try:
        yield conn
    finally:
        conn.close()
