"""TCP connections that start inside another network namespace.

A socket belongs to the namespace it was created in, whatever thread later uses it. So a short-lived
thread enters the pod's namespace, creates the socket and ends; the event loop then connects and
relays with it. The thread never returns to a pool, so no other work runs in the pod's namespace.
"""

from __future__ import annotations

import asyncio
import ctypes
import os
import socket
import threading

CLONE_NEWNET = 0x40000000
_libc = ctypes.CDLL(None, use_errno=True)


def _socket_in(netns_path: str) -> socket.socket:
    result: list[socket.socket | BaseException] = []

    def run() -> None:
        try:
            fd = os.open(netns_path, os.O_RDONLY | os.O_CLOEXEC)
            try:
                if _libc.setns(fd, CLONE_NEWNET) != 0:
                    err = ctypes.get_errno()
                    raise OSError(err, f"setns {netns_path}: {os.strerror(err)}")
            finally:
                os.close(fd)
            result.append(socket.socket(socket.AF_INET, socket.SOCK_STREAM))
        except BaseException as e:  # handed to the caller's thread
            result.append(e)

    thread = threading.Thread(target=run, name="netns-socket", daemon=True)
    thread.start()
    thread.join()
    out = result[0]
    if isinstance(out, BaseException):
        raise out
    return out


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
