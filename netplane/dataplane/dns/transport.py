"""DNS over UDP and TCP on asyncio (uvloop when run as a server): bytes in, a handler, bytes out.

A handler is called as `handler(query, "udp" | "tcp")` for every message and returns one of:

- `bytes`: the reply, sent at once. This is the fast path: no task, no future, no copy;
- `None`: nothing is sent (garbage, or a reply the handler chose to drop);
- an awaitable of `bytes | None`: the reply is not ready (an upstream must be asked). Only then is
  a task created; it sends the reply when it comes.

Robustness, as a server facing every pod of a cluster needs it:

- a handler that raises loses that one message (logged at most every few seconds);
- slow replies are capped in flight in total and per client address, so one client flooding
  names that must be forwarded cannot take every slot; over the cap its queries are dropped (and
  the client retries), while cached and authoritative answers keep flowing;
- UDP sockets get a large receive buffer, so bursts queue in the kernel instead of being dropped;
- TCP (RFC 7766): 2-byte length prefix, pipelined queries answered as each is ready (so possibly
  out of order), a cap on connections in total and per client, an idle timeout, and back-pressure:
  a connection whose client stops reading, or that has too many queries in flight, is not read
  from until that clears.

Which network namespace the sockets live in is the caller's business: the process is started in it.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import socket
import struct
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Literal, cast

log = logging.getLogger("netplane.dns.transport")

Kind = Literal["udp", "tcp"]
Reply = bytes | Awaitable[bytes | None] | None
Handler = Callable[[bytes, Kind], Reply]

_LEN = struct.Struct(">H")
SO_RCVBUFFORCE = getattr(socket, "SO_RCVBUFFORCE", 33)  # Linux's value; not every typeshed knows it
ERROR_LOG_INTERVAL = 10.0


@dataclass
class Limits:
    udp_rcvbuf: int = 4 << 20
    max_inflight: int = 1000  # slow (awaited) replies at once, as CoreDNS forward's max_concurrent
    max_inflight_per_client: int = 100
    max_tcp: int = 1000
    max_tcp_per_client: int = 100
    tcp_idle: float = 10.0
    tcp_pipeline: int = 64  # queries in flight on one connection before it is no longer read


@dataclass
class Stats:
    dropped: int = 0  # queries over an in-flight cap
    handler_errors: int = 0
    tcp_refused: int = 0  # connections over a cap


@dataclass
class _Listener:
    udp: asyncio.DatagramTransport
    tcp: asyncio.Server
    address: tuple[str, int]


@dataclass
class DnsServer:
    limits: Limits = field(default_factory=Limits)
    stats: Stats = field(default_factory=Stats)
    _listeners: list[_Listener] = field(default_factory=list)
    _tasks: set[asyncio.Task[None]] = field(default_factory=set)
    _inflight: dict[str, int] = field(default_factory=dict)
    _tcp: dict[str, int] = field(default_factory=dict)
    _connections: set[_TcpConnection] = field(default_factory=set)
    _last_error_log: float = 0.0

    @property
    def addresses(self) -> list[tuple[str, int]]:
        return [listener.address for listener in self._listeners]

    async def listen(self, host: str, port: int, handler: Handler) -> tuple[str, int]:
        """Serve `handler` on UDP and TCP at host:port (port 0: one free port for both); the bound address."""
        loop = asyncio.get_running_loop()
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        for attempt in range(20):
            udp_sock = self._udp_socket(family, host, port)
            bound = udp_sock.getsockname()[1]
            try:
                tcp = await loop.create_server(lambda: _TcpConnection(self, handler), host, bound,
                                               family=family, reuse_address=True, backlog=1024)
            except OSError as e:
                udp_sock.close()
                # With port 0 the kernel's free UDP port may be taken for TCP: pick another.
                if port == 0 and e.errno == errno.EADDRINUSE and attempt < 19:
                    continue
                raise
            break
        udp, _ = await loop.create_datagram_endpoint(lambda: _UdpProtocol(self, handler), sock=udp_sock)
        listener = _Listener(udp, tcp, (host, bound))
        self._listeners.append(listener)
        return listener.address

    def _udp_socket(self, family: int, host: str, port: int) -> socket.socket:
        sock = socket.socket(family, socket.SOCK_DGRAM)
        try:
            # SO_RCVBUFFORCE passes net.core.rmem_max with CAP_NET_ADMIN (NodeLocal runs with it).
            try:
                sock.setsockopt(socket.SOL_SOCKET, SO_RCVBUFFORCE, self.limits.udp_rcvbuf)
            except OSError:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, self.limits.udp_rcvbuf)
            if family == socket.AF_INET6:
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            sock.bind((host, port))
            sock.setblocking(False)
        except OSError:
            sock.close()
            raise
        return sock

    async def close(self) -> None:
        for listener in self._listeners:
            listener.udp.close()
            listener.tcp.close()
        for conn in list(self._connections):
            conn.abort()
        for task in list(self._tasks):
            task.cancel()
        for listener in self._listeners:
            await listener.tcp.wait_closed()
        if self._tasks:
            await asyncio.wait(list(self._tasks))
        self._listeners.clear()

    # ------------------------------------------------------------------ shared by the protocols

    def failed(self) -> None:
        """Count (and now and then log) the exception being handled: a handler failed on one message."""
        self.stats.handler_errors += 1
        now = time.monotonic()
        if now - self._last_error_log >= ERROR_LOG_INTERVAL:
            self._last_error_log = now
            log.exception("DNS handler failed (%d failures so far; logged every %.0fs at most)",
                          self.stats.handler_errors, ERROR_LOG_INTERVAL)

    def admit(self, client: str) -> bool:
        """Take an in-flight slot for `client`, unless it or everyone is at the cap."""
        held = self._inflight.get(client, 0)
        if held >= self.limits.max_inflight_per_client or len(self._tasks) >= self.limits.max_inflight:
            self.stats.dropped += 1
            return False
        self._inflight[client] = held + 1
        return True

    def spawn(self, pending: Awaitable[bytes | None], client: str, send: Callable[[bytes], None],
              done: Callable[[], None] | None = None) -> None:
        task = asyncio.get_running_loop().create_task(self._finish(pending, client, send, done))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _finish(self, pending: Awaitable[bytes | None], client: str, send: Callable[[bytes], None],
                      done: Callable[[], None] | None) -> None:
        try:
            reply = await pending
            if reply is not None:
                send(reply)
        except asyncio.CancelledError:
            raise
        except Exception:
            self.failed()
        finally:
            held = self._inflight[client] - 1
            if held:
                self._inflight[client] = held
            else:
                del self._inflight[client]
            if done is not None:
                done()


def discard(pending: Awaitable[bytes | None]) -> None:
    """Drop a reply that will not be awaited without leaving a never-awaited coroutine behind."""
    if asyncio.iscoroutine(pending):
        pending.close()
    elif isinstance(pending, asyncio.Future):
        pending.cancel()


class _UdpProtocol(asyncio.DatagramProtocol):
    def __init__(self, server: DnsServer, handler: Handler):
        self.server = server
        self.handler = handler
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        try:
            reply = self.handler(data, "udp")
        except Exception:
            self.server.failed()
            return
        if reply is None:
            return
        transport = self.transport
        assert transport is not None
        if isinstance(reply, bytes):
            transport.sendto(reply, addr)
            return
        if not self.server.admit(addr[0]):
            discard(reply)
            return
        self.server.spawn(reply, addr[0], lambda out: transport.sendto(out, addr))

    def error_received(self, exc: Exception) -> None:
        # ICMP errors for replies to clients that went away: nothing to do, and no reason to stop.
        pass


class _TcpConnection(asyncio.Protocol):
    def __init__(self, server: DnsServer, handler: Handler):
        self.server = server
        self.handler = handler
        self.transport: asyncio.Transport | None = None
        self.client = ""
        self.buffer = bytearray()
        self.inflight = 0
        self.reading_paused = False
        self.writing_paused = False
        self.last = 0.0
        self.timer: asyncio.TimerHandle | None = None
        self.counted = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = tcp = cast(asyncio.Transport, transport)
        peer = tcp.get_extra_info("peername")
        self.client = str(peer[0]) if peer else ""
        server, limits = self.server, self.server.limits
        if len(server._connections) >= limits.max_tcp or server._tcp.get(self.client, 0) >= limits.max_tcp_per_client:
            server.stats.tcp_refused += 1
            tcp.abort()
            return
        self.counted = True
        server._connections.add(self)
        server._tcp[self.client] = server._tcp.get(self.client, 0) + 1
        with contextlib.suppress(OSError):
            sock = transport.get_extra_info("socket")
            if sock is not None:
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        loop = asyncio.get_running_loop()
        self.last = loop.time()
        self.timer = loop.call_later(limits.tcp_idle, self._check_idle)

    def connection_lost(self, exc: Exception | None) -> None:
        if self.timer is not None:
            self.timer.cancel()
        if not self.counted:
            return
        self.counted = False
        server = self.server
        server._connections.discard(self)
        left = server._tcp[self.client] - 1
        if left:
            server._tcp[self.client] = left
        else:
            del server._tcp[self.client]

    def abort(self) -> None:
        if self.transport is not None:
            self.transport.abort()

    def _check_idle(self) -> None:
        loop = asyncio.get_running_loop()
        due = self.last + self.server.limits.tcp_idle
        if self.inflight or loop.time() < due:
            self.timer = loop.call_later(max(due - loop.time(), 0.05), self._check_idle)
        elif self.transport is not None:
            self.transport.close()

    def data_received(self, data: bytes) -> None:
        self.last = asyncio.get_running_loop().time()
        self.buffer += data
        self._drain()

    def _drain(self) -> None:
        buf, transport, pipeline = self.buffer, self.transport, self.server.limits.tcp_pipeline
        while len(buf) >= 2 and not self.writing_paused and self.inflight < pipeline:
            if transport is None or transport.is_closing():
                return
            size = buf[0] << 8 | buf[1]
            if len(buf) < size + 2:
                break
            query = bytes(buf[2:size + 2])
            del buf[:size + 2]
            self._dispatch(query)
        self._flow()

    def _dispatch(self, query: bytes) -> None:
        try:
            reply = self.handler(query, "tcp")
        except Exception:
            self.server.failed()
            return
        if reply is None:
            return
        if isinstance(reply, bytes):
            self.send(reply)
            return
        if not self.server.admit(self.client):
            discard(reply)
            return
        self.inflight += 1
        self.server.spawn(reply, self.client, self.send, self._answered)

    def send(self, reply: bytes) -> None:
        transport = self.transport
        if transport is None or transport.is_closing() or len(reply) > 65535:
            return
        transport.write(_LEN.pack(len(reply)) + reply)

    def _answered(self) -> None:
        self.inflight -= 1
        self.last = asyncio.get_running_loop().time()
        self._drain()  # queries held back by the pipeline cap are still buffered

    def _flow(self) -> None:
        transport = self.transport
        if transport is None or transport.is_closing():
            return
        hold = self.writing_paused or self.inflight >= self.server.limits.tcp_pipeline
        if hold and not self.reading_paused:
            transport.pause_reading()
        elif not hold and self.reading_paused:
            transport.resume_reading()
        self.reading_paused = hold

    def pause_writing(self) -> None:
        self.writing_paused = True
        self._flow()

    def resume_writing(self) -> None:
        self.writing_paused = False
        self._drain()
