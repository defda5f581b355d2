"""Prometheus metrics, built at scrape time from the monitor's latest readings.

A custom collector (no gauges kept up to date by hand): every scrape yields the families from one
consistent `Reading`. The registry is passed in, so tests use a fresh `CollectorRegistry()`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    InfoMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector
from psycopg import sql

from ghostguard.config import Config
from ghostguard.monitor.state import Reading

PREFIX = "ghostguard_"


def enable_timing_command(database: str) -> str:
    """What turns function timing on (a superuser setting; new sessions pick it up)."""
    return (
        sql.SQL("ALTER DATABASE {} SET track_functions = 'pl'")
        .format(sql.Identifier(database))
        .as_string(None)
        + ";"
    )


def _gauge(name: str, doc: str, value: float | None, **labels: str) -> GaugeMetricFamily:
    family = GaugeMetricFamily(PREFIX + name, doc, labels=list(labels))
    if value is not None:
        family.add_metric(list(labels.values()), value)
    return family


class MonitorCollector(Collector):
    def __init__(self, read: Callable[[], Reading], config: Config, database: str) -> None:
        self._read = read
        self._config = config
        self._database = database

    def collect(self) -> Iterator[Metric]:
        reading = self._read()
        yield _gauge(
            "database_up", "1 when the last tick reached the database, else 0.", reading.reachable
        )
        yield _gauge(
            "database_last_seen_timestamp_seconds",
            "When the database last answered (Unix time).",
            reading.last_seen,
        )
        yield _gauge(
            "monitor_start_timestamp_seconds", "When this monitor started.", reading.started_at
        )
        yield from self._census(reading)
        yield from self._tick(reading)

    def _census(self, reading: Reading) -> Iterator[Metric]:
        census = reading.census
        ghosts = GaugeMetricFamily(
            PREFIX + "ghost_users",
            "Auth users with no profile, by kind, at the last full reconciliation.",
            labels=["kind"],
        )
        if census:
            for kind, count in census.ghosts.items():
                ghosts.add_metric([kind], count)
        yield ghosts
        yield _gauge(
            "ghost_users_total",
            "All ghost users at the last full reconciliation.",
            census.ghost_total if census else None,
        )
        yield _gauge(
            "orphan_profiles",
            "Profiles whose auth user no longer exists, at the last full reconciliation.",
            census.counts.orphan_profiles if census else None,
        )
        yield _gauge(
            "auth_users",
            "Rows in the auth table at the last full reconciliation.",
            census.counts.auth_users if census else None,
        )
        yield _gauge(
            "profiles",
            "Rows in the profile table at the last full reconciliation.",
            census.counts.profiles if census else None,
        )
        yield _gauge(
            "last_full_reconciliation_timestamp_seconds",
            "When the last full reconciliation (a full join of both tables) finished.",
            census.at if census else None,
        )
        yield _gauge(
            "full_reconciliation_duration_seconds",
            "How long the last full reconciliation took.",
            census.seconds if census else None,
        )
        trigger = census.trigger if census else None
        yield _gauge(
            "trigger_probe_seconds",
            "The sync trigger's own time on a synthetic signup at the last full reconciliation "
            "(EXPLAIN ANALYZE, rolled back; needs no track_functions).",
            trigger.trigger_ms / 1000 if trigger and trigger.trigger_ms is not None else None,
        )

    def _tick(self, reading: Reading) -> Iterator[Metric]:
        tick = reading.tick
        yield CounterMetricFamily(
            PREFIX + "signups",
            "Rows inserted into the auth table since the monitor started (statistics views).",
            value=reading.signups,
        )
        if tick is None:
            return
        yield _gauge("last_tick_timestamp_seconds", "When the last tick finished.", tick.at)
        yield _gauge("tick_duration_seconds", "How long the last tick took.", tick.seconds)
        yield _gauge(
            "sync_failures_unresolved",
            "Profile writes the trigger recorded as failed and not yet repaired.",
            tick.failures_unresolved,
        )
        yield _gauge(
            "sync_failures_last_hour",
            "Profile sync failures recorded in the last hour.",
            tick.failures_last_hour,
        )
        yield _gauge(
            "healed_on_read",
            "Profiles ensure_profile() created on first read: ghosts every other layer missed.",
            tick.healed_on_read,
        )
        yield from self._triggers(reading)
        yield from self._timing(reading)
        yield from self._backfill(reading)

    def _triggers(self, reading: Reading) -> Iterator[Metric]:
        tick = reading.tick
        assert tick is not None
        by_name = {t.name: t for t in tick.triggers if t.is_on(self._config.source)}
        installed = GaugeMetricFamily(
            PREFIX + "trigger_installed",
            "1 when the trigger exists on the auth table.",
            labels=["trigger"],
        )
        enabled = GaugeMetricFamily(
            PREFIX + "trigger_enabled",
            "1 when the trigger exists and is enabled.",
            labels=["trigger"],
        )
        for name in tick.expected_triggers:
            trigger = by_name.get(name)
            installed.add_metric([name], trigger is not None)
            enabled.add_metric([name], bool(trigger and trigger.is_enabled))
        yield installed
        yield enabled
        yield _gauge(
            "trigger_drift",
            "1 when the function or triggers differ from what `ghostguard apply` installs.",
            bool(tick.drift),
        )
        problems = GaugeMetricFamily(
            PREFIX + "drift_problem", "One series per drift problem found.", labels=["problem"]
        )
        for problem in tick.drift:
            problems.add_metric([problem], 1)
        yield problems

    def _timing(self, reading: Reading) -> Iterator[Metric]:
        assert reading.tick is not None
        timing = reading.tick.timing
        yield _gauge(
            "function_timing_available",
            "1 when track_functions records the sync function's timing; when 0, run "
            + enable_timing_command(self._database),
            timing.available,
        )
        if not timing.available:
            info = InfoMetricFamily(
                PREFIX + "function_timing",
                "Why the sync function's timing is unavailable and how to enable it.",
            )
            info.add_metric(
                [],
                {
                    "track_functions": timing.track_functions,
                    "enable": enable_timing_command(self._database),
                },
            )
            yield info
            return
        yield CounterMetricFamily(
            PREFIX + "function_calls",
            "Calls of the sync function (pg_stat_user_functions).",
            value=timing.calls or 0,
        )
        yield CounterMetricFamily(
            PREFIX + "function_time_seconds",
            "Total time spent in the sync function (pg_stat_user_functions).",
            value=(timing.total_ms or 0.0) / 1000,
        )
        yield _gauge(
            "function_mean_seconds",
            "Mean time per call of the sync function.",
            timing.mean_ms / 1000 if timing.mean_ms is not None else None,
        )

    def _backfill(self, reading: Reading) -> Iterator[Metric]:
        assert reading.tick is not None
        backfill = reading.tick.backfill
        state = GaugeMetricFamily(
            PREFIX + "backfill_state",
            "The newest backfill audit row's status (1 for its status).",
            labels=["status"],
        )
        if backfill:
            state.add_metric([backfill.status], 1)
        yield state
        yield _gauge(
            "backfill_records_affected",
            "Profiles the newest backfill run created.",
            backfill.records_affected if backfill else None,
        )
        yield _gauge(
            "backfill_started_timestamp_seconds",
            "When the newest backfill run started.",
            backfill.started_at if backfill else None,
        )
