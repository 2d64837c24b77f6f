"""CRDs: defaulting and validation, including a multi-version CRD with CEL rules."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from netplane.api.schemacheck import crd_defaults, validate, validate_crd

pytestmark = pytest.mark.unit

WIDGET_SCHEMA: dict[str, Any] = {
    "type": "object",
    "x-kubernetes-validations": [
        {"rule": "self.metadata.name.startsWith('w')", "message": "name must start with w"}
    ],
    "properties": {
        "spec": {
            "type": "object",
            "x-kubernetes-validations": [
                {
                    "rule": "self.replicas <= self.maxReplicas",
                    "message": "replicas must not exceed maxReplicas",
                },
                {"rule": "self.replicas >= oldSelf.replicas", "message": "cannot scale down"},
                {
                    "rule": "!has(self.mode) || self.mode != 'legacy'",
                    "fieldPath": ".mode",
                    "reason": "FieldValueForbidden",
                    "messageExpression": "'mode ' + self.mode + ' is retired'",
                },
                {"rule": "self.replicas != 7"},
            ],
            "properties": {
                "replicas": {"type": "integer", "default": 1},
                "maxReplicas": {"type": "integer", "default": 5},
                "mode": {"type": "string"},
                "owner": {
                    "type": "string",
                    "x-kubernetes-validations": [
                        {"rule": "self == oldSelf", "message": "owner is immutable"}
                    ],
                },
                "tags": {
                    "type": "array",
                    "items": {"type": "string"},
                    "x-kubernetes-validations": [
                        {"rule": "self.all(t, t.size() < 4)", "message": "tags are short"}
                    ],
                },
            },
        },
        "status": {"type": "object", "properties": {"replicas": {"type": "integer"}}},
    },
}


def _version(name: str, storage: bool, schema: dict[str, Any] | None = None) -> dict[str, Any]:
    return {
        "name": name,
        "served": True,
        "storage": storage,
        "schema": {"openAPIV3Schema": copy.deepcopy(schema or WIDGET_SCHEMA)},
        "subresources": {
            "status": {},
            "scale": {"specReplicasPath": ".spec.replicas", "statusReplicasPath": ".status.replicas"},
        },
        "additionalPrinterColumns": [
            {"name": "Replicas", "type": "integer", "jsonPath": ".spec.replicas"},
            {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"},
        ],
    }


def widget_crd() -> dict[str, Any]:
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": "widgets.example.com"},
        "spec": {
            "group": "example.com",
            "scope": "Namespaced",
            "names": {"plural": "widgets", "kind": "Widget", "shortNames": ["wd"]},
            "versions": [_version("v1", True), _version("v1beta1", False)],
        },
    }


def test_valid_multi_version_crd() -> None:
    assert validate_crd(widget_crd()) == []


def test_crd_defaults() -> None:
    crd = widget_crd()
    crd_defaults(crd)
    assert crd["spec"]["names"]["listKind"] == "WidgetList"
    assert crd["spec"]["names"]["singular"] == "widget"
    assert crd["spec"]["conversion"] == {"strategy": "None"}
    assert crd["spec"]["versions"][0]["additionalPrinterColumns"][0]["priority"] == 0


def _mutated(path: list[Any], value: Any) -> dict[str, Any]:
    crd = widget_crd()
    node: Any = crd
    for p in path[:-1]:
        node = node[p]
    if value is _DELETE:
        del node[path[-1]]
    else:
        node[path[-1]] = value
    return crd


_DELETE = object()
V0 = ["spec", "versions", 0]
S0 = [*V0, "schema", "openAPIV3Schema"]

CRD_CASES = [
    (
        ["metadata", "name"],
        "gadgets.example.com",
        ['metadata.name: Invalid value: "gadgets.example.com": must be spec.names.plural+"."+spec.group'],
    ),
    (
        ["spec", "group"],
        "example",
        [
            'metadata.name: Invalid value: "widgets.example.com": must be spec.names.plural+"."+spec.group',
            'spec.group: Invalid value: "example": should be a domain with at least one dot',
        ],
    ),
    (
        ["spec", "scope"],
        "Global",
        ['spec.scope: Unsupported value: "Global": supported values: "Cluster", "Namespaced"'],
    ),
    (
        ["spec", "names", "singular"],
        "Widget",
        [
            'spec.names.singular: Invalid value: "Widget": a DNS-1035 label must consist of '
            "lower case alphanumeric "
            "characters or '-', start with an alphabetic character, and end with an "
            "alphanumeric character (e.g. "
            "'my-name',  or 'abc-123', regex used for validation is '[a-z]([-a-z0-9]*[a-z0-9])?')"
        ],
    ),
    (
        ["spec", "names", "listKind"],
        "Widget",
        ['spec.names.listKind: Invalid value: "Widget": kind and listKind may not be the same'],
    ),
    (
        [*V0, "subresources", "scale", "specReplicasPath"],
        ".status.replicas",
        [
            'spec.versions[0].subresources.scale.specReplicasPath: Invalid value: ".status.replicas": '
            "should be a json path under .spec"
        ],
    ),
    (
        [*V0, "additionalPrinterColumns", 0, "type"],
        "datetime",
        [
            'spec.versions[0].additionalPrinterColumns[0].type: Invalid value: "datetime": '
            "must be one of boolean,date,integer,number,string"
        ],
    ),
    (
        [*V0, "additionalPrinterColumns", 0, "jsonPath"],
        "spec.replicas",
        [
            'spec.versions[0].additionalPrinterColumns[0].JSONPath: Invalid value: "spec.replicas": '
            "must be a simple json path starting with ."
        ],
    ),
    (
        [*S0, "properties", "spec", "properties", "mode"],
        {"description": "untyped"},
        [
            "spec.versions[0].schema.openAPIV3Schema.properties[spec].properties[mode].type: Required value: "
            "must not be empty for specified object fields"
        ],
    ),
    (
        [*S0, "type"],
        "array",
        [
            'spec.versions[0].schema.openAPIV3Schema.type: Invalid value: "array": only '
            '"object" is allowed as the type '
            "at the root of the schema if the status subresource is enabled",
            "spec.versions[0].schema.openAPIV3Schema.items: Required value: must be specified",
            'spec.versions[0].schema.openAPIV3Schema.type: Invalid value: "array": must be '
            "object at the root",
        ],
    ),
    (
        [*S0, "properties", "spec", "additionalProperties"],
        {"type": "string"},
        [
            "spec.versions[0].schema.openAPIV3Schema.properties[spec].additionalProperties: Forbidden: "
            "additionalProperties and properties are mutual exclusive"
        ],
    ),
    (
        [*S0, "properties", "spec", "properties", "replicas", "default"],
        "one",
        [
            "spec.versions[0].schema.openAPIV3Schema.properties[spec].properties[replicas].default: "
            "Invalid value: "
            '"string":  in body must be of type integer: "string"'
        ],
    ),
    (
        [*S0, "properties", "spec", "properties", "tags", "x-kubernetes-list-type"],
        "bag",
        [
            "spec.versions[0].schema.openAPIV3Schema.properties[spec].properties[tags]."
            "x-kubernetes-list-type: "
            'Unsupported value: "bag": supported values: "atomic", "set", "map"'
        ],
    ),
    (
        [*S0, "properties", "spec", "x-kubernetes-validations", 3, "rule"],
        "self.bogus > 1",
        [
            "spec.versions[0].schema.openAPIV3Schema.properties[spec].x-kubernetes-validations[3].rule: "
            "Invalid value: "
            'apiextensions.ValidationRule{Rule:"self.bogus > 1", Message:"", MessageExpression:"", '
            'Reason:(*apiextensions.FieldValueErrorReason)(nil), FieldPath:"", '
            "OptionalOldSelf:(*bool)(nil)}: "
            "compilation failed: ERROR: <input>:1:5: undefined field 'bogus'\n | self.bogus > 1\n | ....^"
        ],
    ),
    (
        [*S0, "properties", "spec", "x-kubernetes-validations", 3, "reason"],
        "FieldValueBad",
        [
            "spec.versions[0].schema.openAPIV3Schema.properties[spec].x-kubernetes-validations[3].reason: "
            'Unsupported value: "FieldValueBad": supported values: "FieldValueDuplicate", '
            '"FieldValueForbidden", '
            '"FieldValueInvalid", "FieldValueRequired"'
        ],
    ),
    (
        [*S0, "properties", "spec", "properties", "tags", "items"],
        {"type": "string", "x-kubernetes-validations": [{"rule": "self == oldSelf"}]},
        [
            "spec.versions[0].schema.openAPIV3Schema.properties[spec].properties[tags].items.x-kubernetes-validations[0]"
            '.rule: Invalid value: "self == oldSelf": oldSelf cannot be used on the '
            "uncorrelatable portion of the "
            "schema within spec.versions[0].schema.openAPIV3Schema.properties[spec].properties[tags]"
        ],
    ),
]


@pytest.mark.parametrize(("path", "value", "expected"), CRD_CASES)
def test_crd_errors(path: list[Any], value: Any, expected: list[str]) -> None:
    assert [str(e) for e in validate_crd(_mutated(path, value))] == expected


def test_storage_version_count() -> None:
    crd = widget_crd()
    crd["spec"]["versions"][1]["storage"] = True
    assert [str(e).split(": Invalid value: ")[1].rsplit(": ", 1)[1] for e in validate_crd(crd)] == [
        "must have exactly one version marked as storage version"
    ]
    crd["spec"]["versions"] = []
    assert [e.field for e in validate_crd(crd)] == ["spec.versions"]


def test_names_required() -> None:
    crd = _mutated(["spec", "names"], {"plural": "widgets"})
    assert [str(e) for e in validate_crd(crd)] == [
        "spec.names.singular: Required value",
        "spec.names.kind: Required value",
        "spec.names.listKind: Required value",
    ]


# Objects of the CRD ------------------------------------------------------------------

RULE_CASES = [
    (
        {"replicas": 6, "maxReplicas": 5},
        None,
        ['spec: Invalid value: "object": replicas must not exceed maxReplicas'],
    ),
    (
        {"replicas": 7, "maxReplicas": 8},
        None,
        ['spec: Invalid value: "object": failed rule: self.replicas != 7'],
    ),
    (
        {"replicas": 1, "maxReplicas": 5, "mode": "legacy"},
        None,
        ["spec.mode: Forbidden: mode legacy is retired"],
    ),
    (
        {"replicas": 1, "maxReplicas": 5, "tags": ["long-tag"]},
        None,
        ['spec.tags: Invalid value: "array": tags are short'],
    ),
    (
        {"replicas": 1, "maxReplicas": 5},
        {"replicas": 3, "maxReplicas": 5},
        ['spec: Invalid value: "object": cannot scale down'],
    ),
    (
        {"replicas": 4, "maxReplicas": 5, "owner": "bob"},
        {"replicas": 3, "maxReplicas": 5, "owner": "ann"},
        ['spec.owner: Invalid value: "string": owner is immutable'],
    ),
    ({"replicas": 4, "maxReplicas": 5, "owner": "bob"}, {"replicas": 3, "maxReplicas": 5}, []),
    ({"replicas": 1, "maxReplicas": 5, "owner": "bob"}, None, []),
]


@pytest.mark.parametrize(("spec", "old_spec", "expected"), RULE_CASES)
def test_cel_rules(spec: dict[str, Any], old_spec: dict[str, Any] | None, expected: list[str]) -> None:
    obj = {"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w1"}, "spec": spec}
    old = None if old_spec is None else {**obj, "spec": old_spec}
    assert [str(e) for e in validate(obj, WIDGET_SCHEMA, old)] == expected


def test_root_rule_reports_on_the_nil_path() -> None:
    obj = {"metadata": {"name": "x1"}, "spec": {"replicas": 1, "maxReplicas": 2}}
    assert [str(e) for e in validate(obj, WIDGET_SCHEMA)] == [
        '<nil>: Invalid value: "object": name must start with w'
    ]


def test_rules_are_skipped_after_blocking_errors() -> None:
    obj = {"metadata": {"name": "w1"}, "spec": {"replicas": "many", "maxReplicas": 2}}
    assert [str(e) for e in validate(obj, WIDGET_SCHEMA)] == [
        'spec.replicas: Invalid value: "string": spec.replicas in body must be of type integer: "string"',
        '<nil>: Invalid value: "null": some validation rules were not checked because '
        "the object was invalid; "
        "correct the existing errors to complete validation",
    ]


def test_runtime_error_in_rule() -> None:
    schema = {
        "type": "object",
        "properties": {
            "spec": {
                "type": "object",
                "properties": {"a": {"type": "integer"}},
                "x-kubernetes-validations": [{"rule": "self.a > 1"}],
            }
        },
    }
    assert [str(e) for e in validate({"spec": {}}, schema)] == [
        'spec: Invalid value: "object": no such key: a evaluating rule: self.a > 1'
    ]
