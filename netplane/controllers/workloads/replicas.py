"""How a ReplicaSet's pods should change: how many to create, which to delete, and its status.

Pure; the controller (`replicaset.py`) only carries the answers out.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from netplane.controllers.workloads.pods import (
    active,
    available_after,
    colocation,
    deletion_order,
    next_available,
    ready,
)

Obj = dict[str, Any]

# kube-controller-manager's burstReplicas: at most this many creations or deletions per sync.
BURST = 500


@dataclass(frozen=True)
class Plan:
    create: int = 0
    delete: tuple[Obj, ...] = ()


def plan(desired: int, pods: list[Obj]) -> Plan:
    """Make the active pods number `desired`; the most deletable go first."""
    alive = [p for p in pods if active(p)]
    diff = desired - len(alive)
    if diff > 0:
        return Plan(create=min(diff, BURST))
    if diff < 0:
        return Plan(delete=tuple(deletion_order(alive, colocation(alive))[:min(-diff, BURST)]))
    return Plan()


def slow_start_batches(count: int, initial: int = 1) -> list[int]:
    """Creation batch sizes 1, 2, 4, …: a failing create (quota, a closed namespace) then costs one
    request instead of hundreds, as kube-controller-manager's slowStartBatch does."""
    batches, size, left = [], initial, count
    while left > 0:
        batches.append(min(size, left))
        left -= batches[-1]
        size *= 2
    return batches


@dataclass(frozen=True)
class Counts:
    replicas: int
    fully_labeled: int
    ready: int
    available: int
    # Seconds until the next ready pod becomes available (None: none waiting), to look again then.
    recheck_after: float | None


def count(pods: list[Obj], template_labels: dict[str, str], min_ready_seconds: int, now: dt.datetime) -> Counts:
    alive = [p for p in pods if active(p)]
    waits = [available_after(p, min_ready_seconds, now) for p in alive]
    labelled = sum(1 for p in alive
                   if all(((p.get("metadata") or {}).get("labels") or {}).get(k) == v
                          for k, v in template_labels.items()))
    return Counts(replicas=len(alive), fully_labeled=labelled, ready=sum(1 for p in alive if ready(p)),
                  available=sum(1 for w in waits if w == 0), recheck_after=next_available(waits))
