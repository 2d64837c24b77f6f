"""Custom resources: defaulting, pruning, OpenAPI validation, list types and CEL rules."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from netplane.api.schemacheck import apply_defaults, prune, validate

pytestmark = pytest.mark.unit

SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "spec": {
            "type": "object",
            "required": ["name"],
            "properties": {
                "name": {"type": "string", "maxLength": 5, "minLength": 2, "pattern": "^[a-z]+$"},
                "replicas": {"type": "integer", "format": "int32", "minimum": 1, "maximum": 10},
                "ratio": {"type": "number", "exclusiveMaximum": True, "maximum": 1.5, "multipleOf": 0.25},
                "size": {"type": "string", "enum": ["small", "large"]},
                "when": {"type": "string", "format": "date-time"},
                "port": {"x-kubernetes-int-or-string": True},
                "note": {"type": "string", "nullable": True},
                "tags": {
                    "type": "array",
                    "maxItems": 3,
                    "minItems": 1,
                    "x-kubernetes-list-type": "set",
                    "items": {"type": "string"},
                },
                "ports": {
                    "type": "array",
                    "x-kubernetes-list-type": "map",
                    "x-kubernetes-list-map-keys": ["name"],
                    "items": {
                        "type": "object",
                        "required": ["name"],
                        "properties": {"name": {"type": "string"}, "port": {"type": "integer"}},
                    },
                },
                "labels": {"type": "object", "maxProperties": 2, "additionalProperties": {"type": "string"}},
                "raw": {
                    "type": "object",
                    "x-kubernetes-preserve-unknown-fields": True,
                    "properties": {"known": {"type": "object", "properties": {"a": {"type": "string"}}}},
                },
                "template": {
                    "type": "object",
                    "x-kubernetes-embedded-resource": True,
                    "properties": {"spec": {"type": "object", "properties": {"x": {"type": "string"}}}},
                },
                "choice": {"type": "string", "oneOf": [{"pattern": "^a"}, {"pattern": "b$"}]},
            },
        },
    },
}


def _errors(spec: dict[str, Any]) -> list[str]:
    return [
        str(e) for e in validate({"apiVersion": "x/v1", "kind": "W", "spec": {"name": "ok", **spec}}, SCHEMA)
    ]


CASES = [
    (
        {"replicas": "string"},
        ['spec.replicas: Invalid value: "string": spec.replicas in body must be of type integer: "string"'],
    ),
    ({"size": "huge"}, ['spec.size: Unsupported value: "huge": supported values: "small", "large"']),
    (
        {"replicas": 0},
        ["spec.replicas: Invalid value: 0: spec.replicas in body should be greater than or equal to 1"],
    ),
    (
        {"replicas": 11},
        ["spec.replicas: Invalid value: 11: spec.replicas in body should be less than or equal to 10"],
    ),
    (
        {"replicas": 3000000000},
        [
            '<nil>: Invalid value: "": Checked value must be of type integer with format '
            "int32 in spec.replicas",
            "spec.replicas: Invalid value: 3000000000: spec.replicas in body should be less "
            "than or equal to 10",
        ],
    ),
    ({"ratio": 1.5}, ["spec.ratio: Invalid value: 1.5: spec.ratio in body should be less than 1.5"]),
    ({"ratio": 0.3}, ["spec.ratio: Invalid value: 0.3: spec.ratio in body should be a multiple of 0.25"]),
    ({"name": "abcdefg"}, ["spec.name: Too long: may not be more than 5 bytes"]),
    ({"name": "a"}, ['spec.name: Invalid value: "a": spec.name in body should be at least 2 chars long']),
    ({"name": "AB"}, ["spec.name: Invalid value: \"AB\": spec.name in body should match '^[a-z]+$'"]),
    (
        {"when": "yesterday"},
        ['spec.when: Invalid value: "yesterday": spec.when in body must be of type date-time: "yesterday"'],
    ),
    ({"when": "2024-01-02T03:04:05Z", "port": 8080, "note": None}, []),
    ({"port": "http"}, []),
    (
        {"port": True},
        ['spec.port: Invalid value: "boolean": spec.port in body must be of type integer,string: "boolean"'],
    ),
    (
        {"size": None},
        [
            'spec.size: Invalid value: "null": spec.size in body must be of type string: "null"',
            'spec.size: Unsupported value: "null": supported values: "small", "large"',
        ],
    ),
    ({"tags": []}, ["spec.tags: Invalid value: 0: spec.tags in body should have at least 1 items"]),
    ({"tags": ["a", "b", "c", "d"]}, ["spec.tags: Too many: 4: must have at most 3 items"]),
    ({"tags": ["a", "b", "a"]}, ['spec.tags[2]: Duplicate value: "a"']),
    (
        {"ports": [{"name": "x", "port": 1}, {"name": "x", "port": 2}]},
        ['spec.ports[1]: Duplicate value: map[string]interface {}{"name":"x"}'],
    ),
    ({"ports": [{"port": 1}]}, ["spec.ports[0].name: Required value"]),
    ({"labels": {"a": "1", "b": "2", "c": "3"}}, ["spec.labels: Too many: 3: must have at most 2 items"]),
    (
        {"labels": {"a": 1}},
        ['spec.labels.a: Invalid value: "integer": spec.labels.a in body must be of type string: "integer"'],
    ),
    (
        {"choice": "ab"},
        [
            '<nil>: Invalid value: "": "spec.choice" must validate one and only one schema (oneOf). '
            "Found 2 valid alternatives"
        ],
    ),
    (
        {"choice": "c"},
        [
            '<nil>: Invalid value: "": "spec.choice" must validate one and only one schema (oneOf). '
            "Found none valid",
            "spec.choice: Invalid value: \"c\": spec.choice in body should match '^a'",
        ],
    ),
]


@pytest.mark.parametrize(("spec", "expected"), CASES)
def test_openapi_messages(spec: dict[str, Any], expected: list[str]) -> None:
    assert _errors(spec) == expected


def test_required_and_root_type() -> None:
    assert [str(e) for e in validate({"spec": {}}, SCHEMA)] == ["spec.name: Required value"]
    assert [str(e) for e in validate({"spec": []}, SCHEMA)] == [
        'spec: Invalid value: "array": spec in body must be of type object: "array"'
    ]


def test_update_ratchets_unchanged_invalid_values() -> None:
    old = {"spec": {"name": "ok", "replicas": 50, "size": "huge"}}
    new = copy.deepcopy(old)
    assert validate(new, SCHEMA, old) == []
    new["spec"]["size"] = "tiny"
    assert [str(e) for e in validate(new, SCHEMA, old)] == [
        'spec.size: Unsupported value: "tiny": supported values: "small", "large"'
    ]


# Pruning ------------------------------------------------------------------------------


def test_prune_removes_unknown_fields_and_reports_them() -> None:
    obj = {
        "apiVersion": "x/v1",
        "kind": "W",
        "metadata": {"name": "a", "colour": "red"},
        "spec": {
            "name": "ok",
            "bogus": 1,
            "ports": [{"name": "p", "extra": 2}],
            "raw": {"anything": {"goes": 1}, "known": {"a": "x", "b": "y"}},
            "template": {
                "apiVersion": "v1",
                "kind": "Pod",
                "metadata": {"name": "t"},
                "spec": {"x": "1", "y": "2"},
                "other": 3,
            },
        },
        "status": {"phase": "x"},
    }
    removed = prune(obj, SCHEMA)
    assert removed == [
        "metadata.colour",
        "spec.bogus",
        "spec.ports[0].extra",
        "spec.raw.known.b",
        "spec.template.other",
        "spec.template.spec.y",
        "status",
    ]
    assert obj == {
        "apiVersion": "x/v1",
        "kind": "W",
        "metadata": {"name": "a"},
        "spec": {
            "name": "ok",
            "ports": [{"name": "p"}],
            "raw": {"anything": {"goes": 1}, "known": {"a": "x"}},
            "template": {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "t"}, "spec": {"x": "1"}},
        },
    }


# Defaulting ---------------------------------------------------------------------------

DEFAULTING: dict[str, Any] = {
    "type": "object",
    "properties": {
        "spec": {
            "type": "object",
            "properties": {
                "replicas": {"type": "integer", "default": 1},
                "strategy": {
                    "type": "object",
                    "default": {},
                    "properties": {"type": {"type": "string", "default": "Rolling"}},
                },
                "tls": {"type": "object", "properties": {"enabled": {"type": "boolean", "default": False}}},
                "name": {"type": "string"},
                "items": {
                    "type": "array",
                    "items": {"type": "object", "properties": {"w": {"type": "integer", "default": 7}}},
                },
            },
        },
    },
}


def test_defaults_apply_only_under_existing_parents() -> None:
    obj: dict[str, Any] = {"spec": {"name": None, "replicas": None, "items": [{}, {"w": 2}]}}
    apply_defaults(obj, DEFAULTING)
    assert obj == {"spec": {"replicas": 1, "strategy": {"type": "Rolling"}, "items": [{"w": 7}, {"w": 2}]}}
    empty: dict[str, Any] = {}
    apply_defaults(empty, DEFAULTING)
    assert empty == {}
    with_tls: dict[str, Any] = {"spec": {"tls": {}}}
    apply_defaults(with_tls, DEFAULTING)
    assert with_tls["spec"]["tls"] == {"enabled": False}


def test_defaults_are_copies() -> None:
    a: dict[str, Any] = {"spec": {}}
    b: dict[str, Any] = {"spec": {}}
    apply_defaults(a, DEFAULTING)
    apply_defaults(b, DEFAULTING)
    a["spec"]["strategy"]["type"] = "Recreate"
    assert b["spec"]["strategy"]["type"] == "Rolling"
    assert DEFAULTING["properties"]["spec"]["properties"]["strategy"]["default"] == {}
