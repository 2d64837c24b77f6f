"""ConfigMap, Secret, Namespace, Endpoints, EndpointSlice, Lease, Node, Event, Pod and shared metadata."""

from __future__ import annotations

import base64
import copy
from typing import Any

import pytest

from netplane.api.validation import apply_defaults, validate

pytestmark = pytest.mark.unit


def causes(group: str, kind: str, obj: dict[str, Any], old: dict[str,
                                                                 Any] | None = None) -> list[tuple[str, str]]:
    apply_defaults(group, kind, obj)
    return [(e.field, e.message) for e in validate(group, kind, obj, old)]


def named(extra: dict[str, Any], name: str = "obj") -> dict[str, Any]:
    return {"metadata": {"name": name, "namespace": "default"}, **copy.deepcopy(extra)}


def test_config_map_keys_and_size() -> None:
    assert causes("", "ConfigMap", named({"data": {"app.conf": "x", "KEY_1": "y"}})) == []
    assert causes("", "ConfigMap", named({"data": {"bad key": "x"}})) == [(
        "data[bad key]", "Invalid value: \"bad key\": a valid config key must consist of alphanumeric "
                         "characters, "
        "'-', '_' or '.' (e.g. 'key.name',  or 'KEY_NAME',  or 'key-name', regex used for validation is "
        "'[-._a-zA-Z0-9]+')")]
    assert causes("", "ConfigMap", named({"data": {"a": "x" * (1024 * 1024 + 1)}})) == [
        ("", "Too long: may not be more than 1048576 bytes")]
    both = named({"data": {"k": "1"}, "binaryData": {"k": base64.b64encode(b"1").decode()}})
    assert causes("", "ConfigMap", both) == [("data[k]",
                                              'Invalid value: "k": duplicate of key present in binaryData')]


def test_immutable_config_map() -> None:
    old = named({"data": {"a": "1"}, "immutable": True})
    new = named({"data": {"a": "2"}, "immutable": True})
    assert causes("", "ConfigMap", new, old) == [("data",
                                                  "Forbidden: field is immutable when `immutable` is set")]


def test_secrets() -> None:
    assert causes("", "Secret", named({"data": {"token": "dG9r"}})) == []
    assert causes("", "Secret", named({"type": "kubernetes.io/tls", "data": {"tls.crt": "eA=="}})) == [
        ("data[tls.key]", "Required value")]
    assert causes("", "Secret", named({"type": "kubernetes.io/basic-auth"})) == [
        ("data[username]", "Required value"), ("data[password]", "Required value")]
    old = named({"data": {}})
    new = named({"type": "kubernetes.io/tls", "data": {"tls.crt": "", "tls.key": ""}})
    apply_defaults("", "Secret", old)
    assert causes("", "Secret", new, old) == [("type",
                                               'Invalid value: "kubernetes.io/tls": field is immutable')]


def test_namespace() -> None:
    assert causes("", "Namespace", {"metadata": {"name": "team-a"}}) == []
    assert causes("", "Namespace", {"metadata": {"name": "team.a"}}) == [
        ("metadata.name", 'Invalid value: "team.a": must not contain dots')]
    bad_finalizer = {"metadata": {"name": "ns"}, "spec": {"finalizers": ["custom"]}}
    assert causes("", "Namespace", bad_finalizer) == [
        ("spec.finalizers",
         'Invalid value: "custom": name is neither a standard finalizer name nor is it fully '
                            "qualified")]


def test_metadata_labels_and_annotations() -> None:
    obj = named({"data": {}})
    obj["metadata"]["labels"] = {"app": "web", "-bad": "ok"}
    obj["metadata"]["annotations"] = {"big": "x" * (256 * 1024)}
    assert causes("", "ConfigMap", obj) == [
        ("metadata.labels",
         "Invalid value: \"-bad\": name part must consist of alphanumeric characters, '-', '_' "
         "or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or "
         "'123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')"),
        ("metadata.annotations", "Too long: may not be more than 262144 bytes")]


def test_namespace_format_is_checked() -> None:
    obj = {"metadata": {"name": "cm", "namespace": "Bad"}}
    assert causes("", "ConfigMap", obj)[0][0] == "metadata.namespace"


def test_endpoints() -> None:
    good = named({"subsets": [{"addresses": [{"ip": "10.1.0.5"}], "ports": [{"port": 80}]}]})
    assert causes("", "Endpoints", good) == []
    bad = named({"subsets": [{"ports": [{"port": 80, "name": "a"}, {"port": 81}]},
                             {"addresses": [{"ip": "127.0.0.1"}]}]})
    assert causes("", "Endpoints", bad) == [
        ("subsets[0]", "Required value: must specify `addresses` or `notReadyAddresses`"),
        ("subsets[0].ports[1].name", "Required value"),
        ("subsets[1].addresses[0].ip", 'Invalid value: "127.0.0.1": may not be in the loopback range '
                                       "(127.0.0.0/8, ::1/128)")]


def test_endpoint_slice() -> None:
    good = named({"addressType": "IPv4", "endpoints": [{"addresses": ["10.1.0.5"]}], "ports": [{"port": 80}]})
    assert causes("discovery.k8s.io", "EndpointSlice", good) == []
    bad = named({"addressType": "IPv4", "endpoints": [{"addresses": ["fd00::1"]}, {"addresses": []}]})
    assert causes("discovery.k8s.io", "EndpointSlice", bad) == [
        ("endpoints[0].addresses[0]", 'Invalid value: "fd00::1": must be a valid IPv4 address'),
        ("endpoints[1].addresses", "Required value: must contain at least 1 address")]
    assert causes("discovery.k8s.io", "EndpointSlice", named({"addressType": "IP"})) == [
        ("addressType", 'Unsupported value: "IP": supported values: "FQDN", "IPv4", "IPv6"')]
    changed = named({"addressType": "IPv6"})
    assert causes("discovery.k8s.io", "EndpointSlice", changed, named({"addressType": "IPv4"})) == [
        ("addressType", 'Invalid value: "IPv6": field is immutable')]


def test_lease_node_event_service_account() -> None:
    assert causes("coordination.k8s.io", "Lease", named({"spec": {"leaseDurationSeconds": 0}})) == [
        ("spec.leaseDurationSeconds", "Invalid value: 0: must be greater than 0")]
    assert causes("", "ServiceAccount", named({})) == []
    node = {"metadata": {"name": "node-1"}, "spec": {"podCIDRs": ["10.244.0.0/24"],
                                                     "taints": [{"key": "k", "effect": "Sometimes"}]}}
    assert causes("", "Node", node) == [
        ("spec.taints[0].effect",
         'Unsupported value: "Sometimes": supported values: "NoSchedule", "PreferNoSchedule", "NoExecute"')]
    event = named({"involvedObject": {"kind": "Pod", "name": "p", "namespace": "other"}})
    assert causes("", "Event", event) == [
        ("involvedObject.namespace", 'Invalid value: "other": does not match event.namespace')]


def test_pod() -> None:
    pod = named({"spec": {"containers": [{"name": "c", "image": "busybox"}]}})
    assert causes("", "Pod", pod) == []
    bad = named({"spec": {"containers": [{"name": "c", "image": "busybox"}], "restartPolicy": "Sometimes",
                          "initContainers": [{"name": "c", "image": "busybox"}]}})
    assert causes("", "Pod", bad) == [
        ("spec.initContainers[0].name", 'Duplicate value: "c"'),
        ("spec.restartPolicy",
         'Unsupported value: "Sometimes": supported values: "Always", "OnFailure", "Never"')]
