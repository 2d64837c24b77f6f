"""The Endpoints and EndpointSlice controllers: read Services, pods and what exists from caches,
compute the desired objects with the pure core (`subsets`, `slices`), and write only differences.

Both reconcile one Service key (`namespace/name`). Pods wake the Services that select them (before
or after a label change); Endpoints and managed EndpointSlices wake their Service, so a deleted or
hand-edited object is put back.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from typing import Any

from netplane.controllers.endpoints import core, slices, subsets
from netplane.controllers.kube.client import Client
from netplane.controllers.kube.errors import AlreadyExists, Conflict, NotFound
from netplane.controllers.kube.resources import Resource
from netplane.controllers.runtime.cache import NAMESPACE_INDEX, object_key, split_key
from netplane.controllers.runtime.controller import Result
from netplane.controllers.runtime.informer import Informer

log = logging.getLogger("netplane.endpoints")

Obj = dict[str, Any]

SERVICES = Resource("", "v1", "services", kind="Service")
ENDPOINTS = Resource("", "v1", "endpoints", kind="Endpoints")
ENDPOINTSLICES = Resource("discovery.k8s.io", "v1", "endpointslices", kind="EndpointSlice")

SLICE_SERVICE_INDEX = "endpointslice-service"
# A slice we created but have not yet seen in the cache: looked for again this soon, and forgotten
# after a while (it may have been deleted before its ADDED event was ever seen).
PENDING_RECHECK = 0.1
PENDING_TTL = 30.0


def slice_service_key(obj: Obj) -> list[str]:
    """`namespace/service` of a slice this controller manages (user-made slices are not indexed)."""
    m = core.meta(obj)
    labels = m.get("labels") or {}
    if labels.get(slices.MANAGED_BY) != slices.CONTROLLER or not labels.get(slices.SERVICE_NAME):
        return []
    return [f"{m.get('namespace')}/{labels[slices.SERVICE_NAME]}"]


def services_selecting(services: Informer) -> Any:
    """Mapper: a pod → the keys of the Services in its namespace whose selector matches it."""
    def mapper(pod: Obj) -> list[str]:
        namespace = core.meta(pod).get("namespace")
        if not namespace:
            return []
        return [object_key(s) for s in services.cache.by_index(NAMESPACE_INDEX, str(namespace))
                if core.selects(s, pod)]
    return mapper


class EndpointsController:
    def __init__(self, client: Client, services: Informer, pods: Informer, endpoints: Informer):
        self.client = client
        self.services = services
        self.pods = pods
        self.endpoints = endpoints

    async def reconcile(self, key: str) -> Result:
        namespace, _ = split_key(key)
        service = self.services.cache.get(key)
        current = self.endpoints.cache.get(key)
        if service is None or core.spec(service).get("type") == "ExternalName":
            # Only what this controller made is removed; someone's hand-written Endpoints stay.
            if current is not None and (core.meta(current).get("labels") or {}).get(subsets.SKIP_MIRROR) == "true":
                with contextlib.suppress(NotFound):
                    await self.client.delete(ENDPOINTS, core.meta(current)["name"], namespace,
                                             uid=core.meta(current).get("uid"))
            return Result()
        if not core.selector(service):
            return Result()  # no selector: the user writes this Service's Endpoints
        want = subsets.desired(service, self.pods.cache.by_index(NAMESPACE_INDEX, str(namespace)))
        if current is not None and subsets.up_to_date(current, want):
            return Result()
        obj = subsets.apply(current, service, want)
        if current is None:
            try:
                await self.client.create(ENDPOINTS, obj)
            except AlreadyExists as e:
                raise Conflict(e.status) from e  # the cache is behind: retried quietly
        else:
            await self.client.update(ENDPOINTS, obj)
        return Result()


class EndpointSliceController:
    def __init__(self, client: Client, services: Informer, pods: Informer, slice_informer: Informer):
        self.client = client
        self.services = services
        self.pods = pods
        self.slices = slice_informer
        # Service key → names of slices created but not yet seen in the cache, with when.
        self._pending: dict[str, dict[str, float]] = {}
        slice_informer.add_handler(self._seen, lambda _old, new: self._seen(new), self._seen)

    def _seen(self, obj: Obj) -> None:
        for key in slice_service_key(obj):
            pending = self._pending.get(key)
            if pending is not None:
                pending.pop(str(core.meta(obj).get("name")), None)
                if not pending:
                    del self._pending[key]

    async def reconcile(self, key: str) -> Result:
        if self._waiting(key):
            # Planning now would not see the slice just created, and would create it a second time.
            return Result(requeue_after=PENDING_RECHECK)
        namespace, _ = split_key(key)
        existing = self.slices.cache.by_index(SLICE_SERVICE_INDEX, key)
        service = self.services.cache.get(key)
        if service is None:
            # The garbage collector follows the owner references too; deleting here is just quicker.
            plan = slices.Plan(delete=list(existing))
        elif not core.selector(service):
            return Result()  # a Service without a selector: its slices are the user's
        else:
            pods = self.pods.cache.by_index(NAMESPACE_INDEX, str(namespace))
            plan = slices.plan(service, pods, existing)
        if plan.empty:
            return Result()
        await self._write(key, plan)
        return Result()

    def _waiting(self, key: str) -> bool:
        pending = self._pending.get(key)
        if not pending:
            return False
        now = time.monotonic()
        for name, since in list(pending.items()):
            if now - since > PENDING_TTL:
                del pending[name]
        if not pending:
            del self._pending[key]
        return bool(pending)

    async def _write(self, key: str, plan: slices.Plan) -> None:
        async def delete(obj: Obj) -> None:
            m = core.meta(obj)
            with contextlib.suppress(NotFound):
                await self.client.delete(ENDPOINTSLICES, m["name"], m["namespace"], uid=m.get("uid"))

        # Updates are full replaces carrying the cached resourceVersion: a stale one is a Conflict.
        await asyncio.gather(*(self.client.update(ENDPOINTSLICES, obj) for obj in plan.update))
        for obj in plan.create:
            created = await self.client.create(ENDPOINTSLICES, obj)
            name = str(core.meta(created).get("name"))
            if name not in self.slices.cache:
                self._pending.setdefault(key, {})[name] = time.monotonic()
        # Deleted last, so endpoints moving between slices are never missing in between.
        await asyncio.gather(*(delete(obj) for obj in plan.delete))
