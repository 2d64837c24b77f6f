"""CoreDNS's kubernetes-plugin unit-test tables, re-expressed as black-box query -> reply checks.

The fixture mirrors CoreDNS's ``APIConnServeTest`` (handler_test.go) as Service / EndpointSlice JSON,
and the cases mirror ``commonDnsTestCases`` + ``dnsTestCases``, the apex, pod (insecure), case,
not-synced and reverse tables. As in CoreDNS's ``SortAndCheck``: sections are compared unordered,
with owner names (exact case), TTLs and rdata; of an SOA only the MNAME. Two documented
differences: rdata names are compared case-insensitively (we spell Kubernetes names in lowercase
and may point at the question for the zone), and the unexposed-namespace / multicluster tables
have no counterpart (netplane has neither option).
"""

from __future__ import annotations

import pytest
from dnslib import QTYPE, DNSRecord

from netplane.dataplane.dns.zone import ClusterZone, ZoneConfig

from .dns_testing import Case, ask, ask_upstream, endpoint, endpoint_slice, fake_reply, service

pytestmark = pytest.mark.unit

SOA = "cluster.local. 5 SOA ns.dns.cluster.local."
HTTP = [("http", "TCP", 80)]


def coredns_fixture(*, synced: bool = True) -> ClusterZone:
    zone = ClusterZone(ZoneConfig(domain="cluster.local", ttl=5, nameservers=("127.0.0.1",)))
    for obj in [
        service("kube-system", "kubedns", ips=["10.0.0.10"], ports=[("dns", "UDP", 53)]),
        service("testns", "svc1", ips=["10.0.0.1"], ports=HTTP),
        service("testns", "svcempty", ips=["10.0.0.1"], ports=HTTP),
        service("testns", "svc6", ips=["1234:abcd::1"], ports=HTTP),
        service("testns", "hdls1", headless=True),
        service("testns", "external", external="ext.interwebs.test", ports=HTTP),
        service("testns", "external-to-service", external="svc1.testns.svc.cluster.local.", ports=HTTP),
        service("testns", "hdlsprtls", headless=True),
        service("testns", "svc-dual-stack", ips=["10.0.0.3", "10::3"], ports=HTTP),
    ]:
        zone.set_service(obj)
    for obj in [
        endpoint_slice("kube-system", "kubedns-x", "kubedns", [endpoint("172.0.0.100")], [("dns", "UDP", 53)]),
        endpoint_slice("testns", "svc1-slice1", "svc1", [endpoint("172.0.0.1", "ep1a")], HTTP),
        endpoint_slice("testns", "svcempty-slice1", "svcempty", [], HTTP),
        endpoint_slice("testns", "hdls1-v4", "hdls1", [
            endpoint("172.0.0.2"), endpoint("172.0.0.3"),
            endpoint("172.0.0.4", "dup-name"), endpoint("172.0.0.5", "dup-name"),
        ], HTTP),
        endpoint_slice("testns", "hdls1-v6", "hdls1", [endpoint("5678:abcd::1"), endpoint("5678:abcd::2")],
                       HTTP, address_type="IPv6"),
        endpoint_slice("testns", "hdlsprtls-slice1", "hdlsprtls", [endpoint("172.0.0.20")], []),
    ]:
        zone.set_slice(obj)
    if synced:
        zone.mark_synced()
    return zone


HDLS1_A = [f"hdls1.testns.svc.cluster.local. 5 A 172.0.0.{i}" for i in (2, 3, 4, 5)]

COMMON_CASES = [
    Case("svc1.testns.svc.cluster.local.", "A", answer=["svc1.testns.svc.cluster.local. 5 A 10.0.0.1"]),
    Case("svcempty.testns.svc.cluster.local.", "A", answer=["svcempty.testns.svc.cluster.local. 5 A 10.0.0.1"]),
    Case("svc1.testns.svc.cluster.local.", "SRV",
         answer=["svc1.testns.svc.cluster.local. 5 SRV 0 100 80 svc1.testns.svc.cluster.local."],
         extra=["svc1.testns.svc.cluster.local. 5 A 10.0.0.1"]),
    Case("svcempty.testns.svc.cluster.local.", "SRV",
         answer=["svcempty.testns.svc.cluster.local. 5 SRV 0 100 80 svcempty.testns.svc.cluster.local."],
         extra=["svcempty.testns.svc.cluster.local. 5 A 10.0.0.1"]),
    Case("svc6.testns.svc.cluster.local.", "SRV",
         answer=["svc6.testns.svc.cluster.local. 5 SRV 0 100 80 svc6.testns.svc.cluster.local."],
         extra=["svc6.testns.svc.cluster.local. 5 AAAA 1234:abcd::1"]),
    Case("_http._tcp.svc1.testns.svc.cluster.local.", "SRV",
         answer=["_http._tcp.svc1.testns.svc.cluster.local. 5 SRV 0 100 80 svc1.testns.svc.cluster.local."],
         extra=["svc1.testns.svc.cluster.local. 5 A 10.0.0.1"]),
    Case("_http._tcp.svcempty.testns.svc.cluster.local.", "SRV",
         answer=["_http._tcp.svcempty.testns.svc.cluster.local. 5 SRV 0 100 80 svcempty.testns.svc.cluster.local."],
         extra=["svcempty.testns.svc.cluster.local. 5 A 10.0.0.1"]),
    Case("hdls1.testns.svc.cluster.local.", "A", answer=HDLS1_A),
    Case("hdlsprtls.testns.svc.cluster.local.", "A", answer=["hdlsprtls.testns.svc.cluster.local. 5 A 172.0.0.20"]),
    Case("svc1.testns.svc.cluster.local.", "AAAA", ns=[SOA]),
    Case("svc0.testns.svc.cluster.local.", "AAAA", "NXDOMAIN", ns=[SOA]),
    Case("svc0.testns.svc.cluster.local.", "A", "NXDOMAIN", ns=[SOA]),
    Case("svc0.svc-nons.svc.cluster.local.", "A", "NXDOMAIN", ns=[SOA]),
    Case("dns-version.cluster.local.", "TXT", answer=["dns-version.cluster.local. 28800 TXT 1.1.0"]),
    Case("svc1.testns.svc.cluster.local.", "TXT", ns=[SOA]),
    Case("svc0.svc-nons.svc.cluster.local.", "TXT", "NXDOMAIN", ns=[SOA]),
    Case("bogusendpoint.hdls1.testns.svc.cluster.local.", "A", "NXDOMAIN", ns=[SOA]),
    Case("bogusendpoint.svc0.testns.svc.cluster.local.", "A", "NXDOMAIN", ns=[SOA]),
    Case("svc6.testns.svc.cluster.local.", "AAAA", answer=["svc6.testns.svc.cluster.local. 5 AAAA 1234:abcd::1"]),
    Case("_http._tcp.svc6.testns.svc.cluster.local.", "SRV",
         answer=["_http._tcp.svc6.testns.svc.cluster.local. 5 SRV 0 100 80 svc6.testns.svc.cluster.local."],
         extra=["svc6.testns.svc.cluster.local. 5 AAAA 1234:abcd::1"]),
    Case("hdls1.testns.svc.cluster.local.", "AAAA",
         answer=["hdls1.testns.svc.cluster.local. 5 AAAA 5678:abcd::1",
                 "hdls1.testns.svc.cluster.local. 5 AAAA 5678:abcd::2"]),
    Case("svc.cluster.local.", "A", ns=[SOA]),
    Case("pod.cluster.local.", "A", ns=[SOA]),
    Case("testns.svc.cluster.local.", "A", ns=[SOA]),
    Case("svc.cluster.local.", "NS", ns=[SOA]),
    Case("testns.svc.cluster.local.", "NS", ns=[SOA]),
    Case("foo.cluster.local.", "NS", "NXDOMAIN", ns=[SOA]),
    Case("foo.svc.cluster.local.", "NS", "NXDOMAIN", ns=[SOA]),
    Case("svc-dual-stack.testns.svc.cluster.local.", "A",
         answer=["svc-dual-stack.testns.svc.cluster.local. 5 A 10.0.0.3"]),
    Case("svc-dual-stack.testns.svc.cluster.local.", "AAAA",
         answer=["svc-dual-stack.testns.svc.cluster.local. 5 AAAA 10::3"]),
    Case("svc-dual-stack.testns.svc.cluster.local.", "SRV",
         answer=["svc-dual-stack.testns.svc.cluster.local. 5 SRV 0 50 80 svc-dual-stack.testns.svc.cluster.local."],
         extra=["svc-dual-stack.testns.svc.cluster.local. 5 A 10.0.0.3",
                "svc-dual-stack.testns.svc.cluster.local. 5 AAAA 10::3"]),
    Case("svc1.testns.svc.cluster.local.", "SOA", ns=[SOA]),
    Case("endpoint.external.testns.svc.cluster.local.", "CNAME", "NXDOMAIN", ns=[SOA]),
    Case("subdomain.subdomain.external.testns.svc.cluster.local.", "CNAME", "NXDOMAIN", ns=[SOA]),
]

DNS_CASES = [
    Case("_http._tcp.hdls1.testns.svc.cluster.local.", "SRV",
         answer=[f"_http._tcp.hdls1.testns.svc.cluster.local. 5 SRV 0 16 80 {t}.hdls1.testns.svc.cluster.local."
                 for t in ("172-0-0-2", "172-0-0-3", "5678-abcd--1", "5678-abcd--2", "dup-name")],
         extra=["172-0-0-2.hdls1.testns.svc.cluster.local. 5 A 172.0.0.2",
                "172-0-0-3.hdls1.testns.svc.cluster.local. 5 A 172.0.0.3",
                "5678-abcd--1.hdls1.testns.svc.cluster.local. 5 AAAA 5678:abcd::1",
                "5678-abcd--2.hdls1.testns.svc.cluster.local. 5 AAAA 5678:abcd::2",
                "dup-name.hdls1.testns.svc.cluster.local. 5 A 172.0.0.4",
                "dup-name.hdls1.testns.svc.cluster.local. 5 A 172.0.0.5"]),
    Case("5678-abcd--2.hdls1.testns.svc.cluster.local", "AAAA",
         answer=["5678-abcd--2.hdls1.testns.svc.cluster.local. 5 AAAA 5678:abcd::2"]),
    Case("5678-abcd--1.hdls1.testns.svc.cluster.local.", "AAAA",
         answer=["5678-abcd--1.hdls1.testns.svc.cluster.local. 5 AAAA 5678:abcd::1"]),
    Case("172-0-0-20.hdlsprtls.testns.svc.cluster.local.", "A",
         answer=["172-0-0-20.hdlsprtls.testns.svc.cluster.local. 5 A 172.0.0.20"]),
    Case("172-0-0-2.hdls1.testns.svc.cluster.local.", "A",
         answer=["172-0-0-2.hdls1.testns.svc.cluster.local. 5 A 172.0.0.2"]),
    Case("172-0-0-3.hdls1.testns.svc.cluster.local.", "A",
         answer=["172-0-0-3.hdls1.testns.svc.cluster.local. 5 A 172.0.0.3"]),
    Case("dup-name.hdls1.testns.svc.cluster.local.", "A",
         answer=["dup-name.hdls1.testns.svc.cluster.local. 5 A 172.0.0.4",
                 "dup-name.hdls1.testns.svc.cluster.local. 5 A 172.0.0.5"]),
    Case("external.testns.svc.cluster.local.", "CNAME",
         answer=["external.testns.svc.cluster.local. 5 CNAME ext.interwebs.test."]),
    Case("external-to-service.testns.svc.cluster.local", "A",
         answer=["external-to-service.testns.svc.cluster.local. 5 CNAME svc1.testns.svc.cluster.local.",
                 "svc1.testns.svc.cluster.local. 5 A 10.0.0.1"]),
]

APEX_CASES = [
    Case("cluster.local.", "SOA", answer=[SOA]),
    Case("cluster.local.", "HINFO", ns=[SOA]),
    Case("cluster.local.", "NS", answer=["cluster.local. 5 NS ns.dns.cluster.local."],
         extra=["ns.dns.cluster.local. 5 A 127.0.0.1"]),
    Case("cluster.local.", "A", ns=[SOA]),
    Case("cluster.local.", "AAAA", ns=[SOA]),
    Case("cluster.local.", "SRV", ns=[SOA]),
    Case("ns.dns.cluster.local.", "A", answer=["ns.dns.cluster.local. 5 A 127.0.0.1"]),
]

POD_INSECURE_CASES = [
    Case("10-240-0-1.podns.pod.cluster.local.", "A", answer=["10-240-0-1.podns.pod.cluster.local. 5 A 10.240.0.1"]),
    Case("172-0-0-2.podns.pod.cluster.local.", "A", answer=["172-0-0-2.podns.pod.cluster.local. 5 A 172.0.0.2"]),
    Case("blah.podns.pod.cluster.local.", "A", "NXDOMAIN", ns=[SOA]),
    Case("blah.podns.pod.cluster.local.", "AAAA", "NXDOMAIN", ns=[SOA]),
    Case("blah.podns.pod.cluster.local.", "HINFO", "NXDOMAIN", ns=[SOA]),
    Case("blah.pod-nons.pod.cluster.local.", "A", "NXDOMAIN", ns=[SOA]),
    Case("podns.pod.cluster.local.", "A", ns=[SOA]),
    Case("fd00--1.podns.pod.cluster.local.", "AAAA", answer=["fd00--1.podns.pod.cluster.local. 5 AAAA fd00::1"]),
    Case("10-240-0-1.podns.pod.cluster.local.", "AAAA", ns=[SOA]),
    Case("a.10-240-0-1.podns.pod.cluster.local.", "A", "NXDOMAIN", ns=[SOA]),
]

CASE_CASES = [
    Case("not-a-service.testns.svc.ClUsTeR.lOcAl.", "A", "NXDOMAIN",
         ns=["ClUsTeR.lOcAl. 5 SOA ns.dns.cluster.local."]),
    Case("SvC1.TeStNs.SvC.cLuStEr.LoCaL.", "A", answer=["SvC1.TeStNs.SvC.cLuStEr.LoCaL. 5 A 10.0.0.1"]),
    Case("_HtTp._TcP.sVc1.TeStNs.SvC.cLuStEr.LoCaL.", "SRV",
         answer=["_HtTp._TcP.sVc1.TeStNs.SvC.cLuStEr.LoCaL. 5 SRV 0 100 80 svc1.testns.svc.cluster.local."],
         extra=["svc1.testns.svc.cluster.local. 5 A 10.0.0.1"]),
    Case("Cluster.local.", "SOA", answer=["Cluster.local. 5 SOA ns.dns.cluster.local."]),
]

ALL_CASES = COMMON_CASES + DNS_CASES + APEX_CASES + POD_INSECURE_CASES + CASE_CASES


@pytest.fixture(scope="module")
def zone() -> ClusterZone:
    return coredns_fixture()


@pytest.mark.parametrize("case", ALL_CASES, ids=str)
def test_coredns_table(zone: ClusterZone, case: Case) -> None:
    case.check(ask(zone, case.qname, case.qtype))
    # The second ask is served from the pre-encoded answer and must be identical.
    case.check(ask(zone, case.qname, case.qtype))


def test_case_preserving_soa_mname_follows_the_query(zone: ClusterZone) -> None:
    reply = ask(zone, "not-a-service.testns.svc.ClUsTeR.lOcAl.", "A")
    assert str(reply.auth[0].rdata.mname) == "ns.dns.ClUsTeR.lOcAl."
    assert str(reply.auth[0].rdata.rname) == "hostmaster.ClUsTeR.lOcAl."


def test_external_name_is_chased_upstream_and_truncation_propagates(zone: ClusterZone) -> None:
    upstream = ask_upstream(zone, "external.testns.svc.cluster.local.", "A")
    sent = DNSRecord.parse(upstream.query)
    assert str(sent.q.qname) == "ext.interwebs.test." and sent.q.qtype == QTYPE.A and sent.header.rd == 1
    reply = DNSRecord.parse(upstream.finish(fake_reply(upstream.query, ["ext.interwebs.test. 5 IN A 1.2.3.4"],
                                                       tc=True)))
    assert reply.header.tc == 1
    Case("external.testns.svc.cluster.local.", "A",
         answer=["external.testns.svc.cluster.local. 5 CNAME ext.interwebs.test.",
                 "ext.interwebs.test. 5 A 1.2.3.4"]).check(reply)


def test_not_synced_missing_names_are_servfail() -> None:
    zone = coredns_fixture(synced=False)
    Case("svc0.testns.svc.cluster.local.", "A", "SERVFAIL", ns=[SOA]).check(ask(zone, "svc0.testns.svc.cluster.local."))
    # Names that exist are served already.
    Case("svc1.testns.svc.cluster.local.", "A",
         answer=["svc1.testns.svc.cluster.local. 5 A 10.0.0.1"]).check(ask(zone, "svc1.testns.svc.cluster.local."))
    zone.mark_synced()
    Case("svc0.testns.svc.cluster.local.", "A", "NXDOMAIN", ns=[SOA]).check(ask(zone, "svc0.testns.svc.cluster.local."))


def test_pods_disabled() -> None:
    zone = ClusterZone(ZoneConfig(pods="disabled"))
    zone.mark_synced()
    Case("10-240-0-1.podns.pod.cluster.local.", "A", "NXDOMAIN", ns=[SOA]).check(
        ask(zone, "10-240-0-1.podns.pod.cluster.local."))
    Case("pod.cluster.local.", "A", ns=[SOA]).check(ask(zone, "pod.cluster.local."))


# -- reverse_test.go ------------------------------------------------------------------------

def reverse_fixture() -> ClusterZone:
    zone = ClusterZone(ZoneConfig())
    zone.set_service(service("testns", "svc1", ips=["192.168.1.100"], ports=HTTP))
    zone.set_service(service("testns", "svc2", ips=["192.168.1.101"], ports=HTTP))
    zone.set_slice(endpoint_slice("testns", "svc1-slice1", "svc1", [
        endpoint("10.0.0.100", "ep1a"), endpoint("10.0.0.99", "double-ep")], HTTP))
    zone.set_slice(endpoint_slice("testns", "svc1-slice2", "svc1", [
        endpoint("1234:abcd::1", "ep1b"), endpoint("fd00:77:30::a", "ip6svc1ex"),
        endpoint("fd00:77:30::2:9ba6", "ip6svc1in")], HTTP, address_type="IPv6"))
    # EndpointSlice skew: the same address in two slices of one Service answers once.
    zone.set_slice(endpoint_slice("testns", "svc1-ccccc", "svc1", [endpoint("10.0.0.100", "ep1a")], HTTP))
    zone.set_slice(endpoint_slice("testns", "svc2-slice1", "svc2", [endpoint("10.0.0.99", "double-ep")], HTTP))
    zone.mark_synced()
    return zone


V6_EP1B = "1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.d.c.b.a.4.3.2.1.ip6.arpa."
V6_EX = "a.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.3.0.0.7.7.0.0.0.0.d.f.ip6.arpa."
V6_IN = "6.a.b.9.2.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.3.0.0.7.7.0.0.0.0.d.f.ip6.arpa."

REVERSE_CASES = [
    Case("100.0.0.10.in-addr.arpa.", "PTR",
         answer=["100.0.0.10.in-addr.arpa. 5 PTR ep1a.svc1.testns.svc.cluster.local."]),
    Case("100.1.168.192.in-addr.arpa.", "PTR",
         answer=["100.1.168.192.in-addr.arpa. 5 PTR svc1.testns.svc.cluster.local."]),
    Case(V6_EP1B, "PTR", answer=[f"{V6_EP1B} 5 PTR ep1b.svc1.testns.svc.cluster.local."]),
    Case(V6_EX, "PTR", answer=[f"{V6_EX} 5 PTR ip6svc1ex.svc1.testns.svc.cluster.local."]),
    Case(V6_IN, "PTR", answer=[f"{V6_IN} 5 PTR ip6svc1in.svc1.testns.svc.cluster.local."]),
    Case("example.org.cluster.local.", "PTR", "NXDOMAIN", ns=[SOA]),
    Case("svc1.testns.svc.cluster.local.", "PTR", ns=[SOA]),
    Case("100.0.0.10.cluster.local.", "PTR", "NXDOMAIN", ns=[SOA]),
    Case("99.0.0.10.in-addr.arpa.", "PTR",
         answer=["99.0.0.10.in-addr.arpa. 5 PTR double-ep.svc1.testns.svc.cluster.local.",
                 "99.0.0.10.in-addr.arpa. 5 PTR double-ep.svc2.testns.svc.cluster.local."]),
]


@pytest.mark.parametrize("case", REVERSE_CASES, ids=str)
def test_coredns_reverse_table(case: Case) -> None:
    case.check(ask(reverse_fixture(), case.qname, case.qtype))


@pytest.mark.parametrize("qname, qtype", [
    ("101.0.0.10.in-addr.arpa.", "PTR"),  # unknown address: `fallthrough in-addr.arpa ip6.arpa`
    ("svc1.testns.svc.0.10.in-addr.arpa.", "A"),
    ("0.10.in-addr.arpa.", "PTR"),
    ("100.0.0.10.in-addr.arpa.", "A"),
])
def test_reverse_misses_fall_through_upstream(qname: str, qtype: str) -> None:
    upstream = ask_upstream(reverse_fixture(), qname, qtype)
    assert str(DNSRecord.parse(upstream.query).q.qname) == qname
