"""Kube-OVN's pod-facing conventions, as pure functions: annotations, MACs, StatefulSet rules.

Annotations the controller reads (set by users):
  ovn.kubernetes.io/ip_address      a fixed address (`v4`, `v6` or `v4,v6`)
  ovn.kubernetes.io/mac_address     a fixed MAC
  ovn.kubernetes.io/ip_pool         an IPPool name, or a list of addresses to pick from
  ovn.kubernetes.io/logical_switch  the subnet to take the address from

and writes once the pod has its address (the set Kube-OVN's controller writes for an overlay pod):
  allocated: "true", ip_address, mac_address, cidr, gateway, logical_switch, logical_router
  (the subnet's VPC) and pod_nic_type (veth-pair).
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import Any

Obj = dict[str, Any]

PREFIX = "ovn.kubernetes.io/"
ALLOCATED = PREFIX + "allocated"
IP_ADDRESS = PREFIX + "ip_address"
MAC_ADDRESS = PREFIX + "mac_address"
CIDR = PREFIX + "cidr"
GATEWAY = PREFIX + "gateway"
LOGICAL_SWITCH = PREFIX + "logical_switch"
LOGICAL_ROUTER = PREFIX + "logical_router"
POD_NIC_TYPE = PREFIX + "pod_nic_type"
IP_POOL = PREFIX + "ip_pool"
VETH_PAIR = "veth-pair"

# Labels Kube-OVN puts on IP objects (plus one labelled with the subnet's name, value "").
SUBNET_LABEL = PREFIX + "subnet"
NODE_LABEL = PREFIX + "node-name"
RESERVED_LABEL = PREFIX + "ip_reserved"
STATEFULSET = "StatefulSet"


def annotations_of(obj: Obj) -> Mapping[str, str]:
    return (obj.get("metadata") or {}).get("annotations") or {}


def alive(pod: Obj) -> bool:
    """Kube-OVN releases the addresses of pods that are being deleted or have finished."""
    if (pod.get("metadata") or {}).get("deletionTimestamp"):
        return False
    return (pod.get("status") or {}).get("phase") not in ("Succeeded", "Failed")


def host_network(pod: Obj) -> bool:
    return bool((pod.get("spec") or {}).get("hostNetwork"))


def stable_mac(key: str) -> str:
    """A MAC derived from the IP object's name: the same pod name gets the same MAC after a restart or a
    StatefulSet re-creation, without storing anything. Locally administered, unicast (x2:…)."""
    digest = bytearray(hashlib.sha256(key.encode()).digest()[:6])
    digest[0] = (digest[0] & 0xFC) | 0x02
    return ":".join(f"{b:02x}" for b in digest)


def statefulset_of(pod: Obj) -> tuple[str, int] | None:
    """(StatefulSet name, ordinal) when the pod belongs to a StatefulSet."""
    meta = pod.get("metadata") or {}
    for ref in meta.get("ownerReferences") or []:
        if ref.get("kind") == STATEFULSET and ref.get("apiVersion", "").startswith("apps/"):
            return _ordinal(str(meta.get("name") or ""), str(ref.get("name") or ""))
    return None


def statefulset_of_name(pod_name: str, sts_name: str) -> tuple[str, int] | None:
    return _ordinal(pod_name, sts_name)


def _ordinal(pod_name: str, sts_name: str) -> tuple[str, int] | None:
    base, _, ordinal = pod_name.rpartition("-")
    if not ordinal.isdigit() or (sts_name and base != sts_name):
        return None
    return base, int(ordinal)


def statefulset_keeps(sts: Obj | None, ordinal: int) -> bool:
    """Whether a StatefulSet will re-create the pod of this ordinal, so its address must be kept
    (Kube-OVN keeps it unless the StatefulSet is gone, being deleted, or scaled below the ordinal)."""
    if sts is None or (sts.get("metadata") or {}).get("deletionTimestamp"):
        return False
    spec = sts.get("spec") or {}
    replicas = spec.get("replicas")
    replicas = 1 if replicas is None else int(replicas)
    start = int((spec.get("ordinals") or {}).get("start") or 0)
    return start <= ordinal < start + replicas


def pool_entries(value: str) -> list[str]:
    """The addresses of an `ip_pool` annotation that lists addresses: `a,b,c`, or `v4,v6;v4,v6` for
    dual stack (each entry is then one pod's pair)."""
    separator = ";" if ";" in value else ","
    return [e.strip() for e in value.split(separator) if e.strip()]


def selector_matches(selector: Obj, labels: Mapping[str, str]) -> bool:
    """metav1.LabelSelector semantics; an empty selector matches everything, as in Kubernetes."""
    for key, value in (selector.get("matchLabels") or {}).items():
        if labels.get(key) != str(value):
            return False
    for expr in selector.get("matchExpressions") or []:
        key, op, values = expr.get("key"), expr.get("operator"), [str(v) for v in expr.get("values") or []]
        present = key in labels
        if op == "In" and not (present and labels[key] in values):
            return False
        if op == "NotIn" and present and labels[key] in values:
            return False
        if op == "Exists" and not present:
            return False
        if op == "DoesNotExist" and present:
            return False
    return True
