"""Every trigger on the auth table, ghostguard's or the app's, with what its function is and
writes (read from the body with PostgreSQL's parser, see plpgsql.py)."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import psycopg

from ghostguard import plpgsql, sqlfiles
from ghostguard.config import Config, TableRef

_SQL = sqlfiles.statements(__name__, "existing.sql")

# pg_trigger.tgtype bits
BEFORE, INSERT, UPDATE = 2, 4, 16  # pg_trigger.tgtype bits
# How apply's function comment starts (sync/install.comment_function): what tells ghostguard's
# function from the app's own.
MANAGED_COMMENT = "ghostguard:"
MANAGED_PATTERN = MANAGED_COMMENT + "%"


@dataclass(frozen=True)
class AuthTrigger:
    """A trigger on the auth table with what matters about its function."""

    name: str
    enabled: str
    tgtype: int
    columns: tuple[str, ...]  # UPDATE OF ...; empty: every update
    has_when: bool
    function: str  # regprocedure text, for messages
    function_schema: str
    function_name: str
    language: str
    security_definer: bool
    search_path: str | None
    body: str
    transition_tables: tuple[str, ...]
    ghostguards: bool = False  # the function carries ghostguard's comment: apply installed it

    @cached_property
    def parsed(self) -> plpgsql.Body | str:
        """The body as PostgreSQL's parser reads it, or why it could not be read."""
        return plpgsql.read_or_reason(self.body, self.language)

    def fires_on(self, event: int) -> bool:
        return bool(self.tgtype & event)

    @property
    def is_enabled(self) -> bool:
        return self.enabled in ("O", "A")

    def writes(self) -> list[str]:
        """Tables the function writes (`schema.table`, or the bare name when unqualified)."""
        return [] if isinstance(self.parsed, str) else self.parsed.tables(written=True)

    def other_work(self, config: Config) -> list[str]:
        """What the function does besides writing profiles (and recording failures): other
        tables it writes, functions it PERFORMs. Taking it over would drop that work."""
        if isinstance(self.parsed, str):
            return []
        mine = {config.target.display, config.target.table, config.failures.display}
        return [f"writes {w}" for w in self.writes() if w not in mine] + [
            f"calls {call}" for call in self.parsed.performs
        ]

    def writes_profiles(self, config: Config) -> bool:
        target = config.target
        return not isinstance(self.parsed, str) and self.parsed.writes_to(
            target.schema, target.table, self.search_path
        )

    def calls(self, config: Config) -> bool:
        return (self.function_schema, self.function_name) == (
            config.function_schema,
            config.function_name,
        )


def auth_triggers(conn: psycopg.Connection, source: TableRef) -> list[AuthTrigger]:
    """Every user trigger on the auth table, in name order."""
    return [
        AuthTrigger(
            r[0],
            r[1],
            r[2],
            tuple(r[3]),
            r[4],
            r[5],
            r[6],
            r[7],
            r[8],
            r[9],
            r[10],
            r[11],
            tuple(r[12]),
            r[13],
        )  # fmt: skip
        for r in conn.execute(_SQL["auth_triggers"], (MANAGED_PATTERN, source.schema, source.table))
    ]
