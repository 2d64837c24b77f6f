"""DNS wire format for the cluster zone: reading queries and writing answer sections.

Names are tuples of lowercased labels without the root (``Name``). Answers are written as a
*tail* that follows the client's question copied verbatim, so compression pointers may point
into that question: offset 12 is the query name in the client's own case, which is how owner
names echo 0x20 case for free.
"""

from __future__ import annotations

import ipaddress
import struct
from collections.abc import Iterable
from dataclasses import dataclass

Name = tuple[bytes, ...]
IP = ipaddress.IPv4Address | ipaddress.IPv6Address

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

CLASS_IN = 1
CLASS_ANY = 255

NOERROR = 0
FORMERR = 1
SERVFAIL = 2
NXDOMAIN = 3
NOTIMP = 4
REFUSED = 5
BADVERS = 16  # extended rcode: upper 8 bits travel in the OPT TTL

FLAG_QR = 0x8000
FLAG_AA = 0x0400
FLAG_TC = 0x0200
FLAG_RD = 0x0100
FLAG_RA = 0x0080
FLAG_CD = 0x0010
OPCODE_MASK = 0x7800
ECHOED_FLAGS = FLAG_RD | FLAG_CD  # RFC 1035 / RFC 4035: copied from query into response

ADVERTISED_UDP_SIZE = 1232  # DNS flag day 2020: avoids IP fragmentation on common paths
MIN_UDP_SIZE = 512
MAX_MESSAGE = 65535
MAX_NAME_WIRE = 255
_POINTER_LIMIT = 0x4000  # a compression pointer carries 14 bits of offset

_HEADER = struct.Struct("!2sH4H")
_RR_FIXED = struct.Struct("!HHIH")


@dataclass(frozen=True, slots=True)
class Edns:
    udp_size: int
    do: bool
    version: int


@dataclass(frozen=True, slots=True)
class Query:
    """A query that parsed cleanly; ``data`` is the packet exactly as received."""

    data: bytes
    flags: int
    qname_end: int  # offset just past the question name's root label
    labels: Name
    qtype: int
    qclass: int
    edns: Edns | None

    @property
    def question(self) -> bytes:
        return self.data[12:self.qname_end + 4]

    @property
    def key(self) -> bytes:
        return cache_key(self.data, self.qname_end)


def cache_key(data: bytes, qname_end: int) -> bytes:
    """Lowercased question name + qtype: the type bytes are appended raw so they are not case-folded."""
    return data[12:qname_end].lower() + data[qname_end:qname_end + 2]


def scan_qname(data: bytes) -> int:
    """Offset just past the question name that starts at 12, or -1 when it is not a plain name.

    Pointers (and the reserved 0x40/0x80 label types) are refused: a question is the first
    name in a message, so there is nothing legitimate for it to point at.
    """
    n = len(data)
    i = 12
    while i < n:
        length = data[i]
        if length == 0:
            return i + 1 if i - 11 <= MAX_NAME_WIRE else -1
        if length > 63:
            return -1
        i += length + 1
    return -1


def _skip_name(data: bytes, pos: int) -> tuple[int, bool] | None:
    """Skip a possibly compressed name in a record; returns (end offset, name is the root)."""
    n = len(data)
    first = True
    while pos < n:
        length = data[pos]
        if length == 0:
            return pos + 1, first
        if length & 0xC0 == 0xC0:
            return (pos + 2, False) if pos + 2 <= n else None
        if length > 63:
            return None
        pos += length + 1
        first = False
    return None


def parse_query(data: bytes) -> Query | bytes | None:
    """Parse a query: a ``Query``, a ready error reply (FORMERR, NOTIMP, BADVERS) or None to drop."""
    if len(data) < 12:
        return None
    _, flags, qdcount, ancount, nscount, arcount = _HEADER.unpack_from(data)
    if flags & FLAG_QR:
        return None
    if flags & OPCODE_MASK:
        return error_reply(data, NOTIMP)
    if qdcount != 1:
        return error_reply(data, FORMERR)
    end = scan_qname(data)
    if end < 0 or end + 4 > len(data):
        return error_reply(data, FORMERR)
    qtype, qclass = struct.unpack_from("!HH", data, end)
    question = data[12:end + 4]
    if ancount or nscount:
        return error_reply(data, FORMERR, question)
    edns: Edns | None = None
    pos = end + 4
    for _ in range(arcount):
        skipped = _skip_name(data, pos)
        if skipped is None or skipped[0] + 10 > len(data):
            return error_reply(data, FORMERR, question)
        pos, is_root = skipped
        rtype, rclass, ttl, rdlen = _RR_FIXED.unpack_from(data, pos)
        pos += 10 + rdlen
        if pos > len(data):
            return error_reply(data, FORMERR, question)
        if rtype == TYPE_OPT:
            if edns is not None or not is_root:
                return error_reply(data, FORMERR, question)  # RFC 6891 §6.1.1
            edns = Edns(udp_size=rclass, do=bool(ttl & 0x8000), version=(ttl >> 16) & 0xFF)
    labels = split_labels(data, end)
    query = Query(data, flags, end, labels, qtype, qclass, edns)
    if edns is not None and edns.version != 0:
        return short_reply(query, BADVERS)
    return query


def split_labels(data: bytes, qname_end: int) -> Name:
    labels: list[bytes] = []
    i = 12
    while i < qname_end - 1:
        length = data[i]
        labels.append(data[i + 1:i + 1 + length].lower())
        i += length + 1
    return tuple(labels)


def opt_record(edns: Edns, extended_rcode: int = 0) -> bytes:
    ttl = (extended_rcode << 24) | (0x8000 if edns.do else 0)
    return b"\x00" + _RR_FIXED.pack(TYPE_OPT, ADVERTISED_UDP_SIZE, ttl, 0)


def header(qid: bytes, flags: int, qd: int, an: int, ns: int, ar: int) -> bytes:
    return _HEADER.pack(qid, flags, qd, an, ns, ar)


def reply_flags(query_flags: int, base: int) -> int:
    return base | (query_flags & ECHOED_FLAGS)


def error_reply(data: bytes, rcode: int, question: bytes = b"") -> bytes:
    """A bare error reply for a query that could not be fully parsed (no OPT: the OPT may be the problem)."""
    flags = int.from_bytes(data[2:4], "big")
    out_flags = FLAG_QR | FLAG_RA | (flags & (OPCODE_MASK | ECHOED_FLAGS)) | rcode
    return header(data[:2], out_flags, 1 if question else 0, 0, 0, 0) + question


def short_reply(query: Query, rcode: int, extra_flags: int = 0) -> bytes:
    """Header + question (+ OPT): refusals, failures and truncated answers."""
    flags = reply_flags(query.flags, FLAG_QR | FLAG_RA | extra_flags | (rcode & 0xF))
    opt = opt_record(query.edns, rcode >> 4) if query.edns is not None else b""
    return header(query.data[:2], flags, 1, 0, 0, 1 if opt else 0) + query.question + opt


def effective_limit(max_size: int, edns: Edns | None) -> int:
    """The response size bound: the stream ceiling for TCP, else the smaller of ours and the client's."""
    if max_size >= MAX_MESSAGE:
        return MAX_MESSAGE
    client = MIN_UDP_SIZE if edns is None else max(MIN_UDP_SIZE, edns.udp_size)
    return max(MIN_UDP_SIZE, min(max_size, client))


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
