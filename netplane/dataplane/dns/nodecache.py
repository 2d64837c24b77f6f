"""The node-local DNS cache (NodeLocal DNSCache): a caching forwarder on a link-local address.

Routing follows the Corefile NodeLocal DNSCache generates:

    <cluster domain>, in-addr.arpa, ip6.arpa  →  the cluster DNS, over TCP (`force_tcp`): TCP
                                                 conntrack entries go away on close, UDP ones linger
    everything else                           →  the upstream resolvers, over UDP; with none given,
                                                 the cluster DNS as well (it forwards with the
                                                 cluster's own upstream setting)

each zone with its own cache (the cluster domain `success 9984 30, denial 9984 5`, the others
`cache 30`). With `--add-address` the listen address is put on `lo` while the cache runs, as
node-cache puts it on its dummy interface (this kernel has no dummy device type): it must be a
local address for pods' packets routed to the node to be delivered to the cache.
"""

from __future__ import annotations

import asyncio
import errno
import socket
import time
from collections.abc import Awaitable, Sequence
from dataclasses import dataclass, field

from netplane.dataplane.dns.cache import CLUSTER_POLICY, CachePolicy, DnsCache, Key, key_of
from netplane.dataplane.dns.forward import Address, Forwarder, address_text
from netplane.dataplane.dns.metrics import (
    CacheStats,
    ForwardStats,
    Metrics,
    QueryStats,
    health_route,
    metrics_route,
    serve_http,
)
from netplane.dataplane.dns.transport import DnsServer, Kind
from netplane.dataplane.dns.wire import (
    CD,
    EDNS_UDP,
    FORMERR,
    HEADER_LEN,
    MIN_UDP,
    NOTIMP,
    OPCODE,
    PLAIN_COUNTS,
    QR,
    RCODE,
    SERVFAIL,
    Query,
    error_reply,
    header_only_reply,
    parse_query,
    reply_limit,
    truncated,
)

REVERSE_ZONES = ("in-addr.arpa", "ip6.arpa")


def name_wire(name: str) -> bytes:
    """A domain name's lowercased wire form ("." is the root)."""
    labels = [label for label in name.strip(".").lower().split(".") if label]
    return b"".join(bytes((len(label),)) + label.encode("ascii") for label in labels) + b"\x00"


def under(lname: bytes, zone: bytes) -> bool:
    """Whether wire name `lname` is `zone` or below it (on a label boundary, not just a byte suffix)."""
    if not lname.endswith(zone):
        return False
    cut = len(lname) - len(zone)
    off = 0
    while off < cut:
        off += lname[off] + 1
    return off == cut


@dataclass
class Route:
    zone: str  # the metrics' zone label, "cluster.local." or "."
    wire: bytes
    forwarder: Forwarder
    cache: DnsCache


class CachingForwarder:
    """The transport handler: cache hits answered synchronously, misses forwarded and stored.

    Plain queries (one question, no EDNS: what glibc and musl stubs send) are first looked up
    without walking the qname: the cache key is taken from the packet's fixed layout and the route
    from a byte-suffix test. That cannot give a wrong answer, only a miss: every key in a cache was
    stored by the full path, which validates the name and routes on label boundaries.
    """

    def __init__(self, routes: Sequence[Route], stats: QueryStats):
        # Longest zone first, so a name goes to its most specific route; "." comes last and takes the rest.
        self.routes = sorted(routes, key=lambda r: -len(r.wire))
        self._suffixed = [(r.wire, r) for r in self.routes[:-1]]
        self._default = self.routes[-1]
        self.stats = stats

    def route(self, lname: bytes) -> Route:
        for route in self.routes:
            if under(lname, route.wire):
                return route
        return self._default

    def __call__(self, query: bytes, kind: Kind) -> bytes | Awaitable[bytes | None] | None:
        start = time.monotonic()
        n = len(query)
        if n > 16 and query[4:12] == PLAIN_COUNTS and not query[2] & (QR | OPCODE):
            lname = query[HEADER_LEN:n - 4].lower()
            route = self._default
            for wire, candidate in self._suffixed:
                if lname.endswith(wire):
                    route = candidate
                    break
            reply = route.cache.hit((lname, query[n - 4:], query[3] & CD), query, n, False, start)
            if reply is not None:
                if len(reply) > MIN_UDP and kind == "udp":
                    q = parse_query(query)
                    if q is None:
                        return None
                    reply = truncated(reply, query, q)
                self.stats.record(kind, route.zone, query[n - 4] << 8 | query[n - 3], reply[3] & RCODE,
                                  time.monotonic() - start)
                return reply
        q = parse_query(query)
        if q is None:
            return self._not_a_query(query, kind, start)
        route = self.route(q.lname)
        key = key_of(query, q)
        reply = route.cache.get(key, query, q.end, q.edns > 0, start)
        if reply is None:
            return self._miss(route, key, query, q, kind, start)
        if kind == "udp" and len(reply) > reply_limit(EDNS_UDP, q.edns):
            reply = truncated(reply, query, q)
        self.stats.record(kind, route.zone, q.qtype, reply[3] & RCODE, time.monotonic() - start)
        return reply

    async def _miss(self, route: Route, key: Key, query: bytes, q: Query, kind: Kind,
                    start: float) -> bytes | None:
        reply = await route.forwarder.exchange(query)
        if reply is None:
            reply = error_reply(query, q, SERVFAIL, ra=True)
        else:
            route.cache.put(key, reply, q, time.monotonic())
            if kind == "udp" and len(reply) > reply_limit(EDNS_UDP, q.edns):
                reply = truncated(reply, query, q)
        self.stats.record(kind, route.zone, q.qtype, reply[3] & RCODE, time.monotonic() - start)
        return reply

    def _not_a_query(self, query: bytes, kind: Kind, start: float) -> bytes | None:
        # Other opcodes (NOTIFY, UPDATE) are not for a cache; the rest is malformed.
        opcode = (query[2] & OPCODE) if len(query) > 2 else 0
        reply = header_only_reply(query, NOTIMP if opcode else FORMERR)
        if reply is not None:
            self.stats.record(kind, ".", 0, reply[3] & RCODE, time.monotonic() - start)
        return reply


def build_routes(cluster_dns: Address, cluster_domain: str, upstreams: Sequence[Address],
                 metrics: Metrics, server: str) -> list[Route]:
    """NodeLocal's four server blocks, their caches and forwarders registered with `metrics`."""
    cluster_stats, upstream_stats = ForwardStats(), ForwardStats()
    cluster = Forwarder([cluster_dns], force_tcp=True, stats=cluster_stats)
    outside = Forwarder(upstreams, stats=upstream_stats) if upstreams else cluster
    metrics.dns.forwards.append(cluster_stats)
    if upstreams:
        metrics.dns.forwards.append(upstream_stats)
    zones: list[tuple[str, Forwarder, CachePolicy]] = [
        (cluster_domain, cluster, CLUSTER_POLICY), *((z, cluster, CachePolicy()) for z in REVERSE_ZONES),
        (".", outside, CachePolicy())]
    routes = []
    for zone, forwarder, policy in zones:
        label = zone.strip(".") + "." if zone.strip(".") else "."
        route = Route(label, name_wire(zone), forwarder, DnsCache(policy))
        metrics.dns.caches.append(CacheStats(server, label, route.cache))
        routes.append(route)
    return routes


# ---------------------------------------------------------------------- the `cache` command


@dataclass
class CacheOptions:
    cluster_dns: Address
    listen: str = "169.254.20.10"
    port: int = 53
    cluster_domain: str = "cluster.local"
    upstreams: list[Address] = field(default_factory=list)
    metrics: Address | None = None  # default <listen>:9253
    health: Address | None = None  # default <listen>:8080


def _lo_address(ip: str) -> tuple[int, int]:
    family = socket.AF_INET6 if ":" in ip else socket.AF_INET
    return family, 128 if family == socket.AF_INET6 else 32


def add_lo_address(ip: str) -> None:
    """Put `ip` on lo (a /32 or /128). Scope global, as node-cache's addresses on its dummy
    interface: host scope (what lo's 127.0.0.1 has) declares an address meaningful only inside
    this host, and pods are outside it. Synchronous netlink, so called before the event loop
    starts (pyroute2's blocking API runs a loop of its own)."""
    from pyroute2 import IPRoute
    from pyroute2.netlink.exceptions import NetlinkError

    family, prefix = _lo_address(ip)
    with IPRoute() as ipr:
        lo = ipr.link_lookup(ifname="lo")[0]
        try:
            ipr.addr("add", index=lo, address=ip, prefixlen=prefix, family=family, scope=0)
        except NetlinkError as e:
            if e.code != errno.EEXIST:
                raise OSError(e.code, f"adding {ip} to lo: {e}") from None


def remove_lo_address(ip: str) -> None:
    from pyroute2 import IPRoute
    from pyroute2.netlink.exceptions import NetlinkError

    family, prefix = _lo_address(ip)
    with IPRoute() as ipr:
        lo = ipr.link_lookup(ifname="lo")[0]
        try:
            ipr.addr("del", index=lo, address=ip, prefixlen=prefix, family=family)
        except NetlinkError as e:
            if e.code not in (errno.EADDRNOTAVAIL, errno.ENOENT):
                raise OSError(e.code, f"removing {ip} from lo: {e}") from None


async def run_cache(options: CacheOptions, stop: asyncio.Event) -> int:
    """Serve until `stop` is set."""
    metrics = Metrics()
    server_label = f"dns://{address_text((options.listen, options.port))}"
    routes = build_routes(options.cluster_dns, options.cluster_domain, options.upstreams, metrics, server_label)
    stats = QueryStats(server_label, "2" if ":" in options.listen else "1")
    metrics.dns.queries.append(stats)
    dns = DnsServer()
    metrics.dns.transports.append(dns.stats)
    runners = []
    try:
        await dns.listen(options.listen, options.port, CachingForwarder(routes, stats))
        metrics_at = options.metrics or (options.listen, 9253)
        health_at = options.health or (options.listen, 8080)
        runners.append(await serve_http(*metrics_at, {"/metrics": metrics_route(metrics)}))
        runners.append(await serve_http(*health_at, {"/health": health_route(lambda: True)}))
        print(f"netplane dns cache: {address_text((options.listen, options.port))} udp+tcp, cluster DNS "
              f"{address_text(options.cluster_dns)} (tcp), upstreams "
              f"{', '.join(map(address_text, options.upstreams)) or 'the cluster DNS'}, metrics "
              f"{address_text(metrics_at)}, health {address_text(health_at)}", flush=True)
        await stop.wait()
    finally:
        await dns.close()
        for runner in runners:
            await runner.cleanup()
        for forwarder in {id(r.forwarder): r.forwarder for r in routes}.values():
            await forwarder.close()
    return 0
