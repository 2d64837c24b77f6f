"""Which nodes a DaemonSet's pods belong on, and what to create or delete: pure.

A node should run the daemon pod when the pod's nodeSelector and required node affinity accept it
and every NoSchedule/NoExecute taint on it is tolerated, counting the tolerations Kubernetes adds to
every daemon pod (not-ready, unreachable, the pressure conditions, unschedulable: daemons run on
cordoned nodes too). A pod already there stays while only NoSchedule taints are untolerated (an
unreachable node's, say): NoSchedule keeps new pods away, it does not evict. Each pod is pinned to
its node by replacing the required node affinity with `matchFields metadata.name In [<node>]`, and
the scheduler binds it there.
"""

from __future__ import annotations

import copy
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from typing import Any

from netplane.controllers.workloads.pods import meta, ready, terminating
from netplane.scheduling.matching import NO_EXECUTE, first_untolerated, node_selector_matches

Obj = dict[str, Any]

DAEMON_TOLERATIONS: tuple[Obj, ...] = (
    {"key": "node.kubernetes.io/not-ready", "operator": "Exists", "effect": "NoExecute"},
    {"key": "node.kubernetes.io/unreachable", "operator": "Exists", "effect": "NoExecute"},
    {"key": "node.kubernetes.io/disk-pressure", "operator": "Exists", "effect": "NoSchedule"},
    {"key": "node.kubernetes.io/memory-pressure", "operator": "Exists", "effect": "NoSchedule"},
    {"key": "node.kubernetes.io/pid-pressure", "operator": "Exists", "effect": "NoSchedule"},
    {"key": "node.kubernetes.io/unschedulable", "operator": "Exists", "effect": "NoSchedule"},
)
HOST_NETWORK_TOLERATION: Obj = {"key": "node.kubernetes.io/network-unavailable", "operator": "Exists",
                                "effect": "NoSchedule"}


def daemon_pod_spec(template_spec: Obj) -> Obj:
    """The template's pod spec with the daemon tolerations added (those it lacks)."""
    spec = copy.deepcopy(template_spec)
    tolerations = list(spec.get("tolerations") or [])
    extra = [*DAEMON_TOLERATIONS, *([HOST_NETWORK_TOLERATION] if spec.get("hostNetwork") else [])]
    for toleration in extra:
        if toleration not in tolerations:
            tolerations.append(dict(toleration))
    spec["tolerations"] = tolerations
    return spec


def pinned(spec: Obj, node: str) -> Obj:
    out = copy.deepcopy(spec)
    affinity = out.setdefault("affinity", {}).setdefault("nodeAffinity", {})
    affinity["requiredDuringSchedulingIgnoredDuringExecution"] = {"nodeSelectorTerms": [
        {"matchFields": [{"key": "metadata.name", "operator": "In", "values": [node]}]}]}
    return out


def should_run(spec: Obj, node: Obj) -> bool:
    taints = (node.get("spec") or {}).get("taints") or []
    return node_selector_matches(spec, node) and first_untolerated(taints, spec.get("tolerations") or []) is None


def may_stay(spec: Obj, node: Obj) -> bool:
    """A daemon pod already on the node keeps running there (though a new one would not be created)."""
    taints = (node.get("spec") or {}).get("taints") or []
    return node_selector_matches(spec, node) and first_untolerated(
        taints, spec.get("tolerations") or [], (NO_EXECUTE,)) is None


def node_of(pod: Obj) -> str:
    """The node a daemon pod is on, or pinned to while not yet bound."""
    spec = pod.get("spec") or {}
    if spec.get("nodeName"):
        return str(spec["nodeName"])
    required = (((spec.get("affinity") or {}).get("nodeAffinity") or {})
                .get("requiredDuringSchedulingIgnoredDuringExecution") or {})
    for term in required.get("nodeSelectorTerms") or []:
        for req in term.get("matchFields") or []:
            if req.get("key") == "metadata.name" and req.get("operator") == "In" and len(req.get("values") or []) == 1:
                return str(req["values"][0])
    return ""


@dataclass(frozen=True)
class Plan:
    create: tuple[str, ...] = ()              # node names
    delete: tuple[Obj, ...] = ()              # pods
    status: Obj = field(default_factory=dict)


def _phase(pod: Obj) -> str:
    return str((pod.get("status") or {}).get("phase") or "")


def plan(eligible: list[str], pods: list[Obj], revision_of: Mapping[str, str], revision: str,
         max_unavailable: int | None, staying: Collection[str] = ()) -> Plan:
    """What to change for one DaemonSet. `revision_of` maps a pod name to its template revision;
    `max_unavailable` is None for the OnDelete strategy (outdated pods stay until deleted by hand);
    pods on `staying` nodes (not eligible, but `may_stay`) are misscheduled yet left alone."""
    by_node: dict[str, list[Obj]] = {}
    for pod in pods:
        if not terminating(pod):
            by_node.setdefault(node_of(pod), []).append(pod)
    wanted = set(eligible)
    create: list[str] = []
    delete: list[Obj] = []
    kept: dict[str, Obj] = {}
    for node in eligible:
        here = sorted(by_node.get(node, []), key=lambda p: (str(meta(p).get("creationTimestamp") or ""),
                                                          meta(p).get("name", "")))
        failed = [p for p in here if _phase(p) == "Failed"]
        alive = [p for p in here if _phase(p) not in ("Failed", "Succeeded")]
        delete.extend(failed)
        if not alive:
            create.append(node)
            continue
        kept[node] = alive[0]
        delete.extend(alive[1:])  # one per node: the oldest stays
    misscheduled = [n for n, ps in by_node.items() if n not in wanted and ps]
    for node in misscheduled:
        if node not in staying:
            delete.extend(by_node[node])
    if max_unavailable is not None:
        outdated = [n for n, p in kept.items() if revision_of.get(meta(p)["name"]) != revision]
        unavailable = len(create) + sum(1 for p in kept.values() if not ready(p))
        budget = max_unavailable - unavailable
        for node in sorted(outdated, key=lambda n: (ready(kept[n]), n)):
            if not ready(kept[node]):
                delete.append(kept[node])  # replacing a pod that serves nothing costs no availability
            elif budget > 0:
                delete.append(kept[node])
                budget -= 1
    ready_nodes = sum(1 for p in kept.values() if ready(p))
    status = {"desiredNumberScheduled": len(eligible), "currentNumberScheduled": len(kept),
              "numberMisscheduled": len(misscheduled), "numberReady": ready_nodes,
              "updatedNumberScheduled": sum(1 for p in kept.values() if revision_of.get(meta(p)["name"]) == revision)}
    return Plan(create=tuple(create), delete=tuple(delete), status=status)
