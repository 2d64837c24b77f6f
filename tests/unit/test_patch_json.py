"""JSON patch (RFC 6902) through jsonpatch, with Kubernetes-style errors."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from netplane.api.patch import PatchError, apply_json_patch

pytestmark = pytest.mark.unit


def _deployment() -> dict[str, Any]:
    return {"metadata": {"name": "web", "labels": {"app": "web"}},
            "spec": {"replicas": 2, "template": {"spec": {"containers": [
                {"name": "nginx", "image": "nginx:1.26", "args": ["-g", "daemon off;"]}]}}}}


CASES: list[tuple[str, list[dict[str, Any]], dict[str, Any]]] = [
    ("replace a scalar", [{"op": "replace", "path": "/spec/replicas", "value": 5}],
     {"spec": {"replicas": 5}}),
    ("add a member", [{"op": "add", "path": "/metadata/labels/tier", "value": "fe"}],
     {"metadata": {"labels": {"app": "web", "tier": "fe"}}}),
    ("escaped key", [{"op": "add", "path": "/metadata/labels/example.com~1team", "value": "x"}],
     {"metadata": {"labels": {"app": "web", "example.com/team": "x"}}}),
    ("remove a member", [{"op": "remove", "path": "/metadata/labels/app"}], {"metadata": {"labels": {}}}),
    ("append to a list", [{"op": "add", "path": "/spec/template/spec/containers/0/args/-", "value": "-q"}],
     {"containers_args": ["-g", "daemon off;", "-q"]}),
    ("insert into a list", [{"op": "add", "path": "/spec/template/spec/containers/0/args/0", "value": "-q"}],
     {"containers_args": ["-q", "-g", "daemon off;"]}),
    ("test then replace", [{"op": "test", "path": "/spec/replicas", "value": 2},
                           {"op": "replace", "path": "/spec/replicas", "value": 3}],
     {"spec": {"replicas": 3}}),
    ("move", [{"op": "move", "from": "/metadata/labels/app", "path": "/metadata/labels/name"}],
     {"metadata": {"labels": {"name": "web"}}}),
    ("copy", [{"op": "copy", "from": "/metadata/labels", "path": "/metadata/annotations"}],
     {"metadata": {"labels": {"app": "web"}, "annotations": {"app": "web"}}}),
]


def _view(result: dict[str, Any], expected: dict[str, Any]) -> dict[str, Any]:
    """The parts of ``result`` that ``expected`` describes."""
    view: dict[str, Any] = {}
    for key in expected:
        if key == "containers_args":
            view[key] = result["spec"]["template"]["spec"]["containers"][0]["args"]
        elif key == "spec":
            view[key] = {"replicas": result["spec"]["replicas"]}
        else:
            view[key] = {k: v for k, v in result[key].items() if k != "name"}
    return view


@pytest.mark.parametrize(("ops", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_json_patch(ops: list[dict[str, Any]], expected: dict[str, Any]) -> None:
    original = _deployment()
    before = copy.deepcopy((original, ops))
    assert _view(apply_json_patch(original, ops), expected) == expected
    assert (original, ops) == before


def test_copied_value_is_independent() -> None:
    ops = [{"op": "copy", "from": "/metadata/labels", "path": "/metadata/x"}]
    result = apply_json_patch(_deployment(), ops)
    result["metadata"]["x"]["app"] = "changed"
    assert result["metadata"]["labels"] == {"app": "web"}


ERRORS: list[tuple[str, Any, str, int]] = [
    ("remove a missing key", [{"op": "remove", "path": "/spec/paused"}],
     "error in remove for path: '/spec/paused': Unable to remove nonexistent key: paused: missing value",
     422),
    ("remove below a missing key", [{"op": "remove", "path": "/spec/strategy/type"}],
     'remove operation does not apply: doc is missing path: "/spec/strategy/type": missing value', 422),
    ("replace a missing key", [{"op": "replace", "path": "/spec/paused", "value": True}],
     "replace operation does not apply: doc is missing key: /spec/paused: missing value", 422),
    ("add below a missing key", [{"op": "add", "path": "/spec/strategy/type", "value": "Recreate"}],
     'add operation does not apply: doc is missing path: "/spec/strategy/type": missing value', 422),
    ("index out of range", [{"op": "add", "path": "/spec/template/spec/containers/4", "value": {}}],
     "Unable to access invalid index: 4: invalid index referenced", 422),
    ("failed test", [{"op": "test", "path": "/spec/replicas", "value": 7}],
     "testing value /spec/replicas failed: test failed", 422),
    ("test is type-strict", [{"op": "test", "path": "/spec/replicas", "value": "2"}],
     "testing value /spec/replicas failed: test failed", 422),
    ("test below a missing key", [{"op": "test", "path": "/status/x", "value": 1}],
     "test operation does not apply: is missing path: /status/x: missing value", 422),
    ("move from a missing key", [{"op": "move", "from": "/spec/paused", "path": "/spec/x"}],
     "move operation does not apply: doc is missing from path: /spec/paused: missing value", 422),
    ("copy to a missing parent", [{"op": "copy", "from": "/spec/replicas", "path": "/status/x"}],
     "copy operation does not apply: doc is missing destination path: /status/x: missing value", 422),
    ("unknown op", [{"op": "append", "path": "/spec/x", "value": "y"}], "Unexpected kind: append", 422),
    ("op missing", [{"path": "/spec/x"}], "Unexpected kind: unknown", 422),
    ("path missing", [{"op": "remove"}], "remove operation failed to decode path: missing value", 422),
    ("value missing", [{"op": "add", "path": "/spec/x"}], "add operation failed to decode value", 422),
    ("root replaced by a non-object", [{"op": "replace", "path": "", "value": [1]}],
     "cannot unmarshal array into Go value", 422),
    ("not a list", {"op": "add", "path": "/x", "value": 1},
     "json: cannot unmarshal object into Go value of type jsonpatch.Patch", 400),
    ("operation not an object", ["add"], "cannot unmarshal string", 400),
    ("too many operations", [{"op": "test", "path": "/spec/replicas", "value": 2}] * 10001,
     "The allowed maximum operations in a JSON patch is 10000, got 10001", 413),
]


@pytest.mark.parametrize(("ops", "message", "code"), [e[1:] for e in ERRORS], ids=[e[0] for e in ERRORS])
def test_json_patch_errors(ops: Any, message: str, code: int) -> None:
    original = _deployment()
    with pytest.raises(PatchError) as caught:
        apply_json_patch(original, ops)
    assert message in caught.value.message
    assert caught.value.code == code
    assert original == _deployment()


def test_a_failing_operation_discards_earlier_ones() -> None:
    original = _deployment()
    with pytest.raises(PatchError):
        apply_json_patch(original, [{"op": "replace", "path": "/spec/replicas", "value": 9},
                                    {"op": "test", "path": "/spec/replicas", "value": 2}])
    assert original["spec"]["replicas"] == 2


KEYS = st.text("ab~/", min_size=1, max_size=3)
VALUES = st.integers() | st.text("xy~/", max_size=3) | st.lists(st.integers(), max_size=3)
OBJECTS = st.dictionaries(KEYS, VALUES, max_size=5)


@given(OBJECTS)
def test_empty_patch_is_identity(original: dict[str, Any]) -> None:
    assert apply_json_patch(original, []) == original


@given(OBJECTS, st.integers())
def test_add_then_remove_a_new_key_is_identity(original: dict[str, Any], value: int) -> None:
    ops = [{"op": "add", "path": "/new~0key", "value": value}, {"op": "remove", "path": "/new~0key"}]
    before = copy.deepcopy(original)
    assert apply_json_patch(original, ops) == original
    assert original == before


@given(OBJECTS)
def test_testing_every_member_succeeds(original: dict[str, Any]) -> None:
    ops = [{"op": "test", "path": "/" + k.replace("~", "~0").replace("/", "~1"), "value": v}
           for k, v in original.items()]
    assert apply_json_patch(original, ops) == original
