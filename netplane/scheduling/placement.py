"""Choosing a node for a pod: kube-scheduler's filters, a spreading score, and its failure message.

Filters run in kube-scheduler's default order and the first one a node fails is that node's
reason: NodeUnschedulable (cordoned), TaintToleration (NoSchedule/NoExecute), NodeAffinity
(nodeSelector and required node affinity). A node that is not Ready counts as tainted
`node.kubernetes.io/not-ready:NoSchedule`, which is the taint Kubernetes' node lifecycle
controller would put on it; so a pod that tolerates that taint (a DaemonSet's, say) may still land there.

Among feasible nodes the pod goes where the fewest pods of the same owner run (spreading a
ReplicaSet's pods), then where the fewest pods run at all, then where the fewest of its
untolerated PreferNoSchedule taints are; node name breaks the remaining ties, so the choice is
deterministic.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from netplane.scheduling.matching import (
    NO_SCHEDULE,
    PREFER_NO_SCHEDULE,
    first_untolerated,
    node_selector_matches,
    taint_text,
)

Obj = dict[str, Any]

NOT_READY_TAINT = "node.kubernetes.io/not-ready"
UNSCHEDULABLE_TAINT = "node.kubernetes.io/unschedulable"

UNSCHEDULABLE = "node(s) were unschedulable"
AFFINITY_MISMATCH = "node(s) didn't match Pod's node affinity/selector"
NO_NODES = "no nodes available to schedule pods"


@dataclass(frozen=True)
class Load:
    """What already runs on a node: all pods, and the pods with the same controller as the one placed."""

    pods: int = 0
    siblings: int = 0


@dataclass(frozen=True)
class Placement:
    """The chosen node, or None and kube-scheduler's explanation of why no node fits."""

    node: str | None
    message: str = ""


def node_name(node: Obj) -> str:
    return str((node.get("metadata") or {}).get("name") or "")


def node_ready(node: Obj) -> bool:
    for condition in (node.get("status") or {}).get("conditions") or []:
        if condition.get("type") == "Ready":
            return condition.get("status") == "True"
    return False


def effective_taints(node: Obj) -> list[Obj]:
    taints = list((node.get("spec") or {}).get("taints") or [])
    if not node_ready(node) and not any(t.get("key") == NOT_READY_TAINT for t in taints):
        taints.append({"key": NOT_READY_TAINT, "effect": NO_SCHEDULE})
    return taints


def unfit_reason(pod_spec: Obj, node: Obj) -> str | None:
    """Why the pod cannot run on the node (kube-scheduler's wording), or None when it can."""
    tolerations = list(pod_spec.get("tolerations") or [])
    if (node.get("spec") or {}).get("unschedulable") and first_untolerated(
            [{"key": UNSCHEDULABLE_TAINT, "effect": NO_SCHEDULE}], tolerations) is not None:
        return UNSCHEDULABLE
    taint = first_untolerated(effective_taints(node), tolerations)
    if taint is not None:
        return f"node(s) had untolerated taint {taint_text(taint)}"
    if not node_selector_matches(pod_spec, node):
        return AFFINITY_MISMATCH
    return None


def fit_error(total: int, reasons: Iterable[str]) -> str:
    """kube-scheduler's FitError text: reasons counted, as `<count> <reason>` strings sorted."""
    if total == 0:
        return NO_NODES
    counts = Counter(reasons)
    summary = ", ".join(sorted(f"{n} {reason}" for reason, n in counts.items()))
    # Nothing can be preempted here (no priorities), which kube-scheduler's PostFilter also reports.
    return (f"0/{total} nodes are available: {summary}. "
            f"preemption: 0/{total} nodes are available: {total} Preemption is not helpful for scheduling.")


def _preferred_misses(pod_spec: Obj, node: Obj) -> int:
    tolerations = list(pod_spec.get("tolerations") or [])
    taints = [t for t in effective_taints(node) if t.get("effect") == PREFER_NO_SCHEDULE]
    return sum(1 for t in taints if first_untolerated([t], tolerations, (PREFER_NO_SCHEDULE,)) is not None)


def place(pod_spec: Obj, nodes: Iterable[Obj], loads: Mapping[str, Load]) -> Placement:
    nodes = list(nodes)
    feasible: list[Obj] = []
    reasons: list[str] = []
    for node in nodes:
        reason = unfit_reason(pod_spec, node)
        if reason is None:
            feasible.append(node)
        else:
            reasons.append(reason)
    if not feasible:
        return Placement(None, fit_error(len(nodes), reasons))

    def score(node: Obj) -> tuple[int, int, int, str]:
        load = loads.get(node_name(node), Load())
        return load.siblings, load.pods, _preferred_misses(pod_spec, node), node_name(node)

    return Placement(node_name(min(feasible, key=score)))
