"""SVC-9: cloud load-balancer annotations on Services, validated and announced."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from netplane.api.validation import apply_defaults, default_service_ip_families, validate
from netplane.controllers.cloudlb import announcement, event_name

pytestmark = pytest.mark.unit

AWS = "service.beta.kubernetes.io/aws-load-balancer-"
AUTO = "kubernetes.io/elb.autocreate"


def service(annotations: dict[str, Any], kind: str = "LoadBalancer") -> dict[str, Any]:
    obj: dict[str, Any] = {"apiVersion": "v1", "kind": "Service",
                           "metadata": {"name": "svc", "namespace": "default", "uid": "u-1",
                                        "annotations": copy.deepcopy(annotations)},
                           "spec": {"type": kind, "ports": [{"port": 80}]}}
    apply_defaults("", "Service", obj)
    obj["spec"]["clusterIP"] = "10.96.0.10"
    default_service_ip_families(obj)
    return obj


def causes(obj: dict[str, Any], old: dict[str, Any] | None = None) -> list[tuple[str, str]]:
    return [(e.field, e.message) for e in validate("", "Service", obj, old)]


def field(key: str) -> str:
    return f"metadata.annotations[{key}]"


VALID: list[dict[str, str]] = [
    {AWS + "type": "external", AWS + "nlb-target-type": "ip", AWS + "scheme": "internet-facing",
     AWS + "ip-address-type": "dualstack"},
    {AWS + "nlb-target-type": "instance", AWS + "scheme": "internal", AWS + "ip-address-type": "ipv4"},
    {"kubernetes.io/elb.id": "5083f225-9bf8-48fa-9c8b-67bd9693c4c0", "kubernetes.io/elb.class": "union",
     "kubernetes.io/elb.subnet-id": "subnet-1", "kubernetes.io/elb.enterpriseID": "0"},
    {"kubernetes.io/elb.class": "performance",
     AUTO: '{"type":"public","bandwidth_name":"cce-bandwidth-1551163379627","bandwidth_chargemode":"bandwidth",'
           '"bandwidth_size":5,"bandwidth_sharetype":"PER","eip_type":"5_bgp",'
           '"available_zone":["cn-north-4b"],"l4_flavor_name":"L4_flavor.elb.s1.small"}'},
    {AUTO: '{"type":"inner","something_new":[1]}'},
    {"service.beta.kubernetes.io/azure-load-balancer-internal": "true"},
    {"service.beta.kubernetes.io/azure-load-balancer-internal": "false"},
    {"networking.gke.io/load-balancer-type": "Internal", "cloud.google.com/l4-rbs": "enabled"},
    # unknown keys under a provider's prefix are accepted unchecked
    {AWS + "healthcheck-port": "anything", "kubernetes.io/elb.health-check-flag": "on",
     "service.beta.kubernetes.io/azure-pip-name": "x", "cloud.google.com/neg": "{}"},
    # not a cloud annotation at all
    {"example.com/scheme": "public"},
]


@pytest.mark.parametrize("annotations", VALID)
@pytest.mark.parametrize("kind", ["LoadBalancer", "ClusterIP"])
def test_valid_annotations(annotations: dict[str, str], kind: str) -> None:
    assert causes(service(annotations, kind)) == []


BAD_AUTOCREATE = ('{"type":"open","bandwidth_size":"5","available_zone":"az1","bandwidth_chargemode":"free",'
                  '"l4_flavor_name":3}')
INVALID: list[tuple[str, dict[str, str], list[tuple[str, str]]]] = [
    ("aws scheme", {AWS + "scheme": "public"},
     [(field(AWS + "scheme"), 'Unsupported value: "public": supported values: "internal", "internet-facing"')]),
    ("aws type", {AWS + "type": "nlb-ip"},
     [(field(AWS + "type"), 'Unsupported value: "nlb-ip": supported values: "external"')]),
    ("aws target type", {AWS + "nlb-target-type": "pod"},
     [(field(AWS + "nlb-target-type"), 'Unsupported value: "pod": supported values: "instance", "ip"')]),
    ("aws ip address type is case-sensitive", {AWS + "ip-address-type": "IPv4"},
     [(field(AWS + "ip-address-type"), 'Unsupported value: "IPv4": supported values: "dualstack", "ipv4"')]),
    ("elb class", {"kubernetes.io/elb.class": "dedicated"},
     [(field("kubernetes.io/elb.class"),
       'Unsupported value: "dedicated": supported values: "performance", "union"')]),
    ("empty elb id", {"kubernetes.io/elb.id": " "},
     [(field("kubernetes.io/elb.id"), 'Invalid value: " ": must not be empty')]),
    ("autocreate not json", {AUTO: "{type: public}"},
     [(field(AUTO), 'Invalid value: "{type: public}": must be a JSON object: '
                    "Expecting property name enclosed in double quotes: line 1 column 2 (char 1)")]),
    ("autocreate not an object", {AUTO: '["public"]'},
     [(field(AUTO), 'Invalid value: "["public"]": must be a JSON object')]),
    ("autocreate bad keys", {AUTO: BAD_AUTOCREATE},
     [(field(AUTO), f'Invalid value: "{BAD_AUTOCREATE}": {problem}')
      for problem in ('"type" must be one of "inner", "public"', '"l4_flavor_name" must be a string',
                      '"bandwidth_chargemode" must be one of "bandwidth", "traffic"',
                      '"bandwidth_size" must be a positive integer',
                      '"available_zone" must be a list of strings')]),
    ("azure", {"service.beta.kubernetes.io/azure-load-balancer-internal": "yes"},
     [(field("service.beta.kubernetes.io/azure-load-balancer-internal"),
       'Unsupported value: "yes": supported values: "false", "true"')]),
    ("gke", {"cloud.google.com/l4-rbs": "true", "networking.gke.io/load-balancer-type": "internal"},
     [(field("cloud.google.com/l4-rbs"), 'Unsupported value: "true": supported values: "enabled"'),
      (field("networking.gke.io/load-balancer-type"),
       'Unsupported value: "internal": supported values: "Internal"')]),
]


@pytest.mark.parametrize(("annotations", "expected"), [(a, e) for _, a, e in INVALID],
                         ids=[name for name, _, _ in INVALID])
def test_invalid_annotations(annotations: dict[str, str], expected: list[tuple[str, str]]) -> None:
    assert causes(service(annotations)) == expected
    # bad values are rejected whatever the Service type
    assert causes(service(annotations, "ClusterIP")) == expected


def test_update_checks_only_changed_values() -> None:
    old = service({AWS + "scheme": "public"})
    new = copy.deepcopy(old)
    new["metadata"]["annotations"]["note"] = "edited"
    assert causes(new, old) == []
    new["metadata"]["annotations"][AWS + "scheme"] = "private"
    assert causes(new, old) == [
        (field(AWS + "scheme"), 'Unsupported value: "private": supported values: "internal", "internet-facing"')]


def test_announcement() -> None:
    assert announcement(service({"example.com/x": "y"})) is None
    assert announcement(service({AWS + "scheme": "internal"}, "ClusterIP")) is None
    assert announcement(service({AWS + "scheme": "internal"})) == (
        "Service has cloud load-balancer annotations for AWS EKS; no cloud provider acts on them "
        "in this cluster, they are kept for reference only")
    both = service({"cloud.google.com/l4-rbs": "enabled", AWS + "scheme": "internal",
                    "kubernetes.io/elb.class": "union"})
    message = announcement(both)
    assert message is not None and "for AWS EKS, Huawei CCE and Google GKE;" in message
    assert event_name(both, message) == event_name(copy.deepcopy(both), message)
    assert event_name(both, message).startswith("svc.cloud-lb-")
