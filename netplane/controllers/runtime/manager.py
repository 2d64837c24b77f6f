"""One leadership term's worth of controllers: shared informers, the controllers fed by them, and
the clients they write with. Built afresh each time this process becomes the leader, and stopped
as a whole when it stops leading, so nothing of a previous term's state leaks into the next."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from netplane.controllers.kube.client import Client
from netplane.controllers.kube.resources import Resource
from netplane.controllers.runtime.cache import IndexFunc
from netplane.controllers.runtime.controller import Controller, Reconcile
from netplane.controllers.runtime.events import EventRecorder
from netplane.controllers.runtime.informer import Informer
from netplane.controllers.runtime.metrics import ControllerMetrics
from netplane.controllers.runtime.ratelimit import RateLimiter
from netplane.controllers.runtime.tasks import cancel_and_wait

log = logging.getLogger("netplane.manager")


class Manager:
    def __init__(self, client: Client, metrics: ControllerMetrics | None = None, *,
                 component: str = "netplane-controller", resync_period: float | None = 600.0):
        self.client = client
        self.metrics = metrics or ControllerMetrics()
        self.recorder = EventRecorder(client, component)
        self.resync_period = resync_period
        self.informers: dict[tuple[Any, ...], Informer] = {}
        self.controllers: list[Controller] = []
        self._starter: asyncio.Task[None] | None = None

    def informer(self, resource: Resource, namespace: str | None = None, *, label_selector: str | None = None,
                 indexers: dict[str, IndexFunc] | None = None) -> Informer:
        """The informer for this resource (shared by every controller asking for the same one)."""
        key = (resource, namespace, label_selector)
        informer = self.informers.get(key)
        if informer is None:
            informer = Informer(self.client, resource, namespace, label_selector=label_selector,
                                resync_period=self.resync_period)
            self.informers[key] = informer
        for name, func in (indexers or {}).items():
            if name not in informer.cache.indexers:
                informer.cache.add_indexer(name, func)
        return informer

    def controller(self, name: str, reconcile: Reconcile, *, workers: int = 2,
                   rate_limiter: RateLimiter | None = None) -> Controller:
        controller = Controller(name, reconcile, workers=workers, rate_limiter=rate_limiter, metrics=self.metrics)
        self.controllers.append(controller)
        return controller

    def start(self) -> None:
        """Start informers now and the controllers once every cache has synced; returns at once."""
        for informer in self.informers.values():
            informer.start()
        self._starter = asyncio.get_running_loop().create_task(self._start_when_synced())

    async def _start_when_synced(self) -> None:
        # Reconciling from a half-filled cache would act on a wrong picture (e.g. delete a Project
        # whose namespaces have not been listed yet), so workers wait for every cache.
        await asyncio.gather(*(i.wait_synced() for i in self.informers.values()))
        for controller in self.controllers:
            controller.start()
        log.info("started controllers: %s", ", ".join(c.name for c in self.controllers))

    async def stop(self) -> None:
        if self._starter is not None:
            await cancel_and_wait([self._starter])
        await asyncio.gather(*(c.stop() for c in self.controllers))
        await asyncio.gather(*(i.stop() for i in self.informers.values()))
