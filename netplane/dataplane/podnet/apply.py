"""Make a node namespace match a `NodePlan` (netlink via pyroute2, nftables via `nft -f -`).

Level-triggered and idempotent: every sync reads what is there, changes only
what differs and reports each change, so applying the same plan twice reports
nothing and touches nothing (no link is recreated, no route replaced, the nft
table not rewritten). Nothing is remembered between syncs: a new agent process
computes the same plan and finds the kernel already matching.

What is "ours" in a node namespace, and therefore removed when not planned:
links named `pv*` (pod veths; their `ifalias` records the pod namespace, so the
namespace goes too), `vxlan0` with its neighbour and FDB entries, IPv4 addresses
on `vxlan0`, addresses labelled `lo:npgw`, routes with protocol `ROUTE_PROTO`, and
the table `inet netplane-podnet`. Everything else is left alone.

Known gap: if an agent dies between creating a pod namespace and its veth, and the
pod is deleted before the next sync, nothing records which node made that empty
namespace; it stays until the cluster's namespaces are removed (`remove_fabric`).
"""

from __future__ import annotations

import contextlib
import ipaddress
import logging
from collections.abc import Collection
from socket import AF_INET
from typing import Any

from pyroute2 import IPRoute, netns
from pyroute2.netlink.exceptions import NetlinkError

from netplane.dataplane.podnet import nft as nftables
from netplane.dataplane.podnet.nsexec import ensure_sysctls, netns_exists
from netplane.dataplane.podnet.nsexec import nft as run_nft
from netplane.dataplane.podnet.plan import (
    GATEWAY_LABEL,
    HOST_IF_PREFIX,
    NFT_TABLE,
    POD_IFNAME,
    ROUTE_PROTO,
    VXLAN_IFNAME,
    LocalPod,
    NodePlan,
    Route,
    VtepPeer,
    Vxlan,
    pod_netns_prefix,
)

log = logging.getLogger(__name__)

IFF_UP = 0x1
RT_TABLE_MAIN = 254
RT_SCOPE_UNIVERSE, RT_SCOPE_LINK = 0, 253
RTN_UNICAST, RTN_UNREACHABLE = 1, 7
RTNH_F_ONLINK = 0x4
NUD_PERMANENT = 0x80

Msg = Any  # pyroute2's netlink messages are untyped


class PodnetApplyError(RuntimeError):
    def __init__(self, message: str, changes: list[str] | None = None) -> None:
        super().__init__(message)
        self.changes = changes or []  # what the failed sync did change before giving up


def _open(name: str) -> IPRoute:
    # flags=0: never create a namespace by accident (pyroute2's default is O_CREAT).
    if not netns_exists(name):
        raise PodnetApplyError(f"network namespace {name} does not exist")
    return IPRoute(netns=name, flags=0)


def _link(ipr: IPRoute, ifname: str) -> Msg | None:
    found = ipr.link_lookup(ifname=ifname)
    return ipr.get_links(found[0])[0] if found else None


def _kind(link: Msg) -> str | None:
    kind: str | None = link.get(("IFLA_LINKINFO", "IFLA_INFO_KIND"))
    return kind


def _ensure_link_state(ipr: IPRoute, link: Msg, what: str, *, mtu: int | None = None, mac: str | None = None,
                       alias: str | None = None) -> list[str]:
    """Set mtu/address/alias/up on an existing link where they differ."""
    changes: list[str] = []
    wanted: dict[str, object] = {}
    if mtu is not None and link.get("mtu") != mtu:
        wanted["mtu"] = mtu
    if mac is not None and link.get("address") != mac:
        wanted["address"] = mac
    if alias is not None and link.get("ifalias") != alias:
        wanted["ifalias"] = alias
    if wanted:
        ipr.link("set", index=link["index"], **wanted)
        changes.append(f"{what}: set {', '.join(sorted(wanted))}")
    if not link["flags"] & IFF_UP:
        ipr.link("set", index=link["index"], state="up")
        changes.append(f"{what}: up")
    return changes


def _ensure_addresses(ipr: IPRoute, index: int, what: str, wanted: set[ipaddress.IPv4Interface],
                      label: str | None = None) -> list[str]:
    """Exactly `wanted` among the IPv4 addresses of `index` (only those with `label`, when given)."""
    changes = []
    have = set()
    for msg in ipr.get_addr(family=AF_INET, index=index):
        if label is not None and msg.get("label") != label:
            continue
        iface = ipaddress.IPv4Interface(f"{msg.get('address')}/{msg['prefixlen']}")
        if iface in wanted:
            have.add(iface)
        else:
            ipr.addr("del", index=index, address=str(iface.ip), prefixlen=iface.network.prefixlen)
            changes.append(f"{what}: removed address {iface}")
    for iface in sorted(wanted - have):
        extra = {"label": label} if label is not None else {}
        ipr.addr("add", index=index, address=str(iface.ip), prefixlen=iface.network.prefixlen, **extra)
        changes.append(f"{what}: added address {iface}")
    return changes


# ---------------------------------------------------------------- overlay


def _vxlan_matches(link: Msg, vx: Vxlan, underlay_index: int) -> bool:
    if _kind(link) != "vxlan":
        return False
    data = link.get(("IFLA_LINKINFO", "IFLA_INFO_DATA"))
    return bool(data) and (
        data.get("IFLA_VXLAN_ID") == vx.vni and data.get("IFLA_VXLAN_PORT") == vx.port
        and data.get("IFLA_VXLAN_LOCAL") == str(vx.local) and data.get("IFLA_VXLAN_LEARNING") == 0
        and data.get("IFLA_VXLAN_LINK") == underlay_index)


def _ensure_vxlan(ipr: IPRoute, vx: Vxlan) -> tuple[int, list[str]]:
    changes = []
    underlay = ipr.link_lookup(ifname=vx.underlay)
    if not underlay:
        raise PodnetApplyError(f"underlay interface {vx.underlay} is missing")
    link = _link(ipr, vx.ifname)
    if link is not None and not _vxlan_matches(link, vx, underlay[0]):
        # VNI, port, local address and learning cannot be changed on a live VXLAN device.
        ipr.link("del", index=link["index"])
        changes.append(f"{vx.ifname}: removed (parameters changed)")
        link = None
    if link is None:
        ipr.link("add", ifname=vx.ifname, kind="vxlan", vxlan_id=vx.vni, vxlan_port=vx.port,
                 vxlan_local=str(vx.local), vxlan_link=underlay[0], vxlan_learning=0, address=vx.mac, mtu=vx.mtu)
        changes.append(f"{vx.ifname}: created (VNI {vx.vni}, local {vx.local})")
        link = _link(ipr, vx.ifname)
        assert link is not None
    changes += _ensure_link_state(ipr, link, vx.ifname, mtu=vx.mtu, mac=vx.mac)
    changes += _ensure_addresses(ipr, link["index"], vx.ifname, {ipaddress.IPv4Interface(f"{vx.address}/32")})
    return link["index"], changes


def _ensure_peers(ipr: IPRoute, vx_index: int, peers: tuple[VtepPeer, ...]) -> list[str]:
    changes = []
    # FDB: the remote vxlan0 MAC is behind the remote node's fabric address.
    wanted_fdb = {p.mac: str(p.fabric_address) for p in peers}
    have_fdb: dict[str, str | None] = {}
    for msg in ipr.fdb("dump", ifindex=vx_index):
        if msg["ifindex"] != vx_index:
            continue
        mac, dst = msg.get("NDA_LLADDR"), msg.get("NDA_DST")
        if wanted_fdb.get(mac) == dst and mac not in have_fdb:
            have_fdb[mac] = dst
        else:
            ipr.fdb("del", ifindex=vx_index, lladdr=mac, **({"dst": dst} if dst else {}))
            changes.append(f"{VXLAN_IFNAME}: removed fdb {mac} -> {dst}")
    for mac, dst in sorted(wanted_fdb.items()):
        if mac not in have_fdb:
            ipr.fdb("add", ifindex=vx_index, lladdr=mac, dst=dst)
            changes.append(f"{VXLAN_IFNAME}: added fdb {mac} -> {dst}")
    # Neighbours: the remote join address resolves to the remote vxlan0 MAC, permanently (no ARP
    # over the overlay). Kernel cache entries for other addresses are not ours and are left alone.
    wanted_neigh = {str(p.join_address): p.mac for p in peers}
    ok = set()
    for msg in ipr.get_neighbours(family=AF_INET, ifindex=vx_index):
        dst, mac, permanent = msg.get("NDA_DST"), msg.get("NDA_LLADDR"), bool(msg["state"] & NUD_PERMANENT)
        if dst in wanted_neigh and wanted_neigh[dst] == mac and permanent:
            ok.add(dst)
        elif dst in wanted_neigh or permanent:
            ipr.neigh("del", ifindex=vx_index, dst=dst)
            changes.append(f"{VXLAN_IFNAME}: removed neighbour {dst}")
    for dst, mac in sorted(wanted_neigh.items()):
        if dst not in ok:
            ipr.neigh("add", ifindex=vx_index, dst=dst, lladdr=mac, state=NUD_PERMANENT)
            changes.append(f"{VXLAN_IFNAME}: added neighbour {dst} -> {mac}")
    return changes


# ---------------------------------------------------------------- pods


def _ensure_pod(ipr: IPRoute, pod: LocalPod) -> list[str]:
    changes = []
    what = f"pod {pod.name}"
    if not netns_exists(pod.netns):
        netns.create(pod.netns)
        changes.append(f"{what}: created namespace {pod.netns}")
    host = _link(ipr, pod.host_ifname)
    with _open(pod.netns) as pns:
        inner = _link(pns, POD_IFNAME)
        paired = (host is not None and inner is not None and _kind(host) == "veth"
                  and host.get("link") == inner["index"] and inner.get("link") == host["index"])
        if host is not None and not paired:
            ipr.link("del", index=host["index"])
            changes.append(f"{what}: removed unpaired {pod.host_ifname}")
            host = None
        if inner is not None and not paired and pns.link_lookup(ifname=POD_IFNAME):
            pns.link("del", index=inner["index"])
            changes.append(f"{what}: removed unpaired {POD_IFNAME} in the pod")
        if host is None:
            # The peer is created directly inside the pod namespace, already named eth0.
            ipr.link("add", ifname=pod.host_ifname, kind="veth", mtu=pod.mtu,
                     peer={"ifname": POD_IFNAME, "net_ns_fd": pod.netns, "mtu": pod.mtu})
            changes.append(f"{what}: created veth {pod.host_ifname} <-> {POD_IFNAME}")
            host = _link(ipr, pod.host_ifname)
            inner = _link(pns, POD_IFNAME)
        assert host is not None and inner is not None
        # The alias names the pod namespace, so a later sync can remove both without the plan.
        changes += _ensure_link_state(ipr, host, pod.host_ifname, mtu=pod.mtu, alias=pod.netns)
        lo = _link(pns, "lo")
        assert lo is not None
        changes += _ensure_link_state(pns, lo, f"{what} lo")
        changes += _ensure_link_state(pns, inner, f"{what} {POD_IFNAME}", mtu=pod.mtu)
        changes += _ensure_addresses(pns, inner["index"], f"{what} {POD_IFNAME}", {pod.address})
        changes += _ensure_default_route(pns, inner["index"], pod, what)
    return changes


def _ensure_default_route(pns: IPRoute, index: int, pod: LocalPod, what: str) -> list[str]:
    defaults = [r for r in pns.get_routes(family=AF_INET, table=RT_TABLE_MAIN) if r["dst_len"] == 0]
    if (len(defaults) == 1 and defaults[0].get("gateway") == str(pod.gateway)
            and defaults[0].get("oif") == index):
        return []
    for r in defaults:
        pns.route("del", dst="0.0.0.0/0", table=RT_TABLE_MAIN, **({"oif": r.get("oif")} if r.get("oif") else {}))
    pns.route("add", dst="0.0.0.0/0", gateway=str(pod.gateway), oif=index, table=RT_TABLE_MAIN)
    return [f"{what}: default route via {pod.gateway}"]


def _remove_pod_links(ipr: IPRoute, cluster_id: str, keep: set[str]) -> list[str]:
    """Remove pod veths not in `keep`, and the pod namespaces their aliases name."""
    changes = []
    for link in ipr.get_links():
        ifname = link.get("ifname") or ""
        if not ifname.startswith(HOST_IF_PREFIX) or _kind(link) != "veth" or ifname in keep:
            continue
        alias = link.get("ifalias") or ""
        with contextlib.suppress(NetlinkError):  # gone already (its namespace was removed)
            ipr.link("del", index=link["index"])
            changes.append(f"removed veth {ifname}")
        if alias.startswith(pod_netns_prefix(cluster_id)) and netns_exists(alias):
            netns.remove(alias)
            changes.append(f"removed namespace {alias}")
    return changes


# ---------------------------------------------------------------- routes


def _route_matches(msg: Msg, route: Route, index: int | None) -> bool:
    if route.unreachable:
        return bool(msg["type"] == RTN_UNREACHABLE)
    onlink = bool(msg["flags"] & RTNH_F_ONLINK)
    return bool(
        msg["type"] == RTN_UNICAST and msg.get("oif") == index
        and msg.get("gateway") == (str(route.via) if route.via else None)
        and onlink == (route.via is not None)
        and msg["scope"] == (RT_SCOPE_UNIVERSE if route.via else RT_SCOPE_LINK)
        and msg.get("prefsrc") == (str(route.src) if route.src else None))


def _ensure_routes(ipr: IPRoute, routes: tuple[Route, ...], skip: set[str] | None = None) -> list[str]:
    """Exactly `routes` among our routes; routes via an interface in `skip` are left as they are."""
    changes = []
    skip = skip or set()
    untouchable = {r.dst for r in routes if r.ifname in skip}
    wanted = {r.dst: r for r in routes if r.dst not in untouchable}
    index = {name: ipr.link_lookup(ifname=name) for name in {r.ifname for r in routes if r.ifname}}
    seen = set()
    for msg in ipr.get_routes(family=AF_INET, table=RT_TABLE_MAIN, proto=ROUTE_PROTO):
        if msg["proto"] != ROUTE_PROTO or msg.get("table") != RT_TABLE_MAIN:
            continue
        dst = ipaddress.IPv4Network(f"{msg.get('dst') or '0.0.0.0'}/{msg['dst_len']}")
        if dst in untouchable:
            continue
        route = wanted.get(dst)
        if route is not None and dst not in seen:
            oif = index[route.ifname][0] if route.ifname and index[route.ifname] else None
            if _route_matches(msg, route, oif):
                seen.add(dst)
                continue
        ipr.route("del", dst=str(dst), table=RT_TABLE_MAIN, proto=ROUTE_PROTO, type=msg["type"],
                  **({"oif": msg.get("oif")} if msg.get("oif") else {}))
        changes.append(f"removed route {dst}")
    for dst, route in sorted(wanted.items()):
        if dst in seen:
            continue
        spec: dict[str, Any] = {"dst": str(dst), "table": RT_TABLE_MAIN, "proto": ROUTE_PROTO}
        if route.unreachable:
            spec["type"] = "unreachable"
        else:
            assert route.ifname is not None
            if not index[route.ifname]:
                raise PodnetApplyError(f"route {dst}: interface {route.ifname} is missing")
            spec["oif"] = index[route.ifname][0]
            if route.src:
                spec["prefsrc"] = str(route.src)
            if route.via:
                spec.update(gateway=str(route.via), flags=RTNH_F_ONLINK)
            else:
                spec["scope"] = RT_SCOPE_LINK
        ipr.route("replace", **spec)
        changes.append(f"route {dst}" + (" unreachable" if route.unreachable else f" dev {route.ifname}")
                       + (f" via {route.via}" if route.via else ""))
    return changes


# ---------------------------------------------------------------- nftables


def _ensure_nft(plan: NodePlan) -> list[str]:
    listed = run_nft(plan.node.netns, None, "list", "table", "inet", NFT_TABLE)
    if listed.returncode == 0 and nftables.normalize(listed.stdout) == nftables.normalize(
            nftables.render_table(plan.nat)):
        return []
    done = run_nft(plan.node.netns, nftables.transaction(plan.nat))
    if done.returncode != 0:
        raise PodnetApplyError(f"nft in {plan.node.netns}: {done.stderr.strip()}")
    return [f"nftables table inet {NFT_TABLE} written"]


# ---------------------------------------------------------------- entry points


def apply(plan: NodePlan, checked: Collection[LocalPod] = ()) -> list[str]:
    """Make the node namespace match `plan`; returns what was changed (empty: nothing was).

    `checked`: pods of the plan that the caller's previous apply wired exactly so. Their namespaces
    are not opened again (the costly part of a sync: a netlink socket in each pod namespace); only
    their node side (veth kept, sysctls, routes) is looked at. An empty `checked` verifies everything,
    which is what repairs drift inside pods."""
    changes: list[str] = []
    with _open(plan.node.netns) as ipr:
        lo = _link(ipr, "lo")
        assert lo is not None
        changes += _ensure_link_state(ipr, lo, "lo")
        vx_index, vx_changes = _ensure_vxlan(ipr, plan.vxlan)
        changes += vx_changes
        changes += _ensure_addresses(ipr, lo["index"], "lo",
                                     {ipaddress.IPv4Interface(f"{gw}/32") for gw in plan.gateways}, GATEWAY_LABEL)
        changes += _ensure_peers(ipr, vx_index, plan.peers)
        # Stale pods first: a new pod may reuse an address a deleted one had.
        changes += _remove_pod_links(ipr, plan.cluster_id, {p.host_ifname for p in plan.pods})
        failed: dict[str, str] = {}  # host ifname -> error
        for pod in plan.pods:
            if pod in checked:
                continue
            # One pod that cannot be wired (a name clash, a vanished namespace) must not keep the
            # others, or the routes and NAT of the whole node, from being synced.
            try:
                changes += _ensure_pod(ipr, pod)
            except (OSError, NetlinkError, PodnetApplyError) as e:
                failed[pod.host_ifname] = f"pod {pod.name}: {e}"
        # After the veths exist: per-interface keys (net/ipv4/{conf,neigh}/<ifname>/...) only
        # appear with their interface, so those of failed pods are left out.
        changes += [f"sysctl {key}" for key in ensure_sysctls(
            plan.node.netns, [(k, v) for k, v in plan.sysctls if k.split("/")[-2] not in failed])]
        changes += _ensure_routes(ipr, plan.routes, skip=set(failed))
    changes += _ensure_nft(plan)
    for change in changes:
        log.info("podnet %s: %s", plan.node.name, change)
    if failed:
        raise PodnetApplyError("; ".join(failed.values()), changes)
    return changes


def teardown(cluster_id: str, node_netns: str) -> list[str]:
    """Remove everything the pod network put into a node namespace (its pods' namespaces too)."""
    if not netns_exists(node_netns):
        return []
    changes: list[str] = []
    with _open(node_netns) as ipr:
        changes += _remove_pod_links(ipr, cluster_id, keep=set())
        vx = _link(ipr, VXLAN_IFNAME)
        if vx is not None:
            ipr.link("del", index=vx["index"])  # takes its address, neighbours, FDB and routes along
            changes.append(f"removed {VXLAN_IFNAME}")
        lo = _link(ipr, "lo")
        if lo is not None:
            changes += _ensure_addresses(ipr, lo["index"], "lo", set(), GATEWAY_LABEL)
        changes += _ensure_routes(ipr, ())
    listed = run_nft(node_netns, None, "list", "table", "inet", NFT_TABLE)
    if listed.returncode == 0:
        done = run_nft(node_netns, nftables.delete_script())
        if done.returncode != 0:
            raise PodnetApplyError(f"nft in {node_netns}: {done.stderr.strip()}")
        changes.append(f"nftables table inet {NFT_TABLE} removed")
    return changes
