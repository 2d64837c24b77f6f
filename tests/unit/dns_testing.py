"""Helpers for the cluster-DNS tests: Kubernetes-shaped fixtures, queries built and replies read with dnslib."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from dnslib import CLASS, EDNS0, QTYPE, RCODE, RR, DNSRecord

from netplane.dataplane.dns.zone import ClusterZone, Upstream

Obj = dict[str, Any]


def service(ns: str, name: str, *, ips: list[str] | None = None, ports: list[tuple[str, str, int]] | None = None,
            external: str | None = None, headless: bool = False, publish_not_ready: bool = False) -> Obj:
    spec: Obj = {"ports": [{"name": n, "protocol": p, "port": port} if n else {"protocol": p, "port": port}
                           for n, p, port in ports or []]}
    if external is not None:
        spec.update(type="ExternalName", externalName=external)
    elif headless:
        spec.update(type="ClusterIP", clusterIP="None", clusterIPs=["None"])
    else:
        spec.update(type="ClusterIP", clusterIP=(ips or [""])[0], clusterIPs=ips or [])
    if publish_not_ready:
        spec["publishNotReadyAddresses"] = True
    return {"apiVersion": "v1", "kind": "Service", "metadata": {"namespace": ns, "name": name}, "spec": spec}


def endpoint(ip: str, hostname: str | None = None, ready: bool | None = True) -> Obj:
    ep: Obj = {"addresses": [ip], "conditions": {} if ready is None else {"ready": ready}}
    if hostname:
        ep["hostname"] = hostname
    return ep


def endpoint_slice(ns: str, name: str, svc: str, endpoints: list[Obj],
                   ports: list[tuple[str, str, int]] | None = None, address_type: str = "IPv4") -> Obj:
    return {
        "apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
        "metadata": {"namespace": ns, "name": name, "labels": {"kubernetes.io/service-name": svc}},
        "addressType": address_type,
        "endpoints": endpoints,
        "ports": [{"name": n, "protocol": p, "port": port} for n, p, port in ports or []],
    }


def query(name: str, qtype: str = "A", *, edns: int | None = None, rd: bool = True, do: bool = False) -> bytes:
    q = DNSRecord.question(name, qtype)
    q.header.rd = int(rd)
    if edns is not None:
        q.add_ar(EDNS0(udp_len=edns, flags="do" if do else ""))
    return bytes(q.pack())


def respond(zone: ClusterZone, wire: bytes, max_size: int = 512) -> bytes:
    result = zone.respond(wire, max_size=max_size)
    assert isinstance(result, bytes), f"expected a direct answer, got {result!r}"
    return result


def ask(zone: ClusterZone, name: str, qtype: str = "A", *, max_size: int = 512, edns: int | None = None) -> DNSRecord:
    return DNSRecord.parse(respond(zone, query(name, qtype, edns=edns), max_size))


def ask_upstream(zone: ClusterZone, name: str, qtype: str = "A", **kw: Any) -> Upstream:
    result = zone.respond(query(name, qtype, **kw))
    assert isinstance(result, Upstream), f"expected an Upstream, got {result!r}"
    return result


def fake_reply(wire: bytes, answers: list[str], *, rcode: int = 0, tc: bool = False) -> bytes:
    """What an upstream resolver would send back for ``wire``; ``answers`` in zone-file text."""
    q = DNSRecord.parse(wire)
    reply = q.reply()
    reply.header.rcode = rcode
    reply.header.tc = int(tc)
    for text in answers:
        reply.add_answer(*RR.fromZone(text))
    return bytes(reply.pack())


def render(rr: RR) -> str:
    """``owner ttl TYPE rdata``; owners keep their case, rdata names are lowercased (case-insensitive data),
    and an SOA shows only its MNAME, as CoreDNS's SortAndCheck compares it."""
    rtype = QTYPE[rr.rtype]
    if rtype == "SOA":
        rdata = str(rr.rdata.mname).lower()
    elif rtype == "TXT":
        rdata = str(rr.rdata).strip('"')
    else:
        rdata = str(rr.rdata).lower()
    assert CLASS[rr.rclass] == "IN"
    return f"{rr.rname} {rr.ttl} {rtype} {rdata}"


@dataclass
class Case:
    """One CoreDNS-style table row: expected rcode and the three sections (order-insensitive)."""

    qname: str
    qtype: str
    rcode: str = "NOERROR"
    answer: list[str] = field(default_factory=list)
    ns: list[str] = field(default_factory=list)
    extra: list[str] = field(default_factory=list)

    def check(self, reply: DNSRecord) -> None:
        assert RCODE[reply.header.rcode] == self.rcode
        assert sorted(render(rr) for rr in reply.rr) == sorted(self.answer)
        assert sorted(render(rr) for rr in reply.auth) == sorted(self.ns)
        assert sorted(render(rr) for rr in reply.ar if rr.rtype != QTYPE.OPT) == sorted(self.extra)
        assert reply.header.aa == 1
        if any(" CNAME " in a for a in self.answer):
            cname_at = [i for i, rr in enumerate(reply.rr) if rr.rtype == QTYPE.CNAME]
            others = [i for i, rr in enumerate(reply.rr) if rr.rtype != QTYPE.CNAME]
            assert not others or max(cname_at) < min(others), "CNAMEs must precede their targets"

    def __str__(self) -> str:
        return f"{self.qname}/{self.qtype}"
