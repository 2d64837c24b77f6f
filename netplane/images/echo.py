"""An HTTP echo server: answers every request with a JSON description of it.

The response follows the Gateway API conformance echo server (echo-basic), which
conformance tests parse: ``path``, ``host``, ``method``, ``proto``, ``headers`` (lists of
values), ``namespace``, ``pod`` (from the NAMESPACE and POD_NAME environment variables),
plus ``remoteAddr`` (``host:port`` of the client) so a test can see which source address
survived NAT. It listens on every ``--port`` (containerPorts), 8080 when none is given.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import signal
import socket

import orjson
from aiohttp import web


def describe(request: web.Request) -> dict[str, object]:
    headers: dict[str, list[str]] = {}
    for name, value in request.headers.items():
        headers.setdefault(str(name), []).append(value)  # aiohttp's istr keys are not str to orjson
    peer = request.transport.get_extra_info("peername") if request.transport else None
    remote = ""
    if peer:
        host, port = peer[0], peer[1]
        host = host.removeprefix("::ffff:")  # an IPv4 client of the dual-stack socket
        remote = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    sock = request.transport.get_extra_info("sockname") if request.transport else None
    return {
        "path": request.path_qs,
        "host": request.host,
        "method": request.method,
        "proto": f"HTTP/{request.version.major}.{request.version.minor}",
        "headers": headers,
        "namespace": os.environ.get("NAMESPACE", ""),
        "ingress": os.environ.get("INGRESS_NAME", ""),
        "service": os.environ.get("SERVICE_NAME", ""),
        "pod": os.environ.get("POD_NAME", socket.gethostname()),
        "remoteAddr": remote,
        "localPort": sock[1] if sock else None,
    }


async def handle(request: web.Request) -> web.Response:
    await request.read()  # consume a body so keep-alive connections stay usable
    return web.Response(body=orjson.dumps(describe(request)), content_type="application/json")


async def serve(ports: list[int]) -> None:
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", handle)
    runner = web.AppRunner(app, access_log=None, handle_signals=False)
    await runner.setup()
    for port in ports:
        # One dual-stack socket per port: IPv4 clients arrive as ::ffff:a.b.c.d, so fall
        # back to IPv4 only where the pod has no IPv6.
        try:
            sock = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind(("::", port))
        except OSError:
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind(("0.0.0.0", port))
        await web.SockSite(runner, sock).start()
        print(f"echo server listening on port {port}", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    await runner.cleanup()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="HTTP echo server")
    parser.add_argument("--port", type=int, action="append", default=[])
    ports = parser.parse_args(argv).port or [int(os.environ.get("HTTP_PORT", "8080"))]
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve(ports))


if __name__ == "__main__":
    main()
