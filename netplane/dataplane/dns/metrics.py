"""Prometheus metrics under CoreDNS's names (dashboards and alerts written for CoreDNS and
NodeLocal DNSCache apply), and the small HTTP servers for /metrics, /health and /ready.

The per-query cost is a few dict increments on plain ints: the event loop is the only writer, so
no lock is needed, and nothing is formatted until a scrape asks for it.
"""

from __future__ import annotations

import bisect
import inspect
from collections.abc import Awaitable, Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Protocol

from aiohttp import web
from prometheus_client import CollectorRegistry, ProcessCollector
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.exposition import CONTENT_TYPE_LATEST, generate_latest

from netplane.dataplane.dns.transport import Stats as TransportStats

QTYPES = {1: "A", 2: "NS", 5: "CNAME", 6: "SOA", 12: "PTR", 15: "MX", 16: "TXT", 28: "AAAA", 33: "SRV",
          35: "NAPTR", 39: "DNAME", 43: "DS", 48: "DNSKEY", 64: "SVCB", 65: "HTTPS", 251: "IXFR", 252: "AXFR",
          255: "ANY"}
RCODES = {0: "NOERROR", 1: "FORMERR", 2: "SERVFAIL", 3: "NXDOMAIN", 4: "NOTIMP", 5: "REFUSED", 6: "YXDOMAIN",
          7: "YXRRSET", 8: "NXRRSET", 9: "NOTAUTH", 10: "NOTZONE"}
OTHER = 0  # any query type outside QTYPES: counted together, so odd types cannot grow the label set

# CoreDNS's request-duration buckets (0.25 ms doubling to about 8 s), so its latency quantiles compare.
DURATION_BUCKETS = tuple(0.00025 * 2 ** i for i in range(16))


@dataclass
class QueryStats:
    """The queries one listener answered: one cell per (proto, zone, qtype, rcode), holding the
    duration histogram's bucket counts, then the +Inf count, then the sum of seconds. Requests,
    responses and the histogram are all sums over cells, taken at scrape time, so a query costs
    one dict lookup."""

    server: str  # "dns://<addr>:<port>"
    family: str  # "1" IPv4, "2" IPv6, as CoreDNS labels it
    cells: dict[tuple[str, str, int, int], list[float]] = field(default_factory=dict)

    def record(self, proto: str, zone: str, qtype: int, rcode: int, seconds: float) -> None:
        if qtype not in QTYPES:
            qtype = OTHER
        cell = self.cells.get((proto, zone, qtype, rcode))
        if cell is None:
            cell = self.cells[proto, zone, qtype, rcode] = [0.0] * (len(DURATION_BUCKETS) + 2)
        cell[bisect.bisect_left(DURATION_BUCKETS, seconds)] += 1
        cell[-1] += seconds

    def requests(self) -> dict[tuple[str, str, int], int]:
        """(proto, zone, qtype) → count."""
        out: dict[tuple[str, str, int], int] = {}
        for (proto, zone, qtype, _), cell in self.cells.items():
            out[proto, zone, qtype] = out.get((proto, zone, qtype), 0) + int(sum(cell[:-1]))
        return out

    def responses(self) -> dict[tuple[str, int], int]:
        """(zone, rcode) → count."""
        out: dict[tuple[str, int], int] = {}
        for (_, zone, _, rcode), cell in self.cells.items():
            out[zone, rcode] = out.get((zone, rcode), 0) + int(sum(cell[:-1]))
        return out

    def durations(self) -> dict[tuple[str, int], list[float]]:
        """(zone, qtype) → bucket counts, +Inf count, sum."""
        out: dict[tuple[str, int], list[float]] = {}
        for (_, zone, qtype, _), cell in self.cells.items():
            total = out.setdefault((zone, qtype), [0.0] * len(cell))
            for i, value in enumerate(cell):
                total[i] += value
        return out


@dataclass
class ForwardStats:
    """Queries sent to each upstream (`to` is "ip:port") and the rcodes that came back."""

    requests: dict[str, int] = field(default_factory=dict)
    responses: dict[tuple[str, int], int] = field(default_factory=dict)

    def sent(self, to: str) -> None:
        self.requests[to] = self.requests.get(to, 0) + 1

    def answered(self, to: str, rcode: int) -> None:
        key = (to, rcode)
        self.responses[key] = self.responses.get(key, 0) + 1


class CacheCounters(Protocol):
    """What the metrics read from a cache (cache.DnsCache)."""

    hits_success: int
    hits_denial: int
    misses: int
    evictions_success: int
    evictions_denial: int

    def entries(self) -> tuple[int, int]: ...


@dataclass
class CacheStats:
    server: str
    zone: str
    cache: CacheCounters


class DnsCollector:
    """Renders the counters above on each scrape."""

    def __init__(self) -> None:
        self.queries: list[QueryStats] = []
        self.forwards: list[ForwardStats] = []
        self.caches: list[CacheStats] = []
        self.transports: list[TransportStats] = []

    def collect(self) -> Iterator[Metric]:
        requests = CounterMetricFamily("coredns_dns_requests", "Counter of DNS requests made per zone, protocol "
                                       "and family.", labels=["server", "zone", "proto", "family", "type"])
        responses = CounterMetricFamily("coredns_dns_responses", "Counter of response status codes.",
                                        labels=["server", "zone", "rcode"])
        durations = HistogramMetricFamily("coredns_dns_request_duration_seconds", "Histogram of the time (in "
                                          "seconds) each request took.", labels=["server", "zone", "type"])
        for q in self.queries:
            for (proto, zone, qtype), n in q.requests().items():
                requests.add_metric([q.server, zone, proto, q.family, QTYPES.get(qtype, "other")], n)
            for (zone, rcode), n in q.responses().items():
                responses.add_metric([q.server, zone, RCODES.get(rcode, str(rcode))], n)
            for (zone, qtype), hist in q.durations().items():
                cumulative, buckets = 0.0, []
                for bound, count in zip((*DURATION_BUCKETS, float("inf")), hist[:-1], strict=True):
                    cumulative += count
                    buckets.append((_le(bound), cumulative))
                durations.add_metric([q.server, zone, QTYPES.get(qtype, "other")], buckets, hist[-1])
        yield from (requests, responses, durations)
        yield from self._forward_metrics()
        yield from self._cache_metrics()
        yield from self._transport_metrics()

    def _forward_metrics(self) -> Iterable[Metric]:
        if not self.forwards:
            return
        requests = CounterMetricFamily("coredns_forward_requests", "Counter of requests made per upstream.",
                                       labels=["to"])
        responses = CounterMetricFamily("coredns_forward_responses", "Counter of responses received per "
                                        "upstream.", labels=["to", "rcode"])
        # Two forwarders (the cluster domain's and the rest's) may share an upstream: one series each.
        sent: dict[str, int] = {}
        answered: dict[tuple[str, int], int] = {}
        for f in self.forwards:
            for to, n in f.requests.items():
                sent[to] = sent.get(to, 0) + n
            for key, n in f.responses.items():
                answered[key] = answered.get(key, 0) + n
        for to, n in sent.items():
            requests.add_metric([to], n)
        for (to, rcode), n in answered.items():
            responses.add_metric([to, RCODES.get(rcode, str(rcode))], n)
        yield from (requests, responses)

    def _cache_metrics(self) -> Iterable[Metric]:
        if not self.caches:
            return
        labels = ["server", "type", "zones"]
        entries = GaugeMetricFamily("coredns_cache_entries", "The number of elements in the cache.", labels=labels)
        hits = CounterMetricFamily("coredns_cache_hits", "The count of cache hits.", labels=labels)
        misses = CounterMetricFamily("coredns_cache_misses", "The count of cache misses.",
                                     labels=["server", "zones"])
        evictions = CounterMetricFamily("coredns_cache_evictions", "The count of cache evictions.", labels=labels)
        for c in self.caches:
            success, denial = c.cache.entries()
            entries.add_metric([c.server, "success", c.zone], success)
            entries.add_metric([c.server, "denial", c.zone], denial)
            hits.add_metric([c.server, "success", c.zone], c.cache.hits_success)
            hits.add_metric([c.server, "denial", c.zone], c.cache.hits_denial)
            misses.add_metric([c.server, c.zone], c.cache.misses)
            evictions.add_metric([c.server, "success", c.zone], c.cache.evictions_success)
            evictions.add_metric([c.server, "denial", c.zone], c.cache.evictions_denial)
        yield from (entries, hits, misses, evictions)


    def _transport_metrics(self) -> Iterable[Metric]:
        if not self.transports:
            return
        # CoreDNS's nearest names: queries turned away at the concurrency cap, and recovered handler failures.
        rejects = CounterMetricFamily("coredns_forward_max_concurrent_rejects", "Queries dropped because too "
                                      "many replies were awaited, in total or for one client.")
        panics = CounterMetricFamily("coredns_panics", "Queries whose handler failed.")
        refused = CounterMetricFamily("netplane_dns_tcp_connections_refused", "TCP connections closed at once: "
                                      "too many in total or from one client.")
        rejects.add_metric([], sum(t.dropped for t in self.transports))
        panics.add_metric([], sum(t.handler_errors for t in self.transports))
        refused.add_metric([], sum(t.tcp_refused for t in self.transports))
        yield from (rejects, panics, refused)


def _le(bound: float) -> str:
    return "+Inf" if bound == float("inf") else repr(bound)


class Metrics:
    """The process's registry: CoreDNS's DNS metrics plus process_* (CPU, memory, open fds)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.dns = DnsCollector()
        self.registry.register(self.dns)
        ProcessCollector(registry=self.registry)

    def render(self) -> bytes:
        return generate_latest(self.registry)


Answer = tuple[int, bytes, str]


async def serve_http(host: str, port: int,
                     routes: dict[str, Callable[[], Answer | Awaitable[Answer]]]) -> web.AppRunner:
    """An HTTP server answering GET on each path with (status, body, content type), or an awaitable of them
    (an answer that needs I/O)."""
    app = web.Application()
    for path, answer in routes.items():
        app.router.add_get(path, _handler(answer))
    runner = web.AppRunner(app, access_log=None, handle_signals=False)
    await runner.setup()
    await web.TCPSite(runner, host, port, reuse_address=True).start()
    return runner


def _handler(answer: Callable[[], Answer | Awaitable[Answer]]) -> Callable[[web.Request], Awaitable[web.Response]]:
    async def handle(_: web.Request) -> web.Response:
        result = answer()
        status, body, content_type = await result if inspect.isawaitable(result) else result
        return web.Response(status=status, body=body, headers={"Content-Type": content_type})
    return handle


def metrics_route(metrics: Metrics) -> Callable[[], tuple[int, bytes, str]]:
    return lambda: (200, metrics.render(), CONTENT_TYPE_LATEST)


def health_route(ok: Callable[[], bool]) -> Callable[[], tuple[int, bytes, str]]:
    """CoreDNS's /health and /ready answer: 200 "OK" or 503."""
    return lambda: (200, b"OK", "text/plain") if ok() else (503, b"not ready", "text/plain")
