"""JSON merge patch (RFC 7386): a table of cases and properties that must always hold."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from netplane.api.patch import PatchError, apply_merge_patch

pytestmark = pytest.mark.unit

CASES: list[tuple[str, dict[str, Any], Any, dict[str, Any]]] = [
    ("add a member", {"a": 1}, {"b": 2}, {"a": 1, "b": 2}),
    ("replace a member", {"a": "b"}, {"a": "c"}, {"a": "c"}),
    ("null removes a member", {"a": "b", "c": 1}, {"a": None}, {"c": 1}),
    ("null for a missing member", {"a": 1}, {"z": None}, {"a": 1}),
    ("objects merge recursively", {"a": {"b": 1, "c": 2}}, {"a": {"c": 3, "d": 4}},
     {"a": {"b": 1, "c": 3, "d": 4}}),
    ("nested null removes", {"a": {"b": 1, "c": 2}}, {"a": {"b": None}}, {"a": {"c": 2}}),
    ("lists are replaced, not merged", {"a": [1, 2, {"x": 1}]}, {"a": [3]}, {"a": [3]}),
    ("nulls inside a list are kept", {"a": [1]}, {"a": [None, {"b": None}]}, {"a": [None, {"b": None}]}),
    ("an object replaces a scalar", {"a": "x"}, {"a": {"b": 1}}, {"a": {"b": 1}}),
    ("a scalar replaces an object", {"a": {"b": 1}}, {"a": 7}, {"a": 7}),
    ("a new object loses its nulls", {}, {"a": {"b": None, "c": {"d": None, "e": 1}}},
     {"a": {"c": {"e": 1}}}),
    ("an object merges into a list by replacing it", {"a": [1]}, {"a": {"b": None, "c": 1}}, {"a": {"c": 1}}),
    ("$ keys are plain keys", {"a": {"b": 1}}, {"a": {"$patch": "replace"}},
     {"a": {"b": 1, "$patch": "replace"}}),
    ("kubectl patch --type=merge of labels",
     {"metadata": {"name": "x", "labels": {"app": "web", "tier": "fe"}}},
     {"metadata": {"labels": {"tier": None, "env": "prod"}}},
     {"metadata": {"name": "x", "labels": {"app": "web", "env": "prod"}}}),
    ("containers are replaced wholesale",
     {"spec": {"containers": [{"name": "a", "image": "x"}, {"name": "b"}]}},
     {"spec": {"containers": [{"name": "a", "image": "y"}]}},
     {"spec": {"containers": [{"name": "a", "image": "y"}]}}),
]


@pytest.mark.parametrize(("original", "patch", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_merge_patch(original: dict[str, Any], patch: Any, expected: dict[str, Any]) -> None:
    before = copy.deepcopy((original, patch))
    assert apply_merge_patch(original, patch) == expected
    assert (original, patch) == before


@pytest.mark.parametrize(("patch", "message"), [
    (None, "Invalid JSON Patch"),
    ([{"a": 1}], "cannot unmarshal array"),
    ("x", "cannot unmarshal string"),
    (3, "cannot unmarshal number"),
])
def test_patch_that_is_not_an_object(patch: Any, message: str) -> None:
    with pytest.raises(PatchError) as caught:
        apply_merge_patch({"a": 1}, patch)
    assert message in caught.value.message
    assert caught.value.code == 400


def test_result_shares_nothing_with_inputs() -> None:
    original = {"a": {"b": [1]}, "c": {"d": 1}}
    patch = {"e": {"f": [2]}}
    result = apply_merge_patch(original, patch)
    result["a"]["b"].append(9)
    result["e"]["f"].append(9)
    assert original == {"a": {"b": [1]}, "c": {"d": 1}}
    assert patch == {"e": {"f": [2]}}


# --- properties -----------------------------------------------------------------------------------------

SCALARS = st.none() | st.booleans() | st.integers(-5, 5) | st.text("abc", max_size=2)
KEYS = st.text("abcd", min_size=1, max_size=2)
JSON = st.recursive(SCALARS,
                    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(KEYS, inner, max_size=3),
                    max_leaves=12)
OBJECTS = st.dictionaries(KEYS, JSON, max_size=4)


@given(OBJECTS)
def test_empty_patch_is_identity(original: dict[str, Any]) -> None:
    assert apply_merge_patch(original, {}) == original


@given(OBJECTS, OBJECTS)
def test_applying_twice_equals_applying_once(original: dict[str, Any], patch: dict[str, Any]) -> None:
    once = apply_merge_patch(original, patch)
    assert apply_merge_patch(once, patch) == once


@given(OBJECTS, OBJECTS)
def test_inputs_are_never_mutated(original: dict[str, Any], patch: dict[str, Any]) -> None:
    before = copy.deepcopy((original, patch))
    apply_merge_patch(original, patch)
    assert (original, patch) == before


@given(OBJECTS, OBJECTS)
def test_patch_members_win(original: dict[str, Any], patch: dict[str, Any]) -> None:
    result = apply_merge_patch(original, patch)
    for key, value in patch.items():
        if value is None:
            assert key not in result
        elif not isinstance(value, dict):
            assert result[key] == value
        else:
            # An object patch is itself merged into whatever object (or nothing) was there.
            current = original.get(key)
            assert result[key] == apply_merge_patch(current if isinstance(current, dict) else {}, value)
    for key in original.keys() - patch.keys():
        assert result[key] == original[key]
