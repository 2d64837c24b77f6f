"""Strict decoding of built-in kinds: unknown fields and Go type errors."""

from __future__ import annotations

from typing import Any

import pytest

from netplane.api import schemas
from netplane.api.schemacheck import (
    decode_errors,
    strict_decoding_message,
    type_error_message,
    unknown_field_warning,
)

pytestmark = pytest.mark.unit


def _service() -> dict[str, Any]:
    schema = schemas.kind_schema("", "v1", "Service")
    assert schema is not None
    return schema


def _deployment() -> dict[str, Any]:
    schema = schemas.kind_schema("apps", "v1", "Deployment")
    assert schema is not None
    return schema


UNKNOWN_CASES = [
    (
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": "a"},
            "spec": {"ports": [{"port": 80}]},
            "status": {},
        },
        [],
    ),
    ({"spec": {"bogus": 1, "colour": "red"}}, ["spec.bogus", "spec.colour"]),
    ({"Spec": {}}, ["Spec"]),
    ({"metadata": {"name": "a", "labels": {"x": "y"}, "nme": "b"}}, ["metadata.nme"]),
    ({"spec": {"ports": [{"port": 1}, {"port": 2, "extra": True}]}}, ["spec.ports[1].extra"]),
    ({"spec": {"selector": {"app": "x"}}}, []),
]


@pytest.mark.parametrize(("body", "unknown"), UNKNOWN_CASES)
def test_unknown_fields_of_a_service(body: dict[str, Any], unknown: list[str]) -> None:
    assert decode_errors(body, _service()) == (unknown, [])


def test_unknown_field_deep_in_a_pod_template() -> None:
    body = {
        "spec": {
            "template": {"spec": {"containers": [{"name": "a", "image": "x", "imagePullPolicyy": "Always"}]}}
        }
    }
    assert decode_errors(body, _deployment()) == (["spec.template.spec.containers[0].imagePullPolicyy"], [])


TYPE_CASES = [
    (
        {"spec": {"ports": [{"port": "80"}]}},
        "json: cannot unmarshal string into Go struct field ServicePort.spec.ports.port of type int32",
    ),
    (
        {"spec": {"ports": [{"port": 1.5}]}},
        "json: cannot unmarshal number 1.5 into Go struct field ServicePort.spec.ports.port of type int32",
    ),
    (
        {"spec": {"ports": {"port": 80}}},
        "json: cannot unmarshal object into Go struct field ServiceSpec.spec.ports of type []v1.ServicePort",
    ),
    ({"spec": "x"}, "json: cannot unmarshal string into Go struct field Service.spec of type v1.ServiceSpec"),
    (
        {"metadata": {"labels": {"a": 1}}},
        "json: cannot unmarshal number into Go struct field ObjectMeta.metadata.labels of type string",
    ),
    (
        {"spec": {"ports": [{"port": 80, "targetPort": True}]}},
        "json: cannot unmarshal bool into Go value of type int32",
    ),
    (
        {"spec": {"publishNotReadyAddresses": "yes"}},
        "json: cannot unmarshal string into Go struct field "
        "ServiceSpec.spec.publishNotReadyAddresses of type bool",
    ),
]


@pytest.mark.parametrize(("body", "message"), TYPE_CASES)
def test_type_errors_are_worded_like_the_go_decoder(body: dict[str, Any], message: str) -> None:
    assert decode_errors(body, _service())[1] == [message]


def test_intorstring_and_null_decode() -> None:
    body = {
        "spec": {
            "ports": [{"port": 80, "targetPort": "http"}, {"port": 81, "targetPort": 8081}],
            "clusterIP": None,
        }
    }
    assert decode_errors(body, _service()) == ([], [])


def test_quantity_must_parse() -> None:
    body = {
        "spec": {
            "template": {"spec": {"containers": [{"name": "a", "resources": {"limits": {"cpu": "1x"}}}]}}
        }
    }
    assert decode_errors(body, _deployment())[1] == [
        "quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'"
    ]


def test_messages() -> None:
    assert strict_decoding_message("Service", "v1", ["spec.bogus", "spec.colour"]) == (
        'Service in version "v1" cannot be handled as a Service: strict decoding error: '
        'unknown field "spec.bogus", unknown field "spec.colour"'
    )
    assert unknown_field_warning("spec.bogus") == 'unknown field "spec.bogus"'
    assert type_error_message("Service", "v1", "json: x") == (
        'Service in version "v1" cannot be handled as a Service: json: x'
    )


def test_crd_bodies_are_checked_inside_their_schemas() -> None:
    schema = schemas.kind_schema("apiextensions.k8s.io", "v1", "CustomResourceDefinition")
    assert schema is not None
    body = {
        "spec": {
            "versions": [
                {
                    "name": "v1",
                    "schema": {
                        "openAPIV3Schema": {"type": "object", "properties": {"spec": {"tpye": "string"}}}
                    },
                }
            ]
        }
    }
    assert decode_errors(body, schema)[0] == ["spec.versions[0].schema.openAPIV3Schema.properties.spec.tpye"]
