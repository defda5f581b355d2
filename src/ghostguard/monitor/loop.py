"""The long-running monitor: ticks, full reconciliations, reconnection, history and alerts.

Every `interval` a cheap tick; every `full_every` (and early, at most once per `interval`, when
the statistics show profile rows deleted or more auth rows inserted than profiles) a full
reconciliation. A lost connection marks the database unreachable and is retried on every tick; the
HTTP endpoints keep serving the last readings throughout.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace

import psycopg
from prometheus_client import CollectorRegistry

from ghostguard import catalog, db
from ghostguard.catalog import Shape
from ghostguard.config import Config, TableRef
from ghostguard.errors import ConfigError, ConnectionFailed, DatabaseError, GhostguardError
from ghostguard.monitor import history_table
from ghostguard.monitor.alerts import Incidents, WebhookSender, webhook_display
from ghostguard.monitor.http import Endpoints, MonitorServer
from ghostguard.monitor.metrics import MonitorCollector
from ghostguard.monitor.readings import Tick, read_census, read_tick
from ghostguard.monitor.state import MonitorState
from ghostguard.runner import primary_message

CONNECT_TIMEOUT_S = 5
STATEMENT_TIMEOUT = "5min"  # a full reconciliation at 10M users takes seconds; never hang forever


@dataclass(frozen=True)
class MonitorOptions:
    host: str = "127.0.0.1"
    port: int = 9187
    interval: float = 15.0
    full_every: float = 600.0
    ghost_threshold: int = 0
    webhooks: list[str] = field(default_factory=list[str])
    history_table: TableRef | None = None


def ghosts_suspected(before: Tick | None, now: Tick) -> bool:
    """The statistics say a ghost may have appeared since the last tick: profile rows were
    deleted, or more auth rows were inserted than profile rows (a signup without its profile)."""
    if before is None:
        return False
    deleted = now.profile_deletes > before.profile_deletes
    signups = now.auth_inserts - before.auth_inserts
    profiles = now.profile_inserts - before.profile_inserts
    return deleted or signups > max(profiles, 0)


def _without_synthetic(tick: Tick, synthetic: int) -> Tick:
    """The statistics count each rolled-back synthetic signup (the trigger-time measurement) as
    an insert into both tables: taken out, so it is never counted as a signup."""
    return replace(
        tick,
        auth_inserts=max(tick.auth_inserts - synthetic, 0),
        profile_inserts=max(tick.profile_inserts - synthetic, 0),
    )


class Monitor:
    def __init__(
        self,
        url: str,
        config: Config,
        options: MonitorOptions,
        *,
        log: Callable[[str], None] = lambda _m: None,
        registry: CollectorRegistry | None = None,
    ) -> None:
        self.url, self.config, self.options, self.log = url, config, options, log
        parts = db.parse(url)
        self.database = parts.get("dbname") or parts.get("user") or "postgres"
        self.state = MonitorState(db.describe(url))
        self.registry = registry or CollectorRegistry()
        self.registry.register(MonitorCollector(self.state.read, config, self.database))
        self.endpoints = Endpoints(
            self.state, self.registry, self.database, options.ghost_threshold, options.interval
        )
        self.endpoints.last_loop = lambda: self._heartbeat
        self.server = MonitorServer(options.host, options.port, self.endpoints)
        self.incidents = Incidents(options.ghost_threshold)
        self.sender = WebhookSender(options.webhooks, log=log)
        self._heartbeat = time.time()
        self._conn: psycopg.Connection | None = None
        self._shape: Shape | None = None
        self._last_tick: Tick | None = None
        self._next_full = 0.0
        self._last_full = 0.0
        self._down = False
        self._suspect = False
        self._synthetic = 0  # trigger-time measurements taken: inserts the statistics count
        self.ready = threading.Event()  # set once the first reading is in and the server listens

    @property
    def address(self) -> str:
        host, port = self.server.address
        return f"http://{host}:{port}"

    def run(self, stop: threading.Event) -> None:
        """Serve and watch until `stop` is set. A config that does not match the catalog at the
        first reading is a user mistake and raised; an unreachable database is a finding, reported
        and retried."""
        try:
            try:  # a config the catalog contradicts stops here; an absent database does not
                self._connection()
            except (psycopg.Error, ConnectionFailed, DatabaseError) as exc:
                self._lost(exc)
            self.server.start()
            hooks = ", ".join(webhook_display(u) for u in self.options.webhooks) or "none"
            self.log(
                f"monitoring {self.state.where}: {self.address}/metrics, /status, /status.json, "
                f"/healthz; tick every {self.options.interval:g}s, full reconciliation every "
                f"{self.options.full_every:g}s; alert webhooks: {hooks}"
            )
            self.step()
            self.ready.set()
            while not stop.wait(self.options.interval):
                self.step()
        finally:
            self.server.stop()
            self.sender.close()
            self._disconnect()

    def step(self) -> None:
        """One tick (and a full reconciliation when due), then alerts; never raises for the
        database being away."""
        try:
            conn, shape = self._connection()
            tick = _without_synthetic(read_tick(conn, self.config, shape), self._synthetic)
            now = time.monotonic()
            # a hint holds until a reconciliation has run, however soon the next tick comes
            self._suspect = self._suspect or ghosts_suspected(self._last_tick, tick)
            due = now >= self._next_full
            early = self._suspect and now - self._last_full >= self.options.interval
            if due or early:
                reconciled = read_census(conn, self.config, shape)
                self._synthetic += 1 if reconciled.trigger is not None else 0
                self.state.record_census(reconciled)
                self._last_full, self._next_full = now, now + self.options.full_every
                self._suspect = False
                if self.options.history_table:
                    history_table.prune(
                        conn, self.options.history_table, time.time() - self.state.history.span
                    )
            sample = self.state.record_tick(tick)  # after the census: the sample has its count
            self._last_tick = tick
            if self.options.history_table:
                history_table.append(conn, self.options.history_table, sample)
        except (psycopg.errors.LockNotAvailable, psycopg.errors.QueryCanceled) as exc:
            # a table is locked (DDL elsewhere) or a statement ran too long: the database is
            # there, this reading is not; keep the last one and try again next tick
            self.log(f"tick skipped: {primary_message(exc)}")
        except (psycopg.Error, ConnectionFailed, DatabaseError, ConfigError) as exc:
            self._lost(exc)  # a ConfigError here: e.g. the profile table dropped since the start
        self._heartbeat = time.time()
        for alert in self.incidents.update(self.state.read()):
            self.log(alert.text)
            self.sender.send(alert)

    def _connect(self) -> None:
        conn = db.open_connection(
            self.url,
            autocommit=True,
            connect_timeout=CONNECT_TIMEOUT_S,
            lock_timeout=self.config.lock_timeout,
        )
        try:
            conn.execute(
                "SELECT pg_catalog.set_config('statement_timeout', %s, false)", (STATEMENT_TIMEOUT,)
            )
            shape = catalog.resolve(conn, self.config)
            if self.options.history_table:
                history_table.ensure(conn, self.options.history_table, shape)
                if not self.state.history.samples():
                    since = time.time() - self.state.history.span
                    self.state.history.extend(
                        history_table.load(conn, self.options.history_table, since)
                    )
        except BaseException:
            conn.close()
            raise
        self._conn, self._shape = conn, shape

    def _connection(self) -> tuple[psycopg.Connection, Shape]:
        if self._conn is None or self._conn.closed or self._conn.broken or self._shape is None:
            self._disconnect()
            self._connect()
            self._last_tick = None  # the statistics may have been reset by a restart
            if self._down:
                self.log(f"database {self.state.where} reachable again")
                self._down = False
        assert self._conn is not None and self._shape is not None
        return self._conn, self._shape

    def _lost(self, exc: GhostguardError | psycopg.Error) -> None:
        message = exc.message if isinstance(exc, GhostguardError) else primary_message(exc)
        if not self._down:
            self.log(f"database {self.state.where} unreachable: {message}")
            self._down = True
        self.state.record_unreachable(message)
        self._disconnect()

    def _disconnect(self) -> None:
        if self._conn is not None:
            self._conn.close()
        self._conn, self._shape = None, None
