"""A Service's desired core/v1 Endpoints, as kube-controller-manager's endpoint controller builds it.

Each (pod, port) pair is collected first, then ports offered by exactly the same addresses (with
the same readiness) are packed into one subset, as Kubernetes' RepackSubsets does. So a pod that
lacks a named targetPort appears only in the subsets of the ports it has. Everything is sorted, so
the same pods always give the same object and an unchanged Service is never rewritten.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from netplane.controllers.endpoints import core
from netplane.controllers.endpoints.core import Obj, Port

SKIP_MIRROR = "endpointslice.kubernetes.io/skip-mirror"
OVER_CAPACITY = "endpoints.kubernetes.io/over-capacity"
MAX_ADDRESSES = 1000

# Stands for "no ports": a headless Service without ports still publishes its addresses.
_NO_PORT = Port("", -1, "")


@dataclass(frozen=True)
class Desired:
    labels: dict[str, str]
    subsets: list[Obj]
    truncated: bool


def _address_family(service: Obj) -> str | None:
    s = core.spec(service)
    if s.get("ipFamilies") or core.family_of(str(s.get("clusterIP") or "")):
        return core.address_types(service)[0]
    return None  # headless without families: each pod's first address, whatever its family


def _address(service: Obj, pod: Obj, ip: str) -> Obj:
    address: Obj = {"ip": ip, "targetRef": core.target_ref(pod)}
    node = core.spec(pod).get("nodeName")
    if node:
        address["nodeName"] = node
    host = core.hostname(service, pod)
    if host:
        address["hostname"] = host
    return address


def _address_key(address: Obj) -> tuple[str, str]:
    return str(address["ip"]), str(address["targetRef"].get("uid") or address["targetRef"].get("name"))


def desired(service: Obj, pods: Iterable[Obj]) -> Desired:
    """The labels and subsets the Service's Endpoints should have (pods: the namespace's pods)."""
    tolerate = bool(core.spec(service).get("publishNotReadyAddresses"))
    chosen = [p for p in core.sorted_pods(pods) if core.selects(service, p) and core.eligible(p, tolerate)]
    family = _address_family(service)
    service_ports = core.spec(service).get("ports") or []
    by_port: dict[Port, dict[tuple[str, str], tuple[Obj, bool]]] = {}
    for pod in chosen:
        ip = core.pod_ip(pod, family) if family else core.pod_ips(pod)[0]
        if ip is None:
            continue
        address = _address(service, pod, ip)
        is_ready = tolerate or core.ready(pod)
        ports = core.pod_ports(service, pod) if service_ports else [_NO_PORT]
        for port in ports:
            by_port.setdefault(port, {})[_address_key(address)] = (address, is_ready)
    # Ports served by the same addresses, each with the same readiness, share a subset.
    groups: dict[frozenset[tuple[tuple[str, str], bool]], list[Port]] = {}
    members: dict[frozenset[tuple[tuple[str, str], bool]], dict[tuple[str, str], tuple[Obj, bool]]] = {}
    for port, addresses in by_port.items():
        key = frozenset((k, r) for k, (_, r) in addresses.items())
        groups.setdefault(key, []).append(port)
        members[key] = addresses
    subsets = []
    for key, ports in groups.items():
        entries = sorted(members[key].items())
        subset: Obj = {}
        ready_addresses = [a for _, (a, r) in entries if r]
        not_ready = [a for _, (a, r) in entries if not r]
        if ready_addresses:
            subset["addresses"] = ready_addresses
        if not_ready:
            subset["notReadyAddresses"] = not_ready
        real_ports = sorted(p for p in ports if p != _NO_PORT)
        if real_ports:
            subset["ports"] = [p.endpoints_form() for p in real_ports]
        subsets.append(subset)
    subsets.sort(key=_subset_order)
    subsets, truncated = _truncate(subsets, MAX_ADDRESSES)
    labels = core.service_labels(service, (SKIP_MIRROR,))
    labels[SKIP_MIRROR] = "true"  # tells EndpointSlice mirroring this object is controller-made
    return Desired(labels, subsets, truncated)


def _subset_order(subset: Obj) -> tuple[Any, ...]:
    ports = [(p.get("name", ""), p["port"], p["protocol"]) for p in subset.get("ports") or []]
    first = (subset.get("addresses") or subset.get("notReadyAddresses") or [{"ip": ""}])[0]["ip"]
    return (ports, first)


def _truncate(subsets: list[Obj], limit: int) -> tuple[list[Obj], bool]:
    """Keep at most `limit` addresses, ready ones first, as Kubernetes caps Endpoints at 1000."""
    total = sum(len(s.get("addresses") or []) + len(s.get("notReadyAddresses") or []) for s in subsets)
    if total <= limit:
        return subsets, False
    budget = limit
    out = []
    for field in ("addresses", "notReadyAddresses"):
        for subset in subsets:
            taken = (subset.get(field) or [])[:budget]
            budget -= len(taken)
            subset[field] = taken
    for subset in subsets:
        for field in ("addresses", "notReadyAddresses"):
            if not subset[field]:
                del subset[field]
        if "addresses" in subset or "notReadyAddresses" in subset:
            out.append(subset)
    return out, True


def _normal_subsets(subsets: Any) -> list[Obj]:
    """Stored subsets in the form `desired` produces (the API defaults port protocols)."""
    out = []
    for subset in subsets or []:
        s = {k: v for k, v in subset.items() if v}
        if "ports" in s:
            s["ports"] = [{**p, "protocol": p.get("protocol") or "TCP"} for p in s["ports"]]
        out.append(s)
    return out


def up_to_date(current: Obj, want: Desired) -> bool:
    m = core.meta(current)
    annotations = m.get("annotations") or {}
    return _normal_subsets(current.get("subsets")) == want.subsets and (m.get("labels") or {}) == want.labels \
        and (annotations.get(OVER_CAPACITY) == "truncated") == want.truncated


def apply(current: Obj | None, service: Obj, want: Desired) -> Obj:
    """The object to write: `current` (copied) brought up to date, or a new one."""
    if current is None:
        obj: Obj = {"apiVersion": "v1", "kind": "Endpoints",
                    "metadata": {"name": core.meta(service)["name"], "namespace": core.meta(service)["namespace"]}}
    else:
        obj = {**current, "metadata": dict(core.meta(current))}
    m = obj["metadata"]
    m["labels"] = dict(want.labels)
    annotations = {k: v for k, v in (m.get("annotations") or {}).items() if k != OVER_CAPACITY}
    if want.truncated:
        annotations[OVER_CAPACITY] = "truncated"
    if annotations:
        m["annotations"] = annotations
    else:
        m.pop("annotations", None)
    obj["subsets"] = want.subsets
    return obj
