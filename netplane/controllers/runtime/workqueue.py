"""The work queue between event handlers and reconcile workers.

Invariants (as client-go's workqueue):
- a key is queued at most once, however often it is added before a worker takes it (de-duplication);
- a key is never handed to two workers at once: added while being processed, it is marked dirty
  and queued again only when that worker calls `done(key)`, so it is processed once more, after;
- `add_after` delays an add; `add_rate_limited` delays it by the rate limiter (per-item backoff and
  an overall rate); `forget` clears the item's backoff once it succeeded.

The bookkeeping (`add`, `try_get`, `done`) is synchronous and pure so it can be tested exhaustively;
only `get` and the delayed adds touch the event loop.
"""

from __future__ import annotations

import asyncio
from collections import deque

from netplane.controllers.runtime.ratelimit import RateLimiter, default_rate_limiter


class ShutDown(Exception):
    """The queue was shut down: the worker asking for more work should stop."""


class QueueHooks:
    """Observers of a queue (its metrics); the default observes nothing."""

    def added(self) -> None: ...

    def retried(self) -> None: ...

    def depth(self, depth: int) -> None: ...


class WorkQueue:
    def __init__(self, rate_limiter: RateLimiter | None = None, hooks: QueueHooks | None = None):
        self.rate_limiter = rate_limiter or default_rate_limiter()
        self.hooks = hooks or QueueHooks()
        self._queue: deque[str] = deque()
        self._dirty: set[str] = set()
        self._processing: set[str] = set()
        self._delayed: dict[str, tuple[float, asyncio.TimerHandle]] = {}
        self._shutting_down = False
        self._ready: asyncio.Event | None = None

    # ------------------------------------------------------------------ the pure core

    def add(self, key: str) -> None:
        if self._shutting_down or key in self._dirty:
            return
        self.hooks.added()
        self._dirty.add(key)
        if key in self._processing:
            return  # re-queued by done(): never two workers on one key
        self._queue.append(key)
        self.hooks.depth(len(self._queue))
        if self._ready is not None:
            self._ready.set()

    def try_get(self) -> str | None:
        """The next key, now marked as being processed; None when nothing is queued."""
        if not self._queue:
            return None
        key = self._queue.popleft()
        self._processing.add(key)
        self._dirty.discard(key)
        self.hooks.depth(len(self._queue))
        return key

    def done(self, key: str) -> None:
        """The worker finished `key`; if it was added meanwhile, it is queued again now."""
        self._processing.discard(key)
        if key in self._dirty:
            self._queue.append(key)
            self.hooks.depth(len(self._queue))
            if self._ready is not None:
                self._ready.set()

    def __len__(self) -> int:
        return len(self._queue)

    @property
    def processing(self) -> frozenset[str]:
        return frozenset(self._processing)

    def queued(self) -> list[str]:
        return list(self._queue)

    # ------------------------------------------------------------------ the event-loop side

    async def get(self) -> str:
        """Wait for the next key; raises ShutDown once the queue is shut down and drained of waiting."""
        while True:
            if self._shutting_down:
                raise ShutDown()
            key = self.try_get()
            if key is not None:
                return key
            if self._ready is None:
                self._ready = asyncio.Event()
            self._ready.clear()
            await self._ready.wait()

    def add_after(self, key: str, delay: float) -> None:
        """Add `key` after `delay` seconds; an earlier pending add of the same key wins."""
        if self._shutting_down:
            return
        if delay <= 0:
            self.add(key)
            return
        loop = asyncio.get_running_loop()
        due = loop.time() + delay
        pending = self._delayed.get(key)
        if pending is not None:
            if pending[0] <= due:
                return
            pending[1].cancel()
        self._delayed[key] = (due, loop.call_at(due, self._fire, key))

    def _fire(self, key: str) -> None:
        self._delayed.pop(key, None)
        self.add(key)

    def add_rate_limited(self, key: str) -> None:
        self.hooks.retried()
        self.add_after(key, self.rate_limiter.when(key))

    def forget(self, key: str) -> None:
        self.rate_limiter.forget(key)

    def retries(self, key: str) -> int:
        return self.rate_limiter.retries(key)

    def shutdown(self) -> None:
        self._shutting_down = True
        for _, handle in self._delayed.values():
            handle.cancel()
        self._delayed.clear()
        if self._ready is not None:
            self._ready.set()

    @property
    def shutting_down(self) -> bool:
        return self._shutting_down
