"""ClusterZone beyond CoreDNS's tables: host aliases, forwarding and ExternalName chasing, incremental
updates, readiness, truncation, EDNS, header flags, 0x20 case and malformed input."""

from __future__ import annotations

import contextlib
import struct

import pytest
from dnslib import EDNS0, QTYPE, RCODE, DNSError, DNSRecord
from hypothesis import given, settings
from hypothesis import strategies as st

from netplane.dataplane.dns.zone import ClusterZone, HostAlias, Upstream, ZoneConfig

from .dns_testing import (
    Case,
    ask,
    ask_upstream,
    endpoint,
    endpoint_slice,
    fake_reply,
    query,
    respond,
    service,
)

pytestmark = pytest.mark.unit

SOA = "cluster.local. 5 SOA ns.dns.cluster.local."
HTTP = [("http", "TCP", 80)]
SVC1 = "svc1.testns.svc.cluster.local."


def make_zone(**config: object) -> ClusterZone:
    zone = ClusterZone(ZoneConfig(**config))  # type: ignore[arg-type]
    zone.set_service(service("testns", "svc1", ips=["10.0.0.1"], ports=HTTP))
    zone.set_slice(endpoint_slice("testns", "svc1-a", "svc1", [endpoint("172.0.0.1", "ep1a")], HTTP))
    zone.mark_synced()
    return zone


def rcode(reply: DNSRecord) -> str:
    return str(RCODE[reply.header.rcode])


def headless(zone: ClusterZone, name: str, count: int, *, ns: str = "testns") -> None:
    zone.set_service(service(ns, name, headless=True, ports=HTTP))
    eps = [endpoint(f"10.1.{i // 250}.{i % 250 + 1}") for i in range(count)]
    zone.set_slice(endpoint_slice(ns, f"{name}-x", name, eps, HTTP))


def addresses(reply: DNSRecord) -> list[str]:
    return sorted(str(rr.rdata) for rr in reply.rr if rr.rtype in (QTYPE.A, QTYPE.AAAA))


# -- host aliases --------------------------------------------------------------------------------

@pytest.fixture
def aliased() -> ClusterZone:
    zone = make_zone()
    zone.set_host_aliases([
        HostAlias("1.2.3.4", ("example.com", "test.example.com")),
        HostAlias("2001:db8::4", ("example.com",)),
        HostAlias("5.6.7.8", ("v4only.example.org.", "svc1.testns.svc.cluster.local")),
    ])
    return zone


def test_alias_answers_a_and_aaaa_with_the_zone_ttl(aliased: ClusterZone) -> None:
    Case("example.com.", "A", answer=["example.com. 5 A 1.2.3.4"]).check(ask(aliased, "example.com."))
    Case("example.com.", "AAAA", answer=["example.com. 5 AAAA 2001:db8::4"]).check(ask(aliased, "example.com.", "AAAA"))
    Case("TEST.example.com.", "A", answer=["TEST.example.com. 5 A 1.2.3.4"]).check(ask(aliased, "TEST.example.com."))


@pytest.mark.parametrize("name, qtype", [("v4only.example.org.", "AAAA"), ("example.com.", "MX"),
                                         ("example.com.", "TXT")])
def test_alias_name_of_another_type_is_empty_noerror_without_soa(aliased: ClusterZone, name: str, qtype: str) -> None:
    Case(name, qtype).check(ask(aliased, name, qtype))


def test_alias_ptr_lists_every_name_of_the_address(aliased: ClusterZone) -> None:
    Case("4.3.2.1.in-addr.arpa.", "PTR", answer=["4.3.2.1.in-addr.arpa. 5 PTR example.com.",
                                                 "4.3.2.1.in-addr.arpa. 5 PTR test.example.com."]).check(
        ask(aliased, "4.3.2.1.in-addr.arpa.", "PTR"))
    v6 = "4.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6.arpa."
    Case(v6, "PTR", answer=[f"{v6} 5 PTR example.com."]).check(ask(aliased, v6, "PTR"))


def test_alias_inside_the_zone_shadows_the_service(aliased: ClusterZone) -> None:
    Case(SVC1, "A", answer=[f"{SVC1} 5 A 5.6.7.8"]).check(ask(aliased, SVC1))


def test_alias_is_a_chase_target_without_going_upstream(aliased: ClusterZone) -> None:
    aliased.set_service(service("testns", "ext", external="test.example.com"))
    Case("ext.testns.svc.cluster.local.", "A",
         answer=["ext.testns.svc.cluster.local. 5 CNAME test.example.com.", "test.example.com. 5 A 1.2.3.4"]).check(
        ask(aliased, "ext.testns.svc.cluster.local."))


def test_removing_aliases_restores_forwarding_and_zone_data(aliased: ClusterZone) -> None:
    ask(aliased, "example.com.")
    aliased.set_host_aliases([])
    ask_upstream(aliased, "example.com.")
    Case(SVC1, "A", answer=[f"{SVC1} 5 A 10.0.0.1"]).check(ask(aliased, SVC1))


def test_unusable_alias_entries_are_skipped() -> None:
    zone = make_zone()
    zone.set_host_aliases([HostAlias("not-an-ip", ("a.example.",)),
                           HostAlias("9.9.9.9", ("", "b" * 64 + ".x", "ok.x"))])
    ask_upstream(zone, "a.example.")
    assert addresses(ask(zone, "ok.x.")) == ["9.9.9.9"]


# -- forwarding ----------------------------------------------------------------------------------

def test_outside_names_are_forwarded_verbatim_and_the_reply_gets_the_client_id() -> None:
    zone = make_zone()
    wire = query("www.Example.com.", "A")
    upstream = zone.respond(wire)
    assert isinstance(upstream, Upstream) and upstream.query == wire
    reply = bytearray(fake_reply(wire, ["www.example.com. 300 IN A 93.184.216.34"]))
    reply[0:2] = b"\xbe\xef"  # the transport may have used its own ID upstream
    out = upstream.finish(bytes(reply))
    assert out[:2] == wire[:2] and out[2:] == bytes(reply[2:])


@pytest.mark.parametrize("bad", [None, b"", b"\x00\x01\x02", b"\x12\x34\x01\x00" + bytes(8)])
def test_failed_upstream_is_servfail(bad: bytes | None) -> None:
    upstream = ask_upstream(make_zone(), "www.example.com.")
    reply = DNSRecord.parse(upstream.finish(bad))
    assert rcode(reply) == "SERVFAIL" and str(reply.q.qname) == "www.example.com." and reply.header.qr == 1


def test_forwarded_reply_too_big_for_the_client_is_truncated() -> None:
    zone = make_zone()
    wire = query("big.example.com.", "A")
    upstream = zone.respond(wire)
    assert isinstance(upstream, Upstream)
    many = [f"big.example.com. 60 IN A 10.9.{i // 200}.{i % 200}" for i in range(60)]
    reply = DNSRecord.parse(upstream.finish(fake_reply(wire, many)))
    assert reply.header.tc == 1 and not reply.rr and str(reply.q.qname) == "big.example.com."
    roomy = zone.respond(query("big.example.com.", "A", edns=4096), max_size=4096)
    assert isinstance(roomy, Upstream)
    reply = DNSRecord.parse(roomy.finish(fake_reply(roomy.query, many)))
    assert reply.header.tc == 0 and len(reply.rr) == 60


# -- ExternalName chasing ------------------------------------------------------------------------

@pytest.fixture
def external() -> ClusterZone:
    zone = make_zone()
    zone.set_service(service("testns", "ext", external="ext.interwebs.test"))
    zone.set_service(service("testns", "hop", external="ext.testns.svc.cluster.local"))
    zone.set_service(service("testns", "loop-a", external="loop-b.testns.svc.cluster.local"))
    zone.set_service(service("testns", "loop-b", external="loop-a.testns.svc.cluster.local"))
    zone.set_service(service("testns", "dangling", external="nope.testns.svc.cluster.local"))
    return zone


def test_chase_nxdomain_keeps_the_cname(external: ClusterZone) -> None:
    upstream = ask_upstream(external, "ext.testns.svc.cluster.local.", "AAAA")
    assert DNSRecord.parse(upstream.query).q.qtype == QTYPE.AAAA
    reply = DNSRecord.parse(upstream.finish(fake_reply(upstream.query, [], rcode=3)))
    Case("ext.testns.svc.cluster.local.", "AAAA", "NXDOMAIN",
         answer=["ext.testns.svc.cluster.local. 5 CNAME ext.interwebs.test."]).check(reply)


@pytest.mark.parametrize("reply_rcode", [2, 5])
def test_chase_upstream_failure_is_servfail(external: ClusterZone, reply_rcode: int) -> None:
    upstream = ask_upstream(external, "ext.testns.svc.cluster.local.")
    assert rcode(DNSRecord.parse(upstream.finish(fake_reply(upstream.query, [], rcode=reply_rcode)))) == "SERVFAIL"
    assert rcode(DNSRecord.parse(upstream.finish(None))) == "SERVFAIL"
    assert rcode(DNSRecord.parse(upstream.finish(b"\x00" * 40))) == "SERVFAIL"


def test_chase_through_two_cnames_appends_the_upstream_chain(external: ClusterZone) -> None:
    upstream = ask_upstream(external, "hop.testns.svc.cluster.local.", edns=1232)
    sent = DNSRecord.parse(upstream.query)
    assert str(sent.q.qname) == "ext.interwebs.test." and sent.ar and sent.ar[0].rtype == QTYPE.OPT
    reply = DNSRecord.parse(upstream.finish(fake_reply(upstream.query, [
        "ext.interwebs.test. 30 IN CNAME edge.cdn.test.", "edge.cdn.test. 20 IN A 1.2.3.4"])))
    Case("hop.testns.svc.cluster.local.", "A", answer=[
        "hop.testns.svc.cluster.local. 5 CNAME ext.testns.svc.cluster.local.",
        "ext.testns.svc.cluster.local. 5 CNAME ext.interwebs.test.",
        "ext.interwebs.test. 30 CNAME edge.cdn.test.",
        "edge.cdn.test. 20 A 1.2.3.4"]).check(reply)
    assert [rr.rtype for rr in reply.ar] == [QTYPE.OPT]


def test_chase_loops_are_servfail_and_dangling_targets_are_negative(external: ClusterZone) -> None:
    assert rcode(ask(external, "loop-a.testns.svc.cluster.local.")) == "SERVFAIL"
    Case("dangling.testns.svc.cluster.local.", "A", "NXDOMAIN",
         answer=["dangling.testns.svc.cluster.local. 5 CNAME nope.testns.svc.cluster.local."], ns=[SOA]).check(
        ask(external, "dangling.testns.svc.cluster.local."))


def test_external_name_other_types(external: ClusterZone) -> None:
    Case("ext.testns.svc.cluster.local.", "SRV", ns=[SOA]).check(ask(external, "ext.testns.svc.cluster.local.", "SRV"))
    Case("ext.testns.svc.cluster.local.", "TXT", ns=[SOA]).check(ask(external, "ext.testns.svc.cluster.local.", "TXT"))


def test_chase_reply_too_big_is_truncated(external: ClusterZone) -> None:
    upstream = ask_upstream(external, "ext.testns.svc.cluster.local.")
    many = [f"ext.interwebs.test. 60 IN A 10.9.{i // 200}.{i % 200}" for i in range(60)]
    reply = DNSRecord.parse(upstream.finish(fake_reply(upstream.query, many)))
    assert reply.header.tc == 1 and not reply.rr


# -- incremental updates -------------------------------------------------------------------------

def test_service_update_and_delete() -> None:
    zone = make_zone()
    assert addresses(ask(zone, SVC1)) == ["10.0.0.1"]
    zone.set_service(service("testns", "svc1", ips=["10.0.0.9", "fd00::9"], ports=HTTP))
    assert addresses(ask(zone, SVC1)) == ["10.0.0.9"]
    assert addresses(ask(zone, SVC1, "AAAA")) == ["fd00::9"]
    zone.delete_service("testns", "svc1")
    Case(SVC1, "A", "NXDOMAIN", ns=[SOA]).check(ask(zone, SVC1))
    # The namespace disappears with its last Service.
    Case("testns.svc.cluster.local.", "A", "NXDOMAIN", ns=[SOA]).check(ask(zone, "testns.svc.cluster.local."))
    zone.set_service(service("testns", "other", ips=["10.0.0.2"], ports=HTTP))
    Case("testns.svc.cluster.local.", "A", ns=[SOA]).check(ask(zone, "testns.svc.cluster.local."))


def test_ptr_follows_cluster_ip_changes() -> None:
    zone = make_zone()
    assert str(ask(zone, "1.0.0.10.in-addr.arpa.", "PTR").rr[0].rdata) == SVC1
    zone.set_service(service("testns", "svc1", ips=["10.0.0.7"], ports=HTTP))
    ask_upstream(zone, "1.0.0.10.in-addr.arpa.", "PTR")
    assert str(ask(zone, "7.0.0.10.in-addr.arpa.", "PTR").rr[0].rdata) == SVC1
    # Endpoints of a ClusterIP Service get PTRs too, as in CoreDNS.
    assert str(ask(zone, "1.0.0.172.in-addr.arpa.", "PTR").rr[0].rdata) == "ep1a." + SVC1


def test_slice_updates_reach_headless_answers() -> None:
    zone = make_zone()
    zone.set_service(service("testns", "db", headless=True, ports=HTTP))
    name = "db.testns.svc.cluster.local."
    Case(name, "A", "NXDOMAIN", ns=[SOA]).check(ask(zone, name))
    zone.set_slice(endpoint_slice("testns", "db-1", "db", [endpoint("10.2.0.1", "db-0")], HTTP))
    assert addresses(ask(zone, name)) == ["10.2.0.1"]
    zone.set_slice(endpoint_slice("testns", "db-2", "db", [endpoint("10.2.0.2", "db-1")], HTTP))
    assert addresses(ask(zone, name)) == ["10.2.0.1", "10.2.0.2"]
    assert addresses(ask(zone, "db-1." + name)) == ["10.2.0.2"]
    assert str(ask(zone, "2.0.2.10.in-addr.arpa.", "PTR").rr[0].rdata) == "db-1." + name
    zone.delete_slice("testns", "db-1")
    assert addresses(ask(zone, name)) == ["10.2.0.2"]
    # A slice relabelled to another Service leaves this one.
    zone.set_slice(endpoint_slice("testns", "db-2", "elsewhere", [endpoint("10.2.0.2", "db-1")], HTTP))
    Case(name, "A", "NXDOMAIN", ns=[SOA]).check(ask(zone, name))


def test_readiness_and_publish_not_ready() -> None:
    zone = make_zone()
    zone.set_service(service("testns", "web", headless=True, ports=HTTP))
    zone.set_slice(endpoint_slice("testns", "web-1", "web", [
        endpoint("10.3.0.1", ready=True), endpoint("10.3.0.2", ready=None), endpoint("10.3.0.3", ready=False)], HTTP))
    name = "web.testns.svc.cluster.local."
    assert addresses(ask(zone, name)) == ["10.3.0.1", "10.3.0.2"]
    assert len(ask(zone, "_http._tcp." + name, "SRV").rr) == 2
    ask_upstream(zone, "3.0.3.10.in-addr.arpa.", "PTR")
    zone.set_service(service("testns", "web", headless=True, ports=HTTP, publish_not_ready=True))
    assert addresses(ask(zone, name)) == ["10.3.0.1", "10.3.0.2", "10.3.0.3"]
    assert str(ask(zone, "3.0.3.10.in-addr.arpa.", "PTR").rr[0].rdata) == "10-3-0-3." + name


def test_headless_without_ready_endpoints_is_nxdomain() -> None:
    zone = make_zone()
    zone.set_service(service("testns", "idle", headless=True, ports=HTTP))
    zone.set_slice(endpoint_slice("testns", "idle-1", "idle", [endpoint("10.4.0.1", ready=False)], HTTP))
    for qtype in ("A", "SRV", "TXT"):
        Case("idle.testns.svc.cluster.local.", qtype, "NXDOMAIN", ns=[SOA]).check(
            ask(zone, "idle.testns.svc.cluster.local.", qtype))


def test_updates_drop_only_the_answers_that_read_them() -> None:
    zone = ClusterZone(ZoneConfig())
    zone.mark_synced()
    count = 10_000
    for i in range(count):
        zone.set_service(service(f"ns{i % 100}", f"s{i}", ips=[f"10.{i // 65536}.{i // 256 % 256}.{i % 256}"],
                                 ports=HTTP))
    asked = [f"s{i}.ns{i % 100}.svc.cluster.local." for i in range(0, count, 50)]
    for name in asked:
        ask(zone, name)
    ask(zone, "s7.ns7.svc.cluster.local.", "SRV")
    ask(zone, "google.com.ns7.svc.cluster.local.")  # a search-path miss in the same namespace
    before = len(zone._answers)
    # Only s7's SRV answer read s7 (the miss above read Service "com" in ns7).
    zone.set_service(service("ns7", "s7", ips=["10.200.0.7"], ports=HTTP))
    assert len(zone._answers) == before - 1
    zone.set_service(service("ns0", "s0", ips=["10.200.0.1"], ports=HTTP))
    assert len(zone._answers) == before - 2
    assert addresses(ask(zone, asked[0])) == ["10.200.0.1"]
    assert addresses(ask(zone, "s7.ns7.svc.cluster.local.")) == ["10.200.0.7"]


def test_external_name_answer_follows_its_target() -> None:
    zone = make_zone()
    zone.set_service(service("testns", "alias", external=SVC1))
    assert addresses(ask(zone, "alias.testns.svc.cluster.local.")) == ["10.0.0.1"]
    zone.set_service(service("testns", "svc1", ips=["10.0.0.5"], ports=HTTP))
    assert addresses(ask(zone, "alias.testns.svc.cluster.local.")) == ["10.0.0.5"]


def test_resync_with_unchanged_objects_keeps_answers() -> None:
    zone = make_zone()
    ask(zone, SVC1)
    before = dict(zone._answers)
    zone.set_service(service("testns", "svc1", ips=["10.0.0.1"], ports=HTTP))
    zone.set_slice(endpoint_slice("testns", "svc1-a", "svc1", [endpoint("172.0.0.1", "ep1a")], HTTP))
    assert zone._answers == before


# -- ports and names -----------------------------------------------------------------------------

def test_srv_for_named_ports_only_and_port_filters() -> None:
    zone = make_zone()
    zone.set_service(service("testns", "multi", ips=["10.5.0.1"],
                             ports=[("http", "TCP", 80), ("dns", "UDP", 53), ("", "TCP", 9000)]))
    name = "multi.testns.svc.cluster.local."
    Case(name, "SRV", answer=[f"{name} 5 SRV 0 50 80 {name}", f"{name} 5 SRV 0 50 53 {name}"],
         extra=[f"{name} 5 A 10.5.0.1"]).check(ask(zone, name, "SRV"))
    Case("_dns._udp." + name, "SRV", answer=[f"_dns._udp.{name} 5 SRV 0 100 53 {name}"],
         extra=[f"{name} 5 A 10.5.0.1"]).check(ask(zone, "_dns._udp." + name, "SRV"))
    Case("_DNS._UDP." + name, "A", answer=[f"_DNS._UDP.{name} 5 A 10.5.0.1"]).check(ask(zone, "_DNS._UDP." + name))
    for missing in ("_dns._tcp.", "_https._tcp.", "x.y.z."):
        Case(missing + name, "SRV", "NXDOMAIN", ns=[SOA]).check(ask(zone, missing + name, "SRV"))
    zone.set_service(service("testns", "unnamed", ips=["10.5.0.2"], ports=[("", "TCP", 8080)]))
    assert addresses(ask(zone, "unnamed.testns.svc.cluster.local.")) == ["10.5.0.2"]
    Case("unnamed.testns.svc.cluster.local.", "SRV", ns=[SOA]).check(
        ask(zone, "unnamed.testns.svc.cluster.local.", "SRV"))


def test_endpoint_names_of_a_cluster_ip_service() -> None:
    zone = make_zone()
    assert addresses(ask(zone, "ep1a." + SVC1)) == ["172.0.0.1"]


def test_dns_names_and_custom_zone() -> None:
    zone = make_zone(domain="Corp.Internal.", ttl=600, nameservers=("10.96.0.10", "fd00::10"))
    reply = ask(zone, "nothing.corp.internal.")
    soa = reply.auth[0]
    assert rcode(reply) == "NXDOMAIN" and soa.ttl == 300 and soa.rdata.times[4] == 600
    assert str(soa.rdata.mname) == "ns.dns.corp.internal."
    assert addresses(ask(zone, "ns.dns.corp.internal.", "AAAA")) == ["fd00::10"]
    assert sorted(str(rr.rdata) for rr in ask(zone, "corp.internal.", "NS").ar) == ["10.96.0.10", "fd00::10"]
    for name in ("dns.corp.internal.", "dns-version.corp.internal."):
        assert rcode(ask(zone, name)) == "NOERROR"
    ask_upstream(zone, "cluster.local.")


@pytest.mark.parametrize("config", [dict(domain=""), dict(domain="a..b"), dict(pods="verified"),
                                    dict(nameservers=("ten",)), dict(ttl=-1), dict(ttl=4000)])
def test_bad_config_is_rejected(config: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        ClusterZone(ZoneConfig(**config))  # type: ignore[arg-type]


def test_nameless_objects_are_ignored_and_unusable_slices_drop_out() -> None:
    zone = make_zone()
    zone.set_service({"metadata": {}, "spec": {}})
    zone.set_slice({"metadata": {"name": "x"}})
    zone.set_slice({"metadata": {"name": "svc1-a", "namespace": "testns"}, "addressType": "FQDN"})
    assert rcode(ask(zone, "ep1a." + SVC1)) == "NXDOMAIN"  # the FQDN-typed slice replaced the IPv4 one


# -- size limits and EDNS ------------------------------------------------------------------------

def test_large_headless_answer_truncates_over_udp_and_fits_over_tcp() -> None:
    zone = make_zone()
    headless(zone, "big", 100)
    name = "big.testns.svc.cluster.local."
    wire = query(name)
    for _ in range(2):  # the second pass comes from the pre-encoded path
        small = respond(zone, wire, 512)
        reply = DNSRecord.parse(small)
        assert reply.header.tc == 1 and reply.header.aa == 1 and rcode(reply) == "NOERROR"
        assert (reply.header.a, reply.header.auth, reply.header.ar) == (0, 0, 0)
        assert small[12:] == wire[12:]
        full = DNSRecord.parse(respond(zone, wire, 65535))
        assert full.header.tc == 0 and len(full.rr) == 100


def test_edns_size_is_honoured_up_to_the_transport_ceiling() -> None:
    zone = make_zone()
    headless(zone, "mid", 50)  # ~850 bytes
    name = "mid.testns.svc.cluster.local."
    assert DNSRecord.parse(respond(zone, query(name, edns=1232), 1232)).header.tc == 0
    assert DNSRecord.parse(respond(zone, query(name, edns=1232), 512)).header.tc == 1
    assert DNSRecord.parse(respond(zone, query(name, edns=600), 1232)).header.tc == 1
    assert DNSRecord.parse(respond(zone, query(name), 1232)).header.tc == 1
    # An advertised size below 512 still gets 512.
    headless(zone, "few", 20)
    assert DNSRecord.parse(respond(zone, query("few.testns.svc.cluster.local.", edns=100), 1232)).header.tc == 0


def test_opt_is_echoed_with_our_size_and_the_do_bit() -> None:
    zone = make_zone()
    for do in (False, True):
        for _ in range(2):
            reply = DNSRecord.parse(respond(zone, query(SVC1, edns=4096, do=do)))
            opt = [rr for rr in reply.ar if rr.rtype == QTYPE.OPT]
            assert len(opt) == 1 and opt[0].rclass == 1232 and bool(opt[0].ttl & 0x8000) == do
            assert addresses(reply) == ["10.0.0.1"]
    truncated = DNSRecord.parse(respond(zone, query("svc0.testns.svc.cluster.local.", "AXFR", edns=4096)))
    assert rcode(truncated) == "REFUSED" and truncated.ar[0].rtype == QTYPE.OPT


def test_unknown_edns_version_is_badvers() -> None:
    q = DNSRecord.question(SVC1)
    q.add_ar(EDNS0(version=1))
    reply = DNSRecord.parse(respond(make_zone(), bytes(q.pack())))
    opt = reply.ar[0]
    assert reply.header.rcode == 0 and (opt.ttl >> 24) == 1 and not reply.rr  # BADVERS = 16


def test_two_opt_records_are_formerr() -> None:
    q = DNSRecord.question(SVC1)
    q.add_ar(EDNS0())
    q.add_ar(EDNS0())
    assert rcode(DNSRecord.parse(respond(make_zone(), bytes(q.pack())))) == "FORMERR"


# -- header flags and case -----------------------------------------------------------------------

def test_id_rd_cd_are_echoed_and_ra_aa_set() -> None:
    zone = make_zone()
    for rd in (True, False):
        for _ in range(2):
            wire = bytearray(query(SVC1, rd=rd))
            wire[3] |= 0x10  # CD
            wire[0:2] = b"\x5a\xa5"
            out = respond(zone, bytes(wire))
            reply = DNSRecord.parse(out)
            assert out[:2] == b"\x5a\xa5" and reply.header.rd == int(rd) and reply.header.cd == 1
            assert reply.header.ra == 1 and reply.header.aa == 1 and reply.header.qr == 1


@pytest.mark.parametrize("name", ["sVc1.TESTns.svc.CLUSTER.local.", "SVC1.TESTNS.SVC.CLUSTER.LOCAL."])
def test_0x20_case_is_echoed_in_question_and_owner(name: str) -> None:
    zone = make_zone()
    for _ in range(2):
        wire = query(name)
        out = respond(zone, wire)
        assert out[12:len(wire)] == wire[12:]
        Case(name, "A", answer=[f"{name} 5 A 10.0.0.1"]).check(DNSRecord.parse(out))


def test_fast_and_parsed_paths_agree_and_bytearray_is_accepted() -> None:
    zone = make_zone()
    wire = query("_http._tcp.svc1.testns.svc.cluster.local.", "SRV")
    first = respond(zone, wire)  # resolved, stored, rendered by the parsing path
    assert respond(zone, wire) == first  # the pre-encoded path
    assert zone.respond(bytearray(wire)) == first  # type: ignore[arg-type]  # transports may hand us buffers
    as_any = bytearray(wire)
    as_any[-1] = 255  # QCLASS ANY is answered like IN
    assert DNSRecord.parse(respond(zone, bytes(as_any))).rr[0].rtype == QTYPE.SRV


# -- malformed and unusual queries ---------------------------------------------------------------

def _header(flags: int = 0x0100, qd: int = 1, an: int = 0, ns: int = 0, ar: int = 0) -> bytes:
    return struct.pack("!HHHHHH", 0x1234, flags, qd, an, ns, ar)


QUESTION = b"\x04svc1\x06testns\x03svc\x07cluster\x05local\x00\x00\x01\x00\x01"


@pytest.mark.parametrize("wire, expected", [
    (_header(qd=2) + QUESTION + QUESTION, "FORMERR"),
    (_header(qd=0), "FORMERR"),
    (_header() + b"\x04svc1\xc0\x0c\x00\x01\x00\x01", "FORMERR"),  # pointer in the question
    (_header() + b"\x40" + b"a" * 64 + b"\x00\x00\x01\x00\x01", "FORMERR"),  # 64-byte label
    (_header() + (b"\x3f" + b"a" * 63) * 4 + b"\x00\x00\x01\x00\x01", "FORMERR"),  # 257-byte name
    (_header() + b"\x04svc1\x06testns", "FORMERR"),  # cut in the name
    (_header() + b"\x04svc1\x00\x00", "FORMERR"),  # cut in the type/class
    (_header(an=1) + QUESTION, "FORMERR"),
    (_header(ar=1) + QUESTION + b"\x00\x00\x29", "FORMERR"),  # cut OPT
    (_header(flags=0x2100) + QUESTION, "NOTIMP"),  # opcode NOTIFY
    (_header(flags=0x1000) + QUESTION, "NOTIMP"),  # opcode STATUS
    (_header() + QUESTION[:-2] + b"\x00\x03", "REFUSED"),  # class CH
    (_header() + QUESTION[:-4] + b"\x00\xfc\x00\x01", "REFUSED"),  # AXFR
    (_header() + QUESTION[:-4] + b"\x00\xfb\x00\x01", "REFUSED"),  # IXFR
])
def test_bad_queries_get_error_replies(wire: bytes, expected: str) -> None:
    out = respond(make_zone(), wire)
    reply = DNSRecord.parse(out)
    assert rcode(reply) == expected and reply.header.qr == 1 and out[:2] == b"\x12\x34"


@pytest.mark.parametrize("wire", [b"", b"\x12\x34", bytes(11), _header(flags=0x8100) + QUESTION])
def test_short_packets_and_responses_are_dropped(wire: bytes) -> None:
    assert make_zone().respond(wire) is None


def _walk_name(data: bytes, pos: int) -> int:
    while True:
        length = data[pos]
        if length & 0xC0 == 0xC0:
            assert (int.from_bytes(data[pos:pos + 2], "big") & 0x3FFF) < pos, "pointers point backwards"
            return pos + 2
        assert length <= 63
        pos += length + 1
        if length == 0:
            return pos


def _parse_reply(out: bytes) -> None:
    """dnslib, or for names that are not UTF-8 (legal in DNS, refused by dnslib) a structural walk."""
    try:
        DNSRecord.parse(out)
        return
    except DNSError:
        pass
    qd, an, ns, ar = struct.unpack_from("!4H", out, 4)
    assert out[2] & 0x80 and qd == 1
    pos = _walk_name(out, 12)
    with pytest.raises(UnicodeDecodeError):
        out[12:pos].decode()
    pos += 4
    for _ in range(an + ns + ar):
        pos = _walk_name(out, pos)
        pos += 10 + int.from_bytes(out[pos + 8:pos + 10], "big")
    assert pos == len(out)


def _check_any_result(zone: ClusterZone, wire: bytes, max_size: int) -> None:
    result = zone.respond(wire, max_size=max_size)
    if result is None:
        return
    if isinstance(result, Upstream):
        replies: list[bytes | None] = [None, b"", wire]
        with contextlib.suppress(DNSError):  # dnslib cannot read every query we accept and forward verbatim
            replies.append(fake_reply(result.query, [], rcode=3))
        for reply in replies:
            _parse_reply(result.finish(reply))
        return
    assert len(result) <= max(512, max_size)
    _parse_reply(result)


FUZZ_ZONE = make_zone()
FUZZ_ZONE.set_service(service("testns", "ext", external="ext.interwebs.test"))
headless(FUZZ_ZONE, "big", 60)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=300), st.sampled_from([512, 1232, 65535]))
def test_arbitrary_bytes_never_raise(wire: bytes, max_size: int) -> None:
    _check_any_result(FUZZ_ZONE, wire, max_size)


SEEDS = [query(n, t, edns=e) for n, t, e in [
    (SVC1, "A", None), ("big.testns.svc.cluster.local.", "A", 1232), ("ext.testns.svc.cluster.local.", "A", None),
    ("_http._tcp.svc1.testns.svc.cluster.local.", "SRV", 4096), ("1.0.0.10.in-addr.arpa.", "PTR", None)]]


@settings(max_examples=400, deadline=None)
@given(st.sampled_from(SEEDS), st.lists(st.tuples(st.integers(0, 120), st.integers(0, 255)), max_size=4),
       st.sampled_from([512, 65535]))
def test_mutated_queries_never_raise(seed: bytes, flips: list[tuple[int, int]], max_size: int) -> None:
    wire = bytearray(seed)
    for pos, value in flips:
        if pos < len(wire):
            wire[pos] = value
    _check_any_result(FUZZ_ZONE, bytes(wire), max_size)
