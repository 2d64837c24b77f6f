"""Status conditions: lastTransitionTime moves only when the status flips."""

from __future__ import annotations

import pytest

from netplane.controllers.runtime.conditions import find_condition, is_true, remove_condition, set_condition

pytestmark = pytest.mark.unit

T0, T1, T2 = "2025-01-01T00:00:00Z", "2025-01-01T00:01:00Z", "2025-01-01T00:02:00Z"


def test_a_new_condition_is_added_with_its_transition_time() -> None:
    conditions: list[dict[str, object]] = []
    assert set_condition(conditions, "Ready", "False", "Pending", "waiting", observed_generation=1, now=T0)
    assert conditions == [{"type": "Ready", "status": "False", "reason": "Pending", "message": "waiting",
                           "observedGeneration": 1, "lastTransitionTime": T0}]


@pytest.mark.parametrize(("status", "reason", "message", "generation", "changed", "transition"), [
    ("False", "Pending", "waiting", 1, False, T0),       # identical: nothing to write
    ("False", "NoAddress", "pool empty", 2, True, T0),   # same status, new reason: time kept
    ("True", "Ready", "", 2, True, T1),                  # status flipped: time moves
    ("Unknown", "Pending", "waiting", 1, True, T1),
])
def test_replacing_a_condition(status: str, reason: str, message: str, generation: int, changed: bool,
                               transition: str) -> None:
    conditions: list[dict[str, object]] = []
    set_condition(conditions, "Ready", "False", "Pending", "waiting", observed_generation=1, now=T0)
    assert set_condition(conditions, "Ready", status, reason, message, generation, now=T1) is changed
    assert len(conditions) == 1
    assert conditions[0] == {"type": "Ready", "status": status, "reason": reason, "message": message,
                             "observedGeneration": generation, "lastTransitionTime": transition}


def test_conditions_of_other_types_are_left_alone() -> None:
    conditions: list[dict[str, object]] = []
    set_condition(conditions, "Ready", "True", "Ready", now=T0)
    set_condition(conditions, "Degraded", "False", "AsExpected", now=T1)
    set_condition(conditions, "Ready", "False", "Lost", now=T2)
    assert [(c["type"], c["status"], c["lastTransitionTime"]) for c in conditions] == [
        ("Ready", "False", T2), ("Degraded", "False", T1)]
    assert not is_true(conditions, "Ready") and find_condition(conditions, "Degraded") is not None
    assert remove_condition(conditions, "Degraded") and find_condition(conditions, "Degraded") is None


def test_a_status_that_is_not_true_false_or_unknown_is_refused() -> None:
    with pytest.raises(ValueError, match="True, False or Unknown"):
        set_condition([], "Ready", "yes", "Because")
