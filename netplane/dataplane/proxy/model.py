"""Services and EndpointSlices (plain dicts, as the API serves them) -> typed service ports.

Everything the renderer puts into rule text passes through here first: addresses
become `ipaddress` objects (endpoint addresses: strings that are exactly what the C
library prints for the address it parsed -- a service has many endpoints, and
`ipaddress` would be most of a full rendering's time), ports ints, protocols a closed
enum, and object names are accepted only in their DNS-label form, so nothing a user
writes can reach the nft parser as syntax. Bad objects are reported in `problems` and skipped; one
broken Service never hides the others.
"""

from __future__ import annotations

import functools
import hashlib
import ipaddress
import re
import socket
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, NamedTuple

IPv4 = ipaddress.IPv4Address
PROTOCOLS = {"TCP": "tcp", "UDP": "udp", "SCTP": "sctp"}
DNS_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?")
SERVICE_NAME_LABEL = "kubernetes.io/service-name"
DEFAULT_AFFINITY_TIMEOUT = 10800  # Kubernetes' default for sessionAffinityConfig.clientIP.timeoutSeconds


class Endpoint(NamedTuple):
    ip: str  # dotted quad, canonical (`_ipv4_text`)
    port: int
    node: str  # "" when the slice does not say
    ready: bool
    serving: bool
    terminating: bool


@dataclass(frozen=True)
class ServicePort:
    namespace: str
    name: str
    port_name: str
    protocol: str  # "tcp" | "udp" | "sctp"
    port: int
    cluster_ips: tuple[IPv4, ...]
    node_port: int | None
    external_ips: tuple[IPv4, ...]  # spec.externalIPs + status.loadBalancer.ingress[].ip
    source_ranges: tuple[ipaddress.IPv4Network, ...]  # loadBalancerSourceRanges
    external_local: bool  # externalTrafficPolicy: Local
    internal_local: bool  # internalTrafficPolicy: Local
    affinity_timeout: int | None  # seconds, when sessionAffinity is ClientIP
    endpoints: tuple[Endpoint, ...]

    @functools.cached_property
    def token(self) -> str:
        """The part of chain names that identifies this port: a hash (names may be long, and
        `a-b`/`c` vs `a`/`b-c` must not collide) plus the readable, already validated names."""
        key = f"{self.namespace}/{self.name}/{self.protocol}/{self.port_name or self.port}"
        digest = hashlib.sha256(key.encode()).hexdigest()[:8]
        return f"{digest}-{self.namespace}-{self.name}-{self.protocol}-{self.port_name or self.port}"


def _ipv4(value: Any) -> IPv4 | None:
    try:
        return IPv4(value) if isinstance(value, str) else None
    except ValueError:
        return None


def _ipv4_text(value: Any) -> str | None:
    """`value` if it is an IPv4 address written the one canonical way, else None."""
    if not isinstance(value, str):
        return None
    try:
        return value if socket.inet_ntop(socket.AF_INET, socket.inet_pton(socket.AF_INET, value)) == value else None
    except OSError:
        return None


def _port(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) and 1 <= value <= 65535 else None


def _endpoints_for(slices: Iterable[Mapping[str, Any]], port_name: str, protocol: str) -> list[Endpoint]:
    found: dict[tuple[str, int], Endpoint] = {}
    for es in slices:
        if es.get("addressType", "IPv4") != "IPv4":
            continue
        port = None
        for p in es.get("ports") or []:
            if (p.get("name") or "") == port_name and p.get("protocol", "TCP") == protocol:
                port = _port(p.get("port"))
        if port is None:
            continue
        for ep in es.get("endpoints") or []:
            addresses = ep.get("addresses") or []
            ip = _ipv4_text(addresses[0]) if addresses else None
            if ip is None:
                continue
            cond = ep.get("conditions") or {}
            ready = cond.get("ready") is not False  # unset means ready (API semantics)
            terminating = cond.get("terminating") is True
            serving = cond.get("serving", ready) is not False
            node = ep.get("nodeName") or ""
            # The same address can sit in two slices while the controller moves it; keep one.
            found.setdefault((ip, port), Endpoint(ip, port, node if isinstance(node, str) else "", ready, serving,
                                                  terminating))
    return sorted(found.values())


def service_ports(svc: Mapping[str, Any], slices: Iterable[Mapping[str, Any]],
                  problems: list[str]) -> list[ServicePort]:
    """The proxied ports of one Service, given the EndpointSlices of that Service."""
    slices = list(slices)
    meta, spec = svc.get("metadata") or {}, svc.get("spec") or {}
    ns, name = meta.get("namespace") or "", meta.get("name") or ""
    what = f"service {ns}/{name}"
    if not (isinstance(ns, str) and isinstance(name, str)
            and DNS_LABEL.fullmatch(ns) and DNS_LABEL.fullmatch(name)):
        problems.append(f"{what}: namespace and name must be DNS labels")
        return []
    stype = spec.get("type", "ClusterIP")
    if stype == "ExternalName":
        return []
    raw_ips = spec.get("clusterIPs") or ([spec["clusterIP"]] if spec.get("clusterIP") else [])
    if raw_ips and raw_ips[0] == "None":
        return []  # headless: DNS only, nothing to proxy
    cluster_ips = tuple(ip for ip in (_ipv4(v) for v in raw_ips) if ip is not None)
    external = [_ipv4(v) for v in spec.get("externalIPs") or []]
    if stype == "LoadBalancer":
        external += [_ipv4(i.get("ip")) for i in ((svc.get("status") or {}).get("loadBalancer") or {}).get(
            "ingress") or [] if i.get("ip")]
    ranges: list[ipaddress.IPv4Network] = []
    for r in spec.get("loadBalancerSourceRanges") or []:
        try:
            ranges.append(ipaddress.IPv4Network(str(r).strip(), strict=False))
        except ValueError:
            problems.append(f"{what}: loadBalancerSourceRanges entry {r!r} is not an IPv4 CIDR (ignored)")
    affinity = None
    if spec.get("sessionAffinity") == "ClientIP":
        timeout = ((spec.get("sessionAffinityConfig") or {}).get("clientIP") or {}).get("timeoutSeconds")
        valid = isinstance(timeout, int) and not isinstance(timeout, bool) and 0 < timeout <= 86400
        affinity = timeout if valid else DEFAULT_AFFINITY_TIMEOUT
    out: list[ServicePort] = []
    for p in spec.get("ports") or []:
        port, protocol, pname = _port(p.get("port")), p.get("protocol", "TCP"), p.get("name") or ""
        if port is None or protocol not in PROTOCOLS or not isinstance(pname, str) or (
                pname and not DNS_LABEL.fullmatch(pname)):
            problems.append(f"{what}: port {p!r} is invalid (skipped)")
            continue
        node_port = _port(p.get("nodePort")) if stype in ("NodePort", "LoadBalancer") else None
        out.append(ServicePort(
            namespace=ns, name=name, port_name=pname, protocol=PROTOCOLS[protocol], port=port,
            cluster_ips=cluster_ips, node_port=node_port,
            external_ips=tuple(sorted({ip for ip in external if ip is not None})),
            source_ranges=tuple(sorted(set(ranges))),
            external_local=spec.get("externalTrafficPolicy") == "Local",
            internal_local=spec.get("internalTrafficPolicy") == "Local",
            affinity_timeout=affinity,
            endpoints=tuple(_endpoints_for(slices, pname, protocol))))
    return sorted(out, key=lambda sp: (sp.protocol, sp.port_name, sp.port))
