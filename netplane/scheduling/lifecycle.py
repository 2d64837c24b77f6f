"""Node health and what it means for the pods on a node: the node lifecycle controller's rules and its
taint-based eviction, as a pure core (the controller is `netplane.controllers.nodelifecycle`).

- A node's agent posts its Ready condition with a fresh `lastHeartbeatTime` every few seconds. When the
  heartbeat is older than the grace period, the node's conditions become Unknown (reason
  NodeStatusUnknown; NodeStatusNeverUpdated for a node that never posted one). The age is counted from
  the heartbeat, but never from before the controller started watching the node: a controller that
  comes back after an outage of its own gives every node a full grace period to report first.
- The node's Ready condition decides two pairs of taints (NoSchedule keeps new pods away, NoExecute
  evicts): False → `node.kubernetes.io/not-ready`, Unknown → `node.kubernetes.io/unreachable`, True →
  neither. Other taints are the user's and never touched.
- Pods on a node that is not Ready are not Ready either, so Services stop sending them traffic.
- A NoExecute taint evicts (deletes) a pod that does not tolerate it at once; one that tolerates it with
  `tolerationSeconds` after that many seconds from the taint's `timeAdded`; one that tolerates it without
  a limit never. With several taints the earliest deadline wins.

Times are seconds since the epoch; `now` always comes from the caller.
"""

from __future__ import annotations

import copy
import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from netplane.scheduling.matching import NO_EXECUTE, NO_SCHEDULE, tolerates
from netplane.scheduling.placement import NOT_READY_TAINT

Obj = dict[str, Any]

UNREACHABLE_TAINT = "node.kubernetes.io/unreachable"
DEFAULT_GRACE_PERIOD = 40.0

STATUS_UNKNOWN = ("NodeStatusUnknown", "Kubelet stopped posting node status.")
NEVER_UPDATED = ("NodeStatusNeverUpdated", "Kubelet never posted node status.")

# The taints this controller owns, by the Ready condition's status.
_TAINT_KEY_FOR_READY = {"False": NOT_READY_TAINT, "Unknown": UNREACHABLE_TAINT}
_OWNED_EFFECTS = (NO_SCHEDULE, NO_EXECUTE)


def rfc3339(seconds: float) -> str:
    return dt.datetime.fromtimestamp(seconds, dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_rfc3339(value: Any) -> float | None:
    if not value:
        return None
    try:
        return dt.datetime.fromisoformat(str(value).replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


def ready_condition(node: Obj) -> Obj | None:
    for condition in (node.get("status") or {}).get("conditions") or []:
        if condition.get("type") == "Ready":
            return dict(condition)
    return None


def ready_status(node: Obj) -> str | None:
    """"True", "False", "Unknown", or None for a node that has no Ready condition yet."""
    condition = ready_condition(node)
    return None if condition is None else str(condition.get("status") or "Unknown")


@dataclass(frozen=True)
class Health:
    """The verdict on a node's heartbeat.

    `conditions`: the node's new status.conditions when the controller must write them (they turn
    Unknown), None when the status is the agent's to keep. `stale_in`: seconds until the heartbeat
    goes stale unless a new one comes, None when it is stale already.
    """

    conditions: list[Obj] | None
    stale_in: float | None


def check_heartbeat(node: Obj, now: float, watched_since: float, grace_period: float) -> Health:
    ready = ready_condition(node)
    created = (node.get("metadata") or {}).get("creationTimestamp")
    beat = parse_rfc3339(ready.get("lastHeartbeatTime") if ready else created)
    age = now - max(beat if beat is not None else watched_since, watched_since)
    if age < grace_period:
        return Health(None, grace_period - age)
    stamp = rfc3339(now)
    conditions = copy.deepcopy(list((node.get("status") or {}).get("conditions") or []))
    changed = False
    if ready is None:
        reason, message = NEVER_UPDATED
        conditions.append({"type": "Ready", "status": "Unknown", "reason": reason, "message": message,
                           "lastHeartbeatTime": created, "lastTransitionTime": stamp})
        changed = True
    for condition in conditions:
        if condition.get("status") != "Unknown":
            reason, message = STATUS_UNKNOWN
            # lastHeartbeatTime stays: it tells when the agent was last heard from.
            condition.update(status="Unknown", reason=reason, message=message, lastTransitionTime=stamp)
            changed = True
    return Health(conditions if changed else None, None)


def _owned(taint: Obj) -> bool:
    return taint.get("key") in _TAINT_KEY_FOR_READY.values() and taint.get("effect") in _OWNED_EFFECTS


def condition_taints(node: Obj, now: float) -> list[Obj]:
    """The node's taints with the not-ready/unreachable pairs as its Ready condition says; taints that
    stay keep their timeAdded (eviction deadlines count from it)."""
    taints = list((node.get("spec") or {}).get("taints") or [])
    status = ready_status(node)
    if status is None:
        return taints  # not registered fully yet: the grace period decides first
    wanted_key = _TAINT_KEY_FOR_READY.get(status)
    kept = [t for t in taints if not _owned(t) or t.get("key") == wanted_key]
    if wanted_key is not None:
        for effect in _OWNED_EFFECTS:
            if not any(t.get("key") == wanted_key and t.get("effect") == effect for t in kept):
                kept.append({"key": wanted_key, "effect": effect, "timeAdded": rfc3339(now)})
    return kept


def must_mark_not_ready(node: Obj, pod: Obj) -> bool:
    """The pod still says Ready although its node is not (or no longer heard from)."""
    conditions = (pod.get("status") or {}).get("conditions") or []
    return ready_status(node) in ("False", "Unknown") and any(
        c.get("type") == "Ready" and c.get("status") == "True" for c in conditions)


def eviction_delay(pod: Obj, taints: Iterable[Obj], now: float) -> float | None:
    """Seconds until the node's NoExecute taints evict the pod: 0 at once, None never."""
    tolerations = list((pod.get("spec") or {}).get("tolerations") or [])
    due: float | None = None
    for taint in taints:
        if taint.get("effect") != NO_EXECUTE:
            continue
        matching = [t for t in tolerations if tolerates(t, taint)]
        if not matching:
            return 0.0
        limits = [_seconds(t) for t in matching if t.get("tolerationSeconds") is not None]
        if not limits:
            continue  # tolerated for as long as the taint stays
        since = parse_rfc3339(taint.get("timeAdded"))
        deadline = (now if since is None else since) + max(0, min(limits))
        due = deadline if due is None else min(due, deadline)
    return None if due is None else max(0.0, due - now)


def _seconds(toleration: Obj) -> int:
    try:
        return int(toleration.get("tolerationSeconds") or 0)
    except (TypeError, ValueError):
        return 0
