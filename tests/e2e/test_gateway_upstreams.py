"""The gateway engine's upstream side with real nginx on loopback: HTTPS backends (plain, verified against a
CA, with a client certificate), gRPC, TLS passthrough by SNI next to termination, TCP and UDP listeners.

Backends are in this process: the echo servers of gateway_harness.py, the same behind TLS, and small
TCP/UDP echo servers. One engine serves the module; tests that change its upstream side set the whole of it.
"""

from __future__ import annotations

import json
import socket
import socketserver
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import pytest

from netplane.dataplane.gateway import ConfigError, ControlError, Engine, Listener
from netplane.dataplane.gateway.upstreams import L4Listener, Passthrough, StreamPeer, TLSProfile, Upstreams
from tests.certificates import self_signed
from tests.e2e.gateway_harness import ADDR, LOOPBACK, EchoServer, call, free_port, running_engine, to
from tests.e2e.test_gateway_engine import backends, pytestmark
from tests.e2e.tls_backends import (
    Pem,
    TLSEchoServer,
    grpc_server,
    issue,
    make_ca,
    serve,
    server_context,
    serving,
    tls_exchange,
)

__all__ = ["backends", "pytestmark"]


@dataclass
class TLSWorld:
    ca: Pem
    server: Pem  # backend.test, issued by `ca`
    other_ca: Pem
    client: Pem  # issued by `ca`
    plain: TLSEchoServer  # certificate for backend.test by `ca`
    mutual: TLSEchoServer  # requires a client certificate by `ca`
    passthrough: TLSEchoServer  # its own certificate for pass.test


@pytest.fixture(scope="module")
def tls_world() -> Iterator[TLSWorld]:
    tmp = Path(tempfile.mkdtemp(prefix="np-gw-tls-"))
    ca, other = make_ca("netplane test CA"), make_ca("another CA")
    server, client = issue(ca, "backend.test"), issue(ca, "client.test")
    pt_cert, pt_key = self_signed("pass.test")
    world = TLSWorld(ca[0], server, other[0], client,
                     TLSEchoServer("tls", server_context(server, tmp)),
                     TLSEchoServer("mutual", server_context(server, tmp, client_ca=ca[0])),
                     TLSEchoServer("pass", server_context(Pem(pt_cert, pt_key), tmp)))
    with serving([world.plain, world.mutual, world.passthrough], tmp):
        yield world


@pytest.fixture(scope="module")
def gw() -> Iterator[Engine]:
    """One plain and one TLS listener (HTTP/2 offered there, for gRPC clients)."""
    with running_engine([Listener(free_port(), LOOPBACK),
                         Listener(free_port(), LOOPBACK, tls=True, http2=True)]) as engine:
        yield engine


def plain_port(engine: Engine) -> int:
    return next(lst.port for lst in engine.listeners if not lst.tls)


def tls_port(engine: Engine) -> int:
    return next(lst.port for lst in engine.listeners if lst.tls)


def port_of(server: socketserver.BaseServer) -> int:
    return int(cast(tuple[str, int], server.server_address)[1])


def ep(server: socketserver.BaseServer) -> dict[str, Any]:
    return {"address": ADDR, "port": port_of(server)}


def route_to(engine: Engine, host: str, backend: str, doc: dict[str, Any]) -> None:
    engine.put(BACKENDS, backend, doc)
    engine.put_vhost(host, {"ports": [lst.port for lst in engine.listeners], "hostnames": [host],
                            "routes": [{"id": host, "backend": to(backend)}]})


BACKENDS = "backends"


# -- HTTPS backends ----------------------------------------------------------------------------------------------

def test_https_backend_without_a_profile_needs_no_reload(gw: Engine, tls_world: TLSWorld) -> None:
    reloads = gw.reloads
    route_to(gw, "https.test", "https", {"endpoints": [ep(tls_world.plain)], "protocol": "https"})
    answer = call(gw, "https.test", "/x", port=plain_port(gw))
    assert answer.status == 200 and answer.name == "tls"
    assert answer.json["path"] == "/x" and answer.json["headers"]["host"] == "https.test"
    assert gw.reloads == reloads
    # The same backend spoken to in plain HTTP fails at the backend's TLS: a bad gateway, not a hang.
    route_to(gw, "https.test", "https", {"endpoints": [ep(tls_world.plain)]})
    assert call(gw, "https.test", port=plain_port(gw)).status == 502


def test_tls_profiles_verify_the_backend_and_present_a_client_certificate(gw: Engine, tls_world: TLSWorld) -> None:
    right = TLSProfile(verify=True, verify_depth=2, server_name="backend.test", ca_pem=tls_world.ca.cert)
    wrong = TLSProfile(verify=True, verify_depth=2, server_name="backend.test", ca_pem=tls_world.other_ca.cert)
    misnamed = TLSProfile(verify=True, verify_depth=2, server_name="elsewhere.test", ca_pem=tls_world.ca.cert)
    client = TLSProfile(certificate_pem=tls_world.client.cert, key_pem=tls_world.client.key)
    upstreams = Upstreams(tls_profiles=(right, wrong, misnamed, client))
    with pytest.raises(ControlError) as refused:
        gw.put(BACKENDS, "early", {"endpoints": [ep(tls_world.plain)], "protocol": "https", "tls": right.id})
    assert refused.value.status == 400 and "no upstream TLS profile" in refused.value.message

    reloads = gw.reloads
    assert gw.set_listeners(gw.listeners, upstreams)
    assert gw.reloads == reloads + 1
    assert not gw.set_listeners(gw.listeners, Upstreams(tls_profiles=(client, misnamed, wrong, right)))

    def status(profile: TLSProfile | None, server: TLSEchoServer) -> int:
        doc: dict[str, Any] = {"endpoints": [ep(server)], "protocol": "https"}
        if profile is not None:
            doc["tls"] = profile.id
        route_to(gw, "verify.test", "verify", doc)
        return call(gw, "verify.test", port=plain_port(gw)).status

    assert status(right, tls_world.plain) == 200
    assert status(wrong, tls_world.plain) == 502
    assert status(misnamed, tls_world.plain) == 502
    assert status(client, tls_world.mutual) == 200
    assert status(None, tls_world.mutual) == 502
    assert status(right, tls_world.mutual) == 502  # verified, but no client certificate

    # The profile's PEM files live under the prefix, private; nginx.conf names them, never holds them.
    conf = (gw.prefix / "conf" / "nginx.conf").read_text()
    assert tls_world.ca.cert.splitlines()[1] not in conf and tls_world.client.key.splitlines()[1] not in conf
    files = sorted(p.name for p in (gw.prefix / "conf" / "upstream-tls").iterdir())
    assert files == sorted({*right.files(), *wrong.files(), *misnamed.files(), *client.files()})
    assert all((gw.prefix / "conf" / "upstream-tls" / f).stat().st_mode & 0o077 == 0 for f in files)

    # A profile that goes away: the backend naming it compiles no more and gets no traffic; its files go.
    route_to(gw, "verify.test", "verify", {"endpoints": [ep(tls_world.plain)], "protocol": "https",
                                           "tls": wrong.id})
    assert gw.set_listeners(gw.listeners, Upstreams(tls_profiles=(right, client)))
    assert call(gw, "verify.test", port=plain_port(gw)).status == 503
    assert not (gw.prefix / "conf" / "upstream-tls" / f"{wrong.id}.ca").exists()
    gw.set_listeners(gw.listeners, Upstreams())


# -- gRPC --------------------------------------------------------------------------------------------------------

def test_grpc_and_grpcs_backends_with_a_real_grpc_client(gw: Engine, tls_world: TLSWorld,
                                                         tmp_path: Path) -> None:
    grpc = pytest.importorskip("grpc")
    plain, h2c_port = grpc_server(grpc, "h2c")
    server_pem = tls_world.server
    secure, secure_port = grpc_server(grpc, "tls", grpc.ssl_server_credentials(
        [(server_pem.key.encode(), server_pem.cert.encode())]))
    cert, key = self_signed("grpc.test")
    gw.put_certificate("grpc", ["grpc.test"], cert, key)
    verified = TLSProfile(verify=True, server_name="backend.test", ca_pem=tls_world.ca.cert)
    gw.set_listeners(gw.listeners, Upstreams(tls_profiles=(verified,)))
    channel = grpc.secure_channel(f"{ADDR}:{tls_port(gw)}", grpc.ssl_channel_credentials(cert.encode()),
                                  options=[("grpc.ssl_target_name_override", "grpc.test"),
                                           ("grpc.default_authority", "grpc.test")])
    say = channel.unary_unary("/test.Echo/Say")
    try:
        for doc, expect in (({"protocol": "grpc", "endpoints": [{"address": ADDR, "port": h2c_port}]}, b"h2c:hi"),
                            ({"protocol": "grpcs", "endpoints": [{"address": ADDR, "port": secure_port}]},
                             b"tls:hi"),
                            ({"protocol": "grpcs", "tls": verified.id,
                              "endpoints": [{"address": ADDR, "port": secure_port}]}, b"tls:hi")):
            route_to(gw, "grpc.test", "grpc", doc)
            assert say(b"hi", timeout=10) == expect
        # A gRPC backend spoken to as HTTP/1.1 answers nothing a gRPC client accepts.
        route_to(gw, "grpc.test", "grpc", {"endpoints": [{"address": ADDR, "port": h2c_port}]})
        with pytest.raises(grpc.RpcError):
            say(b"hi", timeout=10)
    finally:
        channel.close()
        plain.stop(None)
        secure.stop(None)
        gw.set_listeners(gw.listeners, Upstreams())


# -- TLS passthrough, TCP and UDP ------------------------------------------------------------------------------

class _TCPEcho(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self) -> None:
        class Handler(socketserver.StreamRequestHandler):
            def handle(self) -> None:
                while line := self.rfile.readline():
                    self.wfile.write(b"tcp:" + line)
        super().__init__((ADDR, 0), Handler)


class _UDPEcho(socketserver.ThreadingUDPServer):
    daemon_threads = True

    def __init__(self) -> None:
        class Handler(socketserver.DatagramRequestHandler):
            def handle(self) -> None:
                self.wfile.write(b"udp:" + self.rfile.read())
        super().__init__((ADDR, 0), Handler)


def _peer(server: socketserver.BaseServer) -> StreamPeer:
    return StreamPeer(LOOPBACK, port_of(server))


def test_passthrough_by_sni_next_to_termination_and_tcp_udp_listeners(
        gw: Engine, tls_world: TLSWorld, backends: dict[str, EchoServer]) -> None:
    tcp, udp = serve(_TCPEcho()), serve(_UDPEcho())
    l4_port = free_port()
    port = tls_port(gw)
    cert, key = self_signed("terminated.test")
    gw.put_certificate("terminated", ["terminated.test"], cert, key)
    gw.put_backend("terminated", [{"address": ADDR, "port": backends["a"].port}])
    gw.put_vhost("terminated", {"ports": [port], "hostnames": ["terminated.test"],
                                "routes": [{"id": "t", "backend": to("terminated")}]})
    upstreams = Upstreams(passthrough=(Passthrough(port, ("pass.test", "*.pass.test"), (_peer(tls_world.passthrough),),
                                                   LOOPBACK),),
                          l4=(L4Listener(l4_port, False, LOOPBACK, (_peer(tcp),)),
                              L4Listener(l4_port, True, LOOPBACK, (_peer(udp),))))
    try:
        assert gw.set_listeners(gw.listeners, upstreams)
        assert not gw.set_listeners(gw.listeners, Upstreams(l4=tuple(reversed(upstreams.l4)),
                                                            passthrough=upstreams.passthrough))

        # Passed through: the backend's own certificate, the backend's answer.
        for sni in ("pass.test", "a.pass.test", "A.Pass.Test"):
            cn, data = tls_exchange(port, sni)
            assert cn == "pass.test" and b"X-Backend: pass" in data
        # One label only (Ingress wildcards): a.b.pass.test is terminated here (fallback certificate).
        assert tls_exchange(port, "a.b.pass.test")[0] == "netplane-gateway-fallback"
        # Other names terminate at the engine and are routed, with the client's address kept.
        cn, data = tls_exchange(port, "terminated.test")
        assert cn == "terminated.test" and data.startswith(b"HTTP/1.1 200")
        seen = json.loads(data.split(b"\r\n\r\n", 1)[1])
        assert seen["headers"]["x-forwarded-for"] == ADDR and seen["headers"]["x-forwarded-proto"] == "https"

        with socket.create_connection((ADDR, l4_port), timeout=10) as s:
            s.sendall(b"hello\n")
            assert s.makefile("rb").readline() == b"tcp:hello\n"
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.settimeout(10)
            s.sendto(b"ping", (ADDR, l4_port))
            assert s.recvfrom(1024)[0] == b"udp:ping"

        # An endpoint change is a new nginx.conf (stream upstreams are static): reload, then the new peer.
        tcp2 = serve(_TCPEcho())
        assert gw.set_listeners(gw.listeners, Upstreams(passthrough=upstreams.passthrough,
                                                        l4=(L4Listener(l4_port, False, LOOPBACK, (_peer(tcp2),)),)))
        with socket.create_connection((ADDR, l4_port), timeout=10) as s:
            s.sendall(b"again\n")
            assert s.makefile("rb").readline() == b"tcp:again\n"
        tcp2.shutdown()
        tcp2.server_close()
    finally:
        gw.set_listeners(gw.listeners, Upstreams())
        for server in (tcp, udp):
            server.shutdown()
            server.server_close()
    # Without passthrough the TLS listener holds its port again.
    assert tls_exchange(port, "terminated.test")[0] == "terminated.test"


def test_bad_upstream_configuration_is_refused_and_the_old_one_serves(gw: Engine, backends: dict[str, EchoServer],
                                                                       tls_world: TLSWorld) -> None:
    good = (gw.prefix / "conf" / "nginx.conf").read_text()
    with pytest.raises(ConfigError, match="TLS passthrough on a listener without TLS"):
        gw.set_listeners(gw.listeners, Upstreams(passthrough=(Passthrough(plain_port(gw), ("x.test",)),)))
    assert (gw.prefix / "conf" / "nginx.conf").read_text() == good
    gw.put_backend("still", [{"address": ADDR, "port": backends["b"].port}])
    gw.put_vhost("still", {"ports": [plain_port(gw)], "hostnames": ["still.test"],
                           "routes": [{"id": "s", "backend": to("still")}]})
    assert call(gw, "still.test", port=plain_port(gw)).name == "b"
