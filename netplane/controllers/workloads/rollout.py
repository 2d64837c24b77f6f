"""A Deployment's arithmetic, as kube-controller-manager does it: pure functions over ReplicaSet views.

    Rolling update, one step per sync:
      1. scale the new ReplicaSet up, while all pods (old + new) stay ≤ replicas + maxSurge;
      2. otherwise scale old ones down, while available pods stay ≥ replicas - maxUnavailable
         (unhealthy old pods go first: they cost no availability).
    Recreate: old ReplicaSets to 0, wait until their pods are gone, then the new one to replicas.
    A change of spec.replicas alone (a scaling event) is spread over the active ReplicaSets in
    proportion to their size, so an in-flight rollout keeps its shape.

Only Ready pods (for minReadySeconds) count as available; maxSurge rounds up, maxUnavailable down,
and both 0 means maxUnavailable 1, so a rollout can always move.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from typing import Any


@dataclass(frozen=True)
class RS:
    """What the rollout needs to know of one ReplicaSet."""

    name: str
    replicas: int           # spec.replicas
    available: int = 0      # status.availableReplicas
    created: str = ""       # creationTimestamp (RFC 3339 sorts as text)
    max_replicas: int | None = None  # its deployment.kubernetes.io/max-replicas annotation


def scaled_value(value: Any, total: int, round_up: bool) -> int:
    """An intOrString (`3` or `"25%"`) resolved against `total`."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    text = str(value or "0")
    if text.endswith("%"):
        exact = int(text[:-1]) * total / 100
        return math.ceil(exact) if round_up else math.floor(exact)
    return int(text)


def fenceposts(max_surge: Any, max_unavailable: Any, desired: int) -> tuple[int, int]:
    """(maxSurge, maxUnavailable) as pod counts."""
    surge = scaled_value(max_surge, desired, round_up=True)
    unavailable = scaled_value(max_unavailable, desired, round_up=False)
    if surge == 0 and unavailable == 0:
        unavailable = 1  # otherwise no pod could ever be replaced
    return surge, unavailable


def _oldest_first(sets: Iterable[RS]) -> list[RS]:
    return sorted(sets, key=lambda s: (s.created, s.name))


def new_rs_target(desired: int, surge: int, new: RS | None, olds: Sequence[RS]) -> int:
    """spec.replicas for the new ReplicaSet in this step of a rolling update."""
    current = new.replicas if new is not None else 0
    if current >= desired:
        return desired
    total = sum(s.replicas for s in olds) + current
    room = desired + surge - total
    if room <= 0:
        return current
    return current + min(room, desired - current)


def old_rs_targets(desired: int, unavailable: int, new: RS, olds: Sequence[RS]) -> dict[str, int]:
    """New spec.replicas for the old ReplicaSets this step scales down (only those that change)."""
    if sum(s.replicas for s in olds) == 0:
        return {}
    all_pods = new.replicas + sum(s.replicas for s in olds)
    min_available = desired - unavailable
    new_unavailable = new.replicas - new.available
    budget = all_pods - min_available - new_unavailable
    if budget <= 0:
        return {}
    targets: dict[str, int] = {}
    current = {s.name: s for s in olds}
    # First the unhealthy pods of old sets: removing them costs no availability.
    spent = 0
    for s in _oldest_first(olds):
        if spent >= budget:
            break
        unhealthy = s.replicas - s.available
        if s.replicas == 0 or unhealthy <= 0:
            continue
        cut = min(budget - spent, unhealthy)
        current[s.name] = replace(s, replicas=s.replicas - cut)
        targets[s.name] = s.replicas - cut
        spent += cut
    # Then available ones, as long as enough stay available.
    available = new.available + sum(s.available for s in olds)
    if available > min_available:
        allowance, spent = available - min_available, 0
        for s in _oldest_first(current.values()):
            if spent >= allowance:
                break
            if s.replicas == 0:
                continue
            cut = min(s.replicas, allowance - spent)
            targets[s.name] = s.replicas - cut
            spent += cut
    return targets


def rolling_step(desired: int, surge: int, unavailable: int, new: RS, olds: Sequence[RS]) -> dict[str, int]:
    """One step of a rolling update: the ReplicaSets whose spec.replicas change, and to what.

    Scaling up the new set comes first; old sets are only scaled down in a step that did not scale up.
    """
    target = new_rs_target(desired, surge, new, olds)
    if target != new.replicas:
        return {new.name: target}
    return old_rs_targets(desired, unavailable, new, olds)


def recreate_step(desired: int, new: RS, olds: Sequence[RS], old_pods_left: int) -> dict[str, int]:
    """Recreate: all old sets to 0; once their pods are gone, the new set to `desired`."""
    scale_down = {s.name: 0 for s in olds if s.replicas}
    if scale_down:
        return scale_down
    if old_pods_left:
        return {}
    return {new.name: desired} if new.replicas != desired else {}


def proportional_scale(desired: int, surge: int, sets: Sequence[RS]) -> dict[str, int]:
    """A scaling event over several active ReplicaSets: each gets its share of the change.

    Shares follow each set's size relative to the size the Deployment had when it last scaled it
    (its max-replicas annotation); the rounding leftover goes to the largest set (on a tie the
    newest when growing, the oldest when shrinking), as Kubernetes does.
    """
    active = [s for s in sets if s.replicas > 0]
    allowed = desired + surge if desired > 0 else 0
    to_add = allowed - sum(s.replicas for s in active)
    if not active or to_add == 0:
        return {}
    growing = to_add > 0
    by_age = sorted(active, key=lambda s: (s.created, s.name), reverse=growing)
    ordered = sorted(by_age, key=lambda s: -s.replicas)  # stable: ties keep the age order
    targets = {s.name: s.replicas for s in ordered}
    added = 0
    for s in ordered:
        if desired == 0:
            share = -s.replicas
        else:
            before = s.max_replicas or sum(x.replicas for x in active)
            share = math.floor(s.replicas * allowed / before + 0.5) - s.replicas  # Go rounds halves up
        share = min(share, to_add - added) if growing else max(share, to_add - added)
        targets[s.name] += share
        added += share
    first = ordered[0].name
    targets[first] = max(0, targets[first] + to_add - added)
    return {s.name: targets[s.name] for s in active if targets[s.name] != s.replicas}
