"""The monitor's HTTP endpoints: /metrics, /status, /status.json and /healthz.

Handlers only read the monitor's state (one lock, no database work), so a scrape never waits for
a tick and a slow database never slows a scrape.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

from ghostguard.monitor import page
from ghostguard.monitor.state import MonitorState


class Endpoints:
    """What the handler serves; built once per monitor."""

    def __init__(
        self,
        state: MonitorState,
        registry: CollectorRegistry,
        database: str,
        ghost_threshold: int,
        interval: float,
    ) -> None:
        self.state = state
        self.registry = registry
        self.database = database
        self.ghost_threshold = ghost_threshold
        self.interval = interval
        self.last_loop: Callable[[], float] = time.time  # replaced by the loop's heartbeat

    def document(self) -> dict[str, Any]:
        return page.document(
            self.state.read(with_history=True), self.database, self.ghost_threshold
        )

    def health(self) -> tuple[int, dict[str, Any]]:
        """200 while the loop is alive (even when the database is down: that is a finding, not a
        monitor fault); 503 when the loop has not run for three intervals."""
        age = time.time() - self.last_loop()
        alive = age <= 3 * self.interval + 30
        reading = self.state.read()
        body = {
            "status": "ok" if alive else "stalled",
            "loop_seconds_ago": round(age, 1),
            "database_reachable": reading.reachable,
        }
        return (200 if alive else 503), body


def _handler(endpoints: Endpoints) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        server_version = "ghostguard-monitor"

        def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
            path = self.path.split("?", 1)[0]
            if path == "/metrics":
                self._send(200, CONTENT_TYPE_LATEST, generate_latest(endpoints.registry))
            elif path in ("/", "/status"):
                body = page.render(endpoints.document(), max(int(endpoints.interval), 5))
                self._send(200, "text/html; charset=utf-8", body.encode())
            elif path == "/status.json":
                self._json(200, endpoints.document())
            elif path == "/healthz":
                self._json(*endpoints.health())
            else:
                self._json(404, {"error": f"no such page: {path}; try /status or /metrics"})

        def _json(self, code: int, data: dict[str, Any]) -> None:
            self._send(code, "application/json", json.dumps(data, indent=2).encode())

        def _send(self, code: int, content_type: str, body: bytes) -> None:
            self.send_response(code)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
            """Requests are not logged: a scrape every few seconds would drown what matters."""

    return Handler


class MonitorServer:
    """A threading HTTP server on its own thread."""

    def __init__(self, host: str, port: int, endpoints: Endpoints) -> None:
        self.httpd = ThreadingHTTPServer((host, port), _handler(endpoints))
        self.httpd.daemon_threads = True
        self._thread = threading.Thread(
            target=self.httpd.serve_forever, name="ghostguard-http", daemon=True
        )

    @property
    def address(self) -> tuple[str, int]:
        host, port = self.httpd.server_address[:2]
        return str(host), int(port)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        if self._thread.is_alive():
            self.httpd.shutdown()
            self._thread.join(5)
        self.httpd.server_close()
