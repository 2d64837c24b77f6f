"""What the zone knows: Services, EndpointSlices and host aliases reduced to the fields DNS uses.

Every update returns the *scopes* it touched so the answer cache can drop exactly the entries
that consulted them:

- ``("svc", ns, name)``: anything under ``name.ns.svc.<zone>`` (the Service and its slices);
- ``("ns", ns, "")``: whether ``ns.svc.<zone>`` exists (it does while the namespace has a Service);
- ``("ip", addr, "")``: the PTR answer for one address.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from .wire import IP, Name, parse_ip, to_name

Obj = dict[str, Any]
Scope = tuple[str, str, str]
Key = tuple[str, str]

SERVICE_NAME_LABEL = "kubernetes.io/service-name"
NO_PORT = -1  # a slice without ports still publishes addresses (A records) but no SRV


@dataclass(frozen=True, slots=True)
class Port:
    name: str
    protocol: str
    port: int


@dataclass(frozen=True, slots=True)
class ServiceInfo:
    namespace: str
    name: str
    kind: Literal["clusterip", "headless", "external"]
    cluster_ips: tuple[IP, ...]
    ports: tuple[Port, ...]
    external_name: Name | None
    publish_not_ready: bool


@dataclass(frozen=True, slots=True)
class Endpoint:
    ip: IP
    hostname: str  # the endpoint's hostname, else the dashed address
    ready: bool


@dataclass(frozen=True, slots=True)
class SliceInfo:
    namespace: str
    name: str
    service: str
    ports: tuple[Port, ...]
    endpoints: tuple[Endpoint, ...]


@dataclass(frozen=True, slots=True)
class AliasAddresses:
    v4: tuple[IP, ...]
    v6: tuple[IP, ...]


def dashed(ip: IP) -> str:
    """The hostname CoreDNS gives an endpoint without one: 172-0-0-2, 5678-abcd--1."""
    text = str(ip).replace(".", "-").replace(":", "-")
    return text + "0" if text.endswith("-") else text


def _is_label(text: str) -> bool:
    return 0 < len(text) <= 63 and text.isascii() and "." not in text


def _meta(obj: Obj) -> tuple[str, str] | None:
    meta = obj.get("metadata")
    if not isinstance(meta, dict):
        return None
    name, namespace = meta.get("name"), meta.get("namespace") or "default"
    if not isinstance(name, str) or not name or not isinstance(namespace, str):
        return None
    return namespace.lower(), name.lower()


def _ports(raw: object) -> tuple[Port, ...]:
    if not isinstance(raw, list):
        return ()
    ports = []
    for p in raw:
        if not isinstance(p, dict):
            continue
        number = p.get("port")
        ports.append(Port(name=str(p.get("name") or "").lower(),
                          protocol=str(p.get("protocol") or "TCP").lower(),
                          port=number if isinstance(number, int) else NO_PORT))
    return tuple(ports)


def parse_service(obj: Obj) -> ServiceInfo | None:
    ident = _meta(obj)
    if ident is None:
        return None
    spec = obj.get("spec")
    spec = spec if isinstance(spec, dict) else {}
    ports = _ports(spec.get("ports"))
    publish = bool(spec.get("publishNotReadyAddresses"))
    if spec.get("type") == "ExternalName":
        raw = spec.get("externalName")
        # CoreDNS answers nothing for an address-shaped externalName: it is not a CNAME target.
        target = to_name(raw) if isinstance(raw, str) and parse_ip(raw.rstrip(".")) is None else None
        return ServiceInfo(*ident, "external", (), ports, target, publish)
    raw_ips = spec.get("clusterIPs") or ([spec["clusterIP"]] if spec.get("clusterIP") else [])
    if not isinstance(raw_ips, list):
        raw_ips = []
    if "None" in raw_ips:
        return ServiceInfo(*ident, "headless", (), ports, None, publish)
    ips = tuple(ip for ip in map(parse_ip, raw_ips) if ip is not None)
    return ServiceInfo(*ident, "clusterip", ips, ports, None, publish)


def parse_slice(obj: Obj) -> SliceInfo | None:
    ident = _meta(obj)
    if ident is None:
        return None
    labels = obj["metadata"].get("labels")
    service = labels.get(SERVICE_NAME_LABEL) if isinstance(labels, dict) else None
    if not isinstance(service, str) or not service or obj.get("addressType") == "FQDN":
        return None
    endpoints = []
    raw_endpoints = obj.get("endpoints")
    for ep in raw_endpoints if isinstance(raw_endpoints, list) else ():
        if not isinstance(ep, dict):
            continue
        conditions = ep.get("conditions")
        ready = conditions.get("ready") if isinstance(conditions, dict) else None
        hostname = ep.get("hostname")
        addresses = ep.get("addresses")
        for address in addresses if isinstance(addresses, list) else ():
            ip = parse_ip(address)
            if ip is None:
                continue
            host = hostname.lower() if isinstance(hostname, str) and _is_label(hostname) else dashed(ip)
            endpoints.append(Endpoint(ip, host, ready is None or bool(ready)))
    ports = _ports(obj.get("ports")) or (Port("", "", NO_PORT),)
    return SliceInfo(ident[0], ident[1], service.lower(), ports, tuple(endpoints))


def _ip_scopes(ips: Iterable[IP]) -> set[Scope]:
    return {("ip", str(ip), "") for ip in ips}


class ClusterRecords:
    """Indexes over the Services, slices and aliases; no DNS encoding happens here."""

    def __init__(self) -> None:
        self.services: dict[Key, ServiceInfo] = {}
        self.slices: dict[Key, SliceInfo] = {}
        self.slices_by_service: dict[Key, dict[str, SliceInfo]] = {}
        self.namespace_services: dict[str, int] = {}
        self.cluster_ip_owners: dict[IP, set[Key]] = {}
        self.endpoint_ip_slices: dict[IP, set[Key]] = {}
        self.alias_names: dict[Name, AliasAddresses] = {}
        self.alias_ips: dict[IP, tuple[Name, ...]] = {}

    def service_slices(self, namespace: str, service: str) -> list[SliceInfo]:
        by_name = self.slices_by_service.get((namespace, service))
        return [by_name[k] for k in sorted(by_name)] if by_name else []

    def _slice_ips(self, namespace: str, service: str) -> set[Scope]:
        return _ip_scopes(ep.ip for s in self.service_slices(namespace, service) for ep in s.endpoints)

    def set_service(self, info: ServiceInfo) -> set[Scope]:
        key = (info.namespace, info.name)
        old = self.services.get(key)
        if old == info:
            return set()
        scopes = self._drop_service(key) if old is not None else set()
        self.services[key] = info
        count = self.namespace_services.get(info.namespace, 0)
        self.namespace_services[info.namespace] = count + 1
        if count == 0:
            scopes.add(("ns", info.namespace, ""))
        for ip in info.cluster_ips:
            self.cluster_ip_owners.setdefault(ip, set()).add(key)
        scopes |= _ip_scopes(info.cluster_ips)
        scopes |= self._slice_ips(*key)
        scopes.add(("svc", *key))
        return scopes

    def delete_service(self, namespace: str, name: str) -> set[Scope]:
        key = (namespace, name)
        return self._drop_service(key) if key in self.services else set()

    def _drop_service(self, key: Key) -> set[Scope]:
        info = self.services.pop(key)
        scopes: set[Scope] = {("svc", *key)}
        count = self.namespace_services.pop(info.namespace) - 1
        if count:
            self.namespace_services[info.namespace] = count
        else:
            scopes.add(("ns", info.namespace, ""))
        for ip in info.cluster_ips:
            owners = self.cluster_ip_owners[ip]
            owners.discard(key)
            if not owners:
                del self.cluster_ip_owners[ip]
        scopes |= _ip_scopes(info.cluster_ips)
        scopes |= self._slice_ips(*key)
        return scopes

    def set_slice(self, info: SliceInfo) -> set[Scope]:
        key = (info.namespace, info.name)
        old = self.slices.get(key)
        if old == info:
            return set()
        scopes = self._drop_slice(key) if old is not None else set()
        self.slices[key] = info
        self.slices_by_service.setdefault((info.namespace, info.service), {})[info.name] = info
        for ep in info.endpoints:
            self.endpoint_ip_slices.setdefault(ep.ip, set()).add(key)
        scopes |= _ip_scopes(ep.ip for ep in info.endpoints)
        scopes.add(("svc", info.namespace, info.service))
        return scopes

    def delete_slice(self, namespace: str, name: str) -> set[Scope]:
        key = (namespace, name)
        return self._drop_slice(key) if key in self.slices else set()

    def _drop_slice(self, key: Key) -> set[Scope]:
        info = self.slices.pop(key)
        owner = (info.namespace, info.service)
        siblings = self.slices_by_service[owner]
        del siblings[info.name]
        if not siblings:
            del self.slices_by_service[owner]
        for ep in info.endpoints:
            holders = self.endpoint_ip_slices.get(ep.ip)
            if holders is not None:
                holders.discard(key)
                if not holders:
                    del self.endpoint_ip_slices[ep.ip]
        scopes = _ip_scopes(ep.ip for ep in info.endpoints)
        scopes.add(("svc", *owner))
        return scopes

    def set_aliases(self, aliases: Sequence[tuple[str, Sequence[str]]]) -> None:
        names: dict[Name, tuple[list[IP], list[IP]]] = {}
        by_ip: dict[IP, list[Name]] = {}
        for raw_ip, domains in aliases:
            ip = parse_ip(raw_ip)
            if ip is None:
                continue
            for domain in domains:
                name = to_name(domain)
                if name is None:
                    continue
                v4, v6 = names.setdefault(name, ([], []))
                family = v4 if isinstance(ip, ipaddress.IPv4Address) else v6
                if ip not in family:
                    family.append(ip)
                listed = by_ip.setdefault(ip, [])
                if name not in listed:
                    listed.append(name)
        self.alias_names = {n: AliasAddresses(tuple(v4), tuple(v6)) for n, (v4, v6) in names.items()}
        self.alias_ips = {ip: tuple(ns) for ip, ns in by_ip.items()}
