"""What a workload controller needs to know about its pods: alive, ready, available, which to delete first.

Pure functions over pod dicts; `now` is always passed in, so tests can pin time.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from typing import Any

Obj = dict[str, Any]

DELETION_COST = "controller.kubernetes.io/pod-deletion-cost"
_PHASE_RANK = {"Pending": 0, "Unknown": 1, "Running": 2}


def parse_time(value: Any) -> dt.datetime | None:
    if not value:
        return None
    try:
        return dt.datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        return None


def meta(obj: Obj) -> Obj:
    return obj.get("metadata") or {}


def terminating(obj: Obj) -> bool:
    return bool(meta(obj).get("deletionTimestamp"))


def active(pod: Obj) -> bool:
    """Counts towards a controller's replicas: not being deleted and not finished."""
    return not terminating(pod) and (pod.get("status") or {}).get("phase") not in ("Succeeded", "Failed")


def _ready_condition(pod: Obj) -> Obj | None:
    for condition in (pod.get("status") or {}).get("conditions") or []:
        if condition.get("type") == "Ready":
            return dict(condition)
    return None


def ready(pod: Obj) -> bool:
    condition = _ready_condition(pod)
    return condition is not None and condition.get("status") == "True"


def ready_since(pod: Obj) -> dt.datetime | None:
    condition = _ready_condition(pod)
    if condition is None or condition.get("status") != "True":
        return None
    return parse_time(condition.get("lastTransitionTime"))


def available_after(pod: Obj, min_ready_seconds: int, now: dt.datetime) -> float | None:
    """Seconds until the ready pod counts as available (0: it already does); None when it is not ready.

    A pod is available once it has been Ready for minReadySeconds, as Kubernetes counts it.
    """
    if not ready(pod):
        return None
    if min_ready_seconds <= 0:
        return 0.0
    since = ready_since(pod)
    if since is None:
        return 0.0
    return max(0.0, min_ready_seconds - (now - since).total_seconds())


def next_available(waits: Iterable[float | None]) -> float | None:
    """Seconds until the next ready-but-not-yet-available pod becomes available (None: none waits)."""
    pending = [w for w in waits if w is not None and w > 0]
    return min(pending) if pending else None


def controller_ref(obj: Obj) -> Obj | None:
    for ref in meta(obj).get("ownerReferences") or []:
        if isinstance(ref, dict) and ref.get("controller"):
            return ref
    return None


def owner_ref(owner: Obj) -> Obj:
    """The controller reference a workload puts on what it creates (garbage collection follows it)."""
    m = meta(owner)
    return {"apiVersion": owner.get("apiVersion", ""), "kind": owner.get("kind", ""), "name": m.get("name", ""),
            "uid": m.get("uid", ""), "controller": True, "blockOwnerDeletion": True}


def _restarts(pod: Obj) -> int:
    return sum(int(s.get("restartCount") or 0) for s in (pod.get("status") or {}).get("containerStatuses") or [])


def _timestamp(value: dt.datetime | None) -> float:
    return value.timestamp() if value is not None else 0.0


def _cost(pod: Obj) -> int:
    try:
        return int((meta(pod).get("annotations") or {}).get(DELETION_COST, 0))
    except ValueError:
        return 0


def deletion_order(pods: Iterable[Obj], colocated: Mapping[str, int]) -> list[Obj]:
    """Pods ordered most-deletable first, by kube-controller-manager's ranking.

    Unscheduled before scheduled; Pending before Unknown before Running; not ready before ready;
    lower pod-deletion-cost first; more pods of the same set on its node first (`colocated`:
    node name -> count); ready for a shorter time first; more restarts first; newer first.
    """
    def key(pod: Obj) -> tuple[int, int, int, int, int, float, int, float]:
        node = str((pod.get("spec") or {}).get("nodeName") or "")
        phase = str((pod.get("status") or {}).get("phase") or "Pending")
        return (1 if node else 0, _PHASE_RANK.get(phase, 0), 1 if ready(pod) else 0, _cost(pod),
                -colocated.get(node, 0) if node else 0, -_timestamp(ready_since(pod)), -_restarts(pod),
                -_timestamp(parse_time(meta(pod).get("creationTimestamp"))))

    return sorted(pods, key=key)


def colocation(pods: Iterable[Obj]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for pod in pods:
        node = str((pod.get("spec") or {}).get("nodeName") or "")
        if node:
            counts[node] = counts.get(node, 0) + 1
    return counts
