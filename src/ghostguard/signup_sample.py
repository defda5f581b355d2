"""Which signup kinds a project has (email, phone, anonymous, each OAuth provider, SSO), read from a
sample of its auth rows, and which of them would leave a mapped value empty: what `init` weighs
when it gives a required column fallbacks, and names in the reason it prints."""

from __future__ import annotations

import psycopg
from psycopg import sql

from ghostguard import catalog, kinds
from ghostguard.catalog import Shape
from ghostguard.config import ColumnSource, TableRef
from ghostguard.sync.mapping import value

SAMPLE_USERS = 10_000  # signup kinds and metadata keys are read from this many auth rows


class SignupSample:
    """A sample of the auth table, grouped by signup kind."""

    def __init__(self, conn: psycopg.Connection, source: TableRef, shape: Shape) -> None:
        self._conn, self._shape = conn, shape
        columns = catalog.table_columns(conn, source) or {}
        self._kind = kinds.user_kind(columns, by_provider=True)
        self._sample = sql.SQL("(SELECT * FROM {} LIMIT {}) au").format(
            sql.Identifier(source.schema, source.table), sql.Literal(SAMPLE_USERS)
        )
        self.kinds = self._count(sql.SQL("true"))

    def _count(self, where: sql.Composable) -> dict[str, int]:
        rows = self._conn.execute(
            sql.SQL(
                "SELECT {kind}, count(*) FROM {sample} WHERE {where} GROUP BY 1 ORDER BY 2 DESC, 1"
            ).format(kind=self._kind, sample=self._sample, where=where)
        ).fetchall()
        return {str(kind): int(n) for kind, n in rows}

    def empty_for(self, src: ColumnSource, column: str) -> dict[str, int]:
        """Sampled users per kind for whom `src` gives no value (NULL or empty text)."""
        mapped = value(src, sql.SQL("au"), self._shape, column)
        return self._count(sql.SQL("nullif(({})::text, '') IS NULL").format(mapped))

    @property
    def size(self) -> int:
        return sum(self.kinds.values())


def describe(counts: dict[str, int]) -> str:
    """`12 phone, 3 anonymous`: the kinds, largest first."""
    return ", ".join(f"{n:,} {kind}" for kind, n in counts.items())
