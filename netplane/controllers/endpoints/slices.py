"""A Service's desired EndpointSlices, planned against the slices it already has.

As kube-controller-manager's endpointslice reconciler: endpoints are grouped by address type and
by the exact set of ports their pod offers (a pod lacking a named targetPort lands in a slice
without that port); each slice holds at most 100 endpoints. To keep writes minimal and names
stable, existing slices are kept and edited in place: an endpoint stays in the slice it is in,
vanished endpoints are removed, new ones first fill slices that are being rewritten anyway, then
one unchanged slice with room for all of them, and only then go to new slices. A Service with no
endpoints keeps one empty placeholder slice, as Kubernetes does.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from netplane.controllers.endpoints import core
from netplane.controllers.endpoints.core import Obj, Port

SERVICE_NAME = "kubernetes.io/service-name"
MANAGED_BY = "endpointslice.kubernetes.io/managed-by"
CONTROLLER = "endpointslice-controller.k8s.io"
MAX_ENDPOINTS = 100

PortKey = tuple[Port, ...]
EndpointKey = tuple[str, str]


@dataclass
class Plan:
    create: list[Obj] = field(default_factory=list)
    update: list[Obj] = field(default_factory=list)
    delete: list[Obj] = field(default_factory=list)

    @property
    def empty(self) -> bool:
        return not (self.create or self.update or self.delete)


def labels(service: Obj) -> dict[str, str]:
    out = core.service_labels(service, (SERVICE_NAME, MANAGED_BY))
    out[SERVICE_NAME] = core.meta(service)["name"]
    out[MANAGED_BY] = CONTROLLER
    return out


def _endpoint(service: Obj, pod: Obj, ip: str) -> Obj:
    is_ready = core.ready(pod)
    publish = bool(core.spec(service).get("publishNotReadyAddresses"))
    terminating = core.terminating(pod)
    # A terminating pod is never "ready" (old consumers read ready as "send traffic"), but may still
    # be serving; publishNotReadyAddresses overrides both, as in Kubernetes.
    endpoint: Obj = {"addresses": [ip],
                     "conditions": {"ready": publish or (is_ready and not terminating),
                                    "serving": publish or is_ready, "terminating": terminating},
                     "targetRef": core.target_ref(pod)}
    node = core.spec(pod).get("nodeName")
    if node:
        endpoint["nodeName"] = node
    host = core.hostname(service, pod)
    if host:
        endpoint["hostname"] = host
    return endpoint


def _endpoint_key(endpoint: Obj) -> EndpointKey:
    ref = endpoint.get("targetRef") or {}
    return (str((endpoint.get("addresses") or [""])[0]), str(ref.get("uid") or ref.get("name") or ""))


def _port_key(ports: Any) -> PortKey:
    return tuple(Port(str(p.get("name") or ""), int(p.get("port") or 0), str(p.get("protocol") or "TCP"),
                      p.get("appProtocol") or None) for p in ports or [])


def desired_endpoints(service: Obj, pods: Iterable[Obj]) -> dict[str, dict[PortKey, dict[EndpointKey, Obj]]]:
    """address type → port set → endpoint key → endpoint; terminating pods included, as Kubernetes does."""
    chosen = [p for p in core.sorted_pods(pods) if core.selects(service, p) and core.eligible(p, True)]
    out: dict[str, dict[PortKey, dict[EndpointKey, Obj]]] = {}
    for address_type in core.address_types(service, chosen):
        groups = out.setdefault(address_type, {})
        for pod in chosen:
            ip = core.pod_ip(pod, address_type)
            if ip is None:
                continue
            endpoint = _endpoint(service, pod, ip)
            groups.setdefault(tuple(core.pod_ports(service, pod)), {})[_endpoint_key(endpoint)] = endpoint
    return out


def _new_slice(service: Obj, address_type: str, ports: PortKey, endpoints: list[Obj]) -> Obj:
    m = core.meta(service)
    return {"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
            "metadata": {"generateName": f"{m['name']}-", "namespace": m["namespace"], "labels": labels(service),
                         "ownerReferences": [core.owner_reference(service)]},
            "addressType": address_type, "endpoints": endpoints, "ports": [p.slice_form() for p in ports]}


def owned_by(slice_: Obj, service: Obj) -> bool:
    uid = core.meta(service).get("uid")
    return any(r.get("uid") == uid for r in core.meta(slice_).get("ownerReferences") or [])


@dataclass
class _Working:
    obj: Obj
    endpoints: list[Obj]
    changed: bool


def plan(service: Obj, pods: Iterable[Obj], existing: Iterable[Obj], max_endpoints: int = MAX_ENDPOINTS) -> Plan:
    """Creates, updates and deletes that make `existing` (this Service's managed slices) match the pods."""
    result = Plan()
    existing = list(existing)
    want = desired_endpoints(service, pods) if core.managed(service) else {}
    want_labels = labels(service)
    placeholder: Obj | None = None
    for slice_ in sorted(existing, key=lambda s: str(core.meta(s).get("name") or "")):
        if core.meta(slice_).get("deletionTimestamp"):
            continue
        if not owned_by(slice_, service) or slice_.get("addressType") not in want:
            result.delete.append(slice_)
        elif not slice_.get("endpoints") and not slice_.get("ports") and placeholder is None:
            placeholder = slice_  # decided at the end: kept, reused or deleted
    gone = {id(s) for s in result.delete}
    kept = [s for s in existing if id(s) not in gone and s is not placeholder
            and not core.meta(s).get("deletionTimestamp")]
    for address_type, groups in want.items():
        _plan_type(service, address_type, groups, [s for s in kept if s.get("addressType") == address_type],
                   want_labels, max_endpoints, result)
    gone = {id(s) for s in result.delete}
    survivors = bool(result.create) or any(id(s) not in gone for s in kept)
    _place_placeholder(service, want, placeholder, survivors, result)
    return result


def _plan_type(service: Obj, address_type: str, groups: dict[PortKey, dict[EndpointKey, Obj]],
               existing: list[Obj], want_labels: dict[str, str], max_endpoints: int, result: Plan) -> None:
    placed: set[tuple[PortKey, EndpointKey]] = set()
    working: dict[PortKey, list[_Working]] = {}
    for slice_ in sorted(existing, key=lambda s: str(core.meta(s).get("name") or "")):
        key = _port_key(slice_.get("ports"))
        group = groups.get(key)
        if group is None:
            result.delete.append(slice_)
            continue
        endpoints: list[Obj] = []
        changed = (core.meta(slice_).get("labels") or {}) != want_labels
        for endpoint in slice_.get("endpoints") or []:
            ek = _endpoint_key(endpoint)
            if ek in group and (key, ek) not in placed and len(endpoints) < max_endpoints:
                endpoints.append(group[ek])
                placed.add((key, ek))
                changed = changed or group[ek] != endpoint
            else:
                changed = True
        if not endpoints:
            result.delete.append(slice_)
            continue
        working.setdefault(key, []).append(_Working(slice_, endpoints, changed))
    for key, group in groups.items():
        remaining = [e for ek, e in group.items() if (key, ek) not in placed]
        slices = working.get(key, [])
        # First into slices that are rewritten anyway (fullest first, so slices stay packed) …
        for w in sorted((w for w in slices if w.changed), key=lambda w: -len(w.endpoints)):
            room = max_endpoints - len(w.endpoints)
            if remaining and room > 0:
                w.endpoints.extend(remaining[:room])
                remaining = remaining[room:]
        # … then into one unchanged slice that can take them all (one write either way) …
        if remaining:
            fits = [w for w in slices if not w.changed and max_endpoints - len(w.endpoints) >= len(remaining)]
            if fits:
                w = max(fits, key=lambda w: len(w.endpoints))
                w.endpoints.extend(remaining)
                w.changed = True
                remaining = []
        # … and only then into new slices.
        for start in range(0, len(remaining), max_endpoints):
            result.create.append(_new_slice(service, address_type, key, remaining[start:start + max_endpoints]))
        for w in slices:
            if w.changed:
                obj = copy.deepcopy(w.obj)
                obj["metadata"]["labels"] = dict(want_labels)
                obj["endpoints"] = w.endpoints
                result.update.append(obj)


def _place_placeholder(service: Obj, want: dict[str, Any], placeholder: Obj | None, survivors: bool,
                       result: Plan) -> None:
    """Keep exactly one empty slice while the Service has no other; reuse it for the first new slice."""
    if not want:  # the Service is no longer managed: nothing of ours stays
        if placeholder is not None:
            result.delete.append(placeholder)
        return
    if survivors:
        if placeholder is None:
            return
        same_type = [c for c in result.create if c.get("addressType") == placeholder.get("addressType")]
        if same_type:
            # Turn the placeholder into the first new slice: one update instead of a create and a delete.
            first = same_type[0]
            result.create.remove(first)
            obj = copy.deepcopy(placeholder)
            obj["metadata"]["labels"] = first["metadata"]["labels"]
            obj["endpoints"], obj["ports"] = first["endpoints"], first["ports"]
            result.update.append(obj)
        else:
            result.delete.append(placeholder)
        return
    fresh = _new_slice(service, next(iter(want)), (), [])
    if placeholder is None:
        result.create.append(fresh)
    elif placeholder.get("addressType") != fresh["addressType"]:
        result.delete.append(placeholder)  # addressType is immutable
        result.create.append(fresh)
    elif (core.meta(placeholder).get("labels") or {}) != fresh["metadata"]["labels"]:
        obj = copy.deepcopy(placeholder)
        obj["metadata"]["labels"] = fresh["metadata"]["labels"]
        result.update.append(obj)
