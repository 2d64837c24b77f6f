"""Just enough DNS wire reading and writing for the I/O side (transport, forwarder, cache).

Nothing here turns names into text: the hot paths hash, compare and copy wire bytes. Names in a
question are taken only uncompressed (a query has nothing to point back to); names in replies are
skipped over, pointers included, to find each record's TTL and type.
"""

from __future__ import annotations

import struct
from typing import NamedTuple

HEADER_LEN = 12

# Header byte 2 and byte 3 flags.
QR = 0x80
OPCODE = 0x78
AA = 0x04
TC = 0x02
RD = 0x01
RA = 0x80
CD = 0x10
RCODE = 0x0F

NOERROR, FORMERR, SERVFAIL, NXDOMAIN, NOTIMP, REFUSED = range(6)

TYPE_CNAME = 5
TYPE_SOA = 6
TYPE_OPT = 41
TYPE_DNAME = 39
TYPE_ANY = 255

MIN_UDP = 512
# The most sent over UDP and what our OPT advertises: no IP fragmentation (DNS flag day 2020).
EDNS_UDP = 1232
MAX_TCP = 65535

_U16 = struct.Struct(">H")
_RR_FIXED = struct.Struct(">HHIH")  # type, class, ttl, rdlength


class Query(NamedTuple):
    """A standard query with one question; `end` is just past its question's qclass."""

    end: int
    lname: bytes  # the qname's wire form, lowercased (label lengths are < 0x41, so never touched)
    qtype: int
    edns: int  # the client's EDNS UDP size, 0 without an OPT record
    do: bool


def question_end(msg: bytes) -> int:
    """Offset just past the only question of `msg` (uncompressed qname), or -1."""
    n = len(msg)
    if n < HEADER_LEN + 5 or msg[4] or msg[5] != 1:
        return -1
    off = HEADER_LEN
    while True:
        if off >= n:
            return -1
        length = msg[off]
        if not length:
            break
        if length > 63:
            return -1
        off += length + 1
    if off + 1 - HEADER_LEN > 255 or off + 5 > n:
        return -1
    return off + 5


def parse_query(msg: bytes) -> Query | None:
    """The question and EDNS of a standard query (QR=0, opcode QUERY, one question); None otherwise."""
    if len(msg) < HEADER_LEN or msg[2] & (QR | OPCODE):
        return None
    end = question_end(msg)
    if end < 0:
        return None
    edns, do = _query_edns(msg, end)
    if edns < 0:
        return None
    return Query(end, msg[HEADER_LEN:end - 4].lower(), msg[end - 4] << 8 | msg[end - 3], edns, do)


def _query_edns(msg: bytes, end: int) -> tuple[int, bool]:
    """(UDP size, DO) of the query's OPT record; (0, False) without one; (-1, False) if malformed."""
    if msg[6:12] == b"\x00\x00\x00\x00\x00\x01" and msg[end:end + 3] == b"\x00\x00\x29" and len(msg) >= end + 11:
        # The usual shape: nothing but one OPT after the question.
        return max(msg[end + 3] << 8 | msg[end + 4], MIN_UDP), bool(msg[end + 7] & 0x80)
    if msg[10:12] == b"\x00\x00":
        return 0, False
    records = walk(msg, end, counts(msg)[1:])
    if records is None:
        return -1, False
    opts = [r for r in records if r.rtype == TYPE_OPT]
    if not opts:
        return 0, False
    if len(opts) > 1 or opts[0].section != 2:
        return -1, False
    opt = opts[0]
    return max(_U16.unpack_from(msg, opt.ttl_at - 2)[0], MIN_UDP), bool(msg[opt.ttl_at + 2] & 0x80)


def counts(msg: bytes) -> tuple[int, int, int, int]:
    qd, an, ns, ar = struct.unpack_from(">HHHH", msg, 4)
    return qd, an, ns, ar


def name_end(msg: bytes, off: int) -> int:
    """Offset just past a (possibly compressed) name at `off`, or -1 when it runs off the message."""
    n = len(msg)
    while off < n:
        length = msg[off]
        if not length:
            return off + 1
        if length >= 0xC0:
            return off + 2 if off + 2 <= n else -1
        if length > 63:
            return -1
        off += length + 1
    return -1


class Record(NamedTuple):
    section: int  # 0 answer, 1 authority, 2 additional
    start: int  # where the owner name begins
    rtype: int
    ttl: int
    ttl_at: int  # offset of the 4 TTL bytes
    rdata_at: int
    end: int  # just past the record


def walk(msg: bytes, off: int, sections: tuple[int, ...]) -> list[Record] | None:
    """The records of consecutive sections (their counts given) starting at `off`; None if malformed
    or if bytes are left over after them."""
    records = []
    for section, count in enumerate(sections):
        for _ in range(count):
            start = off
            off = name_end(msg, off)
            if off < 0 or off + 10 > len(msg):
                return None
            rtype, _, ttl, rdlen = _RR_FIXED.unpack_from(msg, off)
            end = off + 10 + rdlen
            if end > len(msg):
                return None
            records.append(Record(section, start, rtype, ttl, off + 4, off + 10, end))
            off = end
    return records if off == len(msg) else None


def opt_record(do: bool) -> bytes:
    """Our OPT record: root owner, UDP size EDNS_UDP, version 0, the DO bit echoed, no options."""
    return b"\x00\x00\x29" + _U16.pack(EDNS_UDP) + b"\x00\x00" + (b"\x80" if do else b"\x00") + b"\x00\x00\x00"


def udp_limit(edns: int) -> int:
    """The largest UDP reply for a client that advertised `edns` (0: none)."""
    return min(edns, EDNS_UDP) if edns > MIN_UDP else MIN_UDP


def error_reply(query: bytes, q: Query, rcode: int, *, ra: bool) -> bytes:
    """A reply with no records: the query's ID, opcode, RD and CD, its question, our OPT if it sent one."""
    opt = opt_record(q.do) if q.edns else b""
    flags = bytes((QR | (query[2] & (OPCODE | RD)), (RA if ra else 0) | (query[3] & CD) | rcode))
    return query[:2] + flags + (b"\x00\x01\x00\x00\x00\x00\x00\x01" if opt else b"\x00\x01\x00\x00\x00\x00\x00\x00") \
        + query[HEADER_LEN:q.end] + opt


def truncated(reply: bytes, query: bytes, q: Query) -> bytes:
    """`reply` cut to its header (TC set) and the query's question, for a client to retry over TCP."""
    opt = opt_record(q.do) if q.edns else b""
    return query[:2] + bytes((reply[2] | TC, reply[3])) \
        + (b"\x00\x01\x00\x00\x00\x00\x00\x01" if opt else b"\x00\x01\x00\x00\x00\x00\x00\x00") \
        + query[HEADER_LEN:q.end] + opt


def header_only_reply(query: bytes, rcode: int) -> bytes | None:
    """FORMERR/NOTIMP for a query whose question cannot be used; None for what is not a query at all
    (too short, or a response: answering those could start a loop between two servers)."""
    if len(query) < HEADER_LEN or query[2] & QR:
        return None
    return query[:2] + bytes((QR | (query[2] & (OPCODE | RD)), rcode)) + b"\x00" * 8
