"""Types shared by store backends."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

EventType = Literal["ADDED", "MODIFIED", "DELETED"]


class StoreError(Exception):
    pass


class KeyExists(StoreError):
    pass


class KeyNotFound(StoreError):
    pass


class RevisionMismatch(StoreError):
    pass


class Compacted(StoreError):
    def __init__(self, requested: int, compacted: int):
        super().__init__(f"too old resource version: {requested} ({compacted})")
        self.requested = requested
        self.compacted = compacted


@dataclass(frozen=True, slots=True)
class Record:
    key: str
    revision: int
    create_revision: int
    value: bytes
    # Whatever the layer above indexes (labels, selectable fields), computed once per write.
    attrs: Any = None


@dataclass(frozen=True, slots=True)
class Event:
    type: EventType
    record: Record
    prev: Record | None


class Watch:
    """A subscription to events under a key prefix.

    Events are queued without bound on the producer side; a watcher whose queue
    grows past ``limit`` is closed instead, so one slow reader never slows the
    writers or the other watchers.
    """

    def __init__(self, prefix: str, limit: int, on_close: Callable[[Watch], None]):
        self.prefix = prefix
        self.limit = limit
        self.queue: asyncio.Queue[Event | None] = asyncio.Queue()
        self.overflowed = False
        self.closed = False
        self._on_close = on_close

    def push(self, event: Event) -> None:
        if self.closed:
            return
        if self.queue.qsize() >= self.limit:
            self.overflowed = True
            self.close()
            return
        self.queue.put_nowait(event)

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            self.queue.put_nowait(None)
            self._on_close(self)

    async def next(self) -> Event | None:
        """The next event, or None once the watch is closed."""
        return await self.queue.get()
