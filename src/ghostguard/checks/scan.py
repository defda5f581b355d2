"""The read-only truth about a database: ghosts by kind, orphan profiles, trigger and function state."""

from __future__ import annotations

import uuid
from dataclasses import asdict, dataclass, field
from typing import Any

import psycopg

from ghostguard import catalog
from ghostguard.adopt import existing, takeover, translate
from ghostguard.catalog import FunctionState, Shape, TriggerState
from ghostguard.checks import app_view, blocking_keys, census, link_index, sync_state
from ghostguard.checks.census import Counts, snapshot
from ghostguard.checks.link_index import LinkIndex
from ghostguard.config import Config
from ghostguard.hooks import call
from ghostguard.hooks import found as hook_found
from ghostguard.sync import failures as sync_failures
from ghostguard.sync import mapping

SAMPLE_SIZE = 10


@dataclass(frozen=True)
class BlockingKey:
    """A foreign key to the auth table that makes user deletes fail, and the SQL that fixes it."""

    name: str
    on_delete: str
    fix: str
    why: str = ""  # why deletes fail: ON DELETE NO ACTION, SET NULL on a NOT NULL column, ...


@dataclass(frozen=True)
class AppTrigger:
    """A trigger on the auth table ghostguard did not install, and what its function writes."""

    name: str
    function: str
    enabled: str
    writes: list[str]  # "table.column <- expression"
    in_the_way: str  # why apply would refuse it unless adopted ("" when it is left alone)
    adopted: bool


@dataclass(frozen=True)
class ScanHook:
    """An auth hook the database has, what it reads and writes, and what it does for a ghost."""

    hook: str
    function: str
    reads: list[str]
    writes: list[str]
    for_a_ghost: str = ""  # the custom access token hook called for a ghost: ok, or its error


@dataclass(frozen=True)
class ScanReport:
    source: str
    target: str
    counts: Counts
    ghosts: dict[str, int]
    sample_ghost_ids: list[str]
    trigger: TriggerState | None
    trigger_calls_ours: bool
    other_triggers: list[TriggerState] = field(default_factory=list[TriggerState])
    function: FunctionState | None = None
    lifecycle_triggers: list[TriggerState] = field(
        default_factory=list[TriggerState]
    )  # ours: update, delete
    sync_failures: int | None = None  # unresolved; None when the failures table does not exist
    blocking_foreign_keys: list[BlockingKey] = field(default_factory=list[BlockingKey])
    drift: list[str] = field(
        default_factory=list[str]
    )  # how the installed sync differs from apply's
    # Profiles holding a placeholder from a fallback (None: no mapping falls back to one).
    placeholder_profiles: int | None = None
    # The link column's missing unique index (None: it has one).
    link_index: LinkIndex | None = None
    app_triggers: list[AppTrigger] = field(default_factory=list[AppTrigger])
    # Profiles their own user cannot read through the Data API (from a sample of users; None:
    # not a Supabase project), and why.
    unreadable_profiles: int | None = None
    app_view: str = ""
    hooks: list[ScanHook] = field(default_factory=list[ScanHook])

    @property
    def locked_out(self) -> int:
        """Ghosts a token hook that fails for them keeps from signing in (all of them)."""
        failing = any(h.for_a_ghost and not h.for_a_ghost.startswith(call.OK) for h in self.hooks)
        return self.ghost_total if failing else 0

    def problems(self) -> dict[str, bool]:
        """Each condition `scan --fail-on` can fail on, and whether it holds."""
        return {
            "ghosts": self.ghost_total > 0,
            "failures": bool(self.sync_failures),
            "drift": bool(self.drift),
            "blocking-fks": bool(self.blocking_foreign_keys),
            "unreadable": bool(self.unreadable_profiles),
        }

    @property
    def ghost_total(self) -> int:
        return sum(self.ghosts.values())

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["ghost_total"] = self.ghost_total
        data["locked_out"] = self.locked_out
        data["problems"] = self.problems()
        return data


def scan(conn: psycopg.Connection, config: Config, shape: Shape) -> ScanReport:
    """Everything scan reports, read in one repeatable-read snapshot so the numbers agree."""
    with snapshot(conn):
        ghosts, counts = census.read_census(conn, config, shape)
        sample = (
            [r[0] for r in conn.execute(census.sample_ghosts(config, SAMPLE_SIZE)).fetchall()]
            if any(ghosts.values())
            else []
        )
        state = sync_state.read_state(conn, config)
        failures = sync_failures.unresolved(conn, config)
        blocking = [
            BlockingKey(
                fk.display,
                fk.on_delete,
                blocking_keys.fix_blocking_foreign_key(fk, config),
                fk.deletes_fail or "",
            )
            for fk in catalog.foreign_keys_to(conn, config.source)
            if fk.blocks_deletes
        ]
        placeholders = mapping.placeholder_count(config)
        placeholder_row = conn.execute(placeholders).fetchone() if placeholders else None
        link = None if shape.key_unique else link_index.read(conn, config)
        apps = _app_triggers(conn, config)
    view = app_view.read(conn, config)
    hooks = _hooks(conn, sample[:1])
    triggers = state.triggers
    ours = catalog.our_trigger(triggers, config)
    lifecycle = [t for t in triggers if t.name in config.trigger_names[1:] and t.calls(config)]
    return ScanReport(
        source=config.source.display,
        target=config.target.display,
        counts=counts,
        ghosts=ghosts,
        sample_ghost_ids=sample,
        trigger=ours,
        trigger_calls_ours=bool(ours and ours.calls(config)),
        other_triggers=[t for t in triggers if t is not ours and t not in lifecycle],
        function=state.function,
        lifecycle_triggers=lifecycle,
        sync_failures=failures,
        blocking_foreign_keys=blocking,
        drift=sync_state.drift(state, config, shape),
        placeholder_profiles=int(placeholder_row[0]) if placeholder_row else None,
        link_index=link,
        app_triggers=apps,
        unreadable_profiles=view.unreadable(counts.profiles) if view.applicable else None,
        app_view=view.detail,
        hooks=hooks,
    )


def _hooks(conn: psycopg.Connection, ghost: list[str]) -> list[ScanHook]:
    """The database's hook functions; a custom access token hook is called (rolled back, as the
    Auth server when this connection may become it) for one ghost."""
    found: list[ScanHook] = []
    for hook in hook_found.in_database(conn):
        assert hook.function is not None
        for_a_ghost = ""
        if hook.hook == hook_found.CUSTOM_ACCESS_TOKEN and ghost:
            for_a_ghost = call.token_rolled_back(conn, hook, uuid.UUID(str(ghost[0]))).describe()
        found.append(
            ScanHook(
                hook.hook,
                hook.function.display,
                hook.function.reads(),
                hook.function.writes(),
                for_a_ghost,
            )
        )
    return found


def _app_triggers(conn: psycopg.Connection, config: Config) -> list[AppTrigger]:
    every = existing.auth_triggers(conn, config.source)
    in_the_way = {
        w.trigger.name: w.why for w in takeover.in_the_way(conn, config, every) if w.trigger
    }
    return [
        AppTrigger(
            t.name,
            t.function,
            t.enabled,
            [f"{table}.{column} <- {expr}" for table, column, expr in translate.written(t)],
            in_the_way.get(t.name, ""),
            t.name in config.adopt,
        )
        for t in every
        if not t.ghostguards
    ]
