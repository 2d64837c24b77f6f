"""The service proxy of one node as one nftables table (pure; `apply` writes it).

Semantics follow kube-proxy's nftables mode; the layout is shaped by what nftables makes cheap
(numbers in bench/proxy.py):

* `nat-prerouting` / `nat-output` (nat, priority dstnat = -100) jump to `services`, which
  looks the packet up in verdict maps keyed by `address . protocol . port`
  (`service-ips`: cluster IPs, externalIPs, load-balancer ingress IPs) and by
  `protocol . port` for NodePorts on the node's addresses (`service-nodeports`).
* An ordinary service port owns no chain. Its map elements lead to chains shared by every port
  of its protocol with as many endpoints (`cluster-tcp-3`, `external-tcp-3`, `nodeport-tcp-3`,
  `external-local-tcp-1-3`, ...), whose one `dnat` picks an endpoint from the protocol's map
  `endpoints-tcp` by the frontend the packet was sent to and a random index
  (`ip daddr . tcp dport . numgen random mod N`), or from `nodeport-endpoints-tcp` by
  `tcp dport . index`. Endpoints for cluster traffic sit at indexes 0..N-1, those for external
  traffic from EXTERNAL_BASE on (they differ under a Local traffic policy). Why: what costs in
  nftables is chains and sets, far more than elements. Each anonymous set (a per-service
  `numgen ... vmap`) costs the kernel a walk of the whole transaction (a full sync of 10k such
  services took 88 s here), and every `nft` run reads all chains first (about 2 ms per
  thousand), so thousands of chains would make each small change slow. Here a changed endpoint
  is a few map elements, plus the service's own element when its count changes.
* A port with ClientIP affinity needs memory per endpoint, so it keeps chains of its own:
  `svc-<tok>` (cluster traffic), `ext-<tok>` (external traffic), `all-<tok>` / `local-<tok>`
  (affinity lookups, then `numgen random mod N vmap`) and `ep-<tok>-<ip>-<port>` (affinity
  update, DNAT), with one timeout set `aff-...` per endpoint.
* Masquerading: cluster traffic from outside the pod CIDRs, external traffic under the Cluster
  policy, and node-local clients under the Local policy (their address is not worth keeping).
* `filter-prerouting` / `filter-output` (filter, priority dstnat - 10 = -110): before DNAT,
  while the destination is still the service address, enforce loadBalancerSourceRanges
  (`firewall-ips`) and answer new connections to services without usable endpoints
  (`no-endpoint-services`, `no-endpoint-nodeports`): `reject` (kube-proxy's "no endpoints"),
  or `drop` when a Local traffic policy has no local endpoint.
* `filter-forward` (filter - 10): hairpin. A new DNATed connection routed back out of the
  interface it came in on is a pod reaching itself through a service; it is marked for
  masquerade (one rule instead of one per endpoint).
* `nat-postrouting` (nat, priority srcnat - 10 = 90) masquerades packets that carry
  MASQ_MARK, then clears the bit.

Priorities leave room for the others: NetworkPolicy belongs at filter (0) on
input/forward/output, after DNAT (policies speak of pod addresses), i.e. between our
-110/-100 and 90; podnet's natOutgoing (`inet netplane-podnet`, srcnat = 100) runs after
our masquerade, so service traffic is decided first and never masqueraded twice.

A `Ruleset` is the fixed part plus one `Fragment` per service port: the fragment's map
elements use keys no other fragment uses (frontends are unique, see the clash check), so
`apply` can update a changed service by its elements alone. `Renderer` renders pass after
pass and re-renders only Services whose objects changed.

Names: chains and sets are built from `ServicePort.token` (hash + validated DNS labels)
and addresses checked by `model`; every value in rule text is an int, an address or a constant.
The output is a deterministic function of the input (sorted everywhere), so `apply`
can tell "nothing changed" by comparing renderings.
"""

from __future__ import annotations

import gc
import ipaddress
import itertools
import operator
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from netplane.dataplane.proxy.model import PROTOCOLS, SERVICE_NAME_LABEL, Endpoint, IPv4, ServicePort, service_ports

FAMILY = "ip"
TABLE = "netplane-proxy"
MASQ_MARK = 0x4000  # kube-proxy's bit; nothing else in netplane uses packet marks
PRIO_FILTER = "dstnat - 10"
PRIO_DNAT = "dstnat"
PRIO_SNAT = "srcnat - 10"
PRIO_FORWARD = "filter - 10"
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
IP_KEY = "type ipv4_addr . inet_proto . inet_service : verdict"
PORT_KEY = "type inet_proto . inet_service : verdict"
EXTERNAL_BASE = 1 << 20  # first index of the external-traffic endpoints of a frontend
MAPS = ((SERVICE_IPS, IP_KEY), (SERVICE_NODEPORTS, PORT_KEY), (NO_EP_SERVICES, IP_KEY), (NO_EP_NODEPORTS, PORT_KEY),
        (FIREWALL_IPS, IP_KEY))


def _endpoints_map(protocol: str, nodeport: bool = False) -> str:
    """The map of a protocol's endpoints, by frontend address and port (or node port) and index. One
    map per protocol: nft makes a `dnat` whose port comes from a map match that map's protocol."""
    return f"{'nodeport-' if nodeport else ''}endpoints-{protocol}"


def _endpoints_key(protocol: str, nodeport: bool) -> str:
    # `typeof` takes the types from the expressions; `mod 1` only names numgen's (32-bit) one.
    address = "" if nodeport else "ip daddr . "
    return f"typeof {address}{protocol} dport . numgen random mod 1 : ip daddr . {protocol} dport"


@dataclass(frozen=True)
class Chain:
    name: str
    rules: tuple[str, ...]
    base: str = ""  # "type nat hook prerouting priority dstnat; policy accept;" for base chains


@dataclass(frozen=True)
class NftSet:
    name: str
    kind: str  # "set" or "map"
    type: str  # the declaration: "type ipv4_addr" or "typeof ip daddr . ..."
    flags: str = ""
    timeout: int | None = None
    elements: tuple[str, ...] = ()
    dynamic: bool = False  # elements are the kernel's (affinity): never flushed by a sync

    def definition(self) -> str:
        parts = [f"{self.type};"]
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
    endpoints: frozenset[tuple[str, int]]


@dataclass(frozen=True)
class Fragment:
    """What one service port adds: elements of the shared maps, chains and sets of its own
    (affinity, source ranges), the shared chains its elements lead to, its UDP frontends."""

    elements: tuple[tuple[str, tuple[str, ...]], ...] = ()  # (map name, "key : value" elements)
    chains: tuple[Chain, ...] = ()
    sets: tuple[NftSet, ...] = ()
    shared: tuple[Chain, ...] = ()
    udp: tuple[UdpFrontend, ...] = ()


@dataclass(frozen=True)
class Ruleset:
    base_sets: tuple[NftSet, ...]  # fixed sets with their elements, and the maps fragments fill
    base_chains: tuple[Chain, ...]  # hooks, helpers and the shared chains in use
    fragments: Mapping[str, Fragment] = field(default_factory=dict)  # by ServicePort.token
    problems: tuple[str, ...] = field(default=(), compare=False)

    @property
    def sets(self) -> tuple[NftSet, ...]:
        """Every set and map with all its elements (the whole table's view, for full syncs)."""
        filled: dict[str, list[str]] = {}
        own: list[NftSet] = []
        for f in self.fragments.values():
            for name, elements in f.elements:
                filled.setdefault(name, []).extend(elements)
            own += f.sets
        merged = [replace(s, elements=tuple(sorted((*s.elements, *filled[s.name])))) if s.name in filled else s
                  for s in self.base_sets]
        return tuple(sorted([*merged, *own], key=lambda s: s.name))

    @property
    def chains(self) -> tuple[Chain, ...]:
        own = [c for f in self.fragments.values() for c in f.chains]
        return (*self.base_chains, *sorted(own, key=lambda c: c.name))


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


def _dnat(protocol: str, nodeport: bool, count: int, offset: int) -> str:
    key = f"{protocol} dport" if nodeport else f"ip daddr . {protocol} dport"
    pick = f"numgen random mod {count}" + (f" offset {offset}" if offset else "")
    return f"dnat ip to {key} . {pick} map @{_endpoints_map(protocol, nodeport)}"


def _cluster_chain(protocol: str, n: int, cfg: NodeConfig) -> Chain:
    masq = (f"ip saddr != @{POD_CIDRS} jump mark-for-masquerade",) if cfg.pod_cidrs else ()
    return Chain(f"cluster-{protocol}-{n}", (*masq, _dnat(protocol, False, n, 0)))


def _external_chain(protocol: str, nodeport: bool, x: int, c: int, local: bool, cfg: NodeConfig) -> Chain:
    """External traffic of a frontend: to its `x` external-policy endpoints. Under the Local
    policy, pods and the node itself go the cluster way (its `c` endpoints), as in kube-proxy;
    the node has no client address worth keeping, so it is masqueraded."""
    kind = "nodeport" if nodeport else "external"
    if not local:
        return Chain(f"{kind}-{protocol}-{x}", ("jump mark-for-masquerade",
                                                _dnat(protocol, nodeport, x, EXTERNAL_BASE)))
    cluster_way = _dnat(protocol, nodeport, c, 0)
    pods = (f"ip saddr @{POD_CIDRS} {cluster_way}",) if cfg.pod_cidrs else ()
    return Chain(f"{kind}-local-{protocol}-{x}-{c}", (*pods, "fib saddr type local jump mark-for-masquerade",
                                                       f"fib saddr type local {cluster_way}",
                                                       _dnat(protocol, nodeport, x, EXTERNAL_BASE)))


def _indexed(key: str, eps: list[Endpoint], offset: int) -> list[str]:
    return [f"{key} . {offset + i} : {e.ip} . {e.port}" for i, e in enumerate(eps)]


def _ep_chain(sp: ServicePort, ep: Endpoint) -> str:
    return f"ep-{sp.token}-{ep.ip}-{ep.port}"


def _aff_set(sp: ServicePort, ep: Endpoint) -> str:
    # The timeout is part of the name: `add set` leaves an existing set's timeout as it was.
    return f"aff-{sp.token}-{ep.ip}-{ep.port}-{sp.affinity_timeout}"


def _pick_chain(name: str, sp: ServicePort, eps: list[Endpoint]) -> Chain:
    rules = [f"ip saddr @{_aff_set(sp, e)} goto {_ep_chain(sp, e)}" for e in eps]
    arms = ", ".join(f"{i} : goto {_ep_chain(sp, e)}" for i, e in enumerate(eps))
    rules.append(f"numgen random mod {len(eps)} vmap {{ {arms} }}")
    return Chain(name, tuple(rules))


def _affinity_chains(sp: ServicePort, cfg: NodeConfig, usable: list[Endpoint], local: list[Endpoint],
                     has_external: bool) -> tuple[list[Chain], list[NftSet]]:
    tok, proto = sp.token, sp.protocol
    cluster_eps = local if sp.internal_local else usable
    external_eps = local if sp.external_local else usable
    chains: list[Chain] = []
    sets: list[NftSet] = []
    for ep in sorted({*cluster_eps, *external_eps}):
        sets.append(NftSet(_aff_set(sp, ep), "set", "type ipv4_addr", "dynamic,timeout", sp.affinity_timeout,
                           dynamic=True))
        chains.append(Chain(_ep_chain(sp, ep), (f"update @{_aff_set(sp, ep)} {{ ip saddr }}",
                                                f"meta l4proto {proto} dnat to {ep.ip}:{ep.port}")))
    needed = set()
    if cluster_eps:
        needed.add("local" if sp.internal_local else "all")
    if external_eps and has_external:
        needed.add("local" if sp.external_local else "all")
    for kind in sorted(needed):
        chains.append(_pick_chain(f"{kind}-{tok}", sp, local if kind == "local" else usable))
    if cluster_eps:
        rules = [f"ip daddr {ip} {proto} dport {sp.port} ip saddr != @{POD_CIDRS} jump mark-for-masquerade"
                 for ip in sp.cluster_ips] if cfg.pod_cidrs else []
        rules.append(f"goto {'local' if sp.internal_local else 'all'}-{tok}")
        chains.append(Chain(f"svc-{tok}", tuple(rules)))
    if external_eps and has_external:
        if sp.external_local:
            rules = [f"ip saddr @{POD_CIDRS} goto svc-{tok}"] if cfg.pod_cidrs else []
            rules += ["fib saddr type local jump mark-for-masquerade", f"fib saddr type local goto svc-{tok}",
                      f"goto local-{tok}"]
        else:
            rules = ["jump mark-for-masquerade", f"goto all-{tok}"]
        chains.append(Chain(f"ext-{tok}", tuple(rules)))
    return chains, sets


def fragment(sp: ServicePort, cfg: NodeConfig) -> Fragment:
    """Everything one service port puts into the table of node `cfg.node`."""
    tok, proto = sp.token, sp.protocol
    usable = _usable(sp.endpoints)
    local = _usable(e for e in sp.endpoints if e.node == cfg.node)
    cluster_eps = local if sp.internal_local else usable
    external_eps = local if sp.external_local else usable
    # Verdict when a policy leaves nothing: no endpoints at all -> reject (the client learns at
    # once); endpoints exist but none here under a Local policy -> drop, as kube-proxy does.
    no_cluster = "drop" if sp.internal_local and usable else "goto reject-chain"
    no_external = "drop" if sp.external_local and usable else "goto reject-chain"
    has_external = sp.node_port is not None or bool(sp.external_ips)
    out: dict[str, list[str]] = {}

    def add(table: str, *elements: str) -> None:
        out.setdefault(table, []).extend(elements)

    chains: list[Chain] = []
    sets: list[NftSet] = []
    shared: list[Chain] = []
    ip_keys = [f"{ip} . {proto} . {sp.port}" for ip in sp.cluster_ips]
    ext_keys = [f"{ip} . {proto} . {sp.port}" for ip in sp.external_ips]
    np_key = f"{proto} . {sp.node_port}"
    if sp.affinity_timeout is not None:
        chains, sets = _affinity_chains(sp, cfg, usable, local, has_external)
        cluster_to, external_to, nodeport_to = f"goto svc-{tok}", f"goto ext-{tok}", f"goto ext-{tok}"
    else:
        # Endpoint keys leave out the protocol: the map is the protocol's.
        if cluster_eps:
            shared.append(_cluster_chain(proto, len(cluster_eps), cfg))
            for ip in sp.cluster_ips:
                add(_endpoints_map(proto), *_indexed(f"{ip} . {sp.port}", cluster_eps, 0))
        cluster_to = f"goto cluster-{proto}-{len(cluster_eps)}"
        external_to = nodeport_to = ""
        if external_eps and has_external:
            for nodeport, keys in ((False, [f"{ip} . {sp.port}" for ip in sp.external_ips]),
                                   (True, [str(sp.node_port)] if sp.node_port is not None else [])):
                if not keys:
                    continue
                chain = _external_chain(proto, nodeport, len(external_eps), len(cluster_eps), sp.external_local, cfg)
                shared.append(chain)
                for key in keys:
                    add(_endpoints_map(proto, nodeport), *_indexed(key, external_eps, EXTERNAL_BASE))
                    if sp.external_local:
                        add(_endpoints_map(proto, nodeport), *_indexed(key, cluster_eps, 0))
                if nodeport:
                    nodeport_to = f"goto {chain.name}"
                else:
                    external_to = f"goto {chain.name}"

    for key in ip_keys:
        add(*((SERVICE_IPS, f"{key} : {cluster_to}") if cluster_eps else (NO_EP_SERVICES, f"{key} : {no_cluster}")))
    if has_external:
        for key in ext_keys:
            add(*((SERVICE_IPS, f"{key} : {external_to}") if external_eps else
                  (NO_EP_SERVICES, f"{key} : {no_external}")))
        if sp.node_port is not None:
            add(*((SERVICE_NODEPORTS, f"{np_key} : {nodeport_to}") if external_eps else
                  (NO_EP_NODEPORTS, f"{np_key} : {no_external}")))

    if sp.source_ranges and sp.external_ips:
        allowed = ", ".join(str(n) for n in sp.source_ranges)
        chains.append(Chain(f"fw-{tok}", (f"ip saddr != {{ {allowed} }} drop",)))
        # jump, not goto: a permitted packet must come back for the no-endpoint checks.
        add(FIREWALL_IPS, *(f"{key} : jump fw-{tok}" for key in ext_keys))

    udp: list[UdpFrontend] = []
    if proto == "udp":
        c_eps = frozenset((e.ip, e.port) for e in cluster_eps)
        x_eps = frozenset((e.ip, e.port) for e in external_eps)
        udp += [UdpFrontend(ip, sp.port, c_eps) for ip in sp.cluster_ips]
        udp += [UdpFrontend(ip, sp.port, x_eps) for ip in sp.external_ips]
        if sp.node_port is not None:
            udp.append(UdpFrontend(None, sp.node_port, x_eps))
    return Fragment(tuple(sorted((k, tuple(sorted(v))) for k, v in out.items())), tuple(chains), tuple(sets),
                    tuple(shared), tuple(udp))


def _element(net: ipaddress.IPv4Network) -> str:
    return str(net.network_address) if net.prefixlen == 32 else str(net)


def _fixed(cfg: NodeConfig) -> tuple[list[NftSet], list[Chain]]:
    sets: list[NftSet] = []
    if cfg.node_ips:
        nodeport_match = f"ip daddr @{NODEPORT_IPS}"
        sets.append(NftSet(NODEPORT_IPS, "set", "type ipv4_addr",
                           elements=tuple(str(i) for i in sorted(cfg.node_ips))))
    else:
        nodeport_match = "fib daddr type local ip daddr != 127.0.0.0/8"
    if cfg.pod_cidrs:
        sets.append(NftSet(POD_CIDRS, "set", "type ipv4_addr", "interval",
                           elements=tuple(_element(n) for n in ipaddress.collapse_addresses(sorted(cfg.pod_cidrs)))))
    sets += [NftSet(name, "map", key) for name, key in MAPS]
    sets += [NftSet(_endpoints_map(p, nodeport), "map", _endpoints_key(p, nodeport))
             for p in PROTOCOLS.values() for nodeport in (False, True)]
    checks = (
        f"ip daddr . meta l4proto . th dport vmap @{FIREWALL_IPS}",
        f"ct state new ip daddr . meta l4proto . th dport vmap @{NO_EP_SERVICES}",
        f"ct state new {nodeport_match} meta l4proto . th dport vmap @{NO_EP_NODEPORTS}",
    )
    chains = [
        Chain("filter-prerouting", checks, f"type filter hook prerouting priority {PRIO_FILTER}; policy accept;"),
        Chain("filter-output", checks, f"type filter hook output priority {PRIO_FILTER_OUT}; policy accept;"),
        Chain("filter-forward", ("ct state new ct status dnat fib daddr . iif oif exists jump mark-for-masquerade",),
              f"type filter hook forward priority {PRIO_FORWARD}; policy accept;"),
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
    return sets, chains


def _name(obj: Mapping[str, Any]) -> tuple[str, str]:
    meta = obj.get("metadata") or {}
    return str(meta.get("namespace") or ""), str(meta.get("name") or "")


def _owner(es: Mapping[str, Any]) -> tuple[str, str] | None:
    meta = es.get("metadata") or {}
    owner = (meta.get("labels") or {}).get(SERVICE_NAME_LABEL)
    return (str(meta.get("namespace") or ""), owner) if isinstance(owner, str) else None


@dataclass(frozen=True)
class _Port:
    sp: ServicePort
    fragment: Fragment
    frontends: tuple[str, ...]  # what it claims: addresses . protocol . port, and its node port
    rank: tuple[str, str, str]  # the first claimant (namespace, name, token) keeps a frontend


def _frontends(sp: ServicePort) -> tuple[str, ...]:
    keys = [f"{ip}/{sp.protocol}/{sp.port}" for ip in (*sp.cluster_ips, *sp.external_ips)]
    if sp.node_port is not None:
        keys.append(f"nodeport/{sp.protocol}/{sp.node_port}")
    return tuple(keys)


class _Objects:
    """The objects of the last pass, to tell which of this pass's are new and which went.

    An informer cache lists its objects in a stable order (a changed object takes the place of the
    one it replaces), so comparing the two lists place by place finds the few changes of a pass
    without hashing every object; a list of another length takes the way of sets."""

    def __init__(self) -> None:
        self._list: list[Mapping[str, Any]] = []
        self._by_id: dict[int, Mapping[str, Any]] = {}  # holding them keeps their ids theirs

    def update(self, objects: Iterable[Mapping[str, Any]]) -> tuple[list[Mapping[str, Any]], list[Mapping[str, Any]]]:
        """(objects that went, objects that came) since the last call."""
        now, last = list(objects), self._list
        if len(now) == len(last):
            at = list(itertools.compress(range(len(now)), map(operator.is_not, now, last)))
            went, come = {id(last[i]): last[i] for i in at}, {id(now[i]): now[i] for i in at}
            gone = [o for i, o in went.items() if i not in come]  # one that only moved is in both
            came = [o for i, o in come.items() if i not in went]
        else:
            by_id = dict(zip(map(id, now), now, strict=True))
            gone = [o for i, o in self._by_id.items() if i not in by_id]
            came = [o for i, o in by_id.items() if i not in self._by_id]
        for o in gone:
            del self._by_id[id(o)]
        for o in came:
            self._by_id[id(o)] = o
        self._list = now
        return gone, came


class Renderer:
    """Renders a node's table pass after pass at a cost that follows what changed.

    Objects are told apart by identity: an informer cache replaces an object when it changes and
    never alters it, so a Service is rendered again only when its object or the set of its
    EndpointSlice objects is not the one of the last pass; the rest of a pass is set arithmetic
    on object ids. Two service ports claiming one frontend (address . protocol . port, or a node
    port) would make the whole transaction fail, so each frontend belongs to its first claimant
    by namespace, name and port, and a port that does not own all its frontends is left out."""

    def __init__(self) -> None:
        self._cfg: NodeConfig | None = None
        self._reset()

    def _reset(self) -> None:
        self._services = _Objects()
        self._slices = _Objects()
        self._by_name: dict[tuple[str, str], Mapping[str, Any]] = {}
        self._slices_of: dict[tuple[str, str], dict[int, Mapping[str, Any]]] = {}
        self._ports: dict[tuple[str, str], tuple[_Port, ...]] = {}
        self._service_problems: dict[tuple[str, str], tuple[str, ...]] = {}
        self._claims: dict[str, dict[tuple[str, str, str], _Port]] = {}  # frontend -> claimants by rank
        self._active: dict[str, Fragment] = {}  # by token
        self._left_out: dict[str, str] = {}  # token -> why
        self._shared: dict[str, tuple[Chain, int]] = {}  # shared chain name -> (chain, fragments using it)

    def render(self, cfg: NodeConfig, services: Iterable[Mapping[str, Any]],
               endpoint_slices: Iterable[Mapping[str, Any]]) -> Ruleset:
        # A big rendering makes many objects that live on, and no cycles: the collector's automatic
        # runs would only walk the (large, long-lived) informer caches again and again -- measured
        # at half the time of a full rendering of 10k services.
        collecting = gc.isenabled()
        gc.disable()
        try:
            return self._render(cfg, services, endpoint_slices)
        finally:
            if collecting:
                gc.enable()

    def _render(self, cfg: NodeConfig, services: Iterable[Mapping[str, Any]],
                endpoint_slices: Iterable[Mapping[str, Any]]) -> Ruleset:
        if cfg != self._cfg:
            self._cfg = cfg
            self._reset()
        dirty: set[tuple[str, str]] = set()
        gone, came = self._slices.update(endpoint_slices)
        for es in gone:
            owner = _owner(es)
            if owner is not None:
                self._slices_of[owner].pop(id(es))
                dirty.add(owner)
        for es in came:
            owner = _owner(es)
            if owner is not None:
                self._slices_of.setdefault(owner, {})[id(es)] = es
                dirty.add(owner)
        gone, came = self._services.update(services)
        for old in gone:  # before those that came: a replaced Service is one of each
            name = _name(old)
            if self._by_name.get(name) is old:
                del self._by_name[name]
            dirty.add(name)
        for new in came:
            name = _name(new)
            self._by_name[name] = new
            dirty.add(name)

        touched: dict[tuple[str, str, str], _Port] = {}
        for name in sorted(dirty):
            for port in self._ports.pop(name, ()):
                self._unclaim(port, touched)
            self._service_problems.pop(name, None)
            svc = self._by_name.get(name)
            if svc is not None:
                ports, found = self._render_service(cfg, svc, self._slices_of.get(name, {}).values())
                for port in ports:
                    self._claim(port, touched)
                self._ports[name] = ports
                if found:
                    self._service_problems[name] = found
            if not self._slices_of.get(name, True):
                del self._slices_of[name]
        for rank in sorted(touched):
            self._settle(touched[rank])

        fixed_sets, fixed_chains = _fixed(cfg)
        problems = [p for n in sorted(self._service_problems) for p in self._service_problems[n]]
        problems += [self._left_out[t] for t in sorted(self._left_out)]
        shared = tuple(self._shared[n][0] for n in sorted(self._shared))
        return Ruleset(tuple(fixed_sets), (*fixed_chains, *shared), dict(self._active), tuple(problems))

    @staticmethod
    def _render_service(cfg: NodeConfig, svc: Mapping[str, Any],
                        slices: Iterable[Mapping[str, Any]]) -> tuple[tuple[_Port, ...], tuple[str, ...]]:
        problems: list[str] = []
        # By name: when two slices hold one address, which one counts must not depend on arrival.
        ports = service_ports(svc, sorted(slices, key=_name), problems)
        out: dict[str, _Port] = {}
        for sp in ports:
            if sp.token in out:
                problems.append(f"service {sp.namespace}/{sp.name}: port {sp.port_name or sp.port}/{sp.protocol} "
                                "appears twice (skipped)")
                continue
            out[sp.token] = _Port(sp, fragment(sp, cfg), _frontends(sp), (sp.namespace, sp.name, sp.token))
        return tuple(out.values()), tuple(problems)

    def _claim(self, port: _Port, touched: dict[tuple[str, str, str], _Port]) -> None:
        touched[port.rank] = port
        for key in port.frontends:
            claimants = self._claims.setdefault(key, {})
            claimants[port.rank] = port
            touched.update(claimants)

    def _unclaim(self, port: _Port, touched: dict[tuple[str, str, str], _Port]) -> None:
        touched.pop(port.rank, None)
        self._use(port, False)
        self._left_out.pop(port.sp.token, None)
        for key in port.frontends:
            claimants = self._claims[key]
            claimants.pop(port.rank, None)
            touched.update(claimants)
            if not claimants:
                del self._claims[key]

    def _settle(self, port: _Port) -> None:
        """Activate `port` if it owns all its frontends, else leave it out and say why."""
        lost = {key: min(self._claims[key]) for key in port.frontends if min(self._claims[key]) != port.rank}
        self._use(port, not lost)
        if lost:
            first = next(iter(lost.values()))
            self._left_out[port.sp.token] = (f"service {port.sp.namespace}/{port.sp.name}: {', '.join(lost)} already "
                                             f"used by {first[0]}/{first[1]} (skipped)")
        else:
            self._left_out.pop(port.sp.token, None)

    def _use(self, port: _Port, active: bool) -> None:
        token = port.sp.token
        if (token in self._active) == active:
            return
        if active:
            self._active[token] = port.fragment
        else:
            del self._active[token]
        for chain in port.fragment.shared:
            _, users = self._shared.get(chain.name, (chain, 0))
            users += 1 if active else -1
            if users:
                self._shared[chain.name] = (chain, users)
            else:
                del self._shared[chain.name]


def render(cfg: NodeConfig, services: Iterable[Mapping[str, Any]],
           endpoint_slices: Iterable[Mapping[str, Any]]) -> Ruleset:
    """One rendering from scratch."""
    return Renderer().render(cfg, services, endpoint_slices)


def render_text(rs: Ruleset) -> str:
    """The whole table as one `nft -f` definition (used for the full sync and golden tests)."""
    lines = [f"table {FAMILY} {TABLE} {{", '\tcomment "netplane service proxy"']
    for s in rs.sets:
        lines += [f"\t{s.kind} {s.name} {{", f"\t\t{s.type}"]
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
