"""Forwarding queries to upstream resolvers, as CoreDNS's `forward` plugin does.

Every query goes out under a fresh random ID (the client's is put back on the reply), over a
small pool of connected UDP sockets per upstream, each bound to its own random source port, so a
spoofed reply must guess both. A reply counts only if its ID and question match what was sent.
A truncated UDP reply is asked again over TCP; with `force_tcp` (NodeLocal's setting towards the
cluster DNS) TCP is used from the start, over one long-lived pipelined connection per upstream.

Each try has `timeout` seconds (UDP and any TCP retry together); then the next upstream is tried.
Upstreams are tried round-robin from a rotating start. One that failed `max_fails` tries in a row
goes to the back of the line and is probed in the background until it answers again, so a dead
upstream does not cost every n-th query a timeout.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import struct
from collections.abc import Coroutine, Sequence
from typing import cast

from netplane.controllers.runtime.tasks import cancel_and_wait
from netplane.dataplane.dns.metrics import ForwardStats
from netplane.dataplane.dns.wire import HEADER_LEN, MAX_MESSAGE, QR, RCODE, TC, question_end

log = logging.getLogger("netplane.dns.forward")

Address = tuple[str, int]

_LEN = struct.Struct(">H")


def parse_address(text: str, default_port: int = 53) -> Address:
    """`IP`, `IP:PORT`, `[IPv6]:PORT` or a bare IPv6 address → (ip, port)."""
    text = text.strip()
    if text.startswith("["):
        host, _, rest = text[1:].partition("]")
        port = rest[1:] if rest.startswith(":") else ""
    elif text.count(":") == 1:
        host, port = text.split(":")
    else:
        host, port = text, ""
    try:
        socket.inet_pton(socket.AF_INET6 if ":" in host else socket.AF_INET, host)
        number = int(port) if port else default_port
    except (OSError, ValueError):
        raise ValueError(f"not an IP address with an optional port: {text!r}") from None
    if not 0 <= number <= 65535:
        raise ValueError(f"port out of range: {text!r}")
    return host, number


def address_text(address: Address) -> str:
    host, port = address
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


class _Pending:
    """Replies awaited on one channel, by the ID they were sent under."""

    def __init__(self) -> None:
        self.waiting: dict[int, tuple[asyncio.Future[bytes | None], bytes]] = {}

    def new_id(self) -> int:
        for _ in range(64):
            qid = int.from_bytes(os.urandom(2), "big")
            if qid not in self.waiting:
                return qid
        raise OverflowError("no free query ID")

    def deliver(self, reply: bytes) -> None:
        if len(reply) < HEADER_LEN or not reply[2] & QR:
            return
        slot = self.waiting.get(reply[0] << 8 | reply[1])
        if slot is None:
            return
        future, question = slot
        end = HEADER_LEN + len(question)
        if reply[HEADER_LEN:end].lower() != question:
            return  # not the answer to what we asked: a late or forged packet
        if not future.done():
            future.set_result(reply)

    def fail_all(self) -> None:
        for future, _ in self.waiting.values():
            if not future.done():
                future.set_result(None)


class _UdpChannel(asyncio.DatagramProtocol):
    def __init__(self) -> None:
        self.pending = _Pending()
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: object) -> None:
        self.pending.deliver(data)

    def error_received(self, exc: Exception) -> None:
        # An ICMP port unreachable: the upstream is not listening. Waiters time out as usual (the
        # error cannot be tied to one query), which is also what the retry order learns from.
        log.debug("udp upstream error: %s", exc)

    def connection_lost(self, exc: Exception | None) -> None:
        self.pending.fail_all()


class _TcpChannel(asyncio.Protocol):
    """One pipelined TCP connection: queries are written as they come, replies matched by ID."""

    def __init__(self, idle: float) -> None:
        self.pending = _Pending()
        self.transport: asyncio.Transport | None = None
        self.buffer = bytearray()
        self.closed = False
        self.answered = 0
        self._idle = idle
        self._last = 0.0
        self._timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)
        loop = asyncio.get_running_loop()
        self._last = loop.time()
        self._timer = loop.call_later(self._idle, self._check_idle)

    def send(self, message: bytes) -> None:
        assert self.transport is not None
        self._last = asyncio.get_running_loop().time()
        self.transport.write(_LEN.pack(len(message)) + message)

    def data_received(self, data: bytes) -> None:
        buf = self.buffer
        buf += data
        while len(buf) >= 2:
            size = buf[0] << 8 | buf[1]
            if len(buf) < size + 2:
                break
            reply = bytes(buf[2:size + 2])
            del buf[:size + 2]
            self.answered += 1
            self.pending.deliver(reply)

    def _check_idle(self) -> None:
        # Closed by us before the server's own idle timeout would close it under a query in flight.
        assert self.transport is not None
        loop = asyncio.get_running_loop()
        due = self._last + self._idle
        if self.pending.waiting or loop.time() < due:
            self._timer = loop.call_later(max(due - loop.time(), 0.1), self._check_idle)
            return
        self.closed = True
        self.transport.close()

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if self._timer is not None:
            self._timer.cancel()
        self.pending.fail_all()


class Forwarder:
    def __init__(self, upstreams: Sequence[Address], *, force_tcp: bool = False, timeout: float = 2.0,
                 udp_sockets: int = 4, tcp_idle: float = 5.0, max_fails: int = 2, probe_interval: float = 0.5,
                 stats: ForwardStats | None = None):
        if not upstreams:
            raise ValueError("a forwarder needs at least one upstream")
        self.upstreams = tuple(upstreams)
        self.force_tcp = force_tcp
        self.timeout = timeout
        self.udp_sockets = udp_sockets
        self.tcp_idle = tcp_idle
        self.max_fails = max_fails
        self.probe_interval = probe_interval
        self.stats = stats if stats is not None else ForwardStats()
        self._names = {u: address_text(u) for u in self.upstreams}
        self._fails = dict.fromkeys(self.upstreams, 0)
        self._next = 0
        self._udp: dict[Address, list[_UdpChannel]] = {}
        self._udp_turn = 0
        self._tcp: dict[Address, _TcpChannel] = {}
        self._opening: dict[tuple[str, Address], asyncio.Future[None]] = {}
        self._probes: dict[Address, asyncio.Task[None]] = {}

    async def close(self) -> None:
        await cancel_and_wait(self._probes.values())
        for opening in self._opening.values():
            opening.cancel()
        for channels in self._udp.values():
            for udp in channels:
                if udp.transport is not None:
                    udp.transport.close()
        for tcp in self._tcp.values():
            if tcp.transport is not None:
                tcp.transport.close()
        self._udp.clear()
        self._tcp.clear()
        self._opening.clear()
        await asyncio.sleep(0)  # let the transports' connection_lost run

    def is_down(self, upstream: Address) -> bool:
        return self._fails[upstream] >= self.max_fails

    def order(self) -> list[Address]:
        """This query's upstream order: rotating, the ones that stopped answering last."""
        n = len(self.upstreams)
        start = self._next
        self._next = (start + 1) % n
        return sorted((self.upstreams[(start + i) % n] for i in range(n)), key=self.is_down)

    async def exchange(self, query: bytes) -> bytes | None:
        """The reply to `query` (its ID restored) from the first upstream that answers; None if none did."""
        end = question_end(query)
        if end < 0 or len(query) > MAX_MESSAGE:
            return None
        question = query[HEADER_LEN:end].lower()
        for upstream in self.order():
            name = self._names[upstream]
            self.stats.sent(name)
            reply = await self._try(upstream, query, question)
            if reply is None:
                self._failed(upstream)
                continue
            self._fails[upstream] = 0
            self.stats.answered(name, reply[3] & RCODE)
            return query[:2] + reply[2:]
        return None

    def _failed(self, upstream: Address) -> None:
        self._fails[upstream] += 1
        if self.is_down(upstream) and upstream not in self._probes:
            self._probes[upstream] = asyncio.get_running_loop().create_task(
                self._probe(upstream), name=f"probe {self._names[upstream]}")

    async def _probe(self, upstream: Address) -> None:
        """Ask a down upstream for the root's NS until it answers anything, as CoreDNS's health check does."""
        probe = b"\x00\x00\x00\x00\x00\x01\x00\x00\x00\x00\x00\x00\x00\x00\x02\x00\x01"
        try:
            while self.is_down(upstream):
                await asyncio.sleep(self.probe_interval)
                if await self._try(upstream, probe, probe[HEADER_LEN:]) is not None:
                    self._fails[upstream] = 0
        finally:
            self._probes.pop(upstream, None)

    async def _try(self, upstream: Address, query: bytes, question: bytes) -> bytes | None:
        try:
            async with asyncio.timeout(self.timeout):
                if not self.force_tcp:
                    reply = await self._ask(await self._udp_channel(upstream), query, question)
                    if reply is None or not reply[2] & TC:
                        return reply
                return await self._ask_tcp(upstream, query, question)
        except TimeoutError:
            return None
        except (OSError, OverflowError) as e:  # unreachable, refused; or every query ID in use
            log.debug("upstream %s: %s", self._names[upstream], e)
            return None

    async def _ask_tcp(self, upstream: Address, query: bytes, question: bytes) -> bytes | None:
        channel = await self._tcp_channel(upstream)
        reused = channel.answered > 0
        reply = await self._ask(channel, query, question)
        if reply is None and reused and channel.closed:
            # A kept connection the server closed just as we wrote: once more, on a fresh one.
            reply = await self._ask(await self._tcp_channel(upstream), query, question)
        return reply

    async def _ask(self, channel: _UdpChannel | _TcpChannel, query: bytes, question: bytes) -> bytes | None:
        pending = channel.pending
        qid = pending.new_id()
        future: asyncio.Future[bytes | None] = asyncio.get_running_loop().create_future()
        pending.waiting[qid] = (future, question)
        try:
            message = _LEN.pack(qid) + query[2:]
            if isinstance(channel, _TcpChannel):
                channel.send(message)
            else:
                assert channel.transport is not None
                channel.transport.sendto(message)
            return await future
        finally:
            pending.waiting.pop(qid, None)

    async def _udp_channel(self, upstream: Address) -> _UdpChannel:
        channels = self._udp.get(upstream)
        if channels is None:
            await self._once(("udp", upstream), self._open_udp(upstream))
            channels = self._udp[upstream]
        self._udp_turn = (self._udp_turn + 1) % len(channels)
        return channels[self._udp_turn]

    async def _open_udp(self, upstream: Address) -> None:
        loop = asyncio.get_running_loop()
        channels = []
        try:
            for _ in range(self.udp_sockets):
                # Connected: the kernel drops datagrams from any other address, and each socket
                # gets its own random ephemeral port.
                transport, channel = await loop.create_datagram_endpoint(_UdpChannel, remote_addr=upstream)
                channels.append(channel)
                with contextlib.suppress(OSError):
                    # A burst of replies queues in the kernel rather than being dropped.
                    transport.get_extra_info("socket").setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
        except BaseException:
            for channel in channels:
                if channel.transport is not None:
                    channel.transport.close()
            raise
        self._udp[upstream] = channels

    async def _tcp_channel(self, upstream: Address) -> _TcpChannel:
        channel = self._tcp.get(upstream)
        if channel is None or channel.closed:
            await self._once(("tcp", upstream), self._open_tcp(upstream))
            channel = self._tcp[upstream]
        return channel

    async def _open_tcp(self, upstream: Address) -> None:
        loop = asyncio.get_running_loop()
        transport, channel = await loop.create_connection(lambda: _TcpChannel(self.tcp_idle), *upstream)
        with contextlib.suppress(OSError):
            sock = transport.get_extra_info("socket")
            if sock is not None:
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._tcp[upstream] = channel

    async def _once(self, what: tuple[str, Address], opening: Coroutine[object, object, None]) -> None:
        """Run `opening` unless the same socket is already being opened; either way wait for it.
        Concurrent queries share one attempt, and a waiter giving up does not abort it for the rest."""
        future = self._opening.get(what)
        if future is None:
            task = asyncio.ensure_future(opening)
            self._opening[what] = task
            task.add_done_callback(lambda f: self._opened(what, f))
            future = task
        else:
            opening.close()
        await asyncio.shield(future)

    def _opened(self, what: tuple[str, Address], future: asyncio.Future[None]) -> None:
        self._opening.pop(what, None)
        if not future.cancelled():
            future.exception()  # retrieved here, as every waiter may have timed out already
