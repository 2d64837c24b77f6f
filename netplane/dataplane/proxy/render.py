"""The service proxy of one node as one nftables table (pure; `apply` writes it).

The design follows kube-proxy's nftables mode (semantics, not code):

* `nat-prerouting` / `nat-output` (nat, priority dstnat = -100) jump to `services`, which
  looks the packet up in verdict maps keyed by `address . protocol . port`
  (`service-ips`: cluster IPs, externalIPs, load-balancer ingress IPs) and by
  `protocol . port` for NodePorts on the node's addresses (`service-nodeports`).
* Per service port: `svc-<tok>` (cluster traffic; masquerades non-pod sources),
  `ext-<tok>` (external traffic: NodePort / external / LB IPs; Cluster policy masquerades,
  Local keeps the client address), `all-<tok>` / `local-<tok>` (endpoint choice:
  ClientIP affinity lookups, then `numgen random mod N vmap`), `ep-<tok>-<ip>-<port>`
  (hairpin masquerade, affinity update, DNAT).
* `filter-prerouting` / `filter-output` (filter, priority dstnat - 10 = -110): before DNAT,
  while the destination is still the service address, enforce loadBalancerSourceRanges
  (`firewall-ips`) and answer new connections to services without usable endpoints
  (`no-endpoint-services`, `no-endpoint-nodeports`): `reject` (kube-proxy's "no endpoints"),
  or `drop` when a Local traffic policy has no local endpoint.
* `nat-postrouting` (nat, priority srcnat - 10 = 90) masquerades packets that carry
  MASQ_MARK, then clears the bit.

Priorities leave room for the others: NetworkPolicy belongs at filter (0) on
input/forward/output, after DNAT (policies speak of pod addresses), i.e. between our
-110/-100 and 90; podnet's natOutgoing (`inet netplane-podnet`, srcnat = 100) runs after
our masquerade, so service traffic is decided first and never masqueraded twice.

Names: chains and sets are built from `ServicePort.token` (hash + validated DNS labels)
and `ipaddress` values; every value in rule text is an int, an address or a constant.
The output is a deterministic function of the input (sorted everywhere), so `apply`
can tell "nothing changed" by comparing renderings.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from netplane.dataplane.proxy.model import Endpoint, IPv4, ServicePort, service_ports

FAMILY = "ip"
TABLE = "netplane-proxy"
MASQ_MARK = 0x4000  # kube-proxy's bit; nothing else in netplane uses packet marks
PRIO_FILTER = "dstnat - 10"
PRIO_DNAT = "dstnat"
PRIO_SNAT = "srcnat - 10"
# nft accepts the names dstnat/srcnat only on the hooks where NAT of that kind happens; the
# output hook gets the same values as numbers.
PRIO_FILTER_OUT = "-110"
PRIO_DNAT_OUT = "-100"

SERVICE_IPS = "service-ips"
SERVICE_NODEPORTS = "service-nodeports"
NO_EP_SERVICES = "no-endpoint-services"
NO_EP_NODEPORTS = "no-endpoint-nodeports"
FIREWALL_IPS = "firewall-ips"
POD_CIDRS = "pod-cidrs"
NODEPORT_IPS = "nodeport-ips"
IP_KEY = "ipv4_addr . inet_proto . inet_service : verdict"
PORT_KEY = "inet_proto . inet_service : verdict"


@dataclass(frozen=True)
class Chain:
    name: str
    rules: tuple[str, ...]
    base: str = ""  # "type nat hook prerouting priority dstnat; policy accept;" for base chains


@dataclass(frozen=True)
class NftSet:
    name: str
    kind: str  # "set" or "map"
    type: str
    flags: str = ""
    timeout: int | None = None
    elements: tuple[str, ...] = ()
    dynamic: bool = False  # elements are the kernel's (affinity): never flushed by a sync

    def definition(self) -> str:
        parts = [f"type {self.type};"]
        if self.flags:
            parts.append(f"flags {self.flags};")
        if self.timeout is not None:
            parts.append(f"timeout {self.timeout}s;")
        return "{ " + " ".join(parts) + " }"


@dataclass(frozen=True)
class UdpFrontend:
    """Where a UDP service is reached (address None: its NodePort on every node address) and
    the endpoints (ip, port) it leads to, for flushing stale conntrack entries."""

    address: IPv4 | None
    port: int
    endpoints: frozenset[tuple[IPv4, int]]


@dataclass(frozen=True)
class Ruleset:
    sets: tuple[NftSet, ...]
    chains: tuple[Chain, ...]
    udp_frontends: tuple[UdpFrontend, ...] = ()
    problems: tuple[str, ...] = field(default=(), compare=False)


@dataclass(frozen=True)
class NodeConfig:
    node: str
    node_ips: tuple[IPv4, ...] = ()  # NodePort addresses; empty: every local address (fib)
    pod_cidrs: tuple[ipaddress.IPv4Network, ...] = ()  # traffic from elsewhere to cluster IPs is masqueraded


def _usable(endpoints: Iterable[Endpoint]) -> list[Endpoint]:
    """Ready endpoints; if none, serving-but-terminating ones (kube-proxy's fallback, so a
    rolling update of the last pod does not drop connections it could still serve)."""
    eps = list(endpoints)
    ready = [e for e in eps if e.ready]
    return ready or [e for e in eps if e.serving and e.terminating]


def _ep_chain(sp: ServicePort, ep: Endpoint) -> str:
    return f"ep-{sp.token}-{ep.ip}-{ep.port}"


def _aff_set(sp: ServicePort, ep: Endpoint) -> str:
    # The timeout is part of the name: `add set` leaves an existing set's timeout as it was.
    return f"aff-{sp.token}-{ep.ip}-{ep.port}-{sp.affinity_timeout}"


def _pick_chain(name: str, sp: ServicePort, eps: list[Endpoint]) -> Chain:
    rules = []
    if sp.affinity_timeout is not None:
        rules += [f"ip saddr @{_aff_set(sp, e)} goto {_ep_chain(sp, e)}" for e in eps]
    arms = ", ".join(f"{i} : goto {_ep_chain(sp, e)}" for i, e in enumerate(eps))
    rules.append(f"numgen random mod {len(eps)} vmap {{ {arms} }}")
    return Chain(name, tuple(rules))


def _port_rules(sp: ServicePort, cfg: NodeConfig, out: dict[str, list[str]], chains: list[Chain],
                sets: list[NftSet], udp: list[UdpFrontend]) -> None:
    tok, proto = sp.token, sp.protocol
    usable = _usable(sp.endpoints)
    local = _usable(e for e in sp.endpoints if e.node == cfg.node)
    cluster_eps = local if sp.internal_local else usable
    external_eps = local if sp.external_local else usable
    # Verdict when a policy leaves nothing: no endpoints at all -> reject (the client learns at
    # once); endpoints exist but none here under a Local policy -> drop, as kube-proxy does.
    no_cluster = "drop" if sp.internal_local and usable else "goto reject-chain"
    no_external = "drop" if sp.external_local and usable else "goto reject-chain"

    wanted: dict[Endpoint, None] = dict.fromkeys(sorted({*cluster_eps, *external_eps}))
    for ep in wanted:
        rules = [f"ip saddr {ep.ip} jump mark-for-masquerade"]  # hairpin: the pod reaches itself
        if sp.affinity_timeout is not None:
            sets.append(NftSet(_aff_set(sp, ep), "set", "ipv4_addr", "dynamic,timeout", sp.affinity_timeout,
                               dynamic=True))
            rules.append(f"update @{_aff_set(sp, ep)} {{ ip saddr }}")
        rules.append(f"meta l4proto {proto} dnat to {ep.ip}:{ep.port}")
        chains.append(Chain(_ep_chain(sp, ep), tuple(rules)))
    has_external = sp.node_port is not None or bool(sp.external_ips)
    needed = set()
    if cluster_eps:
        needed.add("local" if sp.internal_local else "all")
    if external_eps and has_external:
        needed.add("local" if sp.external_local else "all")
    pick = {kind: f"goto {kind}-{tok}" for kind in needed}
    for kind in sorted(needed):
        chains.append(_pick_chain(f"{kind}-{tok}", sp, local if kind == "local" else usable))

    if cluster_eps:
        rules = []
        if cfg.pod_cidrs:
            rules += [f"ip daddr {ip} {proto} dport {sp.port} ip saddr != @{POD_CIDRS} jump mark-for-masquerade"
                      for ip in sp.cluster_ips]
        rules.append(pick["local" if sp.internal_local else "all"])
        chains.append(Chain(f"svc-{tok}", tuple(rules)))
    for ip in sp.cluster_ips:
        key = f"{ip} . {proto} . {sp.port}"
        (out[SERVICE_IPS] if cluster_eps else out[NO_EP_SERVICES]).append(
            f"{key} : goto svc-{tok}" if cluster_eps else f"{key} : {no_cluster}")

    if not has_external:
        pass
    elif external_eps:
        if sp.external_local:
            # Local endpoints exist, so cluster traffic has endpoints too (ITP Cluster: all of them,
            # ITP Local: these): pods and the node itself go the cluster way, as in kube-proxy; the
            # node has no client address worth keeping, so it is masqueraded.
            rules = [f"ip saddr @{POD_CIDRS} goto svc-{tok}"] if cfg.pod_cidrs else []
            rules += ["fib saddr type local jump mark-for-masquerade", f"fib saddr type local goto svc-{tok}",
                      pick["local"]]
        else:
            rules = ["jump mark-for-masquerade", pick["all"]]
        chains.append(Chain(f"ext-{tok}", tuple(rules)))
        for ip in sp.external_ips:
            out[SERVICE_IPS].append(f"{ip} . {proto} . {sp.port} : goto ext-{tok}")
        if sp.node_port is not None:
            out[SERVICE_NODEPORTS].append(f"{proto} . {sp.node_port} : goto ext-{tok}")
    else:
        for ip in sp.external_ips:
            out[NO_EP_SERVICES].append(f"{ip} . {proto} . {sp.port} : {no_external}")
        if sp.node_port is not None:
            out[NO_EP_NODEPORTS].append(f"{proto} . {sp.node_port} : {no_external}")

    if sp.source_ranges and sp.external_ips:
        allowed = ", ".join(str(n) for n in sp.source_ranges)
        chains.append(Chain(f"fw-{tok}", (f"ip saddr != {{ {allowed} }} drop",)))
        # jump, not goto: a permitted packet must come back for the no-endpoint checks.
        out[FIREWALL_IPS] += [f"{ip} . {proto} . {sp.port} : jump fw-{tok}" for ip in sp.external_ips]

    if proto == "udp":
        c_eps = frozenset((e.ip, e.port) for e in cluster_eps)
        x_eps = frozenset((e.ip, e.port) for e in external_eps)
        udp += [UdpFrontend(ip, sp.port, c_eps) for ip in sp.cluster_ips]
        udp += [UdpFrontend(ip, sp.port, x_eps) for ip in sp.external_ips]
        if sp.node_port is not None:
            udp.append(UdpFrontend(None, sp.node_port, x_eps))


def _element(net: ipaddress.IPv4Network) -> str:
    return str(net.network_address) if net.prefixlen == 32 else str(net)


def render(cfg: NodeConfig, services: Iterable[Mapping[str, Any]],
           endpoint_slices: Iterable[Mapping[str, Any]]) -> Ruleset:
    problems: list[str] = []
    ports = service_ports(services, endpoint_slices, problems)
    maps: dict[str, list[str]] = {k: [] for k in (SERVICE_IPS, SERVICE_NODEPORTS, NO_EP_SERVICES, NO_EP_NODEPORTS,
                                                  FIREWALL_IPS)}
    chains: list[Chain] = []
    sets: list[NftSet] = []
    udp: list[UdpFrontend] = []
    seen: dict[str, str] = {}
    for sp in ports:
        # Two services claiming one address and port (or one NodePort) would make the map
        # transaction fail as a whole; the first (by namespace/name) keeps it.
        keys = [f"{ip}/{sp.protocol}/{sp.port}" for ip in (*sp.cluster_ips, *sp.external_ips)]
        if sp.node_port is not None:
            keys.append(f"nodeport/{sp.protocol}/{sp.node_port}")
        owner = f"{sp.namespace}/{sp.name}"
        clash = [k for k in keys if seen.get(k, owner) != owner]
        if clash:
            problems.append(f"service {owner}: {', '.join(clash)} already used by {seen[clash[0]]} (skipped)")
            continue
        seen.update(dict.fromkeys(keys, owner))
        _port_rules(sp, cfg, maps, chains, sets, udp)

    if cfg.node_ips:
        nodeport_match = f"ip daddr @{NODEPORT_IPS}"
        sets.append(NftSet(NODEPORT_IPS, "set", "ipv4_addr", elements=tuple(str(i) for i in sorted(cfg.node_ips))))
    else:
        nodeport_match = "fib daddr type local ip daddr != 127.0.0.0/8"
    if cfg.pod_cidrs:
        sets.append(NftSet(POD_CIDRS, "set", "ipv4_addr", "interval",
                           elements=tuple(_element(n) for n in ipaddress.collapse_addresses(sorted(cfg.pod_cidrs)))))
    for name, key in ((SERVICE_IPS, IP_KEY), (SERVICE_NODEPORTS, PORT_KEY), (NO_EP_SERVICES, IP_KEY),
                      (NO_EP_NODEPORTS, PORT_KEY), (FIREWALL_IPS, IP_KEY)):
        sets.append(NftSet(name, "map", key, elements=tuple(sorted(maps[name]))))

    checks = (
        f"ip daddr . meta l4proto . th dport vmap @{FIREWALL_IPS}",
        f"ct state new ip daddr . meta l4proto . th dport vmap @{NO_EP_SERVICES}",
        f"ct state new {nodeport_match} meta l4proto . th dport vmap @{NO_EP_NODEPORTS}",
    )
    fixed = [
        Chain("filter-prerouting", checks, f"type filter hook prerouting priority {PRIO_FILTER}; policy accept;"),
        Chain("filter-output", checks, f"type filter hook output priority {PRIO_FILTER_OUT}; policy accept;"),
        Chain("nat-prerouting", ("jump services",), f"type nat hook prerouting priority {PRIO_DNAT}; policy accept;"),
        Chain("nat-output", ("jump services",), f"type nat hook output priority {PRIO_DNAT_OUT}; policy accept;"),
        Chain("nat-postrouting", ("jump masquerading",),
              f"type nat hook postrouting priority {PRIO_SNAT}; policy accept;"),
        Chain("services", (f"ip daddr . meta l4proto . th dport vmap @{SERVICE_IPS}",
                           f"{nodeport_match} meta l4proto . th dport vmap @{SERVICE_NODEPORTS}")),
        Chain("mark-for-masquerade", (f"meta mark set meta mark | 0x{MASQ_MARK:08x}",)),
        Chain("masquerading", (f"meta mark & 0x{MASQ_MARK:08x} == 0x00000000 return",
                               f"meta mark set meta mark ^ 0x{MASQ_MARK:08x}",
                               "masquerade fully-random")),
        Chain("reject-chain", ("reject",)),
    ]
    return Ruleset(tuple(sorted(sets, key=lambda s: s.name)), (*fixed, *sorted(chains, key=lambda c: c.name)),
                   tuple(sorted(udp, key=lambda u: (str(u.address), u.port))), tuple(problems))


def render_text(rs: Ruleset) -> str:
    """The whole table as one `nft -f` definition (used for the full sync and golden tests)."""
    lines = [f"table {FAMILY} {TABLE} {{", '\tcomment "netplane service proxy"']
    for s in rs.sets:
        lines += [f"\t{s.kind} {s.name} {{", f"\t\ttype {s.type}"]
        if s.flags:
            lines.append(f"\t\tflags {s.flags}")
        if s.timeout is not None:
            lines.append(f"\t\ttimeout {s.timeout}s")
        if s.elements:  # nft rejects `elements = { }`
            lines.append("\t\telements = { " + ",\n\t\t\t     ".join(s.elements) + " }")
        lines.append("\t}")
    for c in rs.chains:
        lines.append(f"\tchain {c.name} {{")
        if c.base:
            lines.append(f"\t\t{c.base}")
        lines += [f"\t\t{r}" for r in c.rules]
        lines.append("\t}")
    return "\n".join(lines) + "\n}\n"
