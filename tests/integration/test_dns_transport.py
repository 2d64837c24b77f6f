"""The DNS I/O side on real loopback sockets: the UDP/TCP transport (pipelining, garbage, floods,
idle connections), the forwarder against a small dnslib upstream, the node-local cache (hits and
misses in its metrics, SERVFAIL in bounded time when the upstream is dead), the serve handler's
upstream path, and both commands as processes. Only 127.0.0.0/8 addresses are used."""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import shutil
import signal
import socket
import struct
import subprocess
import sys
import textwrap
import time
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any, cast

import aiohttp
import pytest
from dnslib import EDNS0, QTYPE, RCODE, RR, SOA, A, DNSRecord

from netplane.dataplane.dns import wire as packet
from netplane.dataplane.dns.forward import Forwarder
from netplane.dataplane.dns.metrics import Metrics, QueryStats, metrics_route, serve_http
from netplane.dataplane.dns.nodecache import CachingForwarder, build_routes
from netplane.dataplane.dns.serve import ZoneHandler
from netplane.dataplane.dns.transport import DnsServer, Kind, Limits
from netplane.dataplane.dns.zone import Upstream
from tests.conftest import Netplane

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parent.parent.parent
SERVER = "127.0.0.61"
STUB = "127.0.0.62"
CLIENT_A = "127.0.0.63"
CLIENT_B = "127.0.0.64"
DEAD = "127.0.0.65"


def run(scenario: Callable[[], Awaitable[None]], timeout: float = 60) -> None:
    asyncio.run(asyncio.wait_for(scenario(), timeout))


def ask(name: str, qtype: str = "A", qid: int | None = None, edns: bool = False) -> bytes:
    q = DNSRecord.question(name, qtype)
    q.header.id = random.randrange(1 << 16) if qid is None else qid
    if edns:
        q.add_ar(EDNS0(udp_len=1232))
    return bytes(q.pack())


def answer_a(query: bytes, ip: str = "192.0.2.1", ttl: int = 60) -> bytes:
    r = DNSRecord.parse(query).reply()
    r.add_answer(RR(r.q.qname, QTYPE.A, rdata=A(ip), ttl=ttl))
    return bytes(r.pack())


# ---------------------------------------------------------------------- clients


class UdpClient(asyncio.DatagramProtocol):
    """Queries from one source address; replies matched by ID."""

    def __init__(self) -> None:
        self.waiting: dict[int, asyncio.Future[bytes]] = {}
        self.transport: asyncio.DatagramTransport | None = None

    @classmethod
    async def open(cls, source: str) -> UdpClient:
        _, client = await asyncio.get_running_loop().create_datagram_endpoint(cls, local_addr=(source, 0))
        return client

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: Any) -> None:
        future = self.waiting.pop(struct.unpack_from(">H", data)[0], None) if len(data) >= 2 else None
        if future is not None and not future.done():
            future.set_result(data)

    def send(self, wire: bytes, to: tuple[str, int]) -> None:
        assert self.transport is not None
        self.transport.sendto(wire, to)

    async def ask(self, wire: bytes, to: tuple[str, int], timeout: float = 3.0) -> bytes | None:
        future = asyncio.get_running_loop().create_future()
        self.waiting[struct.unpack_from(">H", wire)[0]] = future
        self.send(wire, to)
        try:
            return await asyncio.wait_for(future, timeout)
        except TimeoutError:
            return None

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()


async def tcp_exchange(to: tuple[str, int], queries: list[bytes], source: str = CLIENT_A) -> list[bytes]:
    """Every query written at once (pipelined); the replies, in the order they came."""
    reader, writer = await asyncio.open_connection(*to, local_addr=(source, 0))
    try:
        writer.write(b"".join(struct.pack(">H", len(q)) + q for q in queries))
        await writer.drain()
        replies = []
        for _ in queries:
            size = struct.unpack(">H", await reader.readexactly(2))[0]
            replies.append(await reader.readexactly(size))
        return replies
    finally:
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()


# ---------------------------------------------------------------------- a small upstream


class Stub:
    """An upstream resolver made with dnslib: A records for `records`, NXDOMAIN with an SOA for the
    rest; big.example. is truncated over UDP; silent.example. is never answered; liar.example. gets
    a reply for another question."""

    def __init__(self, records: dict[str, str] | None = None):
        self.records = {k.lower().rstrip(".") + ".": v for k, v in (records or {}).items()}
        self.seen: list[tuple[str, str, str]] = []  # (qname as asked, qtype, proto)
        self.udp: asyncio.DatagramTransport | None = None
        self.tcp: asyncio.Server | None = None
        self.address = (STUB, 0)

    async def start(self, host: str = STUB) -> tuple[str, int]:
        loop = asyncio.get_running_loop()
        stub = self

        class Udp(asyncio.DatagramProtocol):
            def connection_made(self, transport: asyncio.BaseTransport) -> None:
                stub.udp = cast(asyncio.DatagramTransport, transport)

            def datagram_received(self, data: bytes, addr: Any) -> None:
                out = stub.answer(data, "udp")
                if out is not None and stub.udp is not None:
                    stub.udp.sendto(out, addr)

        await loop.create_datagram_endpoint(Udp, local_addr=(host, 0))
        assert self.udp is not None
        self.udp.get_extra_info("socket").setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
        port = self.udp.get_extra_info("sockname")[1]
        self.tcp = await asyncio.start_server(self._tcp, host, port)
        self.address = (host, port)
        return self.address

    async def _tcp(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(asyncio.IncompleteReadError, ConnectionError):
            while True:
                size = struct.unpack(">H", await reader.readexactly(2))[0]
                out = self.answer(await reader.readexactly(size), "tcp")
                if out is not None:
                    writer.write(struct.pack(">H", len(out)) + out)
        writer.close()

    def answer(self, data: bytes, proto: str) -> bytes | None:
        request = DNSRecord.parse(data)
        name = str(request.q.qname)
        self.seen.append((name, QTYPE[request.q.qtype], proto))
        key = name.lower()
        if key == "silent.example.":
            return None
        reply = request.reply()
        if key == "big.example.":
            if proto == "udp":
                reply.header.tc = 1
            else:
                for i in range(60):
                    reply.add_answer(RR(request.q.qname, QTYPE.A, rdata=A(f"192.0.2.{i}"), ttl=60))
        elif key == "liar.example.":
            other = DNSRecord.question("other.example")
            other.header.id = request.header.id
            return bytes(other.reply().pack())
        elif key in self.records and request.q.qtype == QTYPE.A:
            reply.add_answer(RR(request.q.qname, QTYPE.A, rdata=A(self.records[key]), ttl=60))
        elif key not in self.records:
            reply.header.rcode = RCODE.NXDOMAIN
            reply.add_auth(RR("example.", QTYPE.SOA, ttl=60, rdata=SOA(
                "ns.example.", "hostmaster.example.", (1, 7200, 1800, 86400, 60))))
        return bytes(reply.pack())

    def close(self) -> None:
        if self.udp is not None:
            self.udp.close()
        if self.tcp is not None:
            self.tcp.close()


@contextlib.contextmanager
def black_hole(host: str = DEAD) -> Iterator[tuple[str, int]]:
    """A UDP port that takes queries and never answers (a hung resolver, not a refused port)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind((host, 0))
    try:
        yield host, sock.getsockname()[1]
    finally:
        sock.close()


def free_port(host: str) -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


# ---------------------------------------------------------------------- transport


def echo_handler(delay: float = 0.05) -> Callable[[bytes, Kind], bytes | Awaitable[bytes | None] | None]:
    """Answers A 192.0.2.1; names starting with "slow" after `delay` (the awaited path)."""
    async def later(query: bytes) -> bytes:
        await asyncio.sleep(delay)
        return answer_a(query, "192.0.2.2")

    def handle(query: bytes, kind: Kind) -> bytes | Awaitable[bytes | None] | None:
        q = packet.parse_query(query)
        if q is None:
            return None
        if q.lname[1:5] == b"slow":
            return later(query)
        return answer_a(query)

    return handle


def test_udp_and_pipelined_tcp() -> None:
    async def scenario() -> None:
        server = DnsServer()
        try:
            addr = await server.listen(SERVER, 0, echo_handler())
            client = await UdpClient.open(CLIENT_A)
            fast, slow = await asyncio.gather(client.ask(ask("fast.example", qid=1), addr),
                                              client.ask(ask("slow.example", qid=2), addr))
            client.close()
            assert fast is not None and DNSRecord.parse(fast).rr[0].rdata == A("192.0.2.1")
            assert slow is not None and DNSRecord.parse(slow).rr[0].rdata == A("192.0.2.2")

            queries = [ask(("slow" if i % 3 == 0 else "fast") + f"{i}.example", qid=i) for i in range(60)]
            replies = await tcp_exchange(addr, queries)
            assert sorted(DNSRecord.parse(r).header.id for r in replies) == list(range(60))
            order = [DNSRecord.parse(r).header.id for r in replies]
            assert order != list(range(60))  # slow ones came after the fast ones behind them
            for r in replies:
                parsed = DNSRecord.parse(r)
                assert str(parsed.q.qname).startswith("slow" if parsed.header.id % 3 == 0 else "fast")
        finally:
            await server.close()

    run(scenario)


def test_tcp_pipeline_cap_holds_back_but_answers_everything() -> None:
    async def scenario() -> None:
        server = DnsServer(Limits(tcp_pipeline=4))
        try:
            addr = await server.listen(SERVER, 0, echo_handler(0.01))
            queries = [ask(f"slow{i}.example", qid=i) for i in range(50)]
            replies = await tcp_exchange(addr, queries)
            assert sorted(DNSRecord.parse(r).header.id for r in replies) == list(range(50))
        finally:
            await server.close()

    run(scenario)


def test_garbage_and_failing_handlers_do_not_stop_the_server() -> None:
    async def scenario() -> None:
        stub = Stub({"ok.example": "192.0.2.7"})
        metrics = Metrics()
        stats = QueryStats("dns://test", "1")
        cache = CachingForwarder(build_routes(await stub.start(), "cluster.local", [stub.address], metrics, "t"),
                                 stats)

        def handler(query: bytes, kind: Kind) -> bytes | Awaitable[bytes | None] | None:
            if b"boom" in query:
                raise RuntimeError("a handler bug")
            return cache(query, kind)

        server = DnsServer()
        good = await UdpClient.open(CLIENT_B)
        bad = await UdpClient.open(CLIENT_A)
        try:
            addr = await server.listen(SERVER, 0, handler)
            rnd = random.Random(7)
            header = ask("x.example")[:12]
            for i in range(600):
                kind = i % 4
                if kind == 0:
                    junk = rnd.randbytes(rnd.randrange(0, 600))
                elif kind == 1:  # a plausible header followed by noise
                    junk = header + rnd.randbytes(rnd.randrange(0, 40))
                elif kind == 2:  # a real query with bytes flipped
                    real = bytearray(ask("ok.example", edns=True))
                    for _ in range(3):
                        real[rnd.randrange(len(real))] = rnd.randrange(256)
                    junk = bytes(real)
                else:
                    junk = ask("boom.example")
                bad.send(junk, addr)
                if i % 100 == 0:
                    reply = await good.ask(ask("ok.example"), addr)
                    assert reply is not None and DNSRecord.parse(reply).rr[0].rdata == A("192.0.2.7")

            # TCP garbage: a huge length with few bytes, zero-length frames, noise, a failing query.
            for junk in (b"\xff\xff" + b"x" * 10, b"\x00\x00" * 50, rnd.randbytes(3000),
                         struct.pack(">H", 17) + ask("boom.example")[:17]):
                _, writer = await asyncio.open_connection(*addr, local_addr=(CLIENT_A, 0))
                writer.write(junk)
                await writer.drain()
                writer.close()
            replies = await tcp_exchange(addr, [ask("ok.example", qid=5)], CLIENT_B)
            assert DNSRecord.parse(replies[0]).rr[0].rdata == A("192.0.2.7")
            reply = await good.ask(ask("OK.example", qid=6), addr)
            assert reply is not None and DNSRecord.parse(reply).header.id == 6
            assert server.stats.handler_errors >= 150
            assert sum(n for (_, rcode), n in stats.responses().items() if rcode == packet.FORMERR) > 0
        finally:
            good.close()
            bad.close()
            await server.close()
            stub.close()
            for forwarder in {id(r.forwarder): r.forwarder for r in cache.routes}.values():
                await forwarder.close()

    run(scenario)


def test_a_flooding_client_does_not_stall_others() -> None:
    async def scenario() -> None:
        limits = Limits(max_inflight=200, max_inflight_per_client=20, max_tcp_per_client=3)
        server = DnsServer(limits)
        flood = await UdpClient.open(CLIENT_A)
        other = await UdpClient.open(CLIENT_B)
        writers = []
        try:
            addr = await server.listen(SERVER, 0, echo_handler(0.3))
            for i in range(1000):
                flood.send(ask(f"slow{i}.example"), addr)
                if i % 100 == 0:
                    await asyncio.sleep(0)
            started = time.monotonic()
            fast, slow = await asyncio.gather(other.ask(ask("fast.example"), addr),
                                              other.ask(ask("slow-other.example"), addr))
            assert fast is not None and slow is not None
            assert time.monotonic() - started < 2.0
            assert server.stats.dropped >= 900  # the flood beyond its 20 slots

            for _ in range(6):
                _, writer = await asyncio.open_connection(*addr, local_addr=(CLIENT_A, 0))
                writers.append(writer)
            await asyncio.sleep(0.1)
            assert server.stats.tcp_refused >= 3
            replies = await tcp_exchange(addr, [ask("fast.example", qid=77)], CLIENT_B)
            assert DNSRecord.parse(replies[0]).header.id == 77
        finally:
            for writer in writers:
                writer.close()
            flood.close()
            other.close()
            await server.close()

    run(scenario)


def test_idle_tcp_connections_are_closed() -> None:
    async def scenario() -> None:
        server = DnsServer(Limits(tcp_idle=0.2))
        try:
            addr = await server.listen(SERVER, 0, echo_handler())
            reader, writer = await asyncio.open_connection(*addr)
            started = time.monotonic()
            assert await asyncio.wait_for(reader.read(), 5) == b""
            assert 0.15 < time.monotonic() - started < 2
            writer.close()
        finally:
            await server.close()

    run(scenario)


# ---------------------------------------------------------------------- forwarder


def test_forwarder_udp_tcp_fallback_and_force_tcp() -> None:
    async def scenario() -> None:
        stub = Stub({"www.example": "192.0.2.9"})
        upstream = await stub.start()
        udp = Forwarder([upstream], timeout=1.0)
        tcp = Forwarder([upstream], force_tcp=True, timeout=1.0)
        try:
            reply = await udp.exchange(ask("WwW.example", qid=0xABCD))
            assert reply is not None and reply[:2] == b"\xab\xcd"
            parsed = DNSRecord.parse(reply)
            assert parsed.rr[0].rdata == A("192.0.2.9") and str(parsed.q.qname) == "WwW.example."
            assert stub.seen[-1] == ("WwW.example.", "A", "udp")

            big = await udp.exchange(ask("big.example", qid=3))
            assert big is not None and len(DNSRecord.parse(big).rr) == 60 and big[:2] == b"\x00\x03"
            assert [p for n, _, p in stub.seen if n == "big.example."] == ["udp", "tcp"]

            stub.seen.clear()
            replies = await asyncio.gather(*(tcp.exchange(ask(f"n{i}.example", qid=i)) for i in range(200)))
            assert all(r is not None and DNSRecord.parse(r).header.id == i for i, r in enumerate(replies))
            assert {p for _, _, p in stub.seen} == {"tcp"}
            assert tcp.stats.requests == {f"{STUB}:{upstream[1]}": 200}

            many = await asyncio.gather(*(udp.exchange(ask("www.example", qid=i)) for i in range(300)))
            assert all(r is not None and r[:2] == struct.pack(">H", i) for i, r in enumerate(many))

            started = time.monotonic()
            assert await Forwarder([upstream], timeout=0.3).exchange(ask("liar.example")) is None
            assert time.monotonic() - started < 1.0
        finally:
            await udp.close()
            await tcp.close()
            stub.close()

    run(scenario)


def test_forwarder_moves_past_a_dead_upstream_and_probes_it() -> None:
    async def scenario() -> None:
        stub = Stub({"www.example": "192.0.2.9"})
        upstream = await stub.start()
        with black_hole() as dead:
            forwarder = Forwarder([dead, upstream], timeout=0.3, probe_interval=0.05)
            try:
                started = time.monotonic()
                for i in range(10):
                    assert await forwarder.exchange(ask("www.example", qid=i)) is not None
                # At most max_fails timeouts before the dead one goes to the back of the line.
                assert time.monotonic() - started < 0.3 * 2 + 0.5
                assert forwarder.is_down(dead) and not forwarder.is_down(upstream)
            finally:
                await forwarder.close()
        stub.close()

    run(scenario)


def test_the_first_upstream_is_tried_before_the_next_one_answers() -> None:
    async def scenario() -> None:
        with black_hole() as dead:
            forwarder = Forwarder([dead], timeout=0.2)
            started = time.monotonic()
            assert await forwarder.exchange(ask("www.example")) is None
            assert 0.15 < time.monotonic() - started < 0.6
            await forwarder.close()

    run(scenario)


# ---------------------------------------------------------------------- the cache, in process


def metric(text: str, name: str, **labels: str) -> float:
    for line in text.splitlines():
        if not line.startswith(name + "{") and line.split(" ")[0] != name:
            continue
        if all(f'{k}="{v}"' in line for k, v in labels.items()):
            return float(line.rsplit(" ", 1)[1])
    raise AssertionError(f"no {name} {labels} in the metrics")


def test_cache_hits_and_misses_show_in_metrics() -> None:
    async def scenario() -> None:
        stub = Stub({"web.default.svc.cluster.local": "10.96.0.20", "www.example": "192.0.2.9"})
        upstream = await stub.start()
        metrics = Metrics()
        stats = QueryStats(f"dns://{SERVER}:53", "1")
        metrics.dns.queries.append(stats)
        routes = build_routes(upstream, "cluster.local", [upstream], metrics, f"dns://{SERVER}:53")
        server = DnsServer()
        metrics.dns.transports.append(server.stats)
        client = await UdpClient.open(CLIENT_A)
        metrics_port = free_port(SERVER)
        runner = await serve_http(SERVER, metrics_port, {"/metrics": metrics_route(metrics)})
        try:
            addr = await server.listen(SERVER, 0, CachingForwarder(routes, stats))
            first = await client.ask(ask("web.default.svc.cluster.local", qid=1), addr)
            second = await client.ask(ask("WEB.default.svc.CLUSTER.local", qid=2), addr)
            missing = [await client.ask(ask("gone.example", qid=10 + i), addr) for i in range(3)]
            outside = await client.ask(ask("www.example", qid=20, edns=True), addr)
            assert first is not None and second is not None and outside is not None
            assert second[:2] == b"\x00\x02"
            assert str(DNSRecord.parse(second).q.qname) == "WEB.default.svc.CLUSTER.local."
            assert all(m is not None and DNSRecord.parse(m).header.rcode == RCODE.NXDOMAIN for m in missing)
            assert [(n, p) for n, _, p in stub.seen] == [
                ("web.default.svc.cluster.local.", "tcp"), ("gone.example.", "udp"), ("www.example.", "udp")]
            async with aiohttp.ClientSession() as http, \
                    http.get(f"http://{SERVER}:{metrics_port}/metrics") as resp:
                text = await resp.text()
            server_label = f"dns://{SERVER}:53"
            assert metric(text, "coredns_cache_misses_total", server=server_label, zones="cluster.local.") == 1
            assert metric(text, "coredns_cache_hits_total", type="success", zones="cluster.local.") == 1
            assert metric(text, "coredns_cache_hits_total", type="denial", zones=".") == 2
            assert metric(text, "coredns_cache_entries", type="denial", zones=".") == 1
            assert metric(text, "coredns_cache_entries", type="success", zones=".") == 1
            assert metric(text, "coredns_dns_requests_total", zone="cluster.local.", proto="udp", family="1",
                          type="A") == 2
            assert metric(text, "coredns_dns_responses_total", zone=".", rcode="NXDOMAIN") == 3
            assert metric(text, "coredns_dns_request_duration_seconds_count", zone=".", type="A") == 4
            assert metric(text, "coredns_forward_requests_total", to=f"{STUB}:{upstream[1]}") == 3
            assert metric(text, "coredns_forward_responses_total", rcode="NXDOMAIN") == 1
            assert "process_cpu_seconds_total" in text
            assert metric(text, "coredns_panics_total") == 0
            assert metric(text, "coredns_forward_max_concurrent_rejects_total") == 0
        finally:
            client.close()
            await server.close()
            await runner.cleanup()
            stub.close()
            for forwarder in {id(r.forwarder): r.forwarder for r in routes}.values():
                await forwarder.close()

    run(scenario)


def test_cache_truncates_for_udp_clients_and_serves_tcp_from_the_cache() -> None:
    async def scenario() -> None:
        stub = Stub()
        upstream = await stub.start()
        metrics = Metrics()
        stats = QueryStats("dns://t", "1")
        routes = build_routes(upstream, "cluster.local", [upstream], metrics, "t")
        server = DnsServer()
        client = await UdpClient.open(CLIENT_A)
        try:
            addr = await server.listen(SERVER, 0, CachingForwarder(routes, stats))
            cut = await client.ask(ask("big.example", qid=1), addr)
            assert cut is not None and DNSRecord.parse(cut).header.tc == 1
            full = (await tcp_exchange(addr, [ask("big.example", qid=2)]))[0]
            assert len(DNSRecord.parse(full).rr) == 60
            assert [p for n, _, p in stub.seen] == ["udp", "tcp"]  # the TCP retry was a cache hit
        finally:
            client.close()
            await server.close()
            stub.close()
            for forwarder in {id(r.forwarder): r.forwarder for r in routes}.values():
                await forwarder.close()

    run(scenario)


# ---------------------------------------------------------------------- the serve handler


class StandInZone:
    """The zone's contract, minimally: cluster.local names answered, others handed upstream."""

    def __init__(self) -> None:
        self.sizes: list[int] = []
        self.finished: list[bytes | None] = []

    def respond(self, query: bytes, *, max_size: int = 512) -> bytes | Upstream | None:
        self.sizes.append(max_size)
        parsed = DNSRecord.parse(query)
        if str(parsed.q.qname).lower().endswith("cluster.local."):
            return answer_a(query, "10.96.0.1")

        def finish(reply: bytes | None) -> bytes:
            self.finished.append(reply)
            if reply is not None:
                return reply
            failed = parsed.reply()
            failed.header.rcode = RCODE.SERVFAIL
            return bytes(failed.pack())

        return Upstream(query, finish)


def test_serve_handler_answers_and_chases_upstream() -> None:
    async def scenario() -> None:
        stub = Stub({"www.example": "192.0.2.9"})
        upstream = await stub.start()
        zone = StandInZone()
        forwarder = Forwarder([upstream], timeout=0.5)
        stats = QueryStats("dns://t", "1")
        server = DnsServer()
        client = await UdpClient.open(CLIENT_A)
        try:
            addr = await server.listen(SERVER, 0, ZoneHandler(zone, forwarder, stats))  # type: ignore[arg-type]
            local = await client.ask(ask("kubernetes.default.svc.cluster.local", edns=True), addr)
            assert local is not None and DNSRecord.parse(local).rr[0].rdata == A("10.96.0.1")
            outside = await client.ask(ask("www.example", qid=3), addr)
            assert outside is not None and outside[:2] == b"\x00\x03"
            assert DNSRecord.parse(outside).rr[0].rdata == A("192.0.2.9") and zone.finished[-1] is not None
            await tcp_exchange(addr, [ask("x.cluster.local")])
            assert zone.sizes == [1232, 1232, 65535]

            no_upstream = await server.listen(CLIENT_B, 0, ZoneHandler(zone, None, stats))  # type: ignore[arg-type]
            failed = await client.ask(ask("www.example", qid=4), no_upstream)
            assert failed is not None and DNSRecord.parse(failed).header.rcode == RCODE.SERVFAIL
            assert zone.finished[-1] is None
            assert stats.responses() == {(".", packet.SERVFAIL): 1, (".", packet.NOERROR): 3}
            assert stats.requests() == {("udp", ".", 1): 3, ("tcp", ".", 1): 1}
        finally:
            client.close()
            await server.close()
            await forwarder.close()
            stub.close()

    run(scenario)


# ---------------------------------------------------------------------- the cache command


async def wait_http(url: str, timeout: float = 15) -> int:
    deadline = time.monotonic() + timeout
    async with aiohttp.ClientSession() as http:
        while True:
            try:
                async with http.get(url) as resp:
                    return resp.status
            except aiohttp.ClientError:
                if time.monotonic() > deadline:
                    raise
                await asyncio.sleep(0.1)


def test_cache_command_serves_and_exits_cleanly_on_sigterm() -> None:
    async def scenario() -> None:
        stub = Stub({"web.default.svc.cluster.local": "10.96.0.20"})
        cluster_dns = await stub.start()
        listen = "127.0.0.66"
        port, metrics_port, health_port = free_port(listen), free_port(listen), free_port(listen)
        with black_hole() as dead:
            proc = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "netplane.dataplane.dns", "cache", "--listen", listen, "--port", str(port),
                "--cluster-dns", f"{cluster_dns[0]}:{cluster_dns[1]}", "--upstream", f"{dead[0]}:{dead[1]}",
                "--metrics", f"{listen}:{metrics_port}", "--health", f"{listen}:{health_port}", cwd=ROOT,
                stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
            client = await UdpClient.open(CLIENT_A)
            try:
                assert await wait_http(f"http://{listen}:{health_port}/health") == 200
                reply = await client.ask(ask("web.default.svc.cluster.local", qid=1), (listen, port))
                assert reply is not None and DNSRecord.parse(reply).rr[0].rdata == A("10.96.0.20")
                assert stub.seen == [("web.default.svc.cluster.local.", "A", "tcp")]
                over_tcp = await tcp_exchange((listen, port), [ask("web.default.svc.cluster.local", qid=7)])
                assert DNSRecord.parse(over_tcp[0]).rr[0].rdata == A("10.96.0.20") and len(stub.seen) == 1
                started = time.monotonic()
                failed = await client.ask(ask("www.example", qid=2), (listen, port), timeout=5)
                assert failed is not None and DNSRecord.parse(failed).header.rcode == RCODE.SERVFAIL
                assert time.monotonic() - started < 3.0  # one 2 s try
                async with aiohttp.ClientSession() as http, \
                        http.get(f"http://{listen}:{metrics_port}/metrics") as resp:
                    text = await resp.text()
                assert metric(text, "coredns_dns_responses_total", rcode="SERVFAIL", zone=".") == 1
                proc.send_signal(signal.SIGTERM)
                assert await asyncio.wait_for(proc.wait(), 10) == 0
            finally:
                client.close()
                if proc.returncode is None:
                    proc.kill()
                    await proc.wait()
                stub.close()

    run(scenario)


ADD_ADDRESS_SCRIPT = textwrap.dedent("""
    import signal, subprocess, sys, time, urllib.request
    subprocess.run(["ip", "link", "set", "lo", "up"], check=True)
    proc = subprocess.Popen([sys.executable, "-m", "netplane.dataplane.dns", "cache", "--listen", "127.0.0.53",
                             "--cluster-dns", "127.0.0.1:1", "--add-address"])
    try:
        for _ in range(150):
            try:
                urllib.request.urlopen("http://127.0.0.53:8080/health", timeout=1).read()
                break
            except OSError:
                time.sleep(0.1)
        shown = subprocess.run(["ip", "-4", "addr", "show", "dev", "lo"], capture_output=True, text=True).stdout
        print("during:", "127.0.0.53/32 scope global" in shown)
    finally:
        proc.send_signal(signal.SIGTERM)
        print("exit:", proc.wait(10))
    shown = subprocess.run(["ip", "-4", "addr", "show", "dev", "lo"], capture_output=True, text=True).stdout
    print("after:", "127.0.0.53/32" in shown)
""")


@pytest.mark.skipif(os.geteuid() != 0 or shutil.which("unshare") is None, reason="needs root and unshare")
def test_cache_command_adds_its_address_to_lo_and_removes_it(tmp_path: Path) -> None:
    script = tmp_path / "check.py"
    script.write_text(ADD_ADDRESS_SCRIPT)
    # In a network namespace of its own, so the machine's lo is never touched.
    out = subprocess.run(["unshare", "--net", sys.executable, str(script)], cwd=ROOT, capture_output=True,
                         text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.splitlines()[-3:] == ["during: True", "exit: 0", "after: False"], out.stdout + out.stderr


# ---------------------------------------------------------------------- the serve command, against an API server


async def resolve(client: UdpClient, to: tuple[str, int], name: str, qtype: str = "A") -> DNSRecord | None:
    reply = await client.ask(ask(name, qtype), to, timeout=2)
    return None if reply is None else DNSRecord.parse(reply)


async def eventually(check: Callable[[], Awaitable[bool]], timeout: float = 20, what: str = "") -> None:
    deadline = time.monotonic() + timeout
    while not await check():
        if time.monotonic() > deadline:
            raise AssertionError(f"not reached in {timeout}s: {what}")
        await asyncio.sleep(0.1)


def test_serve_command_answers_from_the_api(netplane: Netplane) -> None:
    from netplane.controllers.kube import Client as KubeClient
    from netplane.controllers.kube import load_kubeconfig
    from netplane.controllers.kube.resources import NAMESPACES
    from netplane.dataplane.dns.serve import PLUGINS, SERVICES

    async def scenario() -> None:
        suffix = os.urandom(3).hex()
        namespace, plugin = f"dns-{suffix}", f"dns-test-{suffix}"
        stub = Stub({"www.example": "192.0.2.9"})
        upstream = await stub.start()
        listen = "127.0.0.67"
        port, metrics_port, health_port, ready_port = (free_port(listen) for _ in range(4))
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "netplane.dataplane.dns", "serve", "--kubeconfig", str(netplane.kubeconfig),
            "--listen", f"{listen}:{port}", "--upstream", f"{upstream[0]}:{upstream[1]}", "--plugin", plugin,
            "--nameserver-ip", "10.96.0.10", "--metrics", f"{listen}:{metrics_port}",
            "--health", f"{listen}:{health_port}", "--ready", f"{listen}:{ready_port}", cwd=ROOT,
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        dns = (listen, port)
        client = await UdpClient.open(CLIENT_A)
        api = KubeClient(load_kubeconfig(netplane.kubeconfig))
        try:
            await api.create(NAMESPACES, {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}})
            svc = await api.create(SERVICES, {
                "apiVersion": "v1", "kind": "Service", "metadata": {"name": "web", "namespace": namespace},
                "spec": {"selector": {"app": "web"}, "ports": [{"name": "http", "port": 80}]}})
            cluster_ip = svc["spec"]["clusterIP"]
            assert await wait_http(f"http://{listen}:{health_port}/health") == 200

            async def ready() -> bool:
                return await wait_http(f"http://{listen}:{ready_port}/ready") == 200
            await eventually(ready, what="/ready")

            name = f"web.{namespace}.svc.cluster.local"

            async def resolves() -> bool:
                answer = await resolve(client, dns, name)
                return answer is not None and [str(rr.rdata) for rr in answer.rr] == [cluster_ip]
            await eventually(resolves, what=f"{name} → {cluster_ip}")
            answer = await resolve(client, dns, f"nope.{namespace}.svc.cluster.local")
            assert answer is not None and answer.header.rcode == RCODE.NXDOMAIN
            outside = await resolve(client, dns, "www.example")
            assert outside is not None and str(outside.rr[0].rdata) == "192.0.2.9"

            await api.create(PLUGINS, {"apiVersion": "netplane.io/v1alpha1", "kind": "ClusterPlugin",
                                       "metadata": {"name": plugin}, "spec": {"config": {"hostAliases": [
                                           {"ip": "192.0.2.44", "domains": [f"db-{suffix}.example"]}]}}})

            async def aliased() -> bool:
                answer = await resolve(client, dns, f"db-{suffix}.example")
                return answer is not None and [str(rr.rdata) for rr in answer.rr] == ["192.0.2.44"]
            await eventually(aliased, what="the host alias")

            await api.delete(SERVICES, "web", namespace)

            async def gone() -> bool:
                answer = await resolve(client, dns, name)
                return answer is not None and answer.header.rcode == RCODE.NXDOMAIN
            await eventually(gone, what=f"{name} deleted")

            async with aiohttp.ClientSession() as http, http.get(f"http://{listen}:{metrics_port}/metrics") as resp:
                text = await resp.text()
            assert metric(text, "coredns_dns_responses_total", rcode="NXDOMAIN", zone=".") >= 2
            # www.example., and the alias's name for as long as it was not an alias yet.
            assert metric(text, "coredns_forward_requests_total", to=f"{upstream[0]}:{upstream[1]}") == len(stub.seen)

            proc.send_signal(signal.SIGTERM)
            assert await asyncio.wait_for(proc.wait(), 15) == 0
        finally:
            client.close()
            if proc.returncode is None:
                proc.kill()
                await proc.wait()
            with contextlib.suppress(Exception):
                await api.delete(PLUGINS, plugin)
            with contextlib.suppress(Exception):
                await api.delete(NAMESPACES, namespace)
            await api.close()
            stub.close()

    run(scenario, timeout=120)
