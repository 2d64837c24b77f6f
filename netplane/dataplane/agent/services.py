"""The node's service proxy, driven by the agent's Service and EndpointSlice informers.

Level-triggered like the rest of the agent: any change marks the proxy dirty, and a pass
renders the table from the caches (`proxy.Renderer`, which renders again only Services whose
objects changed) and hands it to `Proxy.sync`, which writes only the difference, or nothing
when the rendering did not change. A burst of events (a Deployment scaling,
a Service with its slices) is coalesced into one pass by a short debounce, and a pass runs
at least every `RESYNC` seconds anyway. A failed pass is logged and retried with backoff; it
never ends the loop, so a broken `nft` cannot take the agent (and its pods) down with it.

The first pass waits for both caches to be synced: rendering from empty caches would replace
the rules a previous agent left (which pods keep using across agent restarts) with nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from typing import Any

from netplane.controllers.kube.resources import Resource
from netplane.controllers.runtime.informer import Informer
from netplane.dataplane.proxy import NodeConfig, ProxyApplyError, Renderer, Ruleset

log = logging.getLogger("netplane.agent.proxy")

SERVICES = Resource("", "v1", "services", kind="Service")
ENDPOINTSLICES = Resource("discovery.k8s.io", "v1", "endpointslices", kind="EndpointSlice")

DEBOUNCE = 0.2  # seconds of quiet gathered before a pass
RESYNC = 30.0  # a pass at least this often, changes or not
MAX_BACKOFF = 30.0


class ServiceProxy:
    """Keeps one node's proxy table in step with the cluster's Services and EndpointSlices.

    `node_config` is asked on every pass (node addresses and pod CIDRs may change), `apply`
    writes a rendering (`Proxy(netns).sync`) and runs in a thread: it blocks on `nft`."""

    def __init__(self, services: Informer, slices: Informer, node_config: Callable[[], NodeConfig],
                 apply: Callable[[Ruleset], list[str]], *, debounce: float = DEBOUNCE, resync: float = RESYNC,
                 max_backoff: float = MAX_BACKOFF,
                 adjust_services: Callable[[list[Any]], list[Any]] | None = None) -> None:
        self.services = services
        self.adjust_services = adjust_services
        self.slices = slices
        self.node_config = node_config
        self.apply = apply
        self.debounce = debounce
        self.resync = resync
        self.max_backoff = max_backoff
        self.dirty = asyncio.Event()
        self.passes = 0  # successful passes (for tests and diagnostics)
        self.failures = 0  # consecutive failed passes
        self._problems: tuple[str, ...] = ()
        self._renderer = Renderer()
        for informer in (services, slices):
            informer.add_handler(self.mark_dirty, self.mark_dirty, self.mark_dirty)

    def mark_dirty(self, *_objects: Any) -> None:
        """An informer handler (add, update or delete alike): only records that a pass is due."""
        self.dirty.set()

    def render(self) -> Ruleset:
        services = list(self.services.cache)
        if self.adjust_services is not None:
            services = self.adjust_services(services)
        return self._renderer.render(self.node_config(), services, list(self.slices.cache))

    async def sync_once(self) -> list[str]:
        rs = self.render()  # on the event loop: the caches are only changed there
        if rs.problems != self._problems:
            for problem in rs.problems:
                if problem not in self._problems:
                    log.warning("service proxy: %s", problem)
            self._problems = rs.problems
        return await asyncio.to_thread(self.apply, rs)

    async def run(self) -> None:
        """Pass after pass until cancelled."""
        await self.services.wait_synced()
        await self.slices.wait_synced()
        self.dirty.set()
        while True:
            wait = self.resync if not self.failures else min(0.5 * 2 ** min(self.failures - 1, 8), self.max_backoff)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.dirty.wait(), wait)
            await asyncio.sleep(self.debounce)  # let the rest of a burst arrive
            self.dirty.clear()  # events from here on make another pass
            try:
                await self.sync_once()
            except asyncio.CancelledError:
                raise
            except Exception as e:
                self.failures += 1
                # nft's own complaint says it all; anything else deserves its traceback.
                log.warning("service proxy sync failed (%d in a row), retrying: %s", self.failures, e,
                            exc_info=not isinstance(e, ProxyApplyError))
            else:
                self.failures = 0
                self.passes += 1
