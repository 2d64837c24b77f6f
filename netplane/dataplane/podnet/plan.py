"""The desired pod-network state of one node namespace, computed from plain data.

Nothing here touches the kernel: `plan_node` turns the cluster's nodes, subnets
and pod addresses (as central IPAM decided them) into a `NodePlan`, and
`podnet.apply` makes a node namespace match it. Keeping the two apart lets the
rules be tested table-driven, and lets a restarted agent recompute exactly the
same plan from the same objects (the plan is a pure function of its input).

Data path (see docs/design/nodes-and-pods.md):

* Local pod: namespace `np-<cid>-p-<uid8>`, `eth0` with the pod address and the
  subnet's prefix length, default route via the subnet gateway. The node end of
  the veth (`pv<uid12>`) has no address, proxy ARP on, and a /32 route to the pod.
  The gateway address sits on the node's `lo` (label `lo:npgw`): it has to be a
  local (or routed) address for the kernel to answer the pod's ARP for it, and
  since it is never on a shared segment, every node can own the same gateway
  (a distributed gateway, as Kube-OVN's logical router port is).
* Remote pods: the join address doubles as the node's VXLAN overlay address.
  It sits as a /32 on `vxlan0`; each remote node gets a permanent neighbour entry
  (its join address -> its vxlan0 MAC) and an FDB entry (that MAC -> its fabric
  address), and each remote pod a route `<pod>/32 via <remote join> dev vxlan0
  onlink`. Choosing the join address (instead of a separate overlay transfer net)
  means one address per node to allocate and node->pod and pod->node traffic
  across nodes needs nothing more than routes to the remote join /32s. Entries
  come only from IP objects; learning is off, so the overlay never floods.
* Each subnet CIDR has an `unreachable` route: an address without a pod is
  answered at once instead of leaking out of `eth0` via some default route.
* natOutgoing: an nftables masquerade for traffic from those subnets leaving
  `eth0` for anything outside the cluster's ranges (all subnets + join subnet).

Only IPv4 is planned; other families are reported as problems, not guessed at.
Bad input about one pod, subnet or remote node is reported in `problems` and
that item is skipped, so one broken object never takes down the rest of the
node; bad input about the node itself raises `PodnetPlanError`.
"""

from __future__ import annotations

import hashlib
import ipaddress
import re
from collections import Counter
from dataclasses import dataclass, field

from netplane.dataplane.fabric_plan import NS_PREFIX

UNDERLAY_IFNAME = "eth0"  # the node's fabric interface (fabric.py names it so)
VXLAN_IFNAME = "vxlan0"
VXLAN_PORT = 4789
DEFAULT_VNI = 1
VXLAN_OVERHEAD = 50  # outer Ethernet 14 + IPv4 20 + UDP 8 + VXLAN 8
POD_IFNAME = "eth0"  # inside the pod
HOST_IF_PREFIX = "pv"  # node end of a pod veth; `apply` garbage-collects only links with this prefix
GATEWAY_LABEL = "lo:npgw"  # marks the gateway addresses we own on the node's lo
ROUTE_PROTO = 78  # rtm_protocol of every route we install, so a dump finds exactly ours
NFT_FAMILY = "inet"
NFT_TABLE = "netplane-podnet"  # the service proxy gets its own table; we never touch others
MAX_IFNAME = 15
DEFAULT_JOIN_CIDR = ipaddress.IPv4Network("100.64.0.0/16")  # Kube-OVN's default join subnet


class PodnetPlanError(ValueError):
    """The node itself cannot be planned (unknown node, bad own addresses)."""


# ---------------------------------------------------------------- input


@dataclass(frozen=True)
class Node:
    name: str
    netns: str
    fabric_address: ipaddress.IPv4Address  # the VTEP's underlay address (its eth0)
    join_address: ipaddress.IPv4Address


@dataclass(frozen=True)
class Subnet:
    name: str
    cidr: ipaddress.IPv4Network | ipaddress.IPv6Network
    gateway: ipaddress.IPv4Address | ipaddress.IPv6Address
    nat_outgoing: bool = False


@dataclass(frozen=True)
class Pod:
    uid: str
    name: str  # "<namespace>/<name>", only for messages
    ip: ipaddress.IPv4Address | ipaddress.IPv6Address
    node: str  # "" while unscheduled


@dataclass(frozen=True)
class Cluster:
    cluster_id: str
    nodes: tuple[Node, ...]
    subnets: tuple[Subnet, ...]
    join_cidr: ipaddress.IPv4Network = DEFAULT_JOIN_CIDR
    vni: int = DEFAULT_VNI
    underlay_mtu: int = 1500


# ---------------------------------------------------------------- output


@dataclass(frozen=True)
class LocalPod:
    uid: str
    name: str
    netns: str
    host_ifname: str
    address: ipaddress.IPv4Interface  # pod IP with the subnet's prefix length
    gateway: ipaddress.IPv4Address
    mtu: int


@dataclass(frozen=True)
class VtepPeer:
    node: str
    join_address: ipaddress.IPv4Address
    mac: str
    fabric_address: ipaddress.IPv4Address


@dataclass(frozen=True)
class Vxlan:
    ifname: str
    vni: int
    port: int
    local: ipaddress.IPv4Address
    underlay: str
    mac: str
    mtu: int
    address: ipaddress.IPv4Address  # the join address, as a /32


@dataclass(frozen=True)
class Route:
    """A /32 (or subnet-wide unreachable) route in the node's main table, protocol ROUTE_PROTO."""

    dst: ipaddress.IPv4Network
    ifname: str | None = None  # None for unreachable routes
    via: ipaddress.IPv4Address | None = None  # set: `via X onlink`; unset: scope link
    src: ipaddress.IPv4Address | None = None
    unreachable: bool = False


@dataclass(frozen=True)
class NatPlan:
    sources: tuple[ipaddress.IPv4Network, ...]  # subnets with natOutgoing
    cluster_ranges: tuple[ipaddress.IPv4Network, ...]  # never masqueraded towards these
    underlay: str = UNDERLAY_IFNAME


@dataclass(frozen=True)
class NodePlan:
    cluster_id: str
    node: Node
    vxlan: Vxlan
    peers: tuple[VtepPeer, ...]
    gateways: tuple[ipaddress.IPv4Address, ...]  # on lo, label GATEWAY_LABEL
    pods: tuple[LocalPod, ...]
    routes: tuple[Route, ...]
    nat: NatPlan
    sysctls: tuple[tuple[str, str], ...]  # (path under /proc/sys, value)
    problems: tuple[str, ...] = field(default=(), compare=False)


# ---------------------------------------------------------------- names


def uid_token(uid: str) -> str:
    """Hex digits naming a pod's kernel objects: the UUID's own digits when it is one
    (so `ip link` can be matched to `kubectl get pod -o yaml` by eye), else a hash."""
    digits = uid.lower().replace("-", "")
    if re.fullmatch(r"[0-9a-f]{32}", digits):
        return digits
    return hashlib.sha256(uid.encode()).hexdigest()


def pod_netns_prefix(cluster_id: str) -> str:
    return f"{NS_PREFIX}{cluster_id}-p-"


def pod_netns_name(cluster_id: str, uid: str) -> str:
    """`np-<cid>-p-<uid8>`: under the cluster's prefix, so `remove_fabric` removes it too."""
    return f"{pod_netns_prefix(cluster_id)}{uid_token(uid)[:8]}"


def host_ifname(uid: str) -> str:
    return f"{HOST_IF_PREFIX}{uid_token(uid)[:MAX_IFNAME - len(HOST_IF_PREFIX)]}"


def vxlan_mac(join_address: ipaddress.IPv4Address) -> str:
    """0e:4e + the join address: locally administered unicast, unique wherever join addresses
    are, and computable by every node for every other node without asking."""
    return ":".join(f"{b:02x}" for b in (0x0E, 0x4E, *join_address.packed))


# ---------------------------------------------------------------- planning


def _check_subnets(cluster: Cluster, problems: list[str]) -> list[Subnet]:
    good: list[Subnet] = []
    for subnet in sorted(cluster.subnets, key=lambda s: s.name):
        cidr, gw = subnet.cidr, subnet.gateway
        if not isinstance(cidr, ipaddress.IPv4Network):
            problems.append(f"subnet {subnet.name}: only IPv4 is supported by the pod network, not {cidr}")
        elif cidr.prefixlen > 30:
            problems.append(f"subnet {subnet.name}: {cidr} leaves no room for a gateway and pods")
        elif gw not in cidr or gw in (cidr.network_address, cidr.broadcast_address):
            problems.append(f"subnet {subnet.name}: gateway {gw} is not a usable address of {cidr}")
        elif cidr.overlaps(cluster.join_cidr):
            problems.append(f"subnet {subnet.name}: {cidr} overlaps the join subnet {cluster.join_cidr}")
        elif clash := next((s for s in good if cidr.overlaps(s.cidr)), None):
            # A route can only point one way; the first subnet by name keeps its addresses.
            problems.append(f"subnet {subnet.name}: {cidr} overlaps subnet {clash.name} ({clash.cidr})")
        else:
            good.append(subnet)
    return good


def _check_nodes(cluster: Cluster, node_name: str, problems: list[str]) -> tuple[Node, list[Node]]:
    by_name = {n.name: n for n in cluster.nodes}
    if len(by_name) != len(cluster.nodes):
        raise PodnetPlanError("node names must be unique")
    me = by_name.get(node_name)
    if me is None:
        raise PodnetPlanError(f"node {node_name!r} is not one of the cluster's nodes")
    join_counts = Counter(n.join_address for n in cluster.nodes)
    fabric_counts = Counter(n.fabric_address for n in cluster.nodes)
    if me.join_address not in cluster.join_cidr or me.join_address in (cluster.join_cidr.network_address,
                                                                      cluster.join_cidr.broadcast_address):
        raise PodnetPlanError(f"node {me.name}: join address {me.join_address} is not usable in {cluster.join_cidr}")
    if join_counts[me.join_address] > 1 or fabric_counts[me.fabric_address] > 1:
        raise PodnetPlanError(f"node {me.name}: its join or fabric address is shared with another node")
    peers = []
    for node in sorted(cluster.nodes, key=lambda n: n.name):
        if node is me:
            continue
        if node.join_address not in cluster.join_cidr:
            problems.append(f"node {node.name}: join address {node.join_address} is outside {cluster.join_cidr}")
        elif join_counts[node.join_address] > 1 or fabric_counts[node.fabric_address] > 1:
            problems.append(f"node {node.name}: join or fabric address shared with another node")
        else:
            peers.append(node)
    return me, peers


def _check_pods(pods: list[Pod] | tuple[Pod, ...], subnets: list[Subnet], nodes: dict[str, Node],
                problems: list[str]) -> list[tuple[Pod, Subnet]]:
    ip_counts = Counter(p.ip for p in pods)
    good: list[tuple[Pod, Subnet]] = []
    netns_seen: dict[str, str] = {}
    for pod in sorted(pods, key=lambda p: p.uid):
        subnet = next((s for s in subnets if pod.ip in s.cidr), None)
        if not pod.node:
            continue  # addressed but not yet scheduled (IPAM runs before scheduling): nothing to wire
        if ip_counts[pod.ip] > 1:
            # IPAM hands out each address once; two claims mean a stale or corrupt object, and
            # routing to either could silently deliver one pod's traffic to the other.
            problems.append(f"pod {pod.name}: address {pod.ip} is claimed by more than one pod")
        elif subnet is None:
            problems.append(f"pod {pod.name}: address {pod.ip} is in no usable subnet")
        elif pod.ip in (subnet.cidr.network_address, subnet.cidr.broadcast_address, subnet.gateway):
            problems.append(f"pod {pod.name}: address {pod.ip} is reserved in subnet {subnet.name}")
        elif pod.node not in nodes:
            problems.append(f"pod {pod.name}: node {pod.node!r} is unknown or unusable")
        elif (other := netns_seen.get(uid_token(pod.uid)[:8])) is not None:
            problems.append(f"pod {pod.name}: uid {pod.uid} shares its first 8 digits with pod {other}")
        else:
            netns_seen[uid_token(pod.uid)[:8]] = pod.name
            good.append((pod, subnet))
    return good


def plan_node(cluster: Cluster, node_name: str, pods: list[Pod] | tuple[Pod, ...]) -> NodePlan:
    """The state node `node_name` should have, given every pod of the cluster that has an address."""
    problems: list[str] = []
    me, peers = _check_nodes(cluster, node_name, problems)
    subnets = _check_subnets(cluster, problems)
    usable_nodes = {n.name: n for n in (me, *peers)}
    pod_mtu = cluster.underlay_mtu - VXLAN_OVERHEAD  # pods' packets must fit into the overlay unfragmented
    join = me.join_address

    local: list[LocalPod] = []
    routes: list[Route] = []
    sysctls: list[tuple[str, str]] = [
        ("net/ipv4/ip_forward", "1"),
        # Loose: replies to masqueraded traffic and pod traffic arriving over vxlan0 must not be
        # dropped by a strict reverse-path check on a namespace whose defaults came from the host.
        ("net/ipv4/conf/all/rp_filter", "2"),
        ("net/ipv4/conf/default/rp_filter", "2"),
    ]
    for pod, subnet in _check_pods(pods, subnets, usable_nodes, problems):
        dst = ipaddress.IPv4Network(f"{pod.ip}/32")
        if pod.node == me.name:
            assert isinstance(subnet.cidr, ipaddress.IPv4Network) and isinstance(subnet.gateway, ipaddress.IPv4Address)
            ifname = host_ifname(pod.uid)
            local.append(LocalPod(pod.uid, pod.name, pod_netns_name(cluster.cluster_id, pod.uid), ifname,
                                  ipaddress.IPv4Interface(f"{pod.ip}/{subnet.cidr.prefixlen}"), subnet.gateway,
                                  pod_mtu))
            routes.append(Route(dst, ifname=ifname, src=join))
            sysctls += [
                (f"net/ipv4/conf/{ifname}/proxy_arp", "1"),
                # Without this the kernel delays proxy ARP answers to broadcast requests by up to
                # 0.8 s (proxy_delay), which every pod's first packet would pay.
                (f"net/ipv4/neigh/{ifname}/proxy_delay", "0"),
                # Answer for the gateway on lo even if the host's defaults restrict ARP to the
                # interface's own addresses (new namespaces inherit the host's IPv4 defaults).
                (f"net/ipv4/conf/{ifname}/arp_ignore", "0"),
            ]
        else:
            routes.append(Route(dst, ifname=VXLAN_IFNAME, via=usable_nodes[pod.node].join_address, src=join))

    vtep_peers = tuple(VtepPeer(n.name, n.join_address, vxlan_mac(n.join_address), n.fabric_address) for n in peers)
    # Remote join addresses: replies from pods to another node's join address go back over the overlay.
    routes += [Route(ipaddress.IPv4Network(f"{p.join_address}/32"), ifname=VXLAN_IFNAME, src=join)
               for p in vtep_peers]
    routes += [Route(ipaddress.IPv4Network(s.cidr), unreachable=True) for s in subnets]

    v4 = [ipaddress.IPv4Network(s.cidr) for s in subnets]
    nat = NatPlan(
        sources=tuple(sorted(ipaddress.IPv4Network(s.cidr) for s in subnets if s.nat_outgoing)),
        cluster_ranges=tuple(sorted(ipaddress.collapse_addresses([*v4, cluster.join_cidr]))))
    return NodePlan(
        cluster_id=cluster.cluster_id, node=me,
        vxlan=Vxlan(VXLAN_IFNAME, cluster.vni, VXLAN_PORT, me.fabric_address, UNDERLAY_IFNAME, vxlan_mac(join),
                    pod_mtu, join),
        peers=vtep_peers,
        gateways=tuple(sorted({ipaddress.IPv4Address(s.gateway) for s in subnets})),
        pods=tuple(sorted(local, key=lambda p: p.host_ifname)),
        routes=tuple(sorted(routes, key=lambda r: r.dst)),
        nat=nat, sysctls=tuple(sysctls), problems=tuple(problems))
