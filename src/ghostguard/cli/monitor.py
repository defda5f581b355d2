"""`ghostguard monitor`: metrics, a status page and alerts, until SIGTERM or Ctrl-C."""

from __future__ import annotations

import re
import signal
import threading
from pathlib import Path
from types import FrameType
from urllib.parse import urlsplit

import click

from ghostguard.cli.common import db_options, note, resolve_target
from ghostguard.config import TableRef
from ghostguard.errors import GhostguardError
from ghostguard.monitor.loop import Monitor, MonitorOptions

_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}


def _duration(_ctx: click.Context, param: click.Parameter, value: str) -> float:
    """`15s`, `500ms`, `10m`, `1h`, or plain seconds."""
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h)?\s*", value)
    seconds = float(match.group(1)) * _UNITS[match.group(2) or "s"] if match else 0.0
    if seconds <= 0:
        raise click.BadParameter(
            f"{value!r} is not a positive duration such as 15s, 500ms, 10m or 1h", param=param
        )
    return seconds


def _listen(_ctx: click.Context, param: click.Parameter, value: str) -> tuple[str, int]:
    host, sep, port = value.rpartition(":")
    host = host.strip("[]") or "127.0.0.1"
    if not sep or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise click.BadParameter(f"{value!r} is not HOST:PORT, e.g. 127.0.0.1:9187", param=param)
    return host, int(port)


def _webhooks(_ctx: click.Context, param: click.Parameter, value: tuple[str, ...]) -> list[str]:
    for url in value:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise click.BadParameter(
                "a webhook must be an http:// or https:// URL with a host", param=param
            )
    return list(value)


def _table(_ctx: click.Context, param: click.Parameter, value: str | None) -> TableRef | None:
    if value is None:
        return None
    schema, _, table = value.rpartition(".")
    if not table or not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_$]*", table):
        raise click.BadParameter(
            f"{value!r} is not a table name like public.ghostguard_monitor_history", param=param
        )
    return TableRef(schema or "public", table)


@click.command("monitor")
@db_options
@click.option(
    "--listen",
    default="127.0.0.1:9187",
    metavar="HOST:PORT",
    show_default=True,
    callback=_listen,
    help="HOST:PORT for /metrics, /status, /status.json and /healthz. Port 0 picks a free "
    "one. Only loopback unless you say otherwise.",
)
@click.option(
    "--interval",
    metavar="DURATION",
    callback=_duration,
    default="15s",
    show_default=True,
    help="Time between cheap ticks (trigger state, drift, sync failures, counters).",
)
@click.option(
    "--full-every",
    metavar="DURATION",
    callback=_duration,
    default="10m",
    show_default=True,
    help="Time between full reconciliations (ghosts by kind, orphans: a full join).",
)
@click.option(
    "--alert-webhook",
    "webhooks",
    multiple=True,
    callback=_webhooks,
    metavar="URL",
    help="POST JSON alerts here (repeatable); Slack/Discord-style incoming webhooks work.",
)
@click.option(
    "--ghost-threshold",
    type=click.IntRange(min=0),
    default=0,
    show_default=True,
    help="Alert when more ghost users than this are found.",
)
@click.option(
    "--history-table",
    callback=_table,
    metavar="SCHEMA.TABLE",
    help="Also keep the 24h history in this table (created if missing; RLS on, closed to "
    "API roles), so a restart keeps the charts. Default: memory only.",
)
def monitor(
    db_url: str | None,
    config_path: Path | None,
    listen: tuple[str, int],
    interval: float,
    full_every: float,
    webhooks: list[str],
    ghost_threshold: int,
    history_table: TableRef | None,
) -> None:
    """Watch the database: Prometheus metrics, a status page and webhook alerts.

    Every --interval a cheap tick reads the triggers, drift, sync failures, signup and function
    counters (its cost does not grow with the number of users); every --full-every a full
    reconciliation counts ghosts and orphans, and sooner when the statistics show profile rows
    deleted or signups without profiles. Keeps running while the database is down (reported as
    ghostguard_database_up 0) and recovers when it returns. Stops cleanly on SIGTERM or Ctrl-C.
    Read-only, except --history-table.
    """
    target = resolve_target(db_url, config_path)
    options = MonitorOptions(
        host=listen[0],
        port=listen[1],
        interval=interval,
        full_every=full_every,
        ghost_threshold=ghost_threshold,
        webhooks=webhooks,
        history_table=history_table,
    )
    try:
        watcher = Monitor(target.url, target.config, options, log=note)
    except OSError as exc:
        raise GhostguardError(
            f"cannot listen on {listen[0]}:{listen[1]}: {exc.strerror}; choose another --listen"
        ) from None
    stop = threading.Event()

    def stop_on_signal(signum: int, _frame: FrameType | None) -> None:
        note(f"{signal.Signals(signum).name}: stopping")
        stop.set()

    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, stop_on_signal)
    watcher.run(stop)
    note("monitor stopped")
