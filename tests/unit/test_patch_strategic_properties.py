"""Properties of strategic merge patch that must hold for any input."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from netplane.api.patch import PatchError, apply_merge_patch, apply_strategic_merge_patch
from netplane.api.schemas import kind_schema

pytestmark = pytest.mark.unit

SCALARS = st.booleans() | st.integers(-3, 3) | st.text("xy", max_size=2)
PLAIN_KEYS = st.text("abc", min_size=1, max_size=2)


def _objects(keys: st.SearchStrategy[str], leaves: st.SearchStrategy[Any],
             lists: st.SearchStrategy[Any] | None = None) -> st.SearchStrategy[dict[str, Any]]:
    def extend(inner: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
        listed = lists if lists is not None else st.lists(inner, max_size=3)
        return listed | st.dictionaries(keys, inner, max_size=3)

    return st.dictionaries(keys, st.recursive(leaves, extend, max_leaves=10), max_size=4)


ANY_OBJECT = _objects(PLAIN_KEYS, SCALARS | st.none())
# Directive-free patches whose lists hold only scalars: there, both patch types must agree.
PLAIN_PATCH = _objects(PLAIN_KEYS, SCALARS | st.none(), lists=st.lists(SCALARS, max_size=3))


@given(ANY_OBJECT, PLAIN_PATCH)
def test_without_schema_or_directives_it_is_a_merge_patch(original: dict[str, Any],
                                                          patch: dict[str, Any]) -> None:
    assert apply_strategic_merge_patch(original, patch, {}) == apply_merge_patch(original, patch)


@given(ANY_OBJECT)
def test_empty_patch_is_identity(original: dict[str, Any]) -> None:
    assert apply_strategic_merge_patch(original, {}, {}) == original


@given(ANY_OBJECT, PLAIN_PATCH)
def test_applying_twice_equals_applying_once(original: dict[str, Any], patch: dict[str, Any]) -> None:
    once = apply_strategic_merge_patch(original, patch, {})
    assert apply_strategic_merge_patch(once, patch, {}) == once


# --- any input, directives included: a result or a PatchError, and the inputs untouched --------------------

ELEMENT: dict[str, Any] = {"type": "object", "properties": {"name": {"type": "string"}}}
FUZZ_SCHEMA: dict[str, Any] = {"type": "object", "properties": {
    "a": {"type": "array", "items": ELEMENT, "x-kubernetes-patch-strategy": "merge",
          "x-kubernetes-patch-merge-key": "name"},
    "b": {"type": "array", "items": {"type": "string"}, "x-kubernetes-patch-strategy": "merge"},
}}
ELEMENT["properties"].update(FUZZ_SCHEMA["properties"], c=FUZZ_SCHEMA)
FUZZ_SCHEMA["properties"]["c"] = FUZZ_SCHEMA

DIRECTIVE_KEYS = st.sampled_from(["a", "b", "c", "name", "$patch", "$retainKeys", "$setElementOrder/a",
                                  "$setElementOrder/b", "$deleteFromPrimitiveList/b", "$setElementOrder"])
DIRECTIVE_VALUES = st.none() | st.sampled_from(["replace", "delete", "merge", "x", "a", "name", 1])
FUZZ = _objects(DIRECTIVE_KEYS, DIRECTIVE_VALUES)


@given(FUZZ, FUZZ)
def test_any_input_gives_a_result_or_patch_error_and_is_not_mutated(original: dict[str, Any],
                                                                     patch: dict[str, Any]) -> None:
    before = copy.deepcopy((original, patch))
    try:
        result = apply_strategic_merge_patch(original, patch, FUZZ_SCHEMA)
    except PatchError as error:
        assert error.code in (400, 422)
    else:
        assert isinstance(result, dict)
    assert (original, patch) == before


# --- merging by key on a real kind ------------------------------------------------------------------

DEPLOYMENT = kind_schema("apps", "v1", "Deployment")
NAMES = st.lists(st.sampled_from("ABCDEFG"), unique=True, max_size=5)
VALUES = st.text("123", min_size=1, max_size=2)


def _with_env(env: list[dict[str, Any]]) -> dict[str, Any]:
    return {"spec": {"template": {"spec": {"containers": [{"name": "app", "image": "i", "env": env}]}}}}


def _env(doc: dict[str, Any]) -> list[dict[str, Any]]:
    env: list[dict[str, Any]] = doc["spec"]["template"]["spec"]["containers"][0]["env"]
    return env


@given(NAMES, NAMES, st.data())
def test_env_merges_by_name(live_names: list[str], patch_names: list[str], data: st.DataObject) -> None:
    live = _with_env([{"name": n, "value": data.draw(VALUES)} for n in live_names])
    patch = _with_env([{"name": n, "value": data.draw(VALUES)} for n in patch_names])
    result = apply_strategic_merge_patch(live, patch, DEPLOYMENT)
    merged = {e["name"]: e["value"] for e in _env(result)}
    assert len(merged) == len(_env(result))  # no duplicates
    expected = {e["name"]: e["value"] for e in _env(live)} | {e["name"]: e["value"] for e in _env(patch)}
    assert merged == expected
    assert apply_strategic_merge_patch(result, patch, DEPLOYMENT) == result
    # Server-only elements keep their relative order.
    server_only = [n for n in live_names if n not in patch_names]
    assert [e["name"] for e in _env(result) if e["name"] in server_only] == server_only


@given(NAMES, NAMES)
def test_set_element_order_is_obeyed(live_names: list[str], wanted: list[str]) -> None:
    live = _with_env([{"name": n, "value": "v"} for n in live_names])
    patch = _with_env([{"name": n, "value": "v"} for n in wanted if n not in live_names])
    patch["spec"]["template"]["spec"]["containers"][0]["$setElementOrder/env"] = [{"name": n} for n in wanted]
    result = apply_strategic_merge_patch(live, patch, DEPLOYMENT)
    names = [e["name"] for e in _env(result)]
    assert [n for n in names if n in wanted] == wanted
    assert sorted(names) == sorted(set(live_names) | set(wanted))


@given(NAMES, NAMES)
def test_deleted_elements_are_gone(live_names: list[str], deleted: list[str]) -> None:
    live = _with_env([{"name": n, "value": "v"} for n in live_names])
    patch = _with_env([{"name": n, "$patch": "delete"} for n in deleted])
    names = [e["name"] for e in _env(apply_strategic_merge_patch(live, patch, DEPLOYMENT))]
    assert names == [n for n in live_names if n not in deleted]
