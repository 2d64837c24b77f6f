"""Ingress, IngressClass and NetworkPolicy validation."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from netplane.api.validation import apply_defaults, validate

pytestmark = pytest.mark.unit

NET = "networking.k8s.io"
BACKEND = {"service": {"name": "web", "port": {"number": 80}}}


def ingress(spec: dict[str, Any], annotations: dict[str, str] | None = None) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": "ing", "namespace": "default"}
    if annotations:
        meta["annotations"] = annotations
    return {"apiVersion": f"{NET}/v1", "kind": "Ingress", "metadata": meta, "spec": copy.deepcopy(spec)}


def rule(path: dict[str, Any], host: str | None = "demo.local") -> dict[str, Any]:
    out: dict[str, Any] = {"http": {"paths": [path]}}
    if host is not None:
        out["host"] = host
    return out


def causes(kind: str, obj: dict[str, Any], old: dict[str, Any] | None = None) -> list[tuple[str, str]]:
    apply_defaults(NET, kind, obj)
    return [(e.field, e.message) for e in validate(NET, kind, obj, old)]


INGRESS_CASES: list[tuple[str, dict[str, Any], list[tuple[str, str]]]] = [
    ("default backend only", {"defaultBackend": BACKEND}, []),
    ("wildcard host", {"rules": [rule({"path": "/", "pathType": "Prefix", "backend": BACKEND},
                                      "*.example.com")]},
     []),
    ("named port, implementation specific, no path",
     {"rules": [rule({"pathType": "ImplementationSpecific",
                      "backend": {"service": {"name": "web", "port": {"name": "http"}}}}, None)]}, []),
    ("nothing", {}, [("spec",
                      "Invalid value: []networking.IngressRule(nil): either `defaultBackend` or `rules` "
                              "must be specified")]),
    ("pathType required", {"rules": [rule({"path": "/", "backend": BACKEND})]},
     [("spec.rules[0].http.paths[0].pathType", "Required value: pathType must be specified")]),
    ("pathType supported", {"rules": [rule({"path": "/", "pathType": "Regex", "backend": BACKEND})]},
     [("spec.rules[0].http.paths[0].pathType",
       'Unsupported value: "Regex": supported values: "Exact", "ImplementationSpecific", "Prefix"')]),
    ("relative path", {"rules": [rule({"path": "api", "pathType": "Prefix", "backend": BACKEND})]},
     [("spec.rules[0].http.paths[0].path", 'Invalid value: "api": must be an absolute path')]),
    ("double slash", {"rules": [rule({"path": "/a//b", "pathType": "Exact", "backend": BACKEND})]},
     [("spec.rules[0].http.paths[0].path", "Invalid value: \"/a//b\": must not contain '//'")]),
    ("both ports", {"rules": [rule({"path": "/", "pathType": "Prefix", "backend": {
        "service": {"name": "web", "port": {"number": 80, "name": "http"}}}})]},
     [("spec.rules[0].http.paths[0].backend", 'Invalid value: "": cannot set both port name & port number')]),
    ("no port", {"rules": [rule({"path": "/", "pathType": "Prefix",
                                 "backend": {"service": {"name": "web"}}})]},
     [("spec.rules[0].http.paths[0].backend", "Required value: port name or number is required")]),
    ("no backend", {"rules": [rule({"path": "/", "pathType": "Prefix", "backend": {}})]},
     [("spec.rules[0].http.paths[0].backend", 'Invalid value: "": resource or service backend is required')]),
    ("bad port number", {"defaultBackend": {"service": {"name": "web", "port": {"number": 0}}}},
     [("spec.defaultBackend", "Required value: port name or number is required")]),
    ("port number range", {"defaultBackend": {"service": {"name": "web", "port": {"number": 65536}}}},
     [("spec.defaultBackend.service.port.number",
       "Invalid value: 65536: must be between 1 and 65535, inclusive")]),
    ("IP host", {"rules": [rule({"path": "/", "pathType": "Prefix", "backend": BACKEND}, "10.0.0.1")]},
     [("spec.rules[0].host", 'Invalid value: "10.0.0.1": must be a DNS name, not an IP address')]),
    ("bad wildcard", {"rules": [rule({"path": "/", "pathType": "Prefix", "backend": BACKEND},
                                     "*.*.example.com")]},
     [("spec.rules[0].host",
       "Invalid value: \"*.*.example.com\": a wildcard DNS-1123 subdomain must start with "
       "'*.', followed by a valid DNS subdomain, which must consist of lower case alphanumeric "
       "characters, '-' or "
       "'.' and end with an alphanumeric character (e.g. '*.example.com', regex used for validation is "
       "'\\*\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')")]),
    ("no paths", {"rules": [{"host": "a.example", "http": {"paths": []}}]},
     [("spec.rules[0].http.paths", "Required value")]),
]


@pytest.mark.parametrize(("spec", "expected"), [(c[1], c[2]) for c in INGRESS_CASES],
                         ids=[c[0] for c in INGRESS_CASES])
def test_ingress(spec: dict[str, Any], expected: list[tuple[str, str]]) -> None:
    assert causes("Ingress", ingress(spec)) == expected


def test_ingress_class_annotation_must_agree_on_create() -> None:
    obj = ingress({"ingressClassName": "nginx", "defaultBackend": BACKEND},
                  annotations={"kubernetes.io/ingress.class": "alb"})
    expected = [("annotations.kubernetes.io/ingress.class",
                 'Invalid value: "alb": must match `ingressClassName` when both are specified')]
    assert causes("Ingress", copy.deepcopy(obj)) == expected
    assert causes("Ingress", copy.deepcopy(obj), old=copy.deepcopy(obj)) == []


def ingress_class(spec: dict[str, Any]) -> dict[str, Any]:
    return {"apiVersion": f"{NET}/v1", "kind": "IngressClass", "metadata": {"name": "nginx"}, "spec": spec}


@pytest.mark.parametrize(("spec", "expected"), [
    ({"controller": "k8s.io/ingress-nginx"}, []),
    ({"controller": "example.com/ingress", "parameters": {"kind": "Params", "name": "p",
                                                          "apiGroup": "x.io"}}, []),
    ({}, [("spec.controller", "Required value")]),
    ({"controller": "nginx"}, [("spec.controller",
                                'Invalid value: "nginx": must be a domain-prefixed path (such as '
                                '"acme.io/foo")')]),
    ({"controller": "k8s.io/ingress-nginx", "parameters": {"kind": "P", "name": "p", "scope": "Namespace"}},
     [("spec.parameters.namespace", "Required value: `parameters.scope` is set to 'Namespace'")]),
    ({"controller": "k8s.io/ingress-nginx", "parameters": {"name": "p", "scope": "Cluster",
                                                           "namespace": "x"}},
     [("spec.parameters.kind", "Required value: kind is required"),
      ("spec.parameters.namespace", "Forbidden: `parameters.scope` is set to 'Cluster'")]),
])
def test_ingress_class(spec: dict[str, Any], expected: list[tuple[str, str]]) -> None:
    assert causes("IngressClass", ingress_class(spec)) == expected


def test_ingress_class_controller_is_immutable() -> None:
    old = ingress_class({"controller": "k8s.io/a"})
    new = ingress_class({"controller": "k8s.io/b"})
    assert causes("IngressClass", new, old) == [("spec.controller",
                                                 'Invalid value: "k8s.io/b": field is immutable')]


def policy(spec: dict[str, Any]) -> dict[str, Any]:
    full = {"podSelector": {}}
    full.update(spec)
    return {"apiVersion": f"{NET}/v1", "kind": "NetworkPolicy", "metadata": {"name": "np",
                                                                             "namespace": "default"},
            "spec": full}


@pytest.mark.parametrize(("spec", "expected"), [
    ({"ingress": [{"from": [{"namespaceSelector": {"matchLabels": {"team": "a"}},
                             "podSelector": {"matchLabels": {"app": "b"}}}],
                   "ports": [{"port": "http"}, {"port": 8000, "endPort": 9000}]}]}, []),
    ({"ingress": [{"from": [{}]}]}, [("spec.ingress[0].from[0]", "Required value: must specify a peer")]),
    ({"egress": [{"to": [{"ipBlock": {"cidr": "10.0.0.0/8"}, "podSelector": {}}]}]},
     [("spec.egress[0].to[0]", "Forbidden: may not specify both ipBlock and another peer")]),
    ({"ingress": [{"from": [{"ipBlock": {"cidr": "10.0.0.0/16", "except": ["10.1.0.0/24",
                                                                           "10.0.0.0/16"]}}]}]},
     [("spec.ingress[0].from[0].ipBlock.except[0]",
       'Invalid value: "10.1.0.0/24": must be a strict subset of `cidr`'),
      ("spec.ingress[0].from[0].ipBlock.except[1]",
       'Invalid value: "10.0.0.0/16": must be a strict subset of `cidr`')]),
    ({"ingress": [{"from": [{"ipBlock": {"cidr": "10.0.0.0/40"}}]}]},
     [("spec.ingress[0].from[0].ipBlock.cidr",
       'Invalid value: "10.0.0.0/40": must be a valid CIDR value, (e.g. 10.9.8.0/24 or 2001:db8::/64)')]),
    ({"ingress": [{"ports": [{"protocol": "ICMP", "port": 70000}]}]},
     [("spec.ingress[0].ports[0].protocol",
       'Unsupported value: "ICMP": supported values: "TCP", "UDP", "SCTP"'),
      ("spec.ingress[0].ports[0].port", "Invalid value: 70000: must be between 1 and 65535, inclusive")]),
    ({"ingress": [{"ports": [{"port": 9000, "endPort": 8000}]}]},
     [("spec.ingress[0].ports[0].endPort", "Invalid value: 9000: must be greater than or equal to `port`")]),
    ({"ingress": [{"ports": [{"port": "dns", "endPort": 60}]}]},
     [("spec.ingress[0].ports[0].endPort",
       "Invalid value: 60: may not be specified when `port` is non-numeric")]),
    ({"policyTypes": ["Ingress", "Sideways"]},
     [("spec.policyTypes[1]", 'Unsupported value: "Sideways": supported values: "Ingress", "Egress"')]),
])
def test_network_policy(spec: dict[str, Any], expected: list[tuple[str, str]]) -> None:
    assert causes("NetworkPolicy", policy(spec)) == expected
