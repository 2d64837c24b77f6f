"""The cluster zone: Kubernetes objects in, DNS answers out (pure; no sockets).

CONTRACT (shared by the authoritative answer logic and the server/transport code; keep the
signatures, fill the bodies):

    zone = ClusterZone(ZoneConfig(domain="cluster.local", ttl=5, nameservers=("10.96.0.10",)))
    zone.set_service(svc_obj) / zone.delete_service(namespace, name)
    zone.set_slice(slice_obj) / zone.delete_slice(namespace, name)     # discovery.k8s.io/v1 EndpointSlice
    zone.set_host_aliases([HostAlias("1.2.3.4", ("example.com", "test.example.com"))])
    zone.mark_synced()          # before this, names that would be NXDOMAIN answer SERVFAIL
    result = zone.respond(query_wire, max_size=512)   # UDP: the largest datagram we may send; TCP: 65535

``respond`` returns either the complete response (bytes, already truncated with TC set when it
does not fit), ``None`` for a packet to drop silently, or an ``Upstream``: the name is not the
zone's (or an ExternalName target must be chased) and the server must ask an upstream resolver
with ``Upstream.query`` and hand the upstream's reply to ``Upstream.finish(reply_wire_or_None)``,
which returns the bytes to send to the client.

Answers follow CoreDNS's ``kubernetes`` plugin (``pods insecure``, ``fallthrough in-addr.arpa
ip6.arpa``) behind its ``hosts`` plugin, then ``forward .``. Deliberate differences:

- host aliases use the zone TTL (the hosts plugin defaults to 3600 s): they are live cluster
  configuration, and an alias that is removed should stop resolving as fast as a Service does;
- a namespace "exists" (``ns.svc.<zone>`` is NODATA, not NXDOMAIN) while it holds a Service; pod
  names (insecure mode) are served in every namespace, since no Namespace or Pod watch feeds the zone;
- ``dns.<zone>`` and non-TXT queries for ``dns-version.<zone>`` are NODATA (CoreDNS: NXDOMAIN);
- SRV records are given to named ports only (the spec's rule; CoreDNS also lists unnamed ones);
- an ExternalName chased inside the zone keeps its CNAME when the target is negative (RFC 6604);
- the SOA serial is fixed when the zone is created: zone transfers are refused, so no reader
  depends on it moving, and a fixed serial keeps negative answers cacheable across updates.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from dnslib import DNSBuffer, DNSRecord

from .answers import Answer, Chase, Forward, Resolver, answer_flags, encode, question_seeds, write_records
from .records import ClusterRecords, Obj, Scope, parse_service, parse_slice
from .wire import (
    AA,
    BADVERS,
    CD,
    CLASS_ANY,
    CLASS_IN,
    COUNTS,
    FORMERR,
    HEADER_LEN,
    MAX_MESSAGE,
    MIN_UDP,
    NOERROR,
    NOTIMP,
    NXDOMAIN,
    OPCODE,
    PLAIN_COUNTS,
    QR,
    RA,
    RCODE,
    RD,
    REFUSED,
    SERVFAIL,
    TC,
    TYPE_AXFR,
    TYPE_IXFR,
    Name,
    Query,
    TailWriter,
    bare_reply,
    encode_name,
    error_reply,
    header,
    name_labels,
    parse_ip,
    parse_query,
    question_end,
    reply_flags,
    reply_limit,
    reply_opt,
    to_name,
)

__all__ = ["ClusterZone", "HostAlias", "Obj", "Upstream", "ZoneConfig"]

_log = logging.getLogger(__name__)

_MAX_ENTRIES = 65536  # pre-encoded answers kept; random names (search-path misses) must not grow it forever
_CLASS_IN = b"\x00\x01"
_ECHOED = RD << 8 | CD  # the query's flags every answer copies
_POD_MODES = ("disabled", "insecure")


@dataclass(frozen=True)
class HostAlias:
    ip: str
    domains: tuple[str, ...]


@dataclass(frozen=True)
class ZoneConfig:
    domain: str = "cluster.local"
    ttl: int = 5
    nameservers: tuple[str, ...] = ()  # the DNS Service's cluster IPs: ns.dns.<zone> and apex NS glue
    pods: str = "insecure"  # CoreDNS `pods` mode: disabled | insecure (verified needs a Pod watch we lack)


@dataclass
class Upstream:
    query: bytes
    finish: Callable[[bytes | None], bytes]


@dataclass(slots=True)
class _Entry:
    """One pre-encoded answer: header flags and counts, and what follows the question."""

    flags: int
    counts: bytes  # QDCOUNT..ARCOUNT
    counts_edns: bytes  # the same with ARCOUNT + 1 for our OPT
    tail: bytes
    scopes: tuple[Scope, ...]


def _answer_key(data: bytes, end: int) -> bytes:
    """A stored answer's key: the lowercased qname, then the qtype (appended raw so it is not case-folded)."""
    return data[HEADER_LEN:end - 4].lower() + data[end - 4:end - 2]


def _bare_error(data: bytes, rcode: int, end: int = HEADER_LEN) -> bytes | None:
    """An error for a query that could not be fully read, with its question up to `end`; no OPT (the OPT
    may be the problem). None for what is not a query at all (too short, or a response)."""
    if len(data) < HEADER_LEN or data[2] & QR:
        return None
    return bare_reply(data, reply_flags(data, QR << 8 | RA | rcode), end)


def _unreadable(data: bytes) -> bytes | None:
    """The reply to what `parse_query` refused: NOTIMP for other opcodes, else FORMERR, with the question
    when that much was sound."""
    if len(data) > 2 and data[2] & OPCODE:
        return _bare_error(data, NOTIMP)
    return _bare_error(data, FORMERR, max(question_end(data), HEADER_LEN))


def _truncated(data: bytes, q: Query, flags: int) -> bytes:
    """Header + question (+ OPT) of an answer with header `flags` that does not fit, TC set."""
    flags = QR << 8 | RA | flags & (AA << 8 | RCODE) | TC << 8
    return bare_reply(data, reply_flags(data, flags), q.end, reply_opt(q))


@dataclass
class ClusterZone:
    """The zone's data and its answer cache. Not thread-safe: drive it from one thread (the event loop).

    Answers are pre-encoded lazily: the first query for a (lowercased name, type) resolves it and
    stores the encoded sections; later queries only scan the question and join bytes. Each stored
    answer remembers the scopes it read (one Service, one namespace's existence, one address's
    PTR), and an update drops only the answers that read what it changed.
    """

    config: ZoneConfig
    _records: ClusterRecords = field(init=False, repr=False)
    _resolver: Resolver = field(init=False, repr=False)
    _answers: dict[bytes, _Entry] = field(init=False, repr=False)
    _by_scope: dict[Scope, set[bytes]] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        zone = to_name(self.config.domain)
        if zone is None:
            raise ValueError(f"invalid cluster domain {self.config.domain!r}")
        if not 0 <= self.config.ttl <= 3600:
            raise ValueError(f"ttl {self.config.ttl} outside 0..3600")
        if self.config.pods not in _POD_MODES:
            raise ValueError(f"pods mode {self.config.pods!r} unsupported (one of {', '.join(_POD_MODES)})")
        nameservers = tuple(parse_ip(ns) for ns in self.config.nameservers)
        valid = tuple(ip for ip in nameservers if ip is not None)
        if len(valid) != len(nameservers):
            raise ValueError(f"invalid nameserver address in {self.config.nameservers!r}")
        self._records = ClusterRecords()
        self._resolver = Resolver(self._records, zone, self.config.ttl, int(time.time()) & 0xFFFFFFFF,
                                  valid, self.config.pods)
        self._answers = {}
        self._by_scope = {}

    # -- updates ---------------------------------------------------------------------------

    def set_service(self, service: Obj) -> None:
        info = parse_service(service)
        if info is not None:
            self._invalidate(self._records.set_service(info))

    def delete_service(self, namespace: str, name: str) -> None:
        self._invalidate(self._records.delete_service(namespace.lower(), name.lower()))

    def set_slice(self, endpoint_slice: Obj) -> None:
        info = parse_slice(endpoint_slice)
        if info is not None:
            self._invalidate(self._records.set_slice(info))
        else:
            # A slice that lost its service label or became FQDN-typed no longer feeds any name.
            meta = endpoint_slice.get("metadata")
            if isinstance(meta, dict) and isinstance(meta.get("name"), str):
                self.delete_slice(str(meta.get("namespace") or "default"), meta["name"])

    def delete_slice(self, namespace: str, name: str) -> None:
        self._invalidate(self._records.delete_slice(namespace.lower(), name.lower()))

    def set_host_aliases(self, aliases: Sequence[HostAlias]) -> None:
        # Aliases shadow any name, inside the zone or not, so every stored answer may be stale.
        self._records.set_aliases([(a.ip, a.domains) for a in aliases])
        self._clear()

    def mark_synced(self) -> None:
        if not self._resolver.synced:
            self._resolver.synced = True
            self._clear()  # stored SERVFAILs become NXDOMAINs

    def _clear(self) -> None:
        self._answers.clear()
        self._by_scope.clear()

    def _invalidate(self, scopes: set[Scope]) -> None:
        for scope in scopes:
            for key in self._by_scope.pop(scope, ()):
                self._drop(key)

    def _drop(self, key: bytes) -> None:
        entry = self._answers.pop(key, None)
        if entry is None:
            return
        for scope in entry.scopes:
            keys = self._by_scope.get(scope)
            if keys is not None:
                keys.discard(key)
                if not keys:
                    del self._by_scope[scope]

    # -- queries ---------------------------------------------------------------------------

    def respond(self, query: bytes, *, max_size: int = 512) -> bytes | Upstream | None:
        """Answer one query packet (without the TCP length prefix). Never raises.

        ``max_size`` is the transport's ceiling, not the client's: pass 65535 (or more) for TCP,
        where only the 16-bit length prefix bounds a message; for UDP pass the largest datagram
        the server is willing to send (1232, the size our OPT advertises, is a good choice; 512
        keeps every UDP answer classic-sized). For UDP the response limit is then
        ``max(512, min(max_size, client))`` where ``client`` is the EDNS payload size from the
        query's OPT, or 512 without one. A response over the limit is sent as header + question
        (+ OPT) with TC set, so the client retries over TCP.

        A query with an OPT gets an OPT back (payload size 1232, DO echoed, no options); EDNS
        versions other than 0 get BADVERS. RD and CD are echoed, RA is always set, AA is set on
        everything the zone or a host alias answers. Malformed queries get FORMERR when a header
        can be read (header-only unless the question itself was sound), opcodes other than QUERY
        get NOTIMP, AXFR/IXFR and classes other than IN/ANY get REFUSED; packets shorter than a
        header and responses (QR=1) give None.

        The same limit is applied by ``Upstream.finish``: a forwarded reply is passed through with
        the client's ID (or cut down to header + question + TC if it is too big for the client),
        and ``None`` from the upstream (timeout, error) becomes SERVFAIL. For a chased
        ExternalName the upstream's answer records follow our CNAME chain; its TC bit is kept,
        NOERROR and NXDOMAIN are passed on (with its authority records when the answer is
        negative) and any other outcome, or an unparsable reply, becomes SERVFAIL.
        """
        try:
            if type(query) is not bytes:
                query = bytes(query)  # a bytearray or memoryview would not hash as a cache key
            n = len(query)
            if query[4:12] == PLAIN_COUNTS and not query[2] & (QR | OPCODE) and question_end(query) == n \
                    and query[n - 2:] == _CLASS_IN:
                entry = self._answers.get(_answer_key(query, n))
                if entry is not None:
                    # No OPT: the classic 512-byte limit, unless this is TCP.
                    if n + len(entry.tail) > (MAX_MESSAGE if max_size >= MAX_MESSAGE else MIN_UDP):
                        return self._respond(query, max_size)
                    flags = entry.flags | ((query[2] << 8 | query[3]) & _ECHOED)
                    return b"".join((query[:2], flags.to_bytes(2, "big"), entry.counts, query[12:], entry.tail))
            return self._respond(query, max_size)
        except Exception:
            _log.exception("DNS query could not be answered")
            return _bare_error(query, SERVFAIL)

    def _respond(self, data: bytes, max_size: int) -> bytes | Upstream | None:
        q = parse_query(data)
        if q is None:
            return _unreadable(data)
        if data[6:10] != b"\x00\x00\x00\x00":
            return _bare_error(data, FORMERR, q.end)  # a query has no answer or authority records
        if q.edns and q.version:
            return error_reply(data, q, BADVERS, ra=True)
        if data[q.end - 2] << 8 | data[q.end - 1] not in (CLASS_IN, CLASS_ANY) or q.qtype in (TYPE_AXFR, TYPE_IXFR):
            return error_reply(data, q, REFUSED, ra=True)
        limit = reply_limit(max_size, q.edns)
        key = _answer_key(data, q.end)
        entry = self._answers.get(key)
        if entry is None:
            labels = name_labels(q.lname)
            deps: set[Scope] = set()
            result = self._resolver.resolve(labels, q.qtype, deps)
            if isinstance(result, Forward):
                return _forward(data, q, limit)
            if isinstance(result, Chase):
                return self._chase(data, q, labels, result, limit)
            entry = self._store(key, q, labels, result, deps)
        return _render(entry, data, q, limit)

    def _store(self, key: bytes, q: Query, labels: Name, answer: Answer, deps: set[Scope]) -> _Entry:
        tail = encode(answer, labels, len(q.lname), self._resolver.zone)
        an, ns, ar = len(answer.answer), len(answer.authority), len(answer.additional)
        entry = _Entry(answer_flags(answer.rcode), COUNTS.pack(1, an, ns, ar), COUNTS.pack(1, an, ns, ar + 1),
                       tail, tuple(deps))
        if len(self._answers) >= _MAX_ENTRIES:
            self._drop(next(iter(self._answers)))  # oldest first: dicts keep insertion order
        self._answers[key] = entry
        for scope in deps:
            self._by_scope.setdefault(scope, set()).add(key)
        return entry

    def _chase(self, data: bytes, q: Query, labels: Name, chase: Chase, limit: int) -> Upstream:
        qtype_class = data[q.end - 4:q.end - 2] + _CLASS_IN
        opt = reply_opt(q)
        ask = header(data[:2], RD << 8, 1, 0, 0, 1 if opt else 0) + encode_name(chase.target) + qtype_class + opt
        writer = TailWriter(q.end, question_seeds(labels, self._resolver.zone))
        write_records(writer, chase.chain)
        prefix = bytes(writer.buf)

        def finish(reply: bytes | None) -> bytes:
            try:
                return _finish_chase(data, q, len(chase.chain), prefix, reply, limit)
            except Exception:
                _log.exception("upstream reply for an ExternalName could not be used")
                return error_reply(data, q, SERVFAIL, ra=True)

        return Upstream(query=ask, finish=finish)


def _render(entry: _Entry, data: bytes, q: Query, limit: int) -> bytes:
    opt = reply_opt(q)
    if q.end + len(entry.tail) + len(opt) > limit:
        return _truncated(data, q, entry.flags)
    flags = reply_flags(data, entry.flags).to_bytes(2, "big")
    counts = entry.counts_edns if opt else entry.counts
    return b"".join((data[:2], flags, counts, data[HEADER_LEN:q.end], entry.tail, opt))


def _forward(data: bytes, q: Query, limit: int) -> Upstream:
    def finish(reply: bytes | None) -> bytes:
        if reply is None or len(reply) < HEADER_LEN or not reply[2] & QR:
            return error_reply(data, q, SERVFAIL, ra=True)
        if len(reply) > limit:
            # Sent over TCP upstream but too big for this client: let it come back over TCP.
            return _truncated(data, q, int.from_bytes(reply[2:4], "big"))
        return data[:2] + reply[2:]

    return Upstream(query=data, finish=finish)


def _finish_chase(data: bytes, q: Query, chain_len: int, prefix: bytes, reply: bytes | None, limit: int) -> bytes:
    if reply is None or len(reply) < HEADER_LEN or not reply[2] & QR:
        return error_reply(data, q, SERVFAIL, ra=True)
    upstream_tc = bool(reply[2] & TC)
    try:
        parsed = DNSRecord.parse(reply)
    except Exception:
        if not upstream_tc:
            return error_reply(data, q, SERVFAIL, ra=True)
        # A truncated reply may stop mid-record; the CNAME alone, flagged TC, tells the client to retry.
        parsed = None
    rcode = parsed.header.rcode if parsed is not None else NOERROR
    if rcode not in (NOERROR, NXDOMAIN):
        return error_reply(data, q, SERVFAIL, ra=True)
    answers = list(parsed.rr) if parsed is not None else []
    authority = list(parsed.auth) if parsed is not None and (rcode == NXDOMAIN or not answers) else []
    buf = DNSBuffer(bytes(HEADER_LEN) + data[HEADER_LEN:q.end] + prefix)
    buf.offset = len(buf.data)  # dnslib's compression offsets must count the bytes already there
    for rr in answers + authority:
        rr.pack(buf)
    opt = reply_opt(q)
    flags = answer_flags(rcode) | (TC << 8 if upstream_tc else 0)
    body = bytes(buf.data[HEADER_LEN:])
    if HEADER_LEN + len(body) + len(opt) > limit:
        return _truncated(data, q, flags)
    head = header(data[:2], reply_flags(data, flags), 1, chain_len + len(answers), len(authority), 1 if opt else 0)
    return head + body + opt
