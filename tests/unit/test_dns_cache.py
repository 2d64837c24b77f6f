"""The node-local cache's pure logic: what is cached and for how long, how a hit is assembled
(ID, 0x20 question echo, TTLs counting down, OPT only for EDNS queries), eviction; and the wire
helpers it stands on."""

from __future__ import annotations

import random
import struct
from collections.abc import Sequence

import pytest
from dnslib import AAAA, CNAME, EDNS0, QTYPE, RCODE, RR, SOA, A, DNSRecord
from hypothesis import given, settings
from hypothesis import strategies as st

from netplane.dataplane.dns import wire as packet
from netplane.dataplane.dns.cache import CLUSTER_POLICY, CachePolicy, DnsCache, key_of
from netplane.dataplane.dns.nodecache import name_wire, under

pytestmark = pytest.mark.unit


def query(name: str, qtype: str = "A", *, qid: int = 0x1234, edns: bool = False, do: bool = False,
          cd: bool = False) -> bytes:
    q = DNSRecord.question(name, qtype)
    q.header.id = qid
    q.header.cd = int(cd)
    if edns or do:
        q.add_ar(EDNS0(udp_len=4096, flags="do" if do else ""))
    return bytes(q.pack())


def soa(zone: str = "example.", ttl: int = 60, minimum: int = 60) -> RR:
    return RR(zone, QTYPE.SOA, rdata=SOA("ns." + zone, "hostmaster." + zone, (1, 7200, 1800, 86400, minimum)),
              ttl=ttl)


def reply_to(wire: bytes, answers: Sequence[RR] = (), auth: Sequence[RR] = (), rcode: int = RCODE.NOERROR,
             tc: bool = False, edns: bool = False) -> bytes:
    q = DNSRecord.parse(wire)
    r = q.reply()
    r.ar = []
    for rr in answers:
        r.add_answer(rr)
    for rr in auth:
        r.add_auth(rr)
    r.header.rcode = rcode
    r.header.tc = int(tc)
    if edns:
        r.add_ar(EDNS0(udp_len=1232))
    return bytes(r.pack())


def store(cache: DnsCache, wire: bytes, reply: bytes, now: float = 100.0) -> bool:
    q = packet.parse_query(wire)
    assert q is not None
    return cache.put(key_of(wire, q), reply, q, now)


def lookup(cache: DnsCache, wire: bytes, now: float) -> DNSRecord | None:
    q = packet.parse_query(wire)
    assert q is not None
    hit = cache.get(key_of(wire, q), wire, q.end, q.edns > 0, now)
    return None if hit is None else DNSRecord.parse(hit)


def a(name: str = "www.example.", ttl: int = 300, ip: str = "192.0.2.1") -> RR:
    return RR(name, QTYPE.A, rdata=A(ip), ttl=ttl)


# ---------------------------------------------------------------------- TTLs


@pytest.mark.parametrize(("ttl", "expected"), [(300, 30), (30, 30), (12, 12), (5, 5), (1, 5), (0, 5)])
def test_success_ttl_is_clamped_to_min_and_max(ttl: int, expected: int) -> None:
    cache = DnsCache(CLUSTER_POLICY)
    wire = query("www.example")
    assert store(cache, wire, reply_to(wire, [a(ttl=ttl)]))
    hit = lookup(cache, wire, 100.0)
    assert hit is not None and [rr.ttl for rr in hit.rr] == [expected]
    assert lookup(cache, wire, 100.0 + expected - 0.01) is not None
    assert lookup(cache, wire, 100.0 + expected) is None


def test_the_smallest_ttl_of_all_records_decides() -> None:
    cache = DnsCache()
    wire = query("alias.example")
    chain = [RR("alias.example.", QTYPE.CNAME, rdata=CNAME("www.example."), ttl=20), a(ttl=300)]
    store(cache, wire, reply_to(wire, chain))
    hit = lookup(cache, wire, 100.0)
    assert hit is not None and [rr.ttl for rr in hit.rr] == [20, 20]
    assert lookup(cache, wire, 120.0) is None


@pytest.mark.parametrize(("policy", "soa_ttl", "minimum", "expected"), [
    (CLUSTER_POLICY, 3600, 3600, 5),  # NodeLocal's cluster domain: denial 9984 5
    (CachePolicy(), 3600, 3600, 30),  # `cache 30` elsewhere
    (CachePolicy(), 3600, 10, 10),  # RFC 2308: the SOA MINIMUM bounds the negative TTL
    (CachePolicy(), 8, 3600, 8),
    (CachePolicy(), 1, 1, 5),
])
def test_denial_ttl(policy: CachePolicy, soa_ttl: int, minimum: int, expected: int) -> None:
    cache = DnsCache(policy)
    wire = query("nope.example")
    assert store(cache, wire, reply_to(wire, auth=[soa(ttl=soa_ttl, minimum=minimum)], rcode=RCODE.NXDOMAIN))
    hit = lookup(cache, wire, 100.0)
    assert hit is not None and hit.header.rcode == RCODE.NXDOMAIN
    assert [rr.ttl for rr in hit.auth] == [expected]
    assert lookup(cache, wire, 100.0 + expected) is None


def test_ttls_count_down_and_the_cache_counts_hits_and_misses() -> None:
    cache = DnsCache()
    wire = query("www.example")
    assert lookup(cache, wire, 99.0) is None
    store(cache, wire, reply_to(wire, [a(ttl=300), a(ttl=300, ip="192.0.2.2")]))
    seen = []
    for age in (0, 0.9, 1.0, 10.5, 29.99):
        hit = lookup(cache, wire, 100.0 + age)
        assert hit is not None
        seen.append({rr.ttl for rr in hit.rr})
    assert seen == [{30}, {30}, {29}, {20}, {1}]
    assert (cache.hits_success, cache.hits_denial, cache.misses) == (5, 0, 1)


# ---------------------------------------------------------------------- keys and the hit's shape


def test_key_is_case_insensitive_and_the_hit_echoes_the_querys_case_and_id() -> None:
    cache = DnsCache()
    first = query("WwW.ExAmPlE", qid=1)
    store(cache, first, reply_to(first, [a("WwW.ExAmPlE.")]))
    second = query("www.EXAMPLE", qid=0xBEEF)
    q = packet.parse_query(second)
    assert q is not None
    raw = cache.get(key_of(second, q), second, q.end, False, 101.0)
    assert raw is not None
    assert raw[:2] == b"\xbe\xef"
    end = packet.question_end(second)
    assert raw[12:end] == second[12:end]  # the question, byte for byte (0x20 case kept)
    hit = DNSRecord.parse(raw)
    assert str(hit.q.qname) == "www.EXAMPLE." and str(hit.rr[0].rname) == "www.EXAMPLE."  # owner compressed
    assert hit.header.qr == 1 and hit.header.rd == 1 and hit.header.id == 0xBEEF


def test_rd_is_copied_from_the_query() -> None:
    cache = DnsCache()
    wire = query("www.example")
    store(cache, wire, reply_to(wire, [a()]))
    no_rd = bytearray(wire)
    no_rd[2] &= ~packet.RD & 0xFF
    hit = lookup(cache, bytes(no_rd), 100.0)
    assert hit is not None and hit.header.rd == 0


@pytest.mark.parametrize("other", [
    {"qtype": "AAAA"}, {"do": True}, {"cd": True},
])
def test_qtype_do_and_cd_are_part_of_the_key(other: dict[str, object]) -> None:
    cache = DnsCache()
    wire = query("www.example")
    store(cache, wire, reply_to(wire, [a()]))
    assert lookup(cache, query("www.example", **other), 100.0) is None  # type: ignore[arg-type]


def test_qclass_is_part_of_the_key() -> None:
    cache = DnsCache()
    wire = query("www.example")
    store(cache, wire, reply_to(wire, [a()]))
    chaos = bytearray(wire)
    chaos[-1] = 3
    q = packet.parse_query(bytes(chaos))
    assert q is not None and cache.get(key_of(bytes(chaos), q), bytes(chaos), q.end, False, 100.0) is None


def test_opt_is_not_stored_but_added_for_edns_queries() -> None:
    cache = DnsCache()
    with_edns = query("www.example", edns=True)
    assert store(cache, with_edns, reply_to(with_edns, [a()], edns=True))
    plain = lookup(cache, query("www.example"), 100.0)
    assert plain is not None and plain.ar == [] and plain.header.ar == 0
    edns = lookup(cache, query("www.example", edns=True), 100.0)
    assert edns is not None and [rr.rtype for rr in edns.ar] == [QTYPE.OPT] and edns.ar[0].rclass == packet.EDNS_UDP


def test_do_bit_is_echoed_in_our_opt() -> None:
    cache = DnsCache()
    wire = query("www.example", do=True)
    store(cache, wire, reply_to(wire, [a()], edns=True))
    hit = lookup(cache, query("www.example", do=True, qid=9), 100.0)
    assert hit is not None and hit.ar[0].ttl & 0x8000


# ---------------------------------------------------------------------- what is not cached


def test_not_cached() -> None:
    cache = DnsCache()
    wire = query("www.example")
    cases = {
        "truncated": reply_to(wire, [a()], tc=True),
        "servfail": reply_to(wire, rcode=RCODE.SERVFAIL),
        "refused": reply_to(wire, rcode=RCODE.REFUSED),
        "nxdomain without soa": reply_to(wire, rcode=RCODE.NXDOMAIN),
        "nodata without soa": reply_to(wire),
        "cname chain without the qtype or soa": reply_to(
            wire, [RR("www.example.", QTYPE.CNAME, rdata=CNAME("elsewhere.example."), ttl=60)]),
        "another question": reply_to(query("other.example"), [a("other.example.")]),
        "another qtype": reply_to(query("www.example", "AAAA"), [RR("www.example.", QTYPE.AAAA,
                                                                     rdata=AAAA("2001:db8::1"), ttl=60)]),
        "a query, not a reply": wire,
        "cut short": reply_to(wire, [a()])[:-3],
        "trailing bytes": reply_to(wire, [a()]) + b"\x00",
    }
    for what, reply in cases.items():
        assert not store(cache, wire, reply), what
    assert cache.entries() == (0, 0)


def test_nodata_and_cname_to_nodata_with_soa_are_denials() -> None:
    cache = DnsCache(CLUSTER_POLICY)
    wire = query("www.example", "AAAA")
    store(cache, wire, reply_to(wire, auth=[soa()]))
    alias = query("alias.example", "AAAA")
    store(cache, alias, reply_to(alias, [RR("alias.example.", QTYPE.CNAME, rdata=CNAME("www.example."), ttl=60)],
                                 auth=[soa()]))
    assert cache.entries() == (0, 2)
    hit = lookup(cache, alias, 100.0)
    assert hit is not None and [rr.ttl for rr in hit.rr + hit.auth] == [5, 5]
    assert cache.hits_denial == 1


def test_a_success_replaces_a_denial_for_the_same_key() -> None:
    cache = DnsCache()
    wire = query("www.example")
    store(cache, wire, reply_to(wire, auth=[soa()], rcode=RCODE.NXDOMAIN))
    store(cache, wire, reply_to(wire, [a()]), now=101.0)
    assert cache.entries() == (1, 0)
    hit = lookup(cache, wire, 101.0)
    assert hit is not None and hit.header.rcode == RCODE.NOERROR


# ---------------------------------------------------------------------- capacity


def test_capacity_evicts_the_oldest_stored() -> None:
    cache = DnsCache(CachePolicy(success_capacity=3, denial_capacity=2))
    names = [f"n{i}.example" for i in range(5)]
    for i, name in enumerate(names):
        wire = query(name)
        store(cache, wire, reply_to(wire, [a(name + ".")]), now=100.0 + i * 0.01)
    assert cache.entries() == (3, 0) and cache.evictions_success == 2
    assert [lookup(cache, query(n), 100.1) is not None for n in names] == [False, False, True, True, True]
    for i in range(4):
        wire = query(f"gone{i}.example")
        store(cache, wire, reply_to(wire, auth=[soa()], rcode=RCODE.NXDOMAIN))
    assert cache.entries() == (3, 2) and cache.evictions_denial == 2


def test_expired_entries_are_swept_when_storing() -> None:
    cache = DnsCache()
    old = query("old.example")
    store(cache, old, reply_to(old, [a("old.example.", ttl=5)]), now=0.0)
    new = query("new.example")
    store(cache, new, reply_to(new, [a("new.example.")]), now=50.0)
    assert cache.entries() == (1, 0)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(0, 40), min_size=1, max_size=60), st.integers(1, 8))
def test_capacity_is_never_exceeded(names: list[int], capacity: int) -> None:
    cache = DnsCache(CachePolicy(success_capacity=capacity, denial_capacity=capacity))
    for i, n in enumerate(names):
        wire = query(f"h{n}.example")
        if n % 3:
            store(cache, wire, reply_to(wire, [a(f"h{n}.example.")]), now=float(i))
        else:
            store(cache, wire, reply_to(wire, auth=[soa()], rcode=RCODE.NXDOMAIN), now=float(i))
        success, denial = cache.entries()
        assert success <= capacity and denial <= capacity


# ---------------------------------------------------------------------- invariants of a hit

LABEL = st.text(alphabet="abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-", min_size=1,
                max_size=12).filter(lambda s: not s.startswith("-") and not s.endswith("-"))


@settings(max_examples=150, deadline=None)
@given(labels=st.lists(LABEL, min_size=1, max_size=4), ttls=st.lists(st.integers(0, 2 ** 31 - 1), min_size=1,
       max_size=4), qid=st.integers(0, 0xFFFF), ages=st.lists(st.floats(0, 60), min_size=1, max_size=5),
       flip=st.randoms(use_true_random=False), edns=st.booleans())
def test_a_hit_answers_this_query_with_ttls_counting_down(labels: list[str], ttls: list[int], qid: int,
                                                          ages: list[float], flip: random.Random, edns: bool) -> None:
    name = ".".join(labels) + ".example"
    cache = DnsCache()
    first = query(name, edns=edns)
    assert store(cache, first, reply_to(first, [a(name + ".", ttl=t, ip=f"192.0.2.{i}") for i, t in enumerate(ttls)],
                                        edns=edns))
    asked = "".join(c.upper() if flip.random() < 0.5 else c.lower() for c in name)  # 0x20 randomisation
    wire = query(asked, qid=qid, edns=edns)
    end = packet.question_end(wire)
    duration = max(5, min(min(ttls), 30))
    previous = None
    for age in sorted(ages):
        q = packet.parse_query(wire)
        assert q is not None
        raw = cache.get(key_of(wire, q), wire, q.end, q.edns > 0, 100.0 + age)
        if age >= duration:
            assert raw is None
            continue
        assert raw is not None
        assert raw[:2] == struct.pack(">H", qid) and raw[12:end] == wire[12:end]
        hit = DNSRecord.parse(raw)
        assert len(hit.rr) == len(ttls) and len({rr.ttl for rr in hit.rr}) == 1
        ttl = hit.rr[0].ttl
        assert 1 <= ttl <= duration and (previous is None or ttl <= previous)
        assert (len(hit.ar) == 1) == edns
        previous = ttl


# ---------------------------------------------------------------------- wire helpers


def test_parse_query_reads_question_and_edns() -> None:
    q = packet.parse_query(query("Www.Example", "AAAA", edns=True, do=True))
    assert q is not None
    assert q.lname == b"\x03www\x07example\x00" and q.qtype == 28 and q.edns == 4096 and q.do
    plain = packet.parse_query(query("www.example"))
    assert plain is not None and plain.edns == 0 and not plain.do


@pytest.mark.parametrize("wire", [
    b"", b"\x00" * 11, b"\x12\x34\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00",  # no question bytes
    b"\x12\x34\x81\x00\x00\x01\x00\x00\x00\x00\x00\x00\x00\x00\x01\x00\x01",  # a response
    b"\x12\x34\x01\x00\x00\x02\x00\x00\x00\x00\x00\x00\x00\x00\x01\x00\x01",  # two questions
    b"\x12\x34\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00\xc0\x0c\x00\x01\x00\x01",  # compressed qname
    b"\x12\x34\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00\x05ab\x00\x01\x00\x01",  # label runs past the end
    b"\x12\x34\x01\x00\x00\x01\x00\x00\x00\x00\x00\x01\x00\x00\x01\x00\x01\x00",  # additional cut short
    b"\x12\x34\x29\x00\x00\x01\x00\x00\x00\x00\x00\x00\x00\x00\x06\x00\x01",  # opcode UPDATE
])
def test_parse_query_rejects(wire: bytes) -> None:
    assert packet.parse_query(wire) is None


def test_a_long_name_is_rejected() -> None:
    wire = bytearray(query("a.example"))
    long_name = b"".join(b"\x3f" + b"x" * 63 for _ in range(4)) + b"\x00"  # 257 octets
    wire[12:12 + len(b"\x01a\x07example\x00")] = long_name
    assert packet.parse_query(bytes(wire)) is None


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=80))
def test_garbage_never_raises(data: bytes) -> None:
    q = packet.parse_query(data)
    if q is not None:
        assert q.end <= len(data)
        packet.error_reply(data, q, packet.SERVFAIL, ra=True)
    packet.header_only_reply(data, packet.FORMERR)
    assert DnsCache().put((b"\x00", b"\x00\x01\x00\x01", 0), data, packet.Query(17, b"\x00", 1, 0, False), 0.0) \
        in (True, False)


def test_error_and_truncated_replies() -> None:
    wire = query("Www.Example", edns=True)
    q = packet.parse_query(wire)
    assert q is not None
    servfail = DNSRecord.parse(packet.error_reply(wire, q, packet.SERVFAIL, ra=True))
    assert servfail.header.rcode == RCODE.SERVFAIL and servfail.header.id == 0x1234 and servfail.header.ra
    assert str(servfail.q.qname) == "Www.Example." and servfail.ar[0].rtype == QTYPE.OPT
    big = reply_to(wire, [a(ip=f"192.0.2.{i}") for i in range(100)])
    cut = DNSRecord.parse(packet.truncated(big, wire, q))
    assert cut.header.tc and cut.rr == [] and str(cut.q.qname) == "Www.Example."


@pytest.mark.parametrize(("name", "zone", "inside"), [
    ("a.cluster.local", "cluster.local", True), ("cluster.local", "cluster.local", True),
    ("acluster.local", "cluster.local", False), ("cluster.local.evil", "cluster.local", False),
    ("anything", ".", True), ("1.0.0.10.in-addr.arpa", "in-addr.arpa", True),
])
def test_under(name: str, zone: str, inside: bool) -> None:
    assert under(name_wire(name), name_wire(zone)) is inside


def test_under_checks_label_boundaries_not_bytes() -> None:
    # A label ending in bytes that look like "\x07cluster": a byte suffix, not a label suffix.
    tricky = b"\x0aab\x07cluster\x05local\x00"
    assert tricky.endswith(name_wire("cluster.local")) and not under(tricky, name_wire("cluster.local"))
