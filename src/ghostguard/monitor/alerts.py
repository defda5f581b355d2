"""Alerts: one message when an incident starts, one when it is resolved, POSTed to webhooks.

An incident is a named condition (ghosts over the threshold, unresolved sync failures, trigger
drift, database unreachable) that holds. `Incidents.update` compares the newest reading with the
open incidents and returns what changed; `WebhookSender` delivers on a thread per receiver with
bounded retries, backoff and a per-attempt timeout, so a slow or dead receiver never delays a
tick, a scrape or another receiver.

The payload is JSON with a human `text` (Slack, Mattermost, Discord's `/slack` endpoint) and the
same words in `content` (Discord), plus machine fields.
"""

from __future__ import annotations

import base64
import json
import queue
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import unquote, urlsplit, urlunsplit

from ghostguard.monitor.state import Reading

GHOSTS, FAILURES, DRIFT, UNREACHABLE = "ghosts", "sync_failures", "trigger_drift", "unreachable"


@dataclass(frozen=True)
class Alert:
    incident: str
    state: str  # "firing" or "resolved"
    text: str
    where: str
    at: float

    def payload(self) -> dict[str, Any]:
        return {
            "text": self.text,
            "content": self.text,
            "incident": self.incident,
            "state": self.state,
            "database": self.where,
            "at": datetime.fromtimestamp(self.at, UTC).isoformat(),
        }


def conditions(reading: Reading, ghost_threshold: int) -> dict[str, str | None]:
    """Each incident that can be judged from this reading: its description, or None when fine.

    While the database is unreachable only that is judged: the other readings are stale, so their
    incidents neither open nor resolve.
    """
    if not reading.reachable:
        if reading.tick is None and reading.error is None:
            return {}
        return {UNREACHABLE: f"cannot reach or read the database: {reading.error or 'no answer'}"}
    found: dict[str, str | None] = {UNREACHABLE: None}
    census, tick = reading.census, reading.tick
    if census is not None:
        total = census.ghost_total
        kinds = ", ".join(f"{k} {n}" for k, n in census.ghosts.items() if n)
        found[GHOSTS] = (
            f"{total:,} ghost users (threshold {ghost_threshold}): {kinds}; "
            "`ghostguard scan` lists them, `ghostguard backfill --yes` creates their profiles"
            if total > ghost_threshold
            else None
        )
    if tick is not None:
        failures = tick.failures_unresolved or 0
        found[FAILURES] = (
            f"{failures:,} unresolved profile sync failures ({tick.failures_last_hour or 0:,} in "
            "the last hour): signups succeeded without a profile; fix the cause, then "
            "`ghostguard repair --yes`"
            if failures
            else None
        )
        found[DRIFT] = (
            "the sync trigger is not as installed: "
            + "; ".join(tick.drift)
            + "; `ghostguard apply --yes` reinstalls it"
            if tick.drift
            else None
        )
    return found


class Incidents:
    """The open incidents; `update` returns the alerts for what opened and what resolved."""

    def __init__(self, ghost_threshold: int = 0) -> None:
        self.ghost_threshold = ghost_threshold
        self.open: dict[str, str] = {}

    def update(self, reading: Reading) -> list[Alert]:
        now = time.time()
        alerts: list[Alert] = []
        for incident, problem in conditions(reading, self.ghost_threshold).items():
            if problem is not None and incident not in self.open:
                self.open[incident] = problem
                alerts.append(
                    Alert(
                        incident,
                        "firing",
                        f"ghostguard: {problem} ({reading.where})",
                        reading.where,
                        now,
                    )
                )
            elif problem is None and incident in self.open:
                was = self.open.pop(incident)
                alerts.append(
                    Alert(
                        incident,
                        "resolved",
                        f"ghostguard: resolved: {_resolved(incident, was)} ({reading.where})",
                        reading.where,
                        now,
                    )
                )
        return alerts


def _resolved(incident: str, was: str) -> str:
    return {
        GHOSTS: "ghost users are back within the threshold",
        FAILURES: "every profile sync failure is resolved",
        DRIFT: "the sync trigger is installed as ghostguard installs it",
        UNREACHABLE: "the database answers again",
    }.get(incident, was)


def webhook_display(url: str) -> str:
    """Where a webhook goes without its path: incoming-webhook URLs carry their secret there."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.hostname or '?'}{f':{parts.port}' if parts.port else ''}/…"


def _without_credentials(url: str) -> tuple[str, dict[str, str]]:
    """The URL without `user:password@`, and the Basic Authorization header they meant (urllib
    would take them for part of the host)."""
    parts = urlsplit(url)
    if parts.username is None and parts.password is None:
        return url, {}
    host = parts.hostname or ""
    netloc = f"[{host}]" if ":" in host else host
    if parts.port:
        netloc += f":{parts.port}"
    user, password = unquote(parts.username or ""), unquote(parts.password or "")
    token = base64.b64encode(f"{user}:{password}".encode()).decode()
    return urlunsplit(parts._replace(netloc=netloc)), {"Authorization": f"Basic {token}"}


def post_json(url: str, payload: dict[str, Any], timeout: float) -> None:
    """POST once; raises on a network error or a non-2xx answer."""
    target, auth = _without_credentials(url)
    request = urllib.request.Request(
        target,
        data=json.dumps(payload).encode(),
        headers={"Content-Type": "application/json", "User-Agent": "ghostguard-monitor", **auth},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310 (http/https only)
        response.read()


class WebhookSender:
    """Delivers alerts on background threads, one per webhook: each tried `attempts` times with
    backoff and a per-attempt `timeout`, so a dead receiver delays nobody else."""

    def __init__(
        self,
        urls: list[str],
        *,
        attempts: int = 5,
        backoff: float = 1.0,
        timeout: float = 10.0,
        log: Callable[[str], None] = lambda _m: None,
    ) -> None:
        self.urls = urls
        self.attempts, self.backoff, self.timeout = attempts, backoff, timeout
        self._log = log
        self._stopping = threading.Event()
        self._queues: list[queue.Queue[Alert | None]] = [queue.Queue() for _ in urls]
        self._threads = [
            threading.Thread(
                target=self._run, args=(url, q), name=f"ghostguard-alerts-{n}", daemon=True
            )
            for n, (url, q) in enumerate(zip(urls, self._queues, strict=True))
        ]
        self._count = threading.Lock()
        self.delivered = 0
        self.failed = 0
        for thread in self._threads:
            thread.start()

    def send(self, alert: Alert) -> None:
        for q in self._queues:
            q.put(alert)

    def close(self, wait: float = 5.0) -> None:
        """Deliver what is queued for at most `wait` seconds in all, then stop."""
        for q in self._queues:
            q.put(None)
        deadline = time.monotonic() + wait
        for thread in self._threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        self._stopping.set()

    def _run(self, url: str, alerts: queue.Queue[Alert | None]) -> None:
        while (alert := alerts.get()) is not None:
            self._deliver(url, alert)

    def _deliver(self, url: str, alert: Alert) -> None:
        delay = self.backoff
        shown = webhook_display(url)
        for attempt in range(1, self.attempts + 1):
            try:
                post_json(url, alert.payload(), self.timeout)
                with self._count:
                    self.delivered += 1
                return
            except (urllib.error.URLError, OSError, ValueError) as exc:
                reason = str(getattr(exc, "reason", None) or exc).replace(url, shown)
                self._log(
                    f"alert {alert.incident} {alert.state} to {shown}: attempt "
                    f"{attempt}/{self.attempts} failed ({reason})"
                )
            if attempt < self.attempts and self._stopping.wait(delay):
                break
            delay = min(delay * 2, 60.0)
        with self._count:
            self.failed += 1
