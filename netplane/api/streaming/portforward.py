"""Port-forward (``portforward.k8s.io``) over SPDY frames carried in WebSocket binary messages.

Per forwarded connection kubectl opens two streams sharing a ``requestid`` header: an ``error``
stream (closed by the client at once; the server writes a failure text to it, then closes it) and a
``data`` stream with the bytes. Streams are answered with an empty SYN_REPLY, which kubectl waits
for before using them. When the pod side ends, the data stream and then the error stream get FIN,
which is what lets kubectl finish the local connection.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from aiohttp import WSMsgType, web

from netplane.api.streaming import spdy
from netplane.dataplane.streams import StreamError

log = logging.getLogger(__name__)

Connect = Callable[[int], Awaitable[tuple[asyncio.StreamReader, asyncio.StreamWriter]]]


@dataclass
class _Stream:
    sid: int
    kind: str
    inbound: asyncio.Queue[bytes | None] = field(default_factory=asyncio.Queue)
    closed_local: bool = False


@dataclass
class _Pair:
    port: int
    error: _Stream | None = None
    data: _Stream | None = None
    task: asyncio.Task[None] | None = None


class PortForwardSession:
    def __init__(self, ws: web.WebSocketResponse, connect: Connect):
        self.ws = ws
        self.connect = connect
        self.codec = spdy.Codec()
        self.streams: dict[int, _Stream] = {}
        self.pairs: dict[str, _Pair] = {}
        self.tasks: set[asyncio.Task[None]] = set()
        self._send_lock = asyncio.Lock()
        self.last_stream = 0

    async def send(self, data: bytes) -> None:
        if self.ws.closed:
            return
        async with self._send_lock:
            with contextlib.suppress(ConnectionError, RuntimeError):
                await self.ws.send_bytes(data)

    async def run(self) -> None:
        try:
            async for msg in self.ws:
                if msg.type != WSMsgType.BINARY:
                    continue
                for frame in self.codec.feed(msg.data):
                    await self._handle(frame)
        except spdy.ProtocolError as e:
            log.info("port-forward: %s", e)
            await self.send(self.codec.goaway(self.last_stream))
        finally:
            for task in list(self.tasks):
                task.cancel()
            for task in list(self.tasks):
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task

    async def _handle(self, frame: spdy.Frame) -> None:
        if not frame.control:
            stream = self.streams.get(frame.stream_id)
            if stream is None:
                await self.send(self.codec.rst_stream(frame.stream_id, spdy.RST_PROTOCOL_ERROR))
                return
            if frame.payload:
                stream.inbound.put_nowait(frame.payload)
            if frame.flags & spdy.FLAG_FIN:
                stream.inbound.put_nowait(None)
            return
        if frame.type == spdy.SYN_STREAM:
            await self._open(frame)
        elif frame.type == spdy.PING:
            await self.send(self.codec.control(spdy.PING, frame.payload[:4]))
        elif frame.type == spdy.RST_STREAM:
            stream = self.streams.pop(frame.stream_id, None)
            if stream is not None:
                stream.closed_local = True  # a reset stream takes no more frames from us
                stream.inbound.put_nowait(None)
        elif frame.type == spdy.HEADERS:
            self.codec.headers(frame)  # keeps the shared decompression context in step
        elif frame.type == spdy.GOAWAY:
            await self.ws.close()
        # SETTINGS and WINDOW_UPDATE: spdystream does no flow control, so neither do we.

    async def _open(self, frame: spdy.Frame) -> None:
        headers = self.codec.headers(frame)
        sid = frame.stream_id
        self.last_stream = max(self.last_stream, sid)
        kind = (headers.get("streamtype") or [""])[0]
        request_id = (headers.get("requestid") or [""])[0]
        port_text = (headers.get("port") or [""])[0]
        await self.send(self.codec.syn_reply(sid))
        stream = _Stream(sid, kind)
        self.streams[sid] = stream
        if frame.flags & spdy.FLAG_FIN:
            stream.inbound.put_nowait(None)
        try:
            port = int(port_text)
            if not 0 < port < 65536:
                raise ValueError
        except ValueError:
            await self.send(self.codec.rst_stream(sid, spdy.RST_PROTOCOL_ERROR))
            return
        if kind not in ("error", "data"):
            await self.send(self.codec.rst_stream(sid, spdy.RST_PROTOCOL_ERROR))
            return
        pair = self.pairs.setdefault(request_id, _Pair(port))
        setattr(pair, kind, stream)
        if pair.error is not None and pair.data is not None and pair.task is None:
            pair.task = asyncio.create_task(self._forward(request_id, pair))
            self.tasks.add(pair.task)
            pair.task.add_done_callback(self.tasks.discard)

    async def _close(self, stream: _Stream) -> None:
        if not stream.closed_local:
            stream.closed_local = True
            await self.send(self.codec.data(stream.sid, b"", fin=True))

    async def _forward(self, request_id: str, pair: _Pair) -> None:
        assert pair.error is not None and pair.data is not None
        error, data = pair.error, pair.data
        try:
            try:
                reader, writer = await self.connect(pair.port)
            except StreamError as e:
                await self.send(self.codec.data(error.sid, e.message.encode()))
                return
            upstream = asyncio.create_task(self._to_pod(data, writer))
            try:
                while True:
                    chunk = await reader.read(spdy.MAX_DATA)
                    if not chunk or data.closed_local:
                        break
                    await self.send(self.codec.data(data.sid, chunk))
                await self._close(data)
                # The client resets the data stream once it has the pod's end; stop sending to
                # the pod then too.
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(asyncio.shield(upstream), 30)
            finally:
                upstream.cancel()
                writer.close()
        finally:
            await self._close(data)
            await self._close(error)
            self.pairs.pop(request_id, None)
            self.streams.pop(data.sid, None)
            self.streams.pop(error.sid, None)

    @staticmethod
    async def _to_pod(stream: _Stream, writer: asyncio.StreamWriter) -> None:
        try:
            while (chunk := await stream.inbound.get()) is not None:
                writer.write(chunk)
                await writer.drain()
            if writer.can_write_eof():
                writer.write_eof()
        except (ConnectionError, OSError):
            pass

