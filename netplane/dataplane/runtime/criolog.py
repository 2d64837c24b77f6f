"""Container logs in the CRI format the kubelet writes and `kubectl logs` is served from.

Each line is ``<RFC3339Nano timestamp> <stream> <tag> <content>``; the tag is ``F`` for a
full line and ``P`` for a piece of a line longer than `MAX_LINE` (the kubelet's 16 KiB),
which readers join with the following pieces up to the next ``F``.
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass

MAX_LINE = 16 * 1024

LINE = re.compile(r"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z) (stdout|stderr) ([FP]) (.*)$", re.DOTALL)


def timestamp(ns: int | None = None) -> str:
    ns = time.time_ns() if ns is None else ns
    seconds, frac = divmod(ns, 1_000_000_000)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds)) + f".{frac:09d}Z"


def format_line(stream: str, content: bytes, full: bool, ns: int | None = None) -> bytes:
    return f"{timestamp(ns)} {stream} {'F' if full else 'P'} ".encode() + content + b"\n"


class StreamLog:
    """Splits one stream's bytes into CRI lines appended to an open file descriptor."""

    def __init__(self, fd: int, stream: str) -> None:
        self.fd, self.stream, self.pending = fd, stream, b""

    def feed(self, data: bytes) -> None:
        self.pending += data
        out = []
        while True:
            nl = self.pending.find(b"\n", 0, MAX_LINE + 1)
            if nl >= 0:
                out.append(format_line(self.stream, self.pending[:nl], True))
                self.pending = self.pending[nl + 1:]
            elif len(self.pending) > MAX_LINE:
                out.append(format_line(self.stream, self.pending[:MAX_LINE], False))
                self.pending = self.pending[MAX_LINE:]
            else:
                break
        if out:
            os.write(self.fd, b"".join(out))  # one write per batch: O_APPEND keeps lines whole

    def close(self) -> None:
        if self.pending:  # a last line without newline is still a full line for the reader
            os.write(self.fd, format_line(self.stream, self.pending, True))
            self.pending = b""


@dataclass(frozen=True)
class Entry:
    time: str
    stream: str
    content: str


def read(path: str) -> Iterator[Entry]:
    """Lines of a CRI log file, partial pieces joined (what `kubectl logs` shows)."""
    pieces: list[str] = []
    with open(path, encoding="utf-8", errors="replace") as f:
        for raw in f:
            m = LINE.match(raw.rstrip("\n"))
            if not m:
                continue
            pieces.append(m.group(4))
            if m.group(3) == "F":
                yield Entry(m.group(1), m.group(2), "".join(pieces))
                pieces = []
