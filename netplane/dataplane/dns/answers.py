"""Authoritative answers for the cluster zone, following CoreDNS `kubernetes` (pods insecure) + `hosts`.

``Resolver.resolve`` maps (name, qtype) to an ``Answer`` (rcode + sections), a ``Chase`` (an
ExternalName whose target must be asked upstream) or ``FORWARD`` (not ours). While it works it
records in ``deps`` every scope it consulted, so a cached answer can be dropped when any of them
changes. ``encode`` turns an ``Answer`` into the header fields and the bytes that follow the
client's question.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from .records import NO_PORT, ClusterRecords, Port, Scope, ServiceInfo
from .wire import (
    AA,
    IP,
    NOERROR,
    NXDOMAIN,
    QR,
    RA,
    SERVFAIL,
    TYPE_A,
    TYPE_AAAA,
    TYPE_CNAME,
    TYPE_NS,
    TYPE_PTR,
    TYPE_SOA,
    TYPE_SRV,
    TYPE_TXT,
    Name,
    TailWriter,
    name_offsets,
    parse_ip,
    reverse_name_ip,
)

SCHEMA_VERSION = b"1.1.0"  # kubernetes/dns specification schema version
SCHEMA_TTL = 28800
SOA_REFRESH, SOA_RETRY, SOA_EXPIRE = 7200, 1800, 86400
MAX_SOA_TTL = 300
MAX_CHAIN = 8  # ExternalName -> ExternalName hops followed inside the zone before giving up
_POD_CHARS = frozenset(b"0123456789abcdef-")


@dataclass(frozen=True, slots=True)
class Address:
    ip: IP


@dataclass(frozen=True, slots=True)
class Target:
    name: Name


@dataclass(frozen=True, slots=True)
class Srv:
    priority: int
    weight: int
    port: int
    target: Name


@dataclass(frozen=True, slots=True)
class Soa:
    mname: Name
    rname: Name
    serial: int
    minimum: int


@dataclass(frozen=True, slots=True)
class Txt:
    strings: tuple[bytes, ...]


@dataclass(frozen=True, slots=True)
class RR:
    owner: Name
    rtype: int
    ttl: int
    rdata: Address | Target | Srv | Soa | Txt


@dataclass(frozen=True, slots=True)
class Answer:
    rcode: int
    answer: tuple[RR, ...] = ()
    authority: tuple[RR, ...] = ()
    additional: tuple[RR, ...] = ()


@dataclass(frozen=True, slots=True)
class Chase:
    """CNAMEs answered here whose last target lives outside: ask upstream for ``target``."""

    chain: tuple[RR, ...]
    target: Name


class Forward:
    """Not the zone's name: the client's query goes upstream unchanged."""


FORWARD: Final = Forward()


@dataclass(frozen=True, slots=True)
class _Item:
    ip: IP
    port: Port
    target: Name


def _strip_underscore(label: bytes) -> str:
    return (label[1:] if label.startswith(b"_") else label).decode("latin-1")


def _pod_ip(label: bytes) -> IP | None:
    """``10-240-0-1`` / ``fd00--1``: three dashes and no ``--`` means IPv4, as in CoreDNS."""
    if not label or not _POD_CHARS.issuperset(label):
        return None
    text = label.decode()
    if text.count("-") == 3 and "--" not in text:
        return parse_ip(text.replace("-", "."))
    return parse_ip(text.replace("-", ":"))


def _label(text: str) -> bytes:
    # API validation keeps object names ASCII; an odd character must not cost the whole answer.
    return text.encode("latin-1", "replace")


class Resolver:
    def __init__(self, records: ClusterRecords, zone: Name, ttl: int, serial: int,
                 nameservers: tuple[IP, ...], pods: str) -> None:
        self.records = records
        self.zone = zone
        self.ttl = ttl
        self.pods = pods
        self.nameservers = nameservers
        self.synced = False
        self.ns_name: Name = (b"ns", b"dns", *zone)
        self.soa = RR(zone, TYPE_SOA, min(ttl, MAX_SOA_TTL),
                      Soa(self.ns_name, (b"hostmaster", *zone), serial, ttl))

    def in_zone(self, name: Name) -> bool:
        return len(name) >= len(self.zone) and name[len(name) - len(self.zone):] == self.zone

    def resolve(self, name: Name, qtype: int, deps: set[Scope], depth: int = 0) -> Answer | Chase | Forward:
        alias = self.records.alias_names.get(name)
        if alias is not None:
            # The hosts plugin: an aliased name of another type is an empty NOERROR, without SOA.
            ips = alias.v4 if qtype == TYPE_A else alias.v6 if qtype == TYPE_AAAA else ()
            return Answer(NOERROR, tuple(RR(name, qtype, self.ttl, Address(ip)) for ip in ips))
        if self.in_zone(name):
            return self._zone(name, name[:len(name) - len(self.zone)], qtype, deps, depth)
        if qtype == TYPE_PTR:
            ip = reverse_name_ip(name)
            if ip is not None:
                answer = self._ptr(name, ip, deps)
                if answer is not None:
                    return answer
        return FORWARD

    def _nodata(self) -> Answer:
        return Answer(NOERROR, authority=(self.soa,))

    def _nxdomain(self) -> Answer:
        # Before the first full sync a missing name may simply not have arrived yet.
        return Answer(NXDOMAIN if self.synced else SERVFAIL, authority=(self.soa,))

    def _addresses(self, owner: Name, qtype: int, ips: tuple[IP, ...] | list[IP]) -> Answer:
        version = 4 if qtype == TYPE_A else 6
        rrs: list[RR] = []
        seen: set[IP] = set()
        for ip in ips:
            if ip.version == version and ip not in seen:
                seen.add(ip)
                rrs.append(RR(owner, qtype, self.ttl, Address(ip)))
        return Answer(NOERROR, tuple(rrs)) if rrs else self._nodata()

    def _zone(self, name: Name, rel: Name, qtype: int, deps: set[Scope], depth: int) -> Answer | Chase | Forward:
        if not rel:
            if qtype == TYPE_SOA:
                return Answer(NOERROR, (self.soa,))
            if qtype == TYPE_NS:
                glue = tuple(RR(self.ns_name, TYPE_A if ip.version == 4 else TYPE_AAAA, self.ttl, Address(ip))
                             for ip in self.nameservers)
                return Answer(NOERROR, (RR(name, TYPE_NS, self.ttl, Target(self.ns_name)),), additional=glue)
            return self._nodata()
        if rel == (b"dns-version",):
            if qtype == TYPE_TXT:
                return Answer(NOERROR, (RR(name, TYPE_TXT, SCHEMA_TTL, Txt((SCHEMA_VERSION,))),))
            return self._nodata()
        if rel == (b"ns", b"dns"):
            if qtype in (TYPE_A, TYPE_AAAA):
                return self._addresses(name, qtype, self.nameservers)
            return self._nodata()
        if rel == (b"dns",):
            return self._nodata()
        if rel[-1] == b"svc":
            return self._service(name, rel, qtype, deps, depth)
        if rel[-1] == b"pod":
            return self._pod(name, rel, qtype)
        return self._nxdomain()

    def _pod(self, name: Name, rel: Name, qtype: int) -> Answer:
        if len(rel) == 1:
            return self._nodata()
        if self.pods == "disabled" or len(rel) > 3:
            return self._nxdomain()
        if len(rel) == 2:
            # Insecure mode serves a-b-c-d.<any namespace>, so every namespace node exists.
            return self._nodata()
        ip = _pod_ip(rel[0])
        if ip is None:
            return self._nxdomain()
        if qtype in (TYPE_A, TYPE_AAAA):
            return self._addresses(name, qtype, (ip,))
        return self._nodata()

    def svc_name(self, svc: ServiceInfo) -> Name:
        return (_label(svc.name), _label(svc.namespace), b"svc", *self.zone)

    def _service(self, name: Name, rel: Name, qtype: int, deps: set[Scope], depth: int) -> Answer | Chase | Forward:
        if len(rel) == 1:
            return self._nodata()
        namespace = rel[-2].decode("latin-1")
        if len(rel) == 2:
            deps.add(("ns", namespace, ""))
            return self._nodata() if namespace in self.records.namespace_services else self._nxdomain()
        if len(rel) > 5:
            return self._nxdomain()
        service = rel[-3].decode("latin-1")
        deps.add(("svc", namespace, service))
        svc = self.records.services.get((namespace, service))
        if svc is None:
            return self._nxdomain()
        if svc.kind == "external":
            if len(rel) > 3 or svc.external_name is None:
                return self._nxdomain()
            return self._external(name, svc.external_name, qtype, deps, depth)
        endpoint = rel[0].decode("latin-1") if len(rel) == 4 else None
        port, proto = (_strip_underscore(rel[0]), _strip_underscore(rel[1])) if len(rel) == 5 else ("", "")
        items = self._items(svc, endpoint, port, proto)
        if items is None:
            return self._nxdomain()
        if qtype in (TYPE_A, TYPE_AAAA):
            return self._addresses(name, qtype, [item.ip for item in items])
        if qtype == TYPE_SRV:
            return self._srv(name, items)
        return self._nodata()

    def _items(self, svc: ServiceInfo, endpoint: str | None, port: str, proto: str) -> list[_Item] | None:
        """CoreDNS's (address x port) records for a service name; None when the name does not exist."""

        def wanted(p: Port) -> bool:
            return (not port or port == p.name) and (not proto or proto == p.protocol)

        base = self.svc_name(svc)
        if svc.kind == "headless" or endpoint is not None:
            items = [_Item(ep.ip, p, (_label(ep.hostname), *base))
                     for sl in self.records.service_slices(svc.namespace, svc.name)
                     for ep in sl.endpoints
                     if (ep.ready or svc.publish_not_ready) and (endpoint is None or endpoint == ep.hostname)
                     for p in sl.ports if wanted(p)]
            return items or None
        matching = [p for p in svc.ports if wanted(p)]
        if not matching:
            return None
        return [_Item(ip, p, base) for p in matching for ip in svc.cluster_ips]

    def _srv(self, name: Name, items: list[_Item]) -> Answer:
        # The spec gives SRV records to named ports only; weight is split evenly, as CoreDNS does
        # before collapsing duplicate targets (so hdls1's six addresses give weight 16).
        eligible = [item for item in items if item.port.port != NO_PORT and item.port.name]
        if not eligible:
            return self._nodata()
        weight = max(1, 100 // len(eligible))
        answer: list[RR] = []
        extra: list[RR] = []
        seen_srv: set[tuple[Name, int]] = set()
        seen_addr: set[tuple[Name, IP]] = set()
        for item in eligible:
            if (item.target, item.port.port) not in seen_srv:
                seen_srv.add((item.target, item.port.port))
                answer.append(RR(name, TYPE_SRV, self.ttl, Srv(0, weight, item.port.port, item.target)))
            if (item.target, item.ip) not in seen_addr:
                seen_addr.add((item.target, item.ip))
                rtype = TYPE_A if item.ip.version == 4 else TYPE_AAAA
                extra.append(RR(item.target, rtype, self.ttl, Address(item.ip)))
        return Answer(NOERROR, tuple(answer), additional=tuple(extra))

    def _external(self, name: Name, target: Name, qtype: int, deps: set[Scope],
                  depth: int) -> Answer | Chase | Forward:
        cname = RR(name, TYPE_CNAME, self.ttl, Target(target))
        if qtype == TYPE_CNAME:
            return Answer(NOERROR, (cname,))
        if qtype not in (TYPE_A, TYPE_AAAA) or target == name:
            return self._nodata()
        if depth >= MAX_CHAIN:
            return Answer(SERVFAIL)
        result = self.resolve(target, qtype, deps, depth + 1)
        if isinstance(result, Forward):
            return Chase((cname,), target)
        if isinstance(result, Chase):
            return Chase((cname, *result.chain), result.target)
        if result.rcode == SERVFAIL:
            return result
        # RFC 6604: the rcode is the one of the chain's last name, so NXDOMAIN keeps the CNAME.
        return Answer(result.rcode, (cname, *result.answer), result.authority, result.additional)

    def _ptr(self, name: Name, ip: IP, deps: set[Scope]) -> Answer | None:
        deps.add(("ip", str(ip), ""))
        targets: list[Name] = list(self.records.alias_ips.get(ip, ()))
        if not targets:
            for key in sorted(self.records.cluster_ip_owners.get(ip, ())):
                targets.append(self.svc_name(self.records.services[key]))
                break
        if not targets:
            for slice_key in sorted(self.records.endpoint_ip_slices.get(ip, ())):
                sl = self.records.slices[slice_key]
                svc = self.records.services.get((sl.namespace, sl.service))
                if svc is None or svc.kind == "external":
                    continue
                for ep in sl.endpoints:
                    target = (_label(ep.hostname), *self.svc_name(svc))
                    if ep.ip == ip and (ep.ready or svc.publish_not_ready) and target not in targets:
                        targets.append(target)
        if not targets:
            return None
        return Answer(NOERROR, tuple(RR(name, TYPE_PTR, self.ttl, Target(t)) for t in targets))


def question_seeds(labels: Name, zone: Name) -> list[tuple[Name, int]]:
    """Names a tail may point at in the question: the full name, and the zone inside it.

    Only those two, so that records naming Kubernetes objects spell them in lowercase while the
    zone part follows the client's case, as CoreDNS does.
    """
    seeds = [(labels, 12)]
    if len(labels) > len(zone) and labels[len(labels) - len(zone):] == zone:
        seeds += [(suffix, off) for suffix, off in name_offsets(labels, 12) if len(suffix) <= len(zone)]
    return seeds


def write_records(writer: TailWriter, rrs: tuple[RR, ...]) -> None:
    for rr in rrs:
        start = writer.begin(rr.owner, rr.rtype, rr.ttl)
        rdata = rr.rdata
        if isinstance(rdata, Address):
            writer.buf += rdata.ip.packed
        elif isinstance(rdata, Target):
            writer.name(rdata.name)
        elif isinstance(rdata, Srv):
            writer.buf += rdata.priority.to_bytes(2, "big") + rdata.weight.to_bytes(2, "big")
            writer.buf += rdata.port.to_bytes(2, "big")
            writer.name(rdata.target, compress=False)
        elif isinstance(rdata, Soa):
            writer.name(rdata.mname)
            writer.name(rdata.rname)
            for value in (rdata.serial, SOA_REFRESH, SOA_RETRY, SOA_EXPIRE, rdata.minimum):
                writer.buf += value.to_bytes(4, "big")
        else:
            for text in rdata.strings:
                writer.buf += bytes((len(text),)) + text
        writer.end(start)


def answer_flags(rcode: int) -> int:
    return (QR | AA) << 8 | RA | rcode


def encode(answer: Answer, labels: Name, qname_wire_len: int, zone: Name) -> bytes:
    """The answer, authority and additional sections as they follow the question."""
    writer = TailWriter(12 + qname_wire_len + 4, question_seeds(labels, zone))
    for section in (answer.answer, answer.authority, answer.additional):
        write_records(writer, section)
    return bytes(writer.buf)
