"""DNS wire format: reading queries and replies, writing replies and answer sections.

The hot paths (the zone's stored answers, the node cache's hits) hash, compare and copy wire bytes and
never turn names into text. A question's name is taken only uncompressed (a query has nothing to point
back to); names in records are skipped over, pointers included, to find each record's type and TTL.

The authoritative zone also handles names as tuples of lowercased labels without the root (``Name``).
Its answers are written as a *tail* that follows the client's question copied verbatim, so
compression pointers may point into that question: offset 12 is the query name in the client's own
case, which is how owner names echo 0x20 case for free.
"""

from __future__ import annotations

import ipaddress
import struct
from collections.abc import Iterable
from typing import NamedTuple

Name = tuple[bytes, ...]
IP = ipaddress.IPv4Address | ipaddress.IPv6Address

HEADER_LEN = 12

# Header flags, by the byte that holds them: byte 2 ...
QR = 0x80
OPCODE = 0x78
AA = 0x04
TC = 0x02
RD = 0x01
# ... and byte 3.
RA = 0x80
CD = 0x10
RCODE = 0x0F

NOERROR, FORMERR, SERVFAIL, NXDOMAIN, NOTIMP, REFUSED = range(6)
BADVERS = 16  # extended rcode: upper 8 bits travel in the OPT TTL

TYPE_A = 1
TYPE_NS = 2
TYPE_CNAME = 5
TYPE_SOA = 6
TYPE_PTR = 12
TYPE_TXT = 16
TYPE_AAAA = 28
TYPE_SRV = 33
TYPE_OPT = 41
TYPE_IXFR = 251
TYPE_AXFR = 252
TYPE_ANY = 255

CLASS_IN = 1
CLASS_ANY = 255

MIN_UDP = 512
# The most sent over UDP and what our OPT advertises: no IP fragmentation (DNS flag day 2020).
EDNS_UDP = 1232
MAX_MESSAGE = 65535  # all a TCP length prefix can say
MAX_NAME_WIRE = 255
_POINTER_LIMIT = 0x4000  # a compression pointer carries 14 bits of offset

# QDCOUNT..ARCOUNT of a query with one question and nothing else (what glibc and musl stubs send).
PLAIN_COUNTS = b"\x00\x01\x00\x00\x00\x00\x00\x00"
_ONE_ADDITIONAL = b"\x00\x00\x00\x00\x00\x01"  # ANCOUNT..ARCOUNT of a query with just an OPT
_ROOT_OPT = b"\x00\x00\x29"  # the root name, then type 41

_HEADER = struct.Struct(">2sH4H")
COUNTS = struct.Struct(">4H")
_RR_FIXED = struct.Struct(">HHIH")  # type, class, ttl, rdlength


# ---------------------------------------------------------------------- reading


def question_end(msg: bytes) -> int:
    """Offset just past the only question of `msg` (uncompressed qname), or -1."""
    # Every query the zone answers and every one parse_query reads comes through here, so the offsets are
    # literals rather than sums of constants: 12 is HEADER_LEN, 17 a header and the shortest question,
    # and a root label at 267 or later ends a name longer than MAX_NAME_WIRE.
    n = len(msg)
    if n < 17 or msg[4] or msg[5] != 1:
        return -1
    off = 12
    while off < n:
        length = msg[off]
        if not length:
            return off + 5 if off + 5 <= n and off < 267 else -1
        if length > 63:
            return -1
        off += length + 1
    return -1


class Query(NamedTuple):
    """A standard query with one question; `end` is just past its question's qclass."""

    end: int
    lname: bytes  # the qname's wire form, lowercased (label lengths are < 0x41, so never touched)
    qtype: int
    edns: int  # the client's EDNS UDP size (at least MIN_UDP), 0 without an OPT record
    do: bool
    version: int = 0  # the EDNS version, 0 without an OPT record


def parse_query(msg: bytes) -> Query | None:
    """The question and EDNS of a standard query (QR=0, opcode QUERY, one question); None otherwise."""
    if len(msg) < HEADER_LEN or msg[2] & (QR | OPCODE):
        return None
    end = question_end(msg)
    if end < 0:
        return None
    ttl_at = _opt_ttl_at(msg, end)
    if ttl_at < 0:
        return None
    lname = msg[HEADER_LEN:end - 4].lower()
    qtype = msg[end - 4] << 8 | msg[end - 3]
    if not ttl_at:
        return Query(end, lname, qtype, 0, False)
    # The OPT's class is the UDP size; its TTL the extended rcode, the version, then the DO bit (the top one).
    size = msg[ttl_at - 2] << 8 | msg[ttl_at - 1]
    return Query(end, lname, qtype, size if size > MIN_UDP else MIN_UDP, msg[ttl_at + 2] >= 0x80, msg[ttl_at + 1])


def _opt_ttl_at(msg: bytes, end: int) -> int:
    """Where the TTL of the query's OPT record is; 0 without one, -1 if the records are malformed."""
    n = len(msg)
    if msg[6:12] == _ONE_ADDITIONAL and msg[end:end + 3] == _ROOT_OPT and n >= end + 11 \
            and n >= end + 11 + (msg[end + 9] << 8 | msg[end + 10]):
        # The usual shape: nothing but one OPT after the question, its options inside the message.
        return end + 5
    if msg[10:12] == b"\x00\x00":
        return 0
    records = walk(msg, end, counts(msg)[1:])
    if records is None:
        return -1
    opts = [r for r in records if r.rtype == TYPE_OPT]
    if not opts:
        return 0
    opt = opts[0]
    if len(opts) > 1 or opt.section != 2 or msg[opt.start]:
        return -1  # RFC 6891 §6.1.1: one OPT at most, an additional record owned by the root
    return opt.ttl_at


def counts(msg: bytes) -> tuple[int, int, int, int]:
    qd, an, ns, ar = COUNTS.unpack_from(msg, 4)
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


# ---------------------------------------------------------------------- writing replies


def opt_record(do: bool, extended_rcode: int = 0) -> bytes:
    """Our OPT record: root owner, UDP size EDNS_UDP, version 0, the DO bit echoed, no options."""
    return b"\x00" + _RR_FIXED.pack(TYPE_OPT, EDNS_UDP, extended_rcode << 24 | (0x8000 if do else 0), 0)


def reply_opt(q: Query, extended_rcode: int = 0) -> bytes:
    """The OPT record a reply to `q` carries: ours if the query had one, else none."""
    return opt_record(q.do, extended_rcode) if q.edns else b""


def reply_limit(max_size: int, edns: int) -> int:
    """The largest reply to send: `max_size` is the transport's ceiling (MAX_MESSAGE or more for TCP,
    where only the length prefix bounds a message); over UDP the client's EDNS size `edns` (0: no
    OPT, so MIN_UDP) bounds it too, and MIN_UDP is always allowed."""
    if max_size >= MAX_MESSAGE:
        return MAX_MESSAGE
    if edns < max_size:
        max_size = edns
    return max_size if max_size > MIN_UDP else MIN_UDP


def header(qid: bytes, flags: int, qd: int, an: int, ns: int, ar: int) -> bytes:
    return _HEADER.pack(qid, flags, qd, an, ns, ar)


def reply_flags(query: bytes, flags: int) -> int:
    """A reply's 16 flag bits: `flags` with the query's opcode, RD and CD copied (RFC 1035, RFC 4035 §3.2.2)."""
    return flags | (query[2] & (OPCODE | RD)) << 8 | query[3] & CD


def bare_reply(query: bytes, flags: int, end: int = HEADER_LEN, opt: bytes = b"") -> bytes:
    """A reply without records: the query's ID, `flags`, its question up to `end` (none if that is
    HEADER_LEN) and `opt`."""
    return header(query[:2], flags, 1 if end > HEADER_LEN else 0, 0, 0, 1 if opt else 0) + query[HEADER_LEN:end] + opt


def error_reply(query: bytes, q: Query, rcode: int, *, ra: bool) -> bytes:
    """A reply with no records: the query's ID, opcode, RD and CD, its question, our OPT if it sent one
    (with the upper bits of an extended `rcode`)."""
    flags = reply_flags(query, QR << 8 | (RA if ra else 0) | rcode & RCODE)
    return bare_reply(query, flags, q.end, reply_opt(q, rcode >> 4))


def truncated(reply: bytes, query: bytes, q: Query) -> bytes:
    """`reply` cut to its header (TC set) and the query's question, for a client to retry over TCP."""
    return bare_reply(query, (reply[2] | TC) << 8 | reply[3], q.end, reply_opt(q))


def header_only_reply(query: bytes, rcode: int) -> bytes | None:
    """FORMERR/NOTIMP for a query whose question cannot be used; None for what is not a query at all
    (too short, or a response: answering those could start a loop between two servers)."""
    if len(query) < HEADER_LEN or query[2] & QR:
        return None
    return bare_reply(query, (QR | query[2] & (OPCODE | RD)) << 8 | rcode)


# ---------------------------------------------------------------------- names and records


def to_name(text: str) -> Name | None:
    """A presentation-format name as lowercased labels, or None when it cannot be a DNS name."""
    stripped = text[:-1] if text.endswith(".") else text
    if not stripped:
        return None
    try:
        raw = stripped.encode("ascii")
    except UnicodeEncodeError:
        return None
    labels = tuple(raw.lower().split(b"."))
    if any(not 0 < len(label) <= 63 for label in labels) or wire_length(labels) > MAX_NAME_WIRE:
        return None
    return labels


def wire_length(name: Name) -> int:
    return sum(len(label) + 1 for label in name) + 1


def encode_name(name: Name) -> bytes:
    return b"".join(bytes((len(label),)) + label for label in name) + b"\x00"


def name_labels(wire_name: bytes) -> Name:
    """The labels of an uncompressed wire name, such as `Query.lname`."""
    labels = []
    i = 0
    while length := wire_name[i]:
        labels.append(wire_name[i + 1:i + 1 + length])
        i += length + 1
    return tuple(labels)


def name_offsets(name: Name, start: int) -> Iterable[tuple[Name, int]]:
    """Every suffix of a name written uncompressed at ``start``, with its offset."""
    pos = start
    for i, label in enumerate(name):
        yield name[i:], pos
        pos += len(label) + 1


def parse_ip(text: object) -> IP | None:
    if not isinstance(text, str) or "%" in text:
        return None
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        return None


def reverse_name_ip(labels: Name) -> IP | None:
    """The address a full in-addr.arpa / ip6.arpa name stands for; None for partial or odd names."""
    if labels[-2:] == (b"in-addr", b"arpa") and len(labels) == 6:
        octets = labels[3::-1]
        if all(o.isdigit() and len(o) <= 3 and (o == b"0" or not o.startswith(b"0")) for o in octets):
            return parse_ip(b".".join(octets).decode())
        return None
    if labels[-2:] == (b"ip6", b"arpa") and len(labels) == 34:
        nibbles = labels[31::-1]
        if all(len(x) == 1 and x in b"0123456789abcdef" for x in nibbles):
            hexed = b"".join(nibbles).decode()
            return ipaddress.IPv6Address(int(hexed, 16))
    return None


class TailWriter:
    """Writes resource records for a message whose body (after the question) starts at ``base``.

    ``seeds`` are names already present in the message (the question, in the client's case) so
    records can point at them. Names are compressed only where RFC 3597 allows it: owners and
    the RDATA of the RFC 1035 types; SRV targets are written out in full.
    """

    def __init__(self, base: int, seeds: Iterable[tuple[Name, int]]) -> None:
        self.buf = bytearray()
        self._base = base
        self._names: dict[Name, int] = dict(seeds)

    def name(self, name: Name, *, compress: bool = True) -> None:
        buf = self.buf
        for i, label in enumerate(name):
            suffix = name[i:]
            if compress:
                pointer = self._names.get(suffix)
                if pointer is not None:
                    buf += (0xC000 | pointer).to_bytes(2, "big")
                    return
            pos = self._base + len(buf)
            if pos < _POINTER_LIMIT:
                self._names.setdefault(suffix, pos)
            buf.append(len(label))
            buf += label
        buf.append(0)

    def begin(self, owner: Name, rtype: int, ttl: int) -> int:
        self.name(owner)
        self.buf += _RR_FIXED.pack(rtype, CLASS_IN, ttl, 0)
        return len(self.buf)

    def end(self, rdata_start: int) -> None:
        self.buf[rdata_start - 2:rdata_start] = (len(self.buf) - rdata_start).to_bytes(2, "big")
