"""The "physical" network of an embedded cluster, as plain data.

```
                 fabric namespace (np-<id>-fabric)
             ┌──────────────── br0 ────────────────┐
        vn0  │           vn1  │            vext    │   vhost (optional, --host-access)
  ┌──────────┴─┐   ┌──────────┴─┐   ┌──────────────┴─┐   ┌─────────────────────┐
  │ node ns    │   │ node ns    │   │ external ns    │   │ root namespace      │
  │ eth0 .11   │   │ eth0 .12   │   │ eth0 .254      │   │ np<id>h  .1         │
  └────────────┘   └────────────┘   └────────────────┘   └─────────────────────┘
```

Every node is a network namespace with one interface, `eth0`, on a shared L2
segment (a bridge in the fabric namespace); an "external" namespace stands for
everything outside the cluster. Names carry the cluster id, so leftovers of a
crashed run can be found and removed, and two clusters never collide.
Interface names stay within Linux's 15 characters.
"""

from __future__ import annotations

import hashlib
import ipaddress
from dataclasses import dataclass
from pathlib import Path

NS_PREFIX = "np-"
DEFAULT_NODE_CIDR = "172.31.250.0/24"


class FabricPlanError(ValueError):
    pass


@dataclass(frozen=True)
class HostPlan:
    """One namespace on the fabric: a node or the external host."""

    name: str
    netns: str
    fabric_ifname: str  # its veth end in the fabric namespace
    address: ipaddress.IPv4Interface


@dataclass(frozen=True)
class FabricPlan:
    cluster_id: str
    netns: str
    bridge: str
    nodes: tuple[HostPlan, ...]
    external: HostPlan
    host_ifname: str  # the root namespace's end of the host-access veth
    host_address: ipaddress.IPv4Interface
    subnet: ipaddress.IPv4Network

    @property
    def namespaces(self) -> tuple[str, ...]:
        return (self.netns, *(n.netns for n in self.nodes), self.external.netns)


def cluster_id(data_dir: Path) -> str:
    """Six hex digits derived from the data directory, stable across restarts."""
    return hashlib.sha256(str(data_dir.resolve()).encode()).hexdigest()[:6]


def plan_fabric(cid: str, node_names: list[str], node_cidr: str = DEFAULT_NODE_CIDR) -> FabricPlan:
    try:
        subnet = ipaddress.IPv4Network(node_cidr)
    except ValueError as e:
        raise FabricPlanError(f"node CIDR {node_cidr!r}: {e}") from None
    hosts = list(subnet.hosts())
    # .1 host access, .2 reserved for the control plane, nodes from .11, external at the top.
    if len(hosts) < len(node_names) + 12:
        raise FabricPlanError(f"node CIDR {node_cidr} is too small for {len(node_names)} nodes")
    if len(set(node_names)) != len(node_names):
        raise FabricPlanError("node names must be unique")
    prefix = subnet.prefixlen
    nodes = tuple(
        HostPlan(name, f"{NS_PREFIX}{cid}-n{i}", f"vn{i}", ipaddress.IPv4Interface(f"{hosts[10 + i]}/{prefix}"))
        for i, name in enumerate(node_names))
    external = HostPlan("external", f"{NS_PREFIX}{cid}-ext", "vext",
                        ipaddress.IPv4Interface(f"{hosts[-1]}/{prefix}"))
    return FabricPlan(cluster_id=cid, netns=f"{NS_PREFIX}{cid}-fabric", bridge="br0", nodes=nodes,
                      external=external, host_ifname=f"np{cid}h",
                      host_address=ipaddress.IPv4Interface(f"{hosts[0]}/{prefix}"), subnet=subnet)


def control_plane_address(plan: FabricPlan) -> ipaddress.IPv4Interface:
    """Where cluster components reach the API on the fabric (the fabric namespace's bridge)."""
    hosts = list(plan.subnet.hosts())
    return ipaddress.IPv4Interface(f"{hosts[1]}/{plan.subnet.prefixlen}")
