"""exec and attach over WebSocket: the ``channel.k8s.io`` protocols, v1 to v5.

Every binary message starts with a channel byte: 0 stdin, 1 stdout, 2 stderr, 3 error (the result),
4 resize (JSON ``{"Width":…,"Height":…}``, v3+). From v4 the error channel carries a metav1.Status,
with an ``ExitCode`` cause for a non-zero exit, which is how kubectl exits with the command's
code. v5 adds channel 255, "close": ``[255, n]`` from the client ends its channel n (stdin's EOF;
before v5 a WebSocket client could not say it). The result is written last, then the WebSocket is
closed normally, which kubectl reads as the end of every stream.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from typing import Any

from aiohttp import WSMsgType, web

from netplane.dataplane.streams import Session

STDIN, STDOUT, STDERR, ERROR, RESIZE, CLOSE = 0, 1, 2, 3, 4, 255
# Best first: the server picks the newest version the client offers, as kube-apiserver does.
PROTOCOLS = ("v5.channel.k8s.io", "v4.channel.k8s.io", "v3.channel.k8s.io", "v2.channel.k8s.io",
             "channel.k8s.io")


def negotiate(offered: str) -> str | None:
    asked = {p.strip() for p in offered.split(",") if p.strip()}
    return next((p for p in PROTOCOLS if p in asked), None)


def _version(protocol: str) -> int:
    return int(protocol[1]) if protocol.startswith("v") else 1


def result_status(exit_code: int | None, command: tuple[str, ...]) -> dict[str, Any]:
    if not exit_code:
        return {"metadata": {}, "status": "Success"}
    return {
        "metadata": {}, "status": "Failure",
        "message": f"command terminated with non-zero exit code: error executing command {list(command)}, "
                   f"exit code {exit_code}",
        "reason": "NonZeroExitCode",
        "details": {"causes": [{"reason": "ExitCode", "message": str(exit_code)}]},
    }


async def serve(ws: web.WebSocketResponse, session: Session, command: tuple[str, ...]) -> None:
    version = _version(ws.ws_protocol or "")
    send_lock = asyncio.Lock()

    async def send(channel: int, data: bytes) -> None:
        async with send_lock:
            await ws.send_bytes(bytes([channel]) + data)

    async def client_to_process() -> None:
        async for msg in ws:
            if msg.type != WSMsgType.BINARY or not msg.data:
                continue
            channel, data = msg.data[0], msg.data[1:]
            if channel == STDIN:
                await session.write_stdin(data)
            elif channel == RESIZE:
                with contextlib.suppress(ValueError, TypeError, AttributeError):
                    size = json.loads(data)
                    session.resize(int(size.get("Width", 0)), int(size.get("Height", 0)))
            elif channel == CLOSE and version >= 5 and data[:1] == bytes([STDIN]):
                await session.close_stdin()

    async def process_to_client() -> None:
        while (out := await session.read()) is not None:
            await send(*out)
        exit_code = await session.wait()
        if version >= 4:
            await send(ERROR, json.dumps(result_status(exit_code, command)).encode())
        elif exit_code:
            await send(ERROR, f"command terminated with non-zero exit code: exit status {exit_code}".encode())
        await ws.close()

    reader = asyncio.create_task(client_to_process())
    writer = asyncio.create_task(process_to_client())
    try:
        # The reader ends only when the WebSocket closes: after our result, or because the client
        # went away, and then the command must not outlive it.
        await asyncio.wait({reader, writer}, return_when=asyncio.FIRST_COMPLETED)
        if writer.done() and not reader.done():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.shield(reader), 5)
    finally:
        for task in (reader, writer):
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, ConnectionError, RuntimeError):
                await task
        await session.terminate()
