"""A level-triggered controller: keys from informer events go through a work queue to `reconcile(key)`.

`reconcile` gets only a key (`namespace/name`, or `name`), reads the current state from informer
caches, makes the world match, and returns a `Result`. It is never called concurrently for the
same key. Raising an exception retries the key with per-item exponential backoff; returning
`Result(requeue_after=s)` looks again after `s` seconds without counting as a failure.

Each worker is its own asyncio task, so a slow (awaiting) reconcile never delays another worker or
the leader-election renew loop. CPU-heavy work must not run on the event loop, though: it would
stall every task, lease renewal included. Move it off the loop (`await asyncio.to_thread(f)`, or a
process pool for pure-Python number crunching that holds the GIL).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Any

from netplane.controllers.kube.errors import ApiError, Conflict
from netplane.controllers.runtime.cache import object_key
from netplane.controllers.runtime.informer import Informer
from netplane.controllers.runtime.metrics import ControllerMetrics
from netplane.controllers.runtime.ratelimit import RateLimiter
from netplane.controllers.runtime.tasks import cancel_and_wait
from netplane.controllers.runtime.workqueue import ShutDown, WorkQueue

log = logging.getLogger("netplane.controller")

Obj = dict[str, Any]
Mapper = Callable[[Obj], Iterable[str]]


@dataclass(frozen=True)
class Result:
    """What to do with the key after a successful reconcile."""

    requeue: bool = False
    requeue_after: float | None = None


Reconcile = Callable[[str], Awaitable[Result | None]]


def own_key(obj: Obj) -> list[str]:
    return [object_key(obj)]


class Controller:
    def __init__(self, name: str, reconcile: Reconcile, *, workers: int = 2,
                 rate_limiter: RateLimiter | None = None, metrics: ControllerMetrics | None = None):
        self.name = name
        self.reconcile = reconcile
        self.workers = workers
        self.metrics = metrics or ControllerMetrics()
        self.queue = WorkQueue(rate_limiter, self.metrics.queue_hooks(name))
        self._tasks: list[asyncio.Task[None]] = []
        self._latency = self.metrics.latency.labels(name)
        self._errors = self.metrics.errors.labels(name)

    def watch(self, informer: Informer, mapper: Mapper = own_key) -> None:
        """Enqueue the keys `mapper` derives from every added, updated, deleted or resynced object.

        On updates both the old and the new object are mapped, so a change that moves an object
        between parents (a relabelled namespace) wakes the parent it left as well as the one it joined.
        """
        def enqueue(obj: Obj) -> None:
            for key in mapper(obj):
                self.queue.add(key)

        def on_update(old: Obj, new: Obj) -> None:
            keys = set(mapper(new))
            if old is not new:
                keys.update(mapper(old))
            for key in keys:
                self.queue.add(key)

        informer.add_handler(enqueue, on_update, enqueue)

    def start(self) -> None:
        loop = asyncio.get_running_loop()
        self._tasks = [loop.create_task(self._worker(), name=f"{self.name} worker {i}")
                       for i in range(self.workers)]

    async def stop(self) -> None:
        """Stop at once: workers are cancelled mid-reconcile (reconciles must be idempotent anyway)."""
        self.queue.shutdown()
        await cancel_and_wait(self._tasks)
        self._tasks.clear()

    async def _worker(self) -> None:
        while True:
            try:
                key = await self.queue.get()
            except ShutDown:
                return
            try:
                await self.process(key)
            finally:
                self.queue.done(key)

    async def process(self, key: str) -> None:
        started = time.perf_counter()
        try:
            result = await self.reconcile(key) or Result()
        except asyncio.CancelledError:
            raise
        except Conflict:
            # Written from a cache that was a step behind: expected, and the retry reads newer state.
            self.metrics.reconciles.labels(self.name, "conflict").inc()
            log.debug("%s: %s changed while reconciling; retrying", self.name, key)
            self.queue.add_rate_limited(key)
            return
        except Exception as e:
            self._errors.inc()
            self.metrics.reconciles.labels(self.name, "error").inc()
            log.warning("%s: reconciling %s failed (retry %d): %s", self.name, key, self.queue.retries(key) + 1,
                        e, exc_info=not _expected(e))
            self.queue.add_rate_limited(key)
            return
        finally:
            self._latency.observe(time.perf_counter() - started)
        if result.requeue_after:
            self.metrics.reconciles.labels(self.name, "requeue_after").inc()
            self.queue.forget(key)
            self.queue.add_after(key, result.requeue_after)
        elif result.requeue:
            self.metrics.reconciles.labels(self.name, "requeue").inc()
            self.queue.add_rate_limited(key)
        else:
            self.metrics.reconciles.labels(self.name, "success").inc()
            self.queue.forget(key)


def _expected(e: Exception) -> bool:
    """API refusals and lost connections are a normal part of a controller's life: no traceback."""
    return isinstance(e, ApiError | OSError | TimeoutError)
