"""Reading CRI log files (``<RFC3339Nano> stdout|stderr F|P <text>``) the way kubelet serves them.

A ``P`` (partial) entry is a piece of a line the runtime split; the pieces and the final ``F`` entry
make one line, reported with the first piece's timestamp. Lines that do not parse are skipped, as
kubelet skips them.
"""

from __future__ import annotations

import datetime as dt
from collections import deque
from collections.abc import Iterable, Iterator
from dataclasses import dataclass


@dataclass(frozen=True)
class Entry:
    timestamp: str  # as written, RFC3339Nano
    stream: str  # stdout or stderr
    text: bytes  # with its newline


def parse_time(value: str) -> dt.datetime | None:
    """RFC3339 with up to nanoseconds; Python keeps microseconds, which is enough to compare."""
    text = value.strip()
    if text.endswith("Z"):
        text = text[:-1] + "+00:00"
    date, sep, rest = text.partition(".")
    if sep:
        digits = "".join(c for c in rest if c.isdigit())
        text = f"{date}.{digits[:6].ljust(6, '0')}{rest[len(digits):]}"
    try:
        parsed = dt.datetime.fromisoformat(text)
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.UTC)


class Assembler:
    """Turns raw log lines into whole entries, carrying partial lines across calls."""

    def __init__(self) -> None:
        self._partial: dict[str, tuple[str, bytearray]] = {}

    def feed(self, raw: bytes) -> Entry | None:
        parts = raw.rstrip(b"\n").split(b" ", 3)
        if len(parts) < 3 or parts[1] not in (b"stdout", b"stderr") or parts[2] not in (b"F", b"P"):
            return None
        ts, stream, tag = parts[0].decode(errors="replace"), parts[1].decode(), parts[2]
        text = parts[3] if len(parts) > 3 else b""
        first_ts, buf = self._partial.pop(stream, (ts, bytearray()))
        buf += text
        if tag == b"P":
            self._partial[stream] = (first_ts, buf)
            return None
        return Entry(first_ts, stream, bytes(buf) + b"\n")


def entries(lines: Iterable[bytes]) -> Iterator[Entry]:
    assembler = Assembler()
    for raw in lines:
        entry = assembler.feed(raw)
        if entry is not None:
            yield entry


def select(found: Iterable[Entry], stream: str, since: dt.datetime | None, tail: int | None) -> list[Entry]:
    """The entries a request asks for from a file's existing content: filter first, then tail."""
    kept: Iterable[Entry] = (e for e in found if wanted(e, stream, since))
    if tail is not None:
        return list(deque(kept, maxlen=tail)) if tail > 0 else []
    return list(kept)


def wanted(entry: Entry, stream: str, since: dt.datetime | None) -> bool:
    if stream != "All" and entry.stream != stream.lower():
        return False
    if since is not None:
        at = parse_time(entry.timestamp)
        if at is None or at < since:
            return False
    return True


def render(entry: Entry, timestamps: bool) -> bytes:
    return (entry.timestamp.encode() + b" " + entry.text) if timestamps else entry.text
