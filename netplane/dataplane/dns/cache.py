"""The response cache of the node-local DNS cache (pure: no sockets, the clock is passed in).

What is cached and for how long follows CoreDNS's `cache` plugin as NodeLocal DNSCache configures
it (`success 9984 30`, `denial 9984 5` for the cluster domain; `cache 30` elsewhere):

- key: the lowercased qname, qtype, qclass, and the query's DO and CD bits;
- a positive answer ("success") is kept for the smallest TTL of its records, a negative one
  ("denial": NXDOMAIN, or NOERROR without the asked type) for the smallest of that and its SOA's
  MINIMUM (RFC 2308), each clamped to [min_ttl, max_ttl];
- never cached: truncated replies, rcodes other than NOERROR/NXDOMAIN (a SERVFAIL is the
  upstream's transient state and would outlive its recovery), and negative answers without an
  SOA (RFC 2308 §5: with no SOA there is no negative TTL to honour);
- each kind holds at most `capacity` entries; the oldest stored goes first, which with one
  maximum TTL per kind is also the one closest to expiring.

A hit is assembled from bytes prepared when the reply was stored: the query's ID, a precomputed
header (the query's RD copied), the query's own question bytes (so a 0x20-randomised qname is
echoed exactly, and compression pointers into the question stay valid since its length is the
same), and the records with every TTL set to the entry's remaining lifetime, as CoreDNS does. That
tail is re-rendered at most once a second per entry. The upstream's OPT record is not stored: a
hit carries our own OPT only when the query had one.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from netplane.dataplane.dns.wire import (
    CD,
    COUNTS,
    HEADER_LEN,
    NOERROR,
    NXDOMAIN,
    OPCODE,
    QR,
    RCODE,
    RD,
    TC,
    TYPE_ANY,
    TYPE_CNAME,
    TYPE_OPT,
    TYPE_SOA,
    Query,
    counts,
    opt_record,
    question_end,
    walk,
)

Key = tuple[bytes, bytes, int]  # (lowercased qname wire, qtype+qclass wire, DO|CD bits)

_TTL = struct.Struct(">I")
DO_BIT = 0x80  # in the key's flags, beside CD (0x10)


@dataclass(frozen=True)
class CachePolicy:
    success_capacity: int = 9984
    success_max_ttl: int = 30
    denial_capacity: int = 9984
    denial_max_ttl: int = 30
    min_ttl: int = 5


# NodeLocal DNSCache's cluster-domain server block; other zones use `cache 30` (the defaults above).
CLUSTER_POLICY = CachePolicy(denial_max_ttl=5)


def key_of(query: bytes, q: Query) -> Key:
    return q.lname, query[q.end - 4:q.end], (query[3] & CD) | (DO_BIT if q.do else 0)


class Entry:
    __slots__ = ("denial", "duration", "heads", "opt", "rendered", "rendered_ttl", "stored", "tail", "ttl_offsets")

    def __init__(self, denial: bool, stored: float, duration: int, heads: tuple[bytes, bytes, bytes, bytes],
                 opt: bytes, tail: bytes, ttl_offsets: tuple[int, ...]):
        self.denial = denial
        self.stored = stored
        self.duration = duration
        self.heads = heads  # flags + counts, indexed by (query RD) | (query had EDNS) << 1
        self.opt = opt
        self.tail = tail  # the records after the question, OPT removed
        self.ttl_offsets = ttl_offsets  # into tail
        self.rendered_ttl = -1
        self.rendered = tail

    def records(self, ttl: int) -> bytes:
        if ttl != self.rendered_ttl:
            buf = bytearray(self.tail)
            for off in self.ttl_offsets:
                _TTL.pack_into(buf, off, ttl)
            self.rendered, self.rendered_ttl = bytes(buf), ttl
        return self.rendered


class DnsCache:
    def __init__(self, policy: CachePolicy = CachePolicy()):
        self.policy = policy
        self._success: dict[Key, Entry] = {}
        self._denial: dict[Key, Entry] = {}
        self.hits_success = 0
        self.hits_denial = 0
        self.misses = 0
        self.evictions_success = 0
        self.evictions_denial = 0

    def entries(self) -> tuple[int, int]:
        return len(self._success), len(self._denial)

    def get(self, key: Key, query: bytes, end: int, edns: bool, now: float) -> bytes | None:
        """The cached answer to `query` (keyed `key`; its question ends at `end`; `edns`: it has an
        OPT record), or None, counted as a miss."""
        reply = self.hit(key, query, end, edns, now)
        if reply is None:
            self.misses += 1
        return reply

    def hit(self, key: Key, query: bytes, end: int, edns: bool, now: float) -> bytes | None:
        """`get`, except that not finding the answer is not counted (the caller will look again)."""
        entry = self._success.get(key) or self._denial.get(key)
        if entry is None:
            return None
        ttl = entry.duration - int(now - entry.stored)
        if ttl <= 0:
            (self._denial if entry.denial else self._success).pop(key, None)
            return None
        if entry.denial:
            self.hits_denial += 1
        else:
            self.hits_success += 1
        return b"".join((query[:2], entry.heads[(query[2] & RD) | edns << 1], query[HEADER_LEN:end],
                         entry.records(ttl), entry.opt if edns else b""))

    def put(self, key: Key, reply: bytes, q: Query, now: float) -> bool:
        """Store `reply` (the upstream's answer to the query parsed as `q`) if it may be cached."""
        entry = self._entry(key, reply, q, now)
        if entry is None:
            return False
        store, other = (self._denial, self._success) if entry.denial else (self._success, self._denial)
        other.pop(key, None)
        store.pop(key, None)
        capacity = self.policy.denial_capacity if entry.denial else self.policy.success_capacity
        self._expire_oldest(store, now)
        while len(store) >= capacity:
            del store[next(iter(store))]
            if entry.denial:
                self.evictions_denial += 1
            else:
                self.evictions_success += 1
        store[key] = entry
        return True

    @staticmethod
    def _expire_oldest(store: dict[Key, Entry], now: float) -> None:
        # A little sweeping on each store keeps expired entries from lingering until evicted.
        for _ in range(2):
            if not store:
                return
            oldest = next(iter(store))
            entry = store[oldest]
            if entry.duration - int(now - entry.stored) > 0:
                return
            del store[oldest]

    def _entry(self, key: Key, reply: bytes, q: Query, now: float) -> Entry | None:
        end = q.end
        if len(reply) < end or reply[2] & (QR | OPCODE | TC) != QR:
            return None
        rcode = reply[3] & RCODE
        if rcode not in (NOERROR, NXDOMAIN):
            return None
        # The reply must answer this very question (the forwarder checks too; a cache must be sure).
        if question_end(reply) != end or reply[HEADER_LEN:end - 4].lower() != key[0] \
                or reply[end - 4:end] != key[1]:
            return None
        qd, an, ns, ar = counts(reply)
        records = walk(reply, end, (an, ns, ar))
        if records is None:
            return None
        qtype = q.qtype
        opt_at = len(reply)
        ttls: list[int] = []
        offsets: list[int] = []
        soa_minimum = -1
        positive = False
        for r in records:
            if r.rtype == TYPE_OPT:
                if r is not records[-1] or r.section != 2:
                    return None  # anything after an OPT (a TSIG) is not ours to replay
                opt_at = r.start
                ar -= 1
                continue
            ttls.append(r.ttl)
            offsets.append(r.ttl_at - end)
            if r.section == 0 and (r.rtype == qtype or qtype in (TYPE_ANY, TYPE_CNAME)):
                positive = True
            elif r.section == 1 and r.rtype == TYPE_SOA and r.end - r.rdata_at >= 22:
                minimum = _TTL.unpack_from(reply, r.end - 4)[0]
                soa_minimum = minimum if soa_minimum < 0 else min(soa_minimum, minimum)
        denial = rcode == NXDOMAIN or not positive
        if denial:
            if soa_minimum < 0:
                return None
            ttls.append(soa_minimum)
        policy = self.policy
        max_ttl = policy.denial_max_ttl if denial else policy.success_max_ttl
        duration = max(policy.min_ttl, min(min(ttls, default=policy.min_ttl), max_ttl))
        flags = reply[2] & ~RD & 0xFF
        heads = tuple(bytes((flags | rd, reply[3])) + COUNTS.pack(qd, an, ns, ar + with_opt)
                      for with_opt in (0, 1) for rd in (0, 1))
        opt = opt_record(bool(key[2] & DO_BIT))
        return Entry(denial, now, duration, (heads[0], heads[1], heads[2], heads[3]), opt, reply[end:opt_at],
                     tuple(offsets))
