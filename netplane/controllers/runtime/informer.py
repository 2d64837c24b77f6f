"""An informer: a cache of one resource kept current by list + watch, and handlers told of changes.

    list (paged) ──▶ replace cache ──▶ watch from the list's resourceVersion ──▶ apply events
         ▲                                   │ stream ended: watch again from the last version seen
         └── 410 Expired, or the watch ──────┘ connection broke: back off, then watch again
             cannot be resumed                 (a 410 there relists)

A relist diffs the new list against the cache, so objects deleted while the watch was down are
reported as deletions. Every `resync_period` all cached objects are reported again as updates
(old is new), which is what makes level-triggered controllers correct even if an event was missed.
Handlers are synchronous and must be quick: they only enqueue keys.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import aiohttp

from netplane.controllers.kube.client import Client
from netplane.controllers.kube.errors import ApiError, Expired
from netplane.controllers.kube.resources import Resource
from netplane.controllers.runtime.cache import Cache, IndexFunc, object_key
from netplane.controllers.runtime.tasks import cancel_and_wait

log = logging.getLogger("netplane.informer")

Obj = dict[str, Any]

# Watches are re-opened at a random point between 5 and 10 minutes, as client-go's reflector does,
# so that many informers do not all reconnect at once.
MIN_WATCH_TIMEOUT = 300
MAX_BACKOFF = 30.0


@dataclass
class Handler:
    on_add: Callable[[Obj], None] | None = None
    on_update: Callable[[Obj, Obj], None] | None = None
    on_delete: Callable[[Obj], None] | None = None


class Informer:
    def __init__(self, client: Client, resource: Resource, namespace: str | None = None, *,
                 label_selector: str | None = None, field_selector: str | None = None,
                 resync_period: float | None = None, indexers: dict[str, IndexFunc] | None = None,
                 page_size: int = 500, watch_timeout: int | None = None):
        self.client = client
        self.resource = resource
        self.namespace = namespace
        self.label_selector = label_selector
        self.field_selector = field_selector
        self.resync_period = resync_period
        self.page_size = page_size
        self.watch_timeout = watch_timeout
        self.cache = Cache(indexers)
        self.handlers: list[Handler] = []
        self.resource_version = ""
        self.relists = 0
        self._synced = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []

    @property
    def name(self) -> str:
        return self.resource.plural + (f" in {self.namespace}" if self.namespace else "")

    def add_handler(self, on_add: Callable[[Obj], None] | None = None,
                    on_update: Callable[[Obj, Obj], None] | None = None,
                    on_delete: Callable[[Obj], None] | None = None) -> None:
        """Register handlers; objects already cached are reported to them as adds, as client-go does."""
        handler = Handler(on_add, on_update, on_delete)
        self.handlers.append(handler)
        if on_add is not None:
            for obj in self.cache:
                on_add(obj)

    @property
    def has_synced(self) -> bool:
        return self._synced.is_set()

    async def wait_synced(self, timeout: float | None = None) -> None:
        await asyncio.wait_for(self._synced.wait(), timeout)

    def start(self) -> None:
        loop = asyncio.get_running_loop()
        self._tasks.append(loop.create_task(self.run(), name=f"informer {self.name}"))
        if self.resync_period:
            self._tasks.append(loop.create_task(self._resync_forever(self.resync_period),
                                                name=f"resync {self.name}"))

    async def stop(self) -> None:
        await cancel_and_wait(self._tasks)
        self._tasks.clear()

    async def run(self) -> None:
        """List and watch until cancelled. An informer started again after `stop()` resumes watching
        from where it stopped (listing only if that version has expired meanwhile)."""
        failures = 0
        need_list = not self.resource_version
        while True:
            try:
                if need_list:
                    await self.relist()
                    need_list = False
                await self._watch_once()
                failures = 0
            except asyncio.CancelledError:
                raise
            except Expired:
                log.info("%s: resourceVersion %s expired; listing again", self.name, self.resource_version)
                need_list = True
            except (ApiError, aiohttp.ClientError, OSError, TimeoutError, ValueError) as e:
                failures += 1
                delay = min(0.2 * 2 ** min(failures, 8), MAX_BACKOFF) * random.uniform(0.8, 1.2)
                log.warning("%s: %s: %s; retrying in %.1fs", self.name, "list" if need_list else "watch",
                            e, delay)
                await asyncio.sleep(delay)

    async def relist(self) -> None:
        """Replace the cache with a fresh list, reporting the differences to the handlers."""
        items, rv = await self.client.list_all(self.resource, self.namespace, label_selector=self.label_selector,
                                               field_selector=self.field_selector, page_size=self.page_size)
        self.relists += 1
        fresh = {object_key(obj): obj for obj in items}
        for key in self.cache.list_keys():
            if key not in fresh:
                gone = self.cache.remove(key)
                if gone is not None:
                    self._notify_delete(gone)
        for obj in items:
            self._apply_upsert(obj)
        self.resource_version = rv
        self._synced.set()

    async def _watch_once(self) -> None:
        timeout = self.watch_timeout or random.randint(MIN_WATCH_TIMEOUT, 2 * MIN_WATCH_TIMEOUT)
        async for event in self.client.watch(self.resource, self.namespace, resource_version=self.resource_version,
                                             label_selector=self.label_selector,
                                             field_selector=self.field_selector, allow_bookmarks=True,
                                             timeout_seconds=timeout):
            if event.type in ("ADDED", "MODIFIED"):
                self._apply_upsert(event.object)
            elif event.type == "DELETED":
                gone = self.cache.remove(object_key(event.object))
                self._notify_delete(gone if gone is not None else event.object)
            if event.resource_version:
                self.resource_version = event.resource_version

    def _apply_upsert(self, obj: Obj) -> None:
        old = self.cache.put(obj)
        if old is None:
            for h in self.handlers:
                if h.on_add is not None:
                    self._call(h.on_add, obj)
        elif _rv(old) != _rv(obj):
            for h in self.handlers:
                if h.on_update is not None:
                    self._call(h.on_update, old, obj)

    def _notify_delete(self, obj: Obj) -> None:
        for h in self.handlers:
            if h.on_delete is not None:
                self._call(h.on_delete, obj)

    def _call(self, func: Callable[..., None], *args: Obj) -> None:
        # A faulty handler must not stop the informer, nor hide the events other handlers need.
        try:
            func(*args)
        except Exception:
            log.exception("%s: event handler failed", self.name)

    def resync(self) -> None:
        """Report every cached object as updated (old is new), so controllers look at everything again."""
        for obj in self.cache:
            for h in self.handlers:
                if h.on_update is not None:
                    self._call(h.on_update, obj, obj)

    async def _resync_forever(self, period: float) -> None:
        await self._synced.wait()
        while True:
            await asyncio.sleep(period)
            self.resync()


def _rv(obj: Obj) -> str:
    return str((obj.get("metadata") or {}).get("resourceVersion") or "")
