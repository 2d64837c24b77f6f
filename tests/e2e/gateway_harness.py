"""Shared parts of the gateway engine tests: in-process echo backends, an engine on loopback, requests.

Backends are small HTTP servers in the test process that answer JSON naming themselves and echoing the
request they saw (and an `X-Backend` header with their name).
"""

from __future__ import annotations

import contextlib
import http.client
import http.server
import ipaddress
import json
import shutil
import socket
import ssl
import tempfile
import threading
import time
import urllib.parse
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from netplane.dataplane.gateway import Engine, InstanceSettings, Listener
from netplane.dataplane.gateway.config import LUA_MODULE

ADDR = "127.0.0.1"
LOOPBACK = ipaddress.ip_address(ADDR)

needs_engine = pytest.mark.skipif(
    shutil.which("nginx") is None or not LUA_MODULE.exists() or shutil.which("luajit") is None,
    reason="nginx with the lua module and luajit are needed (make setup installs them)")


def free_port() -> int:
    with socket.socket() as s:
        s.bind((ADDR, 0))
        return int(s.getsockname()[1])


@dataclass(frozen=True)
class Seen:
    """A request as a backend received it (header names lower-cased)."""

    method: str
    path: str
    headers: dict[str, str]
    body: bytes


class _Echo(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: EchoServer

    def _answer(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        headers = {k.lower(): v for k, v in self.headers.items()}
        self.server.seen.append(Seen(self.command, self.path, headers, body))
        query = urllib.parse.parse_qs(urllib.parse.urlsplit(self.path).query)
        if "sleep_ms" in query:
            time.sleep(int(query["sleep_ms"][0]) / 1000)
        answer = json.dumps({"name": self.server.name, "path": self.path, "method": self.command,
                             "headers": headers}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(answer)))
        self.send_header("X-Backend", self.server.name)
        for name, value in self.server.extra_headers:
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(answer)

    do_GET = do_POST = do_PUT = do_OPTIONS = _answer

    def log_message(self, *args: object) -> None:
        pass


class EchoServer(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, name: str, extra_headers: Iterable[tuple[str, str]] = ()):
        super().__init__((ADDR, 0), _Echo)
        self.name = name
        self.port = int(self.server_address[1])
        # Headers every answer carries, e.g. one the gateway must replace.
        self.extra_headers = tuple(extra_headers)
        self.seen: list[Seen] = []

    def handle_error(self, request: object, client_address: object) -> None:
        # Clients that give up early (timeout tests) are expected here.
        pass


def copies(server: EchoServer, path: str, n: int = 1, timeout: float = 10) -> list[Seen]:
    """The requests for `path` the server received, once there are `n` of them (copies arrive asynchronously)."""
    deadline = time.monotonic() + timeout
    while True:
        seen = [r for r in server.seen if r.path == path]
        if len(seen) >= n or time.monotonic() > deadline:
            return seen
        time.sleep(0.02)


@contextlib.contextmanager
def echo_servers(*names: str, headers: Mapping[str, Iterable[tuple[str, str]]] | None = None,
                 ) -> Iterator[dict[str, EchoServer]]:
    """Echo backends by name; `headers` gives some of them headers to add to every answer."""
    servers = {name: EchoServer(name, (headers or {}).get(name, ())) for name in names}
    for s in servers.values():
        threading.Thread(target=s.serve_forever, daemon=True).start()
    try:
        yield servers
    finally:
        for s in servers.values():
            s.shutdown()
            s.server_close()


@contextlib.contextmanager
def running_engine(listeners: Iterable[Listener], workers: int = 2) -> Iterator[Engine]:
    """An engine in a fresh prefix under /tmp, stopped and removed afterwards."""
    prefix_dir = Path(tempfile.mkdtemp(prefix="np-gw-test-", dir="/tmp"))
    engine = Engine(InstanceSettings(prefix_dir, worker_processes=workers), list(listeners))
    engine.start()
    try:
        yield engine
    finally:
        engine.stop()
        shutil.rmtree(prefix_dir, ignore_errors=True)


def port_of(engine: Engine, tls: bool = False) -> int:
    """The port of the engine's first plain (or TLS) listener."""
    return next(lst.port for lst in engine.listeners if lst.tls == tls)


def ep(server: EchoServer, weight: int = 1) -> dict[str, Any]:
    return {"address": ADDR, "port": server.port, "weight": weight}


def to(*names: str, policy: dict[str, Any] | None = None) -> dict[str, Any]:
    group: dict[str, Any] = {"backends": [{"name": n} for n in names]}
    if policy:
        group["policy"] = policy
    return group


def prefix(value: str) -> dict[str, Any]:
    return {"path": {"type": "prefix", "value": value}}


class Answer:
    def __init__(self, status: int, headers: http.client.HTTPMessage, body: bytes):
        self.status, self.headers, self.body = status, headers, body

    @property
    def json(self) -> dict[str, Any]:
        return dict(json.loads(self.body))

    @property
    def name(self) -> str | None:
        return self.headers.get("X-Backend")


def unverified_context() -> ssl.SSLContext:
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context


def call(engine: Engine, host: str, path: str = "/", method: str = "GET", headers: dict[str, str] | None = None,
         port: int | None = None, tls: bool = False, body: bytes | None = None) -> Answer:
    """One request on a fresh connection (TLS without verification: the engine's fallback certificate)."""
    port = port or port_of(engine)
    conn = (http.client.HTTPSConnection(ADDR, port, timeout=10, context=unverified_context()) if tls
            else http.client.HTTPConnection(ADDR, port, timeout=10))
    try:
        conn.request(method, path, body=body, headers={"Host": host, **(headers or {})})
        resp = conn.getresponse()
        return Answer(resp.status, resp.headers, resp.read())
    finally:
        conn.close()
