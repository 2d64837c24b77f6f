"""A Deployment's status: counts summed over its ReplicaSets, and the Available/Progressing conditions.

Reasons and messages are Kubernetes' own, because `kubectl rollout status` and users' scripts read
them: Progressing=False with ProgressDeadlineExceeded is how a stuck rollout is reported.
Apps conditions carry `lastUpdateTime` (last progress) besides `lastTransitionTime` (last flip);
the progress deadline is measured from `lastUpdateTime`.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from netplane.controllers.workloads.pods import parse_time

Obj = dict[str, Any]

AVAILABLE, PROGRESSING = "Available", "Progressing"
MIN_AVAILABLE, MIN_UNAVAILABLE = "MinimumReplicasAvailable", "MinimumReplicasUnavailable"
NEW_RS_AVAILABLE, RS_UPDATED = "NewReplicaSetAvailable", "ReplicaSetUpdated"
NEW_RS_CREATED, FOUND_NEW_RS = "NewReplicaSetCreated", "FoundNewReplicaSet"
TIMED_OUT, PAUSED, RESUMED = "ProgressDeadlineExceeded", "DeploymentPaused", "DeploymentResumed"


@dataclass(frozen=True)
class Counts:
    """One ReplicaSet's status counts."""

    spec: int = 0
    replicas: int = 0
    ready: int = 0
    available: int = 0


def fmt_time(t: dt.datetime) -> str:
    return t.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def find(conditions: list[Obj], type_: str) -> Obj | None:
    return next((c for c in conditions if c.get("type") == type_), None)


def set_condition(conditions: list[Obj], type_: str, status: str, reason: str, message: str, now: dt.datetime,
                  *, refresh: bool = False) -> None:
    """Kubernetes' SetDeploymentCondition: same status and reason leaves it alone, unless `refresh`
    (progress was made: lastUpdateTime moves, lastTransitionTime stays while the status does)."""
    current = find(conditions, type_)
    if current is not None and current.get("status") == status and current.get("reason") == reason and not refresh:
        return
    stamp = fmt_time(now)
    transition = current.get("lastTransitionTime") if current is not None and current.get("status") == status \
        else stamp
    wanted = {"type": type_, "status": status, "lastUpdateTime": stamp, "lastTransitionTime": transition or stamp,
              "reason": reason, "message": message}
    if current is None:
        conditions.append(wanted)
    else:
        current.clear()
        current.update(wanted)


def counted_status(generation: int, new: Counts | None, olds: list[Counts]) -> Obj:
    """The numeric part of DeploymentStatus (zero counts left out, as the API omits them)."""
    sets = ([new] if new is not None else []) + olds
    total_spec = sum(c.spec for c in sets)
    available = sum(c.available for c in sets)
    status = {"observedGeneration": generation, "replicas": sum(c.replicas for c in sets),
              "updatedReplicas": new.replicas if new is not None else 0,
              "readyReplicas": sum(c.ready for c in sets), "availableReplicas": available,
              "unavailableReplicas": max(total_spec - available, 0)}
    return {k: v for k, v in status.items() if v or k == "observedGeneration"}


def complete(desired: int, generation: int, status: Obj) -> bool:
    """Every replica updated and available, and the latest spec observed (DeploymentComplete)."""
    return (status.get("updatedReplicas", 0) == desired and status.get("replicas", 0) == desired
            and status.get("availableReplicas", 0) == desired and status.get("observedGeneration", 0) >= generation)


def progressed(old: Obj, new: Obj) -> bool:
    old_olds = old.get("replicas", 0) - old.get("updatedReplicas", 0)
    new_olds = new.get("replicas", 0) - new.get("updatedReplicas", 0)
    return (new_olds < old_olds or new.get("updatedReplicas", 0) > old.get("updatedReplicas", 0)
            or new.get("availableReplicas", 0) > old.get("availableReplicas", 0)
            or new.get("readyReplicas", 0) > old.get("readyReplicas", 0))


def deadline_left(conditions: list[Obj], deadline: int, now: dt.datetime) -> float | None:
    """Seconds until the progress deadline passes; None when no deadline runs (complete or timed out)."""
    cond = find(conditions, PROGRESSING)
    if cond is None or cond.get("reason") in (NEW_RS_AVAILABLE, TIMED_OUT) or cond.get("status") != "True":
        return None
    since = parse_time(cond.get("lastUpdateTime"))
    if since is None:
        return None
    return deadline - (now - since).total_seconds()


@dataclass(frozen=True)
class Spec:
    """What of the Deployment's spec the conditions depend on."""

    replicas: int
    generation: int
    max_unavailable: int
    progress_deadline: int | None
    paused: bool = False


def next_status(spec: Spec, previous: Obj, counts: Obj, new_rs: str | None, now: dt.datetime) -> Obj:
    """The whole status to write, from the persisted one and freshly summed counts."""
    conditions = [dict(c) for c in previous.get("conditions") or []]
    if counts.get("availableReplicas", 0) >= spec.replicas - spec.max_unavailable:
        set_condition(conditions, AVAILABLE, "True", MIN_AVAILABLE, "Deployment has minimum availability.", now)
    else:
        set_condition(conditions, AVAILABLE, "False", MIN_UNAVAILABLE,
                      "Deployment does not have minimum availability.", now)
    progress = find(conditions, PROGRESSING)
    if spec.progress_deadline is None:
        conditions = [c for c in conditions if c.get("type") != PROGRESSING]
    elif spec.paused:
        set_condition(conditions, PROGRESSING, "Unknown", PAUSED, "Deployment is paused", now)
    elif progress is not None and progress.get("reason") == PAUSED:
        set_condition(conditions, PROGRESSING, "Unknown", RESUMED, "Deployment is resumed", now)
    elif new_rs is not None and not (counts.get("replicas", 0) == counts.get("updatedReplicas", 0)
                                     and progress is not None and progress.get("reason") == NEW_RS_AVAILABLE):
        if complete(spec.replicas, spec.generation, counts):
            set_condition(conditions, PROGRESSING, "True", NEW_RS_AVAILABLE,
                          f'ReplicaSet "{new_rs}" has successfully progressed.', now)
        elif progressed(previous, counts):
            set_condition(conditions, PROGRESSING, "True", RS_UPDATED, f'ReplicaSet "{new_rs}" is progressing.',
                          now, refresh=True)
        else:
            left = deadline_left(conditions, spec.progress_deadline, now)
            if left is not None and left <= 0:
                set_condition(conditions, PROGRESSING, "False", TIMED_OUT,
                              f'ReplicaSet "{new_rs}" has timed out progressing.', now)
    return {**counts, "conditions": conditions}
