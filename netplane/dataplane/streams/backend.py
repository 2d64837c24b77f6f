"""What the API server needs from a node to serve exec, attach, logs and port-forward.

The API server never runs pod processes itself: it relays the client's streams to a backend. Today
the backend is in-process (`LocalStreamBackend`); with the node agent it becomes a client of the
agent's unix socket with the same interface, so everything here is plain bytes, ints and dataclasses
that serialise without effort.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import AsyncGenerator
from dataclasses import dataclass
from typing import Protocol

STDOUT = 1
STDERR = 2


class StreamError(Exception):
    """A request the node cannot serve; ``code``/``reason`` are the HTTP status kube would answer."""

    def __init__(self, message: str, code: int = 400, reason: str = "BadRequest"):
        super().__init__(message)
        self.message = message
        self.code = code
        self.reason = reason


@dataclass(frozen=True)
class PodRef:
    uid: str
    namespace: str
    name: str


@dataclass(frozen=True)
class ExecOptions:
    container: str
    command: tuple[str, ...]
    stdin: bool
    stdout: bool
    stderr: bool
    tty: bool


@dataclass(frozen=True)
class LogOptions:
    container: str
    follow: bool = False
    previous: bool = False
    tail_lines: int | None = None
    since: dt.datetime | None = None
    timestamps: bool = False
    limit_bytes: int | None = None
    stream: str = "All"  # All, Stdout or Stderr (PodLogOptions.stream)


class Session(Protocol):
    """One running exec or attach. Output ends (``None``) once every output stream is closed."""

    async def read(self) -> tuple[int, bytes] | None: ...

    async def write_stdin(self, data: bytes) -> None: ...

    async def close_stdin(self) -> None: ...

    def resize(self, width: int, height: int) -> None: ...

    async def wait(self) -> int | None:
        """The exit code, or None when there is none to report (attach)."""
        ...

    async def terminate(self) -> None: ...


class StreamBackend(Protocol):
    async def exec(self, pod: PodRef, options: ExecOptions) -> Session: ...

    async def attach(self, pod: PodRef, options: ExecOptions) -> Session: ...

    def logs(self, pod: PodRef, options: LogOptions) -> AsyncGenerator[bytes, None]:
        """Log lines as kubelet sends them; raises StreamError before the first chunk."""
        ...

    async def port_forward(self, pod: PodRef, port: int) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        """A TCP connection to 127.0.0.1:``port`` inside the pod's network namespace."""
        ...
