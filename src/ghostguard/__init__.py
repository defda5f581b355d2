"""ghostguard: find, repair and prevent Supabase ghost users (auth.users rows with no profile).

The library is the product; the CLI is a thin layer over it:

    with ghostguard.db.connection(url, autocommit=True) as conn:
        shape = ghostguard.catalog.resolve(conn, config)
        report = ghostguard.scan.scan(conn, config, shape)
"""

from __future__ import annotations

__version__ = "0.1.0"
