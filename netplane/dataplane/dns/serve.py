"""The cluster DNS server (what the kube-dns Service points at): the cluster zone, fed by informers.

    Services, EndpointSlices (all namespaces) ──▶ ClusterZone ──▶ answers (UDP/TCP handler)
    ClusterPlugin <plugin> spec.config.hostAliases ──┘     └──▶ Upstream: forwarded, then finished

The server answers from its first moment: until every informer has listed, the zone answers
SERVFAIL where it would say NXDOMAIN (CoreDNS's behaviour before its informers sync), and /ready
says 503. Names outside the zone go to `--upstream`; with no upstream given the zone finishes them
as unanswerable (SERVFAIL), which is what the coredns ClusterPlugin's `upstreams` promises.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from netplane.controllers.kube.client import Client
from netplane.controllers.kube.config import in_cluster_config, load_kubeconfig
from netplane.controllers.kube.resources import Resource
from netplane.controllers.runtime.informer import Informer
from netplane.dataplane.dns.forward import Address, Forwarder, address_text
from netplane.dataplane.dns.metrics import ForwardStats, Metrics, QueryStats, health_route, metrics_route, serve_http
from netplane.dataplane.dns.transport import DnsServer, Kind
from netplane.dataplane.dns.wire import EDNS_UDP, MAX_MESSAGE, RCODE
from netplane.dataplane.dns.zone import ClusterZone, HostAlias, Upstream, ZoneConfig

log = logging.getLogger("netplane.dns.serve")

Obj = dict[str, Any]

SERVICES = Resource("", "v1", "services", kind="Service")
ENDPOINTSLICES = Resource("discovery.k8s.io", "v1", "endpointslices", kind="EndpointSlice")
PLUGINS = Resource("netplane.io", "v1alpha1", "clusterplugins", namespaced=False, kind="ClusterPlugin")


class ZoneHandler:
    """The transport handler of one listener: the zone's answer, or an upstream's via `finish`."""

    def __init__(self, zone: ClusterZone, forwarder: Forwarder | None, stats: QueryStats):
        self.zone = zone
        self.forwarder = forwarder
        self.stats = stats

    def __call__(self, query: bytes, kind: Kind) -> bytes | Awaitable[bytes | None] | None:
        start = time.monotonic()
        # The transport's ceiling; the zone lowers it to what the client's EDNS allows.
        result = self.zone.respond(query, max_size=MAX_MESSAGE if kind == "tcp" else EDNS_UDP)
        if result is None:
            return None
        # For the metrics' type label only: the first zero byte ends any hostname-like qname (a
        # binary label holding a zero would only miscount the type, never the answer).
        root = query.find(0, 12)
        qtype = query[root + 1] << 8 | query[root + 2] if 12 <= root < len(query) - 2 else 0
        if isinstance(result, Upstream):
            return self._upstream(result, kind, qtype, start)
        self.stats.record(kind, ".", qtype, result[3] & RCODE, time.monotonic() - start)
        return result

    async def _upstream(self, upstream: Upstream, kind: Kind, qtype: int, start: float) -> bytes | None:
        reply = await self.forwarder.exchange(upstream.query) if self.forwarder is not None else None
        out = upstream.finish(reply)
        self.stats.record(kind, ".", qtype, out[3] & RCODE, time.monotonic() - start)
        return out


def host_aliases(plugin: Obj | None) -> list[HostAlias]:
    """spec.config.hostAliases of the ClusterPlugin (none when it is absent or malformed)."""
    config = ((plugin or {}).get("spec") or {}).get("config") or {}
    aliases = []
    for entry in config.get("hostAliases") or []:
        if not isinstance(entry, dict) or not isinstance(entry.get("ip"), str):
            continue
        domains = tuple(d for d in entry.get("domains") or [] if isinstance(d, str))
        if domains:
            aliases.append(HostAlias(entry["ip"], domains))
    return aliases


def _name_of(obj: Obj) -> tuple[str, str]:
    meta = obj.get("metadata") or {}
    return str(meta.get("namespace") or ""), str(meta.get("name") or "")


def feed(zone: ClusterZone, services: Informer, slices: Informer, plugins: Informer, plugin: str) -> None:
    """Wire the informers' events into the zone."""
    services.add_handler(zone.set_service, lambda _, new: zone.set_service(new),
                         lambda obj: zone.delete_service(*_name_of(obj)))
    slices.add_handler(zone.set_slice, lambda _, new: zone.set_slice(new),
                       lambda obj: zone.delete_slice(*_name_of(obj)))

    def aliases_changed(*_: Obj) -> None:
        zone.set_host_aliases(host_aliases(plugins.cache.get_by_name(plugin)))

    plugins.add_handler(aliases_changed, aliases_changed, aliases_changed)


@dataclass
class ServeOptions:
    kubeconfig: Path | None = None
    listen: list[Address] = field(default_factory=lambda: [("0.0.0.0", 53)])
    cluster_domain: str = "cluster.local"
    ttl: int = 5
    upstreams: list[Address] = field(default_factory=list)
    nameserver_ips: list[str] = field(default_factory=list)
    plugin: str = "coredns"
    metrics: Address = ("0.0.0.0", 9153)
    health: Address = ("0.0.0.0", 8080)
    ready: Address = ("0.0.0.0", 8181)


async def serve_zone(zone: ClusterZone, listen: Sequence[Address], upstreams: Sequence[Address], metrics: Metrics,
                     dns: DnsServer) -> Forwarder | None:
    """Serve `zone` on every listen address; the forwarder made for the upstreams (the caller closes it)."""
    forwarder = None
    if upstreams:
        forward_stats = ForwardStats()
        metrics.dns.forwards.append(forward_stats)
        forwarder = Forwarder(upstreams, stats=forward_stats)
    for host, port in listen:
        stats = QueryStats(f"dns://{address_text((host, port))}", "2" if ":" in host else "1")
        metrics.dns.queries.append(stats)
        await dns.listen(host, port, ZoneHandler(zone, forwarder, stats))
    return forwarder


async def run_serve(options: ServeOptions, stop: asyncio.Event) -> int:
    """Serve until `stop` is set."""
    config = load_kubeconfig(options.kubeconfig) if options.kubeconfig else in_cluster_config()
    zone = ClusterZone(ZoneConfig(domain=options.cluster_domain, ttl=options.ttl,
                                  nameservers=tuple(options.nameserver_ips)))
    metrics = Metrics()
    dns = DnsServer()
    metrics.dns.transports.append(dns.stats)
    synced = False
    runners = []
    forwarder: Forwarder | None = None
    async with Client(config) as client:
        services = Informer(client, SERVICES)
        slices = Informer(client, ENDPOINTSLICES)
        plugins = Informer(client, PLUGINS, field_selector=f"metadata.name={options.plugin}")
        informers = (services, slices, plugins)
        feed(zone, services, slices, plugins, options.plugin)
        try:
            forwarder = await serve_zone(zone, options.listen, options.upstreams, metrics, dns)
            runners.append(await serve_http(*options.metrics, {"/metrics": metrics_route(metrics)}))
            runners.append(await serve_http(*options.health, {"/health": health_route(lambda: True)}))
            runners.append(await serve_http(*options.ready, {"/ready": health_route(lambda: synced)}))
            for informer in informers:
                informer.start()
            print(f"netplane dns: zone {options.cluster_domain} from {config.server} on "
                  f"{', '.join(map(address_text, dns.addresses))} udp+tcp, upstreams "
                  f"{', '.join(map(address_text, options.upstreams)) or 'none (SERVFAIL)'}, metrics "
                  f"{address_text(options.metrics)}", flush=True)
            waiting = asyncio.ensure_future(asyncio.gather(*(i.wait_synced() for i in informers)))
            stopping = asyncio.ensure_future(stop.wait())
            await asyncio.wait((waiting, stopping), return_when=asyncio.FIRST_COMPLETED)
            if waiting.done():
                zone.mark_synced()
                synced = True
                log.info("informers synced: answering from the zone")
                await stopping
            waiting.cancel()
        finally:
            await dns.close()
            for informer in informers:
                await informer.stop()
            for runner in runners:
                await runner.cleanup()
            if forwarder is not None:
                await forwarder.close()
    return 0
