"""TCP connections that start inside another network namespace.

A socket belongs to the namespace it was created in, whatever thread later uses it. So a short-lived
thread enters the pod's namespace, creates the socket and ends; the event loop then connects and
relays with it. The thread never returns to a pool, so no other work runs in the pod's namespace.
"""

from __future__ import annotations

import asyncio
import socket

from netplane.dataplane.runtime import linux


def _socket_in(netns_path: str) -> socket.socket:
    return linux.in_netns(netns_path, lambda: socket.socket(socket.AF_INET, socket.SOCK_STREAM))


async def open_connection(netns_path: str, port: int,
                          timeout: float = 10.0) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """Connect to 127.0.0.1:``port`` in the namespace at ``netns_path``."""
    loop = asyncio.get_running_loop()
    sock = await loop.run_in_executor(None, _socket_in, netns_path)
    try:
        sock.setblocking(False)
        await asyncio.wait_for(loop.sock_connect(sock, ("127.0.0.1", port)), timeout)
    except BaseException:
        sock.close()
        raise
    return await asyncio.open_connection(sock=sock)
