"""Endpoints and EndpointSlices for Services with a selector, as kube-controller-manager keeps them.

    Service (selector) ─┐                 ┌─▶ Endpoints <svc>            (subsets: ready / not ready)
    Pods (same ns) ─────┴─▶ pure core ────┴─▶ EndpointSlices <svc>-xxxxx (≤100 endpoints, per
                             (core, subsets, slices)                       address type and port set)

Services without a selector are the user's: their Endpoints and EndpointSlices are never touched.
ExternalName Services get none. Slices carry a controller owner reference to their Service.
"""

from __future__ import annotations

from netplane.controllers.endpoints.controllers import (
    ENDPOINTS,
    ENDPOINTSLICES,
    SERVICES,
    SLICE_SERVICE_INDEX,
    EndpointsController,
    EndpointSliceController,
    services_selecting,
    slice_service_key,
)
from netplane.controllers.runtime.controller import own_key
from netplane.controllers.runtime.manager import Manager
from netplane.controllers.workloads.kinds import PODS


def setup(mgr: Manager) -> None:
    services = mgr.informer(SERVICES)
    pods = mgr.informer(PODS)
    endpoints = mgr.informer(ENDPOINTS)
    slice_informer = mgr.informer(ENDPOINTSLICES, indexers={SLICE_SERVICE_INDEX: slice_service_key})
    by_pod = services_selecting(services)

    ep = mgr.controller("endpoints", EndpointsController(mgr.client, services, pods, endpoints).reconcile)
    ep.watch(services)
    ep.watch(pods, by_pod)
    ep.watch(endpoints, own_key)

    eps = mgr.controller("endpointslice",
                         EndpointSliceController(mgr.client, services, pods, slice_informer).reconcile)
    eps.watch(services)
    eps.watch(pods, by_pod)
    eps.watch(slice_informer, slice_service_key)


__all__ = ["ENDPOINTS", "ENDPOINTSLICES", "SERVICES", "setup"]
