"""Field sets in the FieldsV1 format: computed from objects with their schema, and their algebra."""

from __future__ import annotations

from typing import Any

import pytest

from netplane.api.ssa.fieldpath import FieldSet, path_string
from netplane.api.ssa.schema import builtin_type, custom_type
from netplane.api.ssa.walk import compare, field_set

pytestmark = pytest.mark.unit

DEPLOYMENT = builtin_type("apps", "v1", "Deployment")
SERVICE = builtin_type("", "v1", "Service")
CONFIGMAP = builtin_type("", "v1", "ConfigMap")
assert DEPLOYMENT and SERVICE and CONFIGMAP

CRD_SCHEMA: dict[str, Any] = {"type": "object", "properties": {"spec": {"type": "object", "properties": {
    "tags": {"type": "array", "items": {"type": "string"}, "x-kubernetes-list-type": "set"},
    "hosts": {"type": "array", "items": {"type": "string"}},
    "rules": {"type": "array", "x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["name"],
              "items": {"type": "object", "properties": {"name": {"type": "string"}, "port": {"type": "integer"}}}},
    "limits": {"type": "object", "x-kubernetes-map-type": "atomic", "additionalProperties": {"type": "string"}},
    "extra": {"type": "object", "x-kubernetes-preserve-unknown-fields": True},
}}}}


@pytest.mark.parametrize(("name", "t", "obj", "fields_v1"), [
    ("scalars and a granular map", CONFIGMAP,
     {"metadata": {"labels": {"a": "1"}}, "data": {"k": "v"}},
     {"f:metadata": {"f:labels": {"f:a": {}}}, "f:data": {"f:k": {}}}),
    ("map list keyed by x-kubernetes-list-map-keys, item itself is a member", SERVICE,
     {"spec": {"ports": [{"port": 80, "protocol": "TCP", "targetPort": 8080}]}},
     {"f:spec": {"f:ports": {'k:{"port":80,"protocol":"TCP"}': {".": {}, "f:port": {}, "f:protocol": {},
                                                                "f:targetPort": {}}}}}),
    ("a list-map key with a schema default may be omitted", SERVICE,
     {"spec": {"ports": [{"port": 53, "name": "dns"}]}},
     {"f:spec": {"f:ports": {'k:{"port":53,"protocol":"TCP"}': {".": {}, "f:port": {}, "f:name": {}}}}}),
    ("atomic map (map-type atomic) is one leaf", DEPLOYMENT,
     {"spec": {"selector": {"matchLabels": {"a": "b"}}}},
     {"f:spec": {"f:selector": {}}}),
    ("merge key from x-kubernetes-patch-merge-key", DEPLOYMENT,
     {"spec": {"template": {"spec": {"containers": [{"name": "c", "env": [{"name": "E", "value": "1"}]}]}}}},
     {"f:spec": {"f:template": {"f:spec": {"f:containers": {'k:{"name":"c"}': {
         ".": {}, "f:name": {}, "f:env": {'k:{"name":"E"}': {".": {}, "f:name": {}, "f:value": {}}}}}}}}}),
    ("set list items are v: elements", custom_type(CRD_SCHEMA),
     {"spec": {"tags": ["b", "a"]}},
     {"f:spec": {"f:tags": {'v:"a"': {}, 'v:"b"': {}}}}),
    ("list without list type is atomic", custom_type(CRD_SCHEMA),
     {"spec": {"hosts": ["x", "y"]}},
     {"f:spec": {"f:hosts": {}}}),
    ("map list in a CRD; atomic map in a CRD", custom_type(CRD_SCHEMA),
     {"spec": {"rules": [{"name": "r", "port": 1}], "limits": {"cpu": "1"}}},
     {"f:spec": {"f:limits": {}, "f:rules": {'k:{"name":"r"}': {".": {}, "f:name": {}, "f:port": {}}}}}),
    ("no schema: maps granular, lists atomic", custom_type(CRD_SCHEMA),
     {"spec": {"extra": {"a": {"b": 1}, "l": [1, 2]}}},
     {"f:spec": {"f:extra": {"f:a": {".": {}, "f:b": {}}, "f:l": {}}}}),
    ("empty map and null are members; empty granular list is nothing", CONFIGMAP,
     {"metadata": {"annotations": {}, "finalizers": []}, "data": None},
     {"f:metadata": {"f:annotations": {}}, "f:data": {}}),
])
def test_field_set_of_an_applied_configuration(name: str, t: Any, obj: dict[str, Any],
                                               fields_v1: dict[str, Any]) -> None:
    assert field_set(obj, t).to_fields_v1() == fields_v1


def test_compare_reports_new_containers_as_added_with_their_contents() -> None:
    old = {"metadata": {"name": "c"}, "data": {"a": "1"}}
    new = {"metadata": {"name": "c", "labels": {"x": "y"}}, "data": {"a": "2", "b": "3"}}
    c = compare(old, new, CONFIGMAP)
    assert c.added.to_fields_v1() == {"f:data": {"f:b": {}}, "f:metadata": {"f:labels": {".": {}, "f:x": {}}}}
    assert c.modified.to_fields_v1() == {"f:data": {"f:a": {}}}
    assert c.removed.empty()
    back = compare(new, old, CONFIGMAP)
    assert back.removed.to_fields_v1() == c.added.to_fields_v1()


def test_fields_v1_round_trips_and_paths_print_as_kubernetes_does() -> None:
    doc = {"f:spec": {"f:ports": {'k:{"port":80,"protocol":"TCP"}': {".": {}, "f:port": {}}},
                      "f:tags": {'v:"a"': {}}, "f:replicas": {}}}
    s = FieldSet.from_fields_v1(doc)
    assert s.to_fields_v1() == doc
    assert [path_string(p) for p in s.paths()] == [
        '.spec.ports[port=80,protocol="TCP"]', '.spec.ports[port=80,protocol="TCP"].port', ".spec.replicas",
        '.spec.tags[="a"]']
    with pytest.raises(ValueError):
        FieldSet.from_fields_v1({"spec": {}})


A = FieldSet.of(("f:a",), ("f:b", "f:c"), ("f:b", "f:d"))
B = FieldSet.of(("f:b", "f:c"), ("f:e",))


@pytest.mark.parametrize(("op", "expected"), [
    (A.union(B), {"f:a": {}, "f:b": {"f:c": {}, "f:d": {}}, "f:e": {}}),
    (A.difference(B), {"f:a": {}, "f:b": {"f:d": {}}}),
    (A.intersection(B), {"f:b": {"f:c": {}}}),
    (A.recursive_difference(FieldSet.of(("f:b",))), {"f:a": {}}),
    (A.difference(FieldSet.of(("f:b",))), {"f:a": {}, "f:b": {"f:c": {}, "f:d": {}}}),
])
def test_set_algebra(op: FieldSet, expected: dict[str, Any]) -> None:
    assert op.to_fields_v1() == expected
