"""Status conditions (metav1.Condition) on plain status dicts.

`lastTransitionTime` records when the *status* last flipped, so setting the same status again with
a new reason or message updates those but keeps the time; that is what `kubectl describe` readers
and `kubectl wait --for=condition` rely on.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

Condition = dict[str, Any]


def now_rfc3339() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def find_condition(conditions: list[Condition] | None, type_: str) -> Condition | None:
    for condition in conditions or []:
        if condition.get("type") == type_:
            return condition
    return None


def is_true(conditions: list[Condition] | None, type_: str) -> bool:
    condition = find_condition(conditions, type_)
    return condition is not None and condition.get("status") == "True"


def set_condition(conditions: list[Condition], type_: str, status: str, reason: str, message: str = "",
                  observed_generation: int | None = None, now: str | None = None) -> bool:
    """Set or replace the condition `type_` in place; True when anything changed (so status needs writing)."""
    if status not in ("True", "False", "Unknown"):
        raise ValueError(f"condition {type_}: status must be True, False or Unknown, not {status!r}")
    wanted: Condition = {"type": type_, "status": status, "reason": reason, "message": message}
    if observed_generation is not None:
        wanted["observedGeneration"] = observed_generation
    existing = find_condition(conditions, type_)
    if existing is None:
        conditions.append({**wanted, "lastTransitionTime": now or now_rfc3339()})
        return True
    transition = existing.get("lastTransitionTime") if existing.get("status") == status else None
    wanted["lastTransitionTime"] = transition or now or now_rfc3339()
    if existing == wanted:
        return False
    existing.clear()
    existing.update(wanted)
    return True


def remove_condition(conditions: list[Condition], type_: str) -> bool:
    before = len(conditions)
    conditions[:] = [c for c in conditions if c.get("type") != type_]
    return len(conditions) != before
