"""Strategic merge patch semantics, case by case, against a small hand-written schema."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from netplane.api.patch import PatchError, apply_strategic_merge_patch

pytestmark = pytest.mark.unit


def _merge_list(items: dict[str, Any], key: str = "name", strategy: str = "merge") -> dict[str, Any]:
    return {"type": "array", "items": items, "x-kubernetes-patch-strategy": strategy,
            "x-kubernetes-patch-merge-key": key}


STRING = {"type": "string"}
STRINGS = {"type": "array", "items": STRING}

# An element of a merging list; it nests itself so that merge lists inside merge lists can be tested.
ELEMENT: dict[str, Any] = {
    "type": "object",
    "properties": {"name": STRING, "value": STRING, "other": STRING, "args": STRINGS},
}
ELEMENT["properties"]["children"] = _merge_list(ELEMENT)
ELEMENT["properties"]["plain"] = {"type": "array", "items": ELEMENT}

UNION = {"type": "object", "properties": {"kind": STRING, "a": STRING, "b": {
    "type": "object", "properties": {"x": STRING, "y": STRING}}, "list": STRINGS}}

SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "name": STRING,
        "labels": {"type": "object", "additionalProperties": STRING},
        "items": _merge_list(ELEMENT),
        "ports": _merge_list({"type": "object", "properties": {"port": {"type": "integer"}}}, key="port"),
        "plain": {"type": "array", "items": ELEMENT},
        "tags": {"type": "array", "items": STRING, "x-kubernetes-patch-strategy": "merge"},
        "numbers": {"type": "array", "items": {"type": "integer"}, "x-kubernetes-patch-strategy": "merge"},
        "args": STRINGS,
        "union": dict(UNION, **{"x-kubernetes-patch-strategy": "retainKeys"}),
        "volumes": _merge_list(UNION | {"properties": UNION["properties"] | {"name": STRING}},
                               strategy="merge,retainKeys"),
        "selector": {"type": "object", "x-kubernetes-patch-strategy": "replace",
                     "properties": {"matchLabels": {"type": "object", "additionalProperties": STRING}}},
        "nested": {"type": "object", "properties": {"items": _merge_list(ELEMENT)}},
    },
}

CASES: list[tuple[str, dict[str, Any], dict[str, Any], dict[str, Any]]] = [
    # --- objects
    ("add a key", {"name": "a"}, {"labels": {"x": "1"}}, {"name": "a", "labels": {"x": "1"}}),
    ("change a scalar", {"name": "a"}, {"name": "b"}, {"name": "b"}),
    ("null deletes a key", {"name": "a", "labels": {"x": "1"}}, {"labels": None}, {"name": "a"}),
    ("null for an absent key is dropped", {"name": "a"}, {"labels": None}, {"name": "a"}),
    ("maps merge recursively", {"labels": {"x": "1", "y": "2"}}, {"labels": {"y": None, "z": "3"}},
     {"labels": {"x": "1", "z": "3"}}),
    ("an added map loses its nulls", {}, {"nested": {"a": {"b": None, "c": 1}, "d": None}},
     {"nested": {"a": {"c": 1}}}),
    ("an added map loses nested directives", {"name": "a"},
     {"nested": {"$setElementOrder/items": [{"name": "x"}], "items": [{"name": "x", "$retainKeys": ["name"]}],
                 "$deleteFromPrimitiveList/tags": ["t"], "$retainKeys": ["items"]}},
     {"name": "a", "nested": {"items": [{"name": "x"}]}}),
    ("a value of another type replaces", {"labels": {"x": "1"}}, {"labels": "odd"}, {"labels": "odd"}),
    ("unknown fields: maps merge", {"extra": {"a": 1, "b": 2}}, {"extra": {"b": 3}},
     {"extra": {"a": 1, "b": 3}}),
    ("unknown fields: lists are replaced", {"extra": [{"name": "a"}]}, {"extra": [{"name": "b"}]},
     {"extra": [{"name": "b"}]}),
    ("empty patch", {"name": "a", "items": [{"name": "x"}]}, {}, {"name": "a", "items": [{"name": "x"}]}),
    # --- $patch on objects
    ("$patch replace on a map", {"labels": {"x": "1", "y": "2"}},
     {"labels": {"$patch": "replace", "z": "3"}}, {"labels": {"z": "3"}}),
    ("$patch delete on a map leaves it empty", {"labels": {"x": "1"}, "name": "a"},
     {"labels": {"$patch": "delete"}}, {"labels": {}, "name": "a"}),
    ("$patch merge on a map is the default", {"labels": {"x": "1"}},
     {"labels": {"$patch": "merge", "y": "2"}}, {"labels": {"x": "1", "y": "2"}}),
    ("$patch delete on an absent map adds nothing", {"name": "a"}, {"labels": {"$patch": "delete"}},
     {"name": "a"}),
    ("$patch replace at the top", {"name": "a", "labels": {"x": "1"}}, {"$patch": "replace", "name": "b"},
     {"name": "b"}),
    ("replace strategy replaces the map", {"selector": {"matchLabels": {"a": "1"}}},
     {"selector": {"matchLabels": {"b": "2"}}}, {"selector": {"matchLabels": {"b": "2"}}}),
    # --- merging lists of maps
    ("merge an element by key", {"items": [{"name": "a", "value": "1"}, {"name": "b"}]},
     {"items": [{"name": "a", "value": "2", "other": "o"}]},
     {"items": [{"name": "a", "value": "2", "other": "o"}, {"name": "b"}]}),
    ("a new element goes before server-only ones", {"items": [{"name": "a"}, {"name": "b"}]},
     {"items": [{"name": "c"}]}, {"items": [{"name": "c"}, {"name": "a"}, {"name": "b"}]}),
    ("patch elements keep the patch's order",
     {"items": [{"name": "a"}, {"name": "b", "value": "1"}]},
     {"items": [{"name": "c"}, {"name": "b", "value": "2"}]},
     # c is new, so nothing ranks it after a: it goes first, then a (before b on the server), then b.
     {"items": [{"name": "c"}, {"name": "a"}, {"name": "b", "value": "2"}]}),
    ("null inside an element deletes the element's field",
     {"items": [{"name": "a", "value": "1", "other": "o"}]}, {"items": [{"name": "a", "value": None}]},
     {"items": [{"name": "a", "other": "o"}]}),
    ("delete an element", {"items": [{"name": "a"}, {"name": "b"}]},
     {"items": [{"name": "a", "$patch": "delete"}]}, {"items": [{"name": "b"}]}),
    ("delete removes every element with the key",
     {"items": [{"name": "a", "value": "1"}, {"name": "b"}, {"name": "a", "value": "2"}]},
     {"items": [{"$patch": "delete", "name": "a"}]}, {"items": [{"name": "b"}]}),
    ("delete a missing element", {"items": [{"name": "a"}]},
     {"items": [{"name": "z", "$patch": "delete"}]}, {"items": [{"name": "a"}]}),
    ("add and delete in one patch", {"items": [{"name": "a"}, {"name": "b"}]},
     {"items": [{"name": "c"}, {"name": "a", "$patch": "delete"}]},
     {"items": [{"name": "c"}, {"name": "b"}]}),
    ("$patch replace replaces the whole list", {"items": [{"name": "a", "value": "1"}, {"name": "b"}]},
     {"items": [{"name": "c"}, {"$patch": "replace"}]}, {"items": [{"name": "c"}]}),
    ("$patch replace with no elements empties the list", {"items": [{"name": "a"}]},
     {"items": [{"$patch": "replace"}]}, {"items": []}),
    ("an empty merge list changes nothing", {"items": [{"name": "a"}]}, {"items": []},
     {"items": [{"name": "a"}]}),
    ("merge key of another name", {"ports": [{"port": 80}, {"port": 443}]},
     {"ports": [{"port": 443, "$patch": "delete"}, {"port": 8080}]},
     {"ports": [{"port": 8080}, {"port": 80}]}),
    ("a list added whole loses its directives", {},
     {"items": [{"name": "a", "labels": None}, {"name": "gone", "$patch": "delete"}]},
     {"items": [{"name": "a"}]}),
    ("merging list nested in a merging list",
     {"items": [{"name": "a", "children": [{"name": "x", "value": "1"}, {"name": "y"}]}]},
     {"items": [{"name": "a", "children": [{"name": "x", "value": "2"}]}]},
     {"items": [{"name": "a", "children": [{"name": "x", "value": "2"}, {"name": "y"}]}]}),
    ("non-merging list nested in a merging list is replaced",
     {"items": [{"name": "a", "plain": [{"name": "x"}, {"name": "y"}]}]},
     {"items": [{"name": "a", "plain": [{"name": "z"}]}]},
     {"items": [{"name": "a", "plain": [{"name": "z"}]}]}),
    ("delete in a nested merging list",
     {"nested": {"items": [{"name": "a"}, {"name": "b"}]}},
     {"nested": {"items": [{"name": "b", "$patch": "delete"}]}},
     {"nested": {"items": [{"name": "a"}]}}),
    # --- lists that are replaced
    ("a list without strategy is replaced", {"plain": [{"name": "a", "value": "1"}]},
     {"plain": [{"name": "a"}]}, {"plain": [{"name": "a"}]}),
    ("a scalar list without strategy is replaced", {"args": ["a", "b"]}, {"args": ["c"]}, {"args": ["c"]}),
    # --- merging lists of scalars
    ("scalars: union, new first", {"tags": ["a", "b"]}, {"tags": ["c", "a"]}, {"tags": ["c", "a", "b"]}),
    ("scalars: duplicates collapse", {"tags": ["a", "a", "b"]}, {"tags": ["b"]}, {"tags": ["a", "b"]}),
    ("numbers: union", {"numbers": [1, 2]}, {"numbers": [3]}, {"numbers": [3, 1, 2]}),
    # --- $deleteFromPrimitiveList
    ("delete from a merging scalar list", {"tags": ["a", "b", "c", "b"]},
     {"$deleteFromPrimitiveList/tags": ["b"]}, {"tags": ["a", "c"]}),
    ("delete from a replaced scalar list", {"args": ["a", "b", "c"]},
     {"$deleteFromPrimitiveList/args": ["a"]}, {"args": ["b", "c"]}),
    ("delete a missing scalar", {"tags": ["a"]}, {"$deleteFromPrimitiveList/tags": ["z"]}, {"tags": ["a"]}),
    ("delete from an absent list adds no list", {"name": "a"}, {"$deleteFromPrimitiveList/tags": ["a"]},
     {"name": "a"}),
    ("delete from a null list keeps it null", {"tags": None}, {"$deleteFromPrimitiveList/tags": ["a"]},
     {"tags": None}),
    ("add and delete scalars", {"numbers": [1, 2, 3]},
     {"$setElementOrder/numbers": [1, 2, 4], "$deleteFromPrimitiveList/numbers": [3], "numbers": [4]},
     {"numbers": [1, 2, 4]}),
    # --- $setElementOrder
    ("order: new element placed as ordered", {"items": [{"name": "a"}, {"name": "b", "value": "1"}]},
     {"$setElementOrder/items": [{"name": "a"}, {"name": "c"}, {"name": "b"}], "items": [{"name": "c"}]},
     {"items": [{"name": "a"}, {"name": "c"}, {"name": "b", "value": "1"}]}),
    ("order: reorder without changes", {"items": [{"name": "a"}, {"name": "b"}, {"name": "c"}]},
     {"$setElementOrder/items": [{"name": "c"}, {"name": "a"}, {"name": "b"}]},
     {"items": [{"name": "c"}, {"name": "a"}, {"name": "b"}]}),
    ("order: server-only elements go before the first ordered element they preceded",
     {"items": [{"name": "a"}, {"name": "s1"}, {"name": "b"}, {"name": "s2"}, {"name": "c"}]},
     {"$setElementOrder/items": [{"name": "b"}, {"name": "a"}, {"name": "c"}]},
     {"items": [{"name": "s1"}, {"name": "b"}, {"name": "a"}, {"name": "s2"}, {"name": "c"}]}),
    ("order: a server-only element between reordered ones",
     {"items": [{"name": "a"}, {"name": "b"}, {"name": "s"}, {"name": "c"}, {"name": "d"}]},
     {"$setElementOrder/items": [{"name": "b"}, {"name": "a"}, {"name": "d"}, {"name": "c"}]},
     {"items": [{"name": "b"}, {"name": "a"}, {"name": "s"}, {"name": "d"}, {"name": "c"}]}),
    ("order: server-only element at the end stays there",
     {"items": [{"name": "a"}, {"name": "b"}, {"name": "s"}]},
     {"$setElementOrder/items": [{"name": "b"}, {"name": "a"}], "items": [{"name": "b", "value": "2"}]},
     {"items": [{"name": "b", "value": "2"}, {"name": "a"}, {"name": "s"}]}),
    ("order: names missing from the list are ignored", {"items": [{"name": "a"}, {"name": "c"}]},
     {"$setElementOrder/items": [{"name": "c"}, {"name": "b"}, {"name": "a"}]},
     {"items": [{"name": "c"}, {"name": "a"}]}),
    ("order: deleted elements need not be named", {"items": [{"name": "a"}, {"name": "b"}]},
     {"$setElementOrder/items": [{"name": "b"}], "items": [{"name": "a", "$patch": "delete"}]},
     {"items": [{"name": "b"}]}),
    ("order: a list that is new", {"name": "x"},
     {"$setElementOrder/items": [{"name": "b"}, {"name": "a"}], "items": [{"name": "b"}, {"name": "a"}]},
     {"name": "x", "items": [{"name": "b"}, {"name": "a"}]}),
    ("order: scalar list", {"numbers": [1, 2, 3]}, {"$setElementOrder/numbers": [3, 1, 2]},
     {"numbers": [3, 1, 2]}),
    ("order: scalar list with a new item and server-only ones", {"numbers": [1, 2, 4]},
     {"$setElementOrder/numbers": [1, 2, 3], "numbers": [3]}, {"numbers": [1, 2, 3, 4]}),
    ("order: duplicates of a key stay together",
     {"items": [{"name": "a"}, {"name": "b", "value": "1"}, {"name": "c"}, {"name": "b", "value": "2"}]},
     {"$setElementOrder/items": [{"name": "b"}, {"name": "a"}, {"name": "c"}]},
     {"items": [{"name": "b", "value": "1"}, {"name": "b", "value": "2"}, {"name": "a"}, {"name": "c"}]}),
    ("order: the list is nulled", {"items": [{"name": "a"}]},
     {"$setElementOrder/items": [], "items": None}, {}),
    # --- $retainKeys
    ("retainKeys clears what is not retained", {"union": {"kind": "A", "a": "1"}},
     {"union": {"$retainKeys": ["kind", "b"], "kind": "B", "b": {"x": "1"}}},
     {"union": {"kind": "B", "b": {"x": "1"}}}),
    ("retainKeys keeps and merges retained keys", {"union": {"kind": "B", "a": "1", "b": {"x": "1"}}},
     {"union": {"$retainKeys": ["kind", "b"], "b": {"y": "2"}}},
     {"union": {"kind": "B", "b": {"x": "1", "y": "2"}}}),
    ("retainKeys allows nulls for keys it drops", {"union": {"kind": "A", "a": "1"}},
     {"union": {"$retainKeys": ["kind"], "a": None, "kind": "C"}}, {"union": {"kind": "C"}}),
    ("retainKeys with list directives", {"union": {"kind": "A", "a": "1", "list": ["x", "y"]}},
     {"union": {"$retainKeys": ["kind", "list"], "$deleteFromPrimitiveList/list": ["x"]}},
     {"union": {"kind": "A", "list": ["y"]}}),
    ("retainKeys on a merging list element",
     {"volumes": [{"name": "v", "kind": "A", "a": "1"}, {"name": "w", "kind": "A", "a": "2"}]},
     {"volumes": [{"$retainKeys": ["name", "kind", "b"], "name": "v", "kind": "B", "b": {"x": "1"}}]},
     {"volumes": [{"name": "v", "kind": "B", "b": {"x": "1"}}, {"name": "w", "kind": "A", "a": "2"}]}),
]


@pytest.mark.parametrize(("original", "patch", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_strategic_merge_patch(original: dict[str, Any], patch: dict[str, Any],
                               expected: dict[str, Any]) -> None:
    before_original, before_patch = copy.deepcopy(original), copy.deepcopy(patch)
    assert apply_strategic_merge_patch(original, patch, SCHEMA) == expected
    assert (original, patch) == (before_original, before_patch)


def test_result_shares_nothing_with_the_original() -> None:
    original = {"labels": {"x": "1"}, "items": [{"name": "a", "children": [{"name": "b"}]}]}
    result = apply_strategic_merge_patch(original, {"name": "n"}, SCHEMA)
    result["labels"]["x"] = "changed"
    result["items"][0]["children"].append({"name": "c"})
    assert original == {"labels": {"x": "1"}, "items": [{"name": "a", "children": [{"name": "b"}]}]}


def test_list_order_is_exact() -> None:
    # Dict equality ignores key order but not list order; make sure order checks are real.
    result = apply_strategic_merge_patch({"numbers": [1, 2]}, {"numbers": [3]}, SCHEMA)
    assert result["numbers"] == [3, 1, 2]
    assert result["numbers"] != [1, 2, 3]


ERRORS: list[tuple[str, dict[str, Any], dict[str, Any], str, int]] = [
    ("element without merge key", {"items": [{"name": "a"}]}, {"items": [{"value": "b"}]},
     "map: map[value:b] does not contain declared merge key: name", 422),
    ("delete element without merge key", {"items": [{"name": "a"}]}, {"items": [{"$patch": "delete"}]},
     "does not contain declared merge key: name", 422),
    ("$patch merge in a list", {"items": [{"name": "a"}]}, {"items": [{"$patch": "merge"}]},
     "merging lists cannot yet be specified in the patch", 422),
    ("unknown $patch in a list", {"items": [{"name": "a"}]}, {"items": [{"$patch": "bogus", "name": "a"}]},
     "unknown patch type: bogus in map: map[$patch:bogus name:a]", 422),
    ("unknown $patch on a map", {"labels": {}}, {"labels": {"$patch": "bogus"}},
     "unknown patch type: bogus", 422),
    ("order does not match the patch", {"items": [{"name": "a"}, {"name": "b"}]},
     {"$setElementOrder/items": [{"name": "a"}, {"name": "b"}], "items": [{"name": "b"}, {"name": "a"}]},
     "doesn't match $setElementOrder list", 422),
    ("order names an element the patch lacks", {"numbers": [1, 2]},
     {"$setElementOrder/numbers": [1, 2], "numbers": [3]}, "doesn't match $setElementOrder list", 422),
    ("order element without merge key", {"items": [{"name": "a"}]},
     {"$setElementOrder/items": [{"value": "a"}]}, "does not contain declared merge key: name", 422),
    ("order that is not a list", {"items": []}, {"$setElementOrder/items": {"name": "a"}},
     "invalid patch format of setElementOrder list", 400),
    ("order directive without field", {}, {"$setElementOrder": []},
     "invalid patch format of setElementOrder list", 400),
    ("retainKeys not a list", {"union": {}}, {"union": {"$retainKeys": "kind"}},
     "invalid patch format of retainKeys", 400),
    ("patch sets a key retainKeys drops", {"union": {"kind": "A"}},
     {"union": {"$retainKeys": ["kind"], "a": "1"}}, "invalid patch format of retainKeys", 400),
    ("delete list that is not a list", {"tags": ["a"]}, {"$deleteFromPrimitiveList/tags": "a"},
     "invalid patch format of primitive list", 400),
    ("delete list of maps", {"items": [{"name": "a"}]}, {"$deleteFromPrimitiveList/items": [{"name": "a"}]},
     "invalid patch format of primitive list", 400),
    ("delete directive without field", {}, {"$deleteFromPrimitiveList": ["a"]},
     "invalid patch format of primitive list", 400),
    ("list of lists", {"tags": [["a"]]}, {"tags": [["b"]]}, "lists of lists are not supported", 422),
    ("mixed element types", {"tags": ["a"]}, {"tags": [1]}, "list element types are not identical", 422),
    ("merging list of maps without merge key", {"oddity": [{"a": 1}]}, {"oddity": [{"a": 2}]},
     "cannot merge lists without merge key for oddity", 422),
]

ODD_SCHEMA = {"type": "object", "properties": dict(
    SCHEMA["properties"], oddity={"type": "array", "x-kubernetes-patch-strategy": "merge"})}


@pytest.mark.parametrize(("original", "patch", "message", "code"), [e[1:] for e in ERRORS],
                         ids=[e[0] for e in ERRORS])
def test_strategic_merge_patch_errors(original: dict[str, Any], patch: dict[str, Any], message: str,
                                      code: int) -> None:
    with pytest.raises(PatchError) as caught:
        apply_strategic_merge_patch(original, patch, ODD_SCHEMA)
    assert message in caught.value.message
    assert caught.value.code == code
    assert isinstance(caught.value, ValueError)


def test_bad_patch_strategy_in_schema() -> None:
    listing = {"type": "array", "x-kubernetes-patch-strategy": "merge,replace"}
    schema = {"type": "object", "properties": {"l": listing}}
    with pytest.raises(PatchError, match="unexpected patch strategy"):
        apply_strategic_merge_patch({"l": ["a"]}, {"l": ["b"]}, schema)


@pytest.mark.parametrize("body", [[], "x", None])
def test_patch_must_be_an_object(body: Any) -> None:
    with pytest.raises(PatchError) as caught:
        apply_strategic_merge_patch({}, body, SCHEMA)
    assert caught.value.code == 400
