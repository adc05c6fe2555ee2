"""A small HTTP endpoint for the processes that are not web servers (workers, relays):
`/metrics` for Prometheus, `/healthz` (the process answers) and `/readyz` (it can do its job) for
compose and Kubernetes probes."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

log = logging.getLogger(__name__)
ReadyCheck = Callable[[], str | None]  # None when ready, else why not


ALL_INTERFACES = "0.0.0.0"  # noqa: S104 - probes and scrapes come from outside the container


def serve(
    port: int, registry: CollectorRegistry, ready: ReadyCheck, *, host: str = ALL_INTERFACES
) -> ThreadingHTTPServer:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            if self.path == "/metrics":
                self._reply(200, generate_latest(registry), CONTENT_TYPE_LATEST)
            elif self.path == "/healthz":
                self._reply(200, b"ok\n")
            elif self.path == "/readyz":
                problem = ready()
                self._reply(503 if problem else 200, f"{problem or 'ready'}\n".encode())
            else:
                self._reply(404, b"not found\n")

        def _reply(self, status: int, body: bytes, content_type: str = "text/plain; charset=utf-8") -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            return

    server = ThreadingHTTPServer((host, port), Handler)
    threading.Thread(target=server.serve_forever, name="health-metrics", daemon=True).start()
    log.info("health and metrics on :%d (/healthz /readyz /metrics)", server.server_address[1])
    return server
