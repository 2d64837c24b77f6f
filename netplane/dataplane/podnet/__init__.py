"""The pod network of one node namespace: routed /32 pods, a VXLAN overlay between nodes,
natOutgoing in nftables. `plan` computes (pure), `apply` makes the kernel match."""

from netplane.dataplane.podnet.apply import PodnetApplyError, apply, teardown
from netplane.dataplane.podnet.plan import (
    Cluster,
    LocalPod,
    Node,
    NodePlan,
    Pod,
    PodnetPlanError,
    Subnet,
    plan_node,
    pod_netns_name,
)

__all__ = [
    "Cluster", "LocalPod", "Node", "NodePlan", "Pod", "PodnetApplyError", "PodnetPlanError", "Subnet", "apply",
    "plan_node", "pod_netns_name", "teardown",
]
