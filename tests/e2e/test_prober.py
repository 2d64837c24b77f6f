"""The probe handlers' I/O against real servers and processes, inside a network namespace of the test's own
(root only): TCP, HTTP (status codes, headers, redirects, HTTPS without verification, timeouts) and exec."""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from netplane.dataplane.agent import prober, probes
from netplane.dataplane.agent.probes import Result
from netplane.dataplane.runtime import linux

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(os.geteuid() != 0, reason="needs root for a network namespace"),
    pytest.mark.skipif(not (shutil.which("openssl") and shutil.which("setpriv")), reason="needs openssl and setpriv"),
]

ADDRESS = "10.77.0.1"  # on the namespace's own loopback: nothing outside it is reached
SERVER = textwrap.dedent("""
    import http.server, ssl, sys, threading, time

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            if self.path == "/slow":
                time.sleep(3)
            code, location = {"/ok": (200, ""), "/fail": (500, ""), "/local": (302, "/fail"),
                              "/away": (302, "http://10.77.0.99/fail")}.get(self.path, (200, ""))
            body = repr(sorted(self.headers.items())).encode()
            self.send_response(code)
            if location:
                self.send_header("Location", location)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    plain = http.server.ThreadingHTTPServer((sys.argv[1], 8080), Handler)
    tls = http.server.ThreadingHTTPServer((sys.argv[1], 8443), Handler)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(sys.argv[2], sys.argv[3])
    tls.socket = context.wrap_socket(tls.socket, server_side=True)
    threading.Thread(target=tls.serve_forever, daemon=True).start()
    print("ready", flush=True)
    plain.serve_forever()
""")


@dataclass
class Namespace:
    name: str
    sleeper: int  # a process in it: the "container" exec probes enter

    def probe(self, handler: probes.Handler, timeout: float = 1, **target: Any) -> tuple[Result, str]:
        async def once() -> tuple[Result, str]:
            async with aiohttp.ClientSession() as session:
                return await prober.run(handler, prober.Target(ADDRESS, self.sleeper, **target), timeout,
                                        lambda: session)

        # The agent probes from its node's namespace; here the event loop runs in the test's.
        return linux.in_netns(f"/run/netns/{self.name}", lambda: asyncio.run(once()))


@pytest.fixture(scope="module")
def netns(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Namespace]:
    name = f"npprobe-{uuid.uuid4().hex[:8]}"
    certs = tmp_path_factory.mktemp("certs")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=probe",
                    "-keyout", str(certs / "key.pem"), "-out", str(certs / "cert.pem")], check=True,
                   capture_output=True)
    subprocess.run(["ip", "netns", "add", name], check=True)
    procs: list[subprocess.Popen[str]] = []
    try:
        for cmd in (["link", "set", "lo", "up"], ["addr", "add", f"{ADDRESS}/32", "dev", "lo"]):
            subprocess.run(["ip", "-n", name, *cmd], check=True)
        server = subprocess.Popen(["ip", "netns", "exec", name, sys.executable, "-c", SERVER, ADDRESS,
                                   str(certs / "cert.pem"), str(certs / "key.pem")], stdout=subprocess.PIPE, text=True)
        procs.append(server)
        assert server.stdout is not None and server.stdout.readline().strip() == "ready"
        sleeper = subprocess.Popen(["ip", "netns", "exec", name, "sleep", "600"], text=True)
        procs.append(sleeper)
        yield Namespace(name, sleeper.pid)
    finally:
        for proc in procs:
            proc.send_signal(signal.SIGKILL)
            proc.wait()
        subprocess.run(["ip", "netns", "del", name], check=True)


def test_tcp(netns: Namespace) -> None:
    assert netns.probe(probes.TCPSocket(8080)) == (Result.SUCCESS, "")
    assert netns.probe(probes.TCPSocket("web"), ports={"web": 8080})[0] is Result.SUCCESS
    assert netns.probe(probes.TCPSocket(9)) == (Result.FAILURE, f"dial tcp {ADDRESS}:9: connect: connection refused")
    assert netns.probe(probes.TCPSocket("nope"))[0] is Result.UNKNOWN


def test_http_status_codes_and_headers(netns: Namespace) -> None:
    result, body = netns.probe(probes.HTTPGet(8080, "/ok", headers=(("X-Probe", "yes"), ("Accept", "text/plain"))))
    assert result is Result.SUCCESS
    assert "('User-Agent', 'kube-probe/1." in body and "('X-Probe', 'yes')" in body, body
    assert "('Accept', 'text/plain')" in body and "'*/*'" not in body, body  # the pod's headers win
    assert netns.probe(probes.HTTPGet(8080, "/fail")) == (Result.FAILURE, "HTTP probe failed with statuscode: 500")
    assert netns.probe(probes.HTTPGet(8080, "/local"))[0] is Result.FAILURE  # followed to /fail on the same host
    assert netns.probe(probes.HTTPGet(8080, "/away"))[0] is Result.SUCCESS  # not followed elsewhere: 3xx is success
    assert netns.probe(probes.HTTPGet(8443, "/ok", scheme="HTTPS"))[0] is Result.SUCCESS  # self-signed, unverified
    refused = netns.probe(probes.HTTPGet(9, "/ok"))
    assert refused[0] is Result.FAILURE and "connection refused" in refused[1], refused


def test_http_timeout(netns: Namespace) -> None:
    started = time.monotonic()
    result, message = netns.probe(probes.HTTPGet(8080, "/slow"), timeout=1)
    assert result is Result.FAILURE and "timeout" in message, message
    assert time.monotonic() - started < 2.5


def test_exec_in_the_container(netns: Namespace) -> None:
    assert netns.probe(probes.Exec(("true",))) == (Result.SUCCESS, "")
    result, output = netns.probe(probes.Exec(("sh", "-c", "echo not well >&2; exit 3")))
    assert (result, output) == (Result.FAILURE, "not well\n")
    # It runs in the process's network namespace, not the caller's.
    assert ADDRESS in netns.probe(probes.Exec(("ip", "-4", "addr")))[1]
    started = time.monotonic()
    assert netns.probe(probes.Exec(("sleep", "30")), timeout=1) == (Result.FAILURE, 'command "sleep 30" timed out')
    assert time.monotonic() - started < 3
    assert Path(f"/proc/{netns.sleeper}").exists()  # the timeout killed the probe's own processes only
    assert netns.probe(probes.Exec(()))[0] is Result.UNKNOWN


def test_grpc_is_reported_as_not_supported(netns: Namespace) -> None:
    assert netns.probe(probes.GRPC(9000)) == (Result.UNKNOWN, "gRPC probes are not supported by netplane")


def test_no_pod_address_is_unknown(netns: Namespace) -> None:
    async def once() -> tuple[Result, str]:
        return await prober.run(probes.TCPSocket(80), prober.Target(None, netns.sleeper), 1, _no_session)

    assert asyncio.run(once())[0] is Result.UNKNOWN


def _no_session() -> aiohttp.ClientSession:
    raise AssertionError("no HTTP session needed")

