"""The embedded default: a local PostgreSQL set up like a hosted Supabase project."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import quote

import psycopg
from psycopg import sql

from ghostguard.errors import SandboxError
from ghostguard.sandbox import supabase
from ghostguard.sandbox.server import SUPERUSER, Server, ServerStatus, default_home

__all__ = ["Sandbox", "ServerStatus", "default_home"]

DEFAULT_DATABASE = "postgres"


class Sandbox:
    """Start/stop the local server and hand out URLs; the tool itself always connects as `postgres`."""

    def __init__(self, home: Path | None = None, pg_bin: Path | None = None) -> None:
        self.server = Server(home, pg_bin)

    def status(self) -> ServerStatus:
        return self.server.status()

    def start(self, legacy_grants: bool = False) -> ServerStatus:
        """Start (initializing on first use) and make sure the Supabase-like setup is in place.
        `legacy_grants`: give the default database the pre-2026 default privileges."""
        status = self.server.start()
        try:
            with psycopg.connect(self.url("template1", SUPERUSER), autocommit=True) as admin:
                supabase.ensure_roles(admin)
                if not supabase.template_ready(admin):
                    supabase.build_template(admin, self.url(supabase.TEMPLATE_DB, SUPERUSER))
                if not supabase.is_supabase_like(self.url(DEFAULT_DATABASE, SUPERUSER)):
                    supabase.create_database(admin, DEFAULT_DATABASE)
            if legacy_grants:
                supabase.grant_legacy(self.url(DEFAULT_DATABASE, SUPERUSER))
        except psycopg.Error as exc:
            raise SandboxError(
                f"sandbox setup failed: {str(exc).strip().splitlines()[0]}"
            ) from None
        return status

    def stop(self) -> bool:
        return self.server.stop()

    def url(self, database: str = DEFAULT_DATABASE, user: str = "postgres") -> str:
        port = self.server.port
        if port is None:
            raise SandboxError("the sandbox has never been started: run `ghostguard sandbox start`")
        host = quote(str(self.server.socket_dir), safe="/")
        return f"postgresql://{user}@/{quote(database, safe='')}?host={host}&port={port}"

    def fresh_database(self, name: str, legacy_grants: bool = False) -> str:
        """Replace database `name` with a clean Supabase-like one and return its URL (as postgres).
        `legacy_grants`: with the pre-2026 default privileges."""
        with psycopg.connect(self.url("template1", SUPERUSER), autocommit=True) as admin:
            supabase.create_database(admin, name)
        if legacy_grants:
            supabase.grant_legacy(self.url(name, SUPERUSER))
        return self.url(name)

    def legacy_grants(self, name: str = DEFAULT_DATABASE) -> bool:
        """Whether the database has the pre-2026 default privileges."""
        return supabase.has_legacy_grants(self.url(name, SUPERUSER))

    def drop_database(self, name: str) -> None:
        with psycopg.connect(self.url("template1", SUPERUSER), autocommit=True) as admin:
            admin.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )
