"""Creating and removing the fabric of `fabric_plan` with netlink (pyroute2).

Nothing here touches the root namespace except the single host-access veth, and
only when asked for; removing a cluster's namespaces removes every link in them.
"""

from __future__ import annotations

import contextlib
import logging

from pyroute2 import IPRoute, NetNS, netns

from netplane.dataplane.fabric_plan import NS_PREFIX, FabricPlan, HostPlan, control_plane_address

log = logging.getLogger(__name__)


def _up(ns: NetNS | IPRoute, ifname: str) -> int:
    index: int = ns.link_lookup(ifname=ifname)[0]
    ns.link("set", index=index, state="up")
    return index


def _attach_host(fabric: NetNS, bridge_index: int, host: HostPlan, gateway: str | None = None,
                 routed: tuple[str, ...] = ()) -> None:
    netns.create(host.netns)
    peer_tmp = f"{host.fabric_ifname}p"
    fabric.link("add", ifname=host.fabric_ifname, kind="veth", peer={"ifname": peer_tmp, "net_ns_fd": host.netns})
    fabric.link("set", index=fabric.link_lookup(ifname=host.fabric_ifname)[0], master=bridge_index)
    _up(fabric, host.fabric_ifname)
    with NetNS(host.netns) as ns:
        index = ns.link_lookup(ifname=peer_tmp)[0]
        ns.link("set", index=index, ifname="eth0")
        ns.addr("add", index=index, address=str(host.address.ip), prefixlen=host.address.network.prefixlen)
        _up(ns, "eth0")
        _up(ns, "lo")
        for cidr in routed:
            ns.route("add", dst=cidr, gateway=gateway)


def build_fabric(plan: FabricPlan, host_access: bool = False, routed: tuple[str, ...] = ()) -> None:
    """Create the fabric, nodes and external host; leftovers of the same cluster are removed first.

    `routed`: ranges the nodes send to the external host as their router. The service range must be
    among them: a node's own connection to a cluster IP is routed before the proxy's DNAT rewrites
    it, so without a route it fails at once. Not a default route: processes in a node namespace that
    consult the host's resolvers would then wait for answers that never come, instead of failing fast."""
    remove_fabric(plan.cluster_id)
    netns.create(plan.netns)
    with NetNS(plan.netns) as fabric:
        _up(fabric, "lo")
        fabric.link("add", ifname=plan.bridge, kind="bridge")
        bridge = _up(fabric, plan.bridge)
        cp = control_plane_address(plan)
        fabric.addr("add", index=bridge, address=str(cp.ip), prefixlen=cp.network.prefixlen)
        router = str(plan.external.address.ip)
        for node in plan.nodes:
            _attach_host(fabric, bridge, node, gateway=router, routed=routed)
        _attach_host(fabric, bridge, plan.external)
        if host_access:
            _attach_root(plan, fabric, bridge)


def _attach_root(plan: FabricPlan, fabric: NetNS, bridge_index: int) -> None:
    with IPRoute() as root:
        root.link("add", ifname=plan.host_ifname, kind="veth", peer={"ifname": "vhost", "net_ns_fd": plan.netns})
        index = root.link_lookup(ifname=plan.host_ifname)[0]
        root.addr("add", index=index, address=str(plan.host_address.ip), prefixlen=plan.host_address.network.prefixlen)
        root.link("set", index=index, state="up")
    fabric.link("set", index=fabric.link_lookup(ifname="vhost")[0], master=bridge_index)
    _up(fabric, "vhost")


def cluster_namespaces(cid: str | None = None) -> list[str]:
    """Network namespaces of one cluster (or of every netplane cluster when ``cid`` is None)."""
    wanted = f"{NS_PREFIX}{cid}-" if cid else NS_PREFIX
    return sorted(n for n in netns.listnetns() if n.startswith(wanted))


def remove_fabric(cid: str) -> list[str]:
    """Remove a cluster's namespaces and host-access link; returns what was removed."""
    removed = []
    for name in cluster_namespaces(cid):
        with contextlib.suppress(OSError):
            netns.remove(name)
            removed.append(name)
    with IPRoute() as root:
        for index in root.link_lookup(ifname=f"np{cid}h"):
            root.link("del", index=index)
            removed.append(f"np{cid}h")
    return removed
