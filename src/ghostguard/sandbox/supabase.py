"""Set a cluster up the way hosted Supabase is set up (see docs/supabase-facts.md).

Runs as the superuser supabase_admin, which is what the platform does; ghostguard itself later
connects as the non-superuser `postgres`, like a Supabase user does.
"""

from __future__ import annotations

import psycopg
from psycopg import sql

from ghostguard import sqlfiles

SETUP_VERSION = "ghostguard-supabase-v10"  # v2: 2026 grants; v3: storage, realtime; v4: stand-ins;
# v5: supabase_functions (database webhooks); v6: storage tables refuse DDL but policies;
# v7: the extensions hosted projects come with (pg_graphql, pgsodium, pgjwt, vault, pg_stat_statements);
# v8, v9: hosted's after-create grants, the whole auth schema; v10: realtime.messages
TEMPLATE_DB = "ghostguard_supabase_template"


def ensure_roles(admin: psycopg.Connection) -> None:
    """Cluster-wide roles, idempotent."""
    admin.execute(sqlfiles.text(__name__, "supabase.sql", "roles"))


def template_ready(admin: psycopg.Connection) -> bool:
    row = admin.execute(
        "SELECT pg_catalog.shobj_description(oid, 'pg_database') FROM pg_database WHERE datname = %s",
        (TEMPLATE_DB,),
    ).fetchone()
    return bool(row and row[0] == SETUP_VERSION)


def build_template(admin: psycopg.Connection, template_url: str) -> None:
    """(Re)create the template database with the per-database setup, then lock it as a template."""
    name = sql.Identifier(TEMPLATE_DB)
    exists = admin.execute(
        "SELECT 1 FROM pg_database WHERE datname = %s", (TEMPLATE_DB,)
    ).fetchone()
    if exists:  # an older setup's template: a template database must stop being one to be dropped
        admin.execute(sql.SQL("ALTER DATABASE {} WITH IS_TEMPLATE false").format(name))
    admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(name))
    admin.execute(sql.SQL("CREATE DATABASE {} OWNER postgres").format(name))
    with psycopg.connect(template_url, autocommit=True) as conn:
        conn.execute(sqlfiles.text(__name__, "supabase.sql", "database"))
        with conn.transaction():  # the Auth server's own objects are its role's
            conn.execute("SET LOCAL ROLE supabase_auth_admin")
            conn.execute(sqlfiles.whole(__name__, "auth_schema.sql"))
        conn.execute(sqlfiles.text(__name__, "supabase.sql", "services"))
    admin.execute(sql.SQL("COMMENT ON DATABASE {} IS {}").format(name, sql.Literal(SETUP_VERSION)))
    admin.execute(
        sql.SQL("ALTER DATABASE {} WITH IS_TEMPLATE true ALLOW_CONNECTIONS false").format(name)
    )


def create_database(admin: psycopg.Connection, name: str) -> None:
    """A fresh Supabase-like database owned by postgres, replacing any database of that name."""
    ident = sql.Identifier(name)
    admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(ident))
    admin.execute(
        sql.SQL("CREATE DATABASE {} OWNER postgres TEMPLATE {} STRATEGY FILE_COPY").format(
            ident, sql.Identifier(TEMPLATE_DB)
        )
    )


def grant_legacy(database_url: str) -> None:
    """The pre-2026 default privileges (new public tables granted to the API roles), in one
    database; idempotent. Runs as the superuser, like the platform."""
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute(sqlfiles.text(__name__, "supabase.sql", "legacy_grants"))


def has_legacy_grants(database_url: str) -> bool:
    with psycopg.connect(database_url, autocommit=True) as conn:
        row = conn.execute(
            "SELECT EXISTS (SELECT 1 FROM pg_default_acl d JOIN pg_namespace n "
            "ON n.oid = d.defaclnamespace WHERE n.nspname = 'public' AND d.defaclobjtype = 'r')"
        ).fetchone()
    return bool(row and row[0])


def is_supabase_like(database_url: str) -> bool:
    with psycopg.connect(database_url, autocommit=True) as conn:
        row = conn.execute("SELECT to_regclass('auth.users') IS NOT NULL").fetchone()
    return bool(row and row[0])
