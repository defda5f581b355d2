"""Helpers for monitor tests: a monitor running on its own thread, scraping, a webhook receiver."""

from __future__ import annotations

import json
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, TypeVar

from prometheus_client import CollectorRegistry
from prometheus_client.parser import text_string_to_metric_families

from ghostguard.config import Config
from ghostguard.monitor.loop import Monitor, MonitorOptions

T = TypeVar("T")


@dataclass
class Running:
    monitor: Monitor
    base: str
    log: list[str]

    def get(self, path: str) -> tuple[int, str]:
        try:
            with urllib.request.urlopen(self.base + path, timeout=10) as response:
                return response.status, response.read().decode()
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read().decode()

    def metrics(self) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
        """Every sample of /metrics, keyed by name and sorted labels."""
        status, text = self.get("/metrics")
        assert status == 200
        return {
            (s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text)
            for s in family.samples
        }

    def metric(self, name: str, **labels: str) -> float | None:
        return self.metrics().get((name, tuple(sorted(labels.items()))))

    def status(self) -> dict[str, Any]:
        code, text = self.get("/status.json")
        assert code == 200
        data: dict[str, Any] = json.loads(text)
        return data


@contextmanager
def running_monitor(
    url: str, *, interval: float = 0.2, full_every: float = 1.0, **options: Any
) -> Iterator[Running]:
    log: list[str] = []
    monitor = Monitor(
        url,
        options.pop("config", Config()),
        MonitorOptions(port=0, interval=interval, full_every=full_every, **options),
        log=log.append,
        registry=CollectorRegistry(),
    )
    stop = threading.Event()
    errors: list[BaseException] = []

    def run() -> None:
        try:
            monitor.run(stop)
        except BaseException as exc:  # surfaced by the test below, not swallowed
            errors.append(exc)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    wait_for(lambda: monitor.ready.is_set() or not thread.is_alive(), bool)
    try:
        yield Running(monitor, monitor.address, log)
    finally:
        stop.set()
        thread.join(15)
    assert not thread.is_alive(), "the monitor did not stop"
    assert not errors, errors


def wait_for(read: Callable[[], T], test: Callable[[T], bool], timeout: float = 15.0) -> T:
    """Poll `read` until `test` holds; fail with the last value seen."""
    deadline = time.monotonic() + timeout
    while True:
        value = read()
        if test(value):
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout}s; last value: {value!r}")
        time.sleep(0.1)


@dataclass
class Receiver:
    """A local webhook receiver: records every JSON body; answers `fail_first` requests with 500."""

    fail_first: int = 0
    bodies: list[dict[str, Any]] = field(default_factory=list)
    requests: int = 0
    url: str = ""
    authorizations: list[str | None] = field(default_factory=list)

    def by_incident(self) -> list[tuple[str, str]]:
        return [(b["incident"], b["state"]) for b in self.bodies]


@contextmanager
def webhook_receiver(fail_first: int = 0) -> Iterator[Receiver]:
    receiver = Receiver(fail_first)
    lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            with lock:
                receiver.requests += 1
                receiver.authorizations.append(self.headers.get("Authorization"))
                failing = receiver.requests <= receiver.fail_first
                if not failing:
                    receiver.bodies.append(body)
            self.send_response(500 if failing else 200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    receiver.url = f"http://127.0.0.1:{server.server_address[1]}/hooks/secret-token"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield receiver
    finally:
        server.shutdown()
        server.server_close()
