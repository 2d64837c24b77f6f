"""Service validation: (field, message) pairs exactly as kubectl shows them."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from netplane.api.validation import apply_defaults, default_service_ip_families, validate

pytestmark = pytest.mark.unit


def service(spec: dict[str, Any], cluster_ip: str | None = "10.96.0.10", name: str = "svc") -> dict[str, Any]:
    obj: dict[str, Any] = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": name,
                                                                               "namespace": "default"},
                           "spec": copy.deepcopy(spec)}
    apply_defaults("", "Service", obj)
    if cluster_ip and obj["spec"].get("type") != "ExternalName" and not obj["spec"].get("clusterIP"):
        obj["spec"]["clusterIP"] = cluster_ip
    default_service_ip_families(obj)
    return obj


def causes(obj: dict[str, Any], old: dict[str, Any] | None = None) -> list[tuple[str, str]]:
    return [(e.field, e.message) for e in validate("", "Service", obj, old)]


PORT = {"port": 80}

CASES: list[tuple[str, dict[str, Any], list[tuple[str, str]]]] = [
    ("port out of range", {"ports": [{"port": 70000}]},
     [("spec.ports[0].port", "Invalid value: 70000: must be between 1 and 65535, inclusive"),
      ("spec.ports[0].targetPort", "Invalid value: 70000: must be between 1 and 65535, inclusive")]),
    ("no ports", {"selector": {"app": "x"}}, [("spec.ports", "Required value")]),
    ("names required with several ports", {"ports": [{"port": 80}, {"port": 443, "name": "https"}]},
     [("spec.ports[0].name", "Required value")]),
    ("duplicate names", {"ports": [{"port": 80, "name": "web"}, {"port": 81, "name": "web"}]},
     [("spec.ports[1].name", 'Duplicate value: "web"')]),
    ("duplicate port", {"ports": [{"port": 80, "name": "a"}, {"port": 80, "name": "b", "targetPort": 81}]},
     [("spec.ports[1]",
       'Duplicate value: core.ServicePort{Name:"", Protocol:"TCP", AppProtocol:(*string)(nil), '
                        'Port:80, TargetPort:intstr.IntOrString{Type:0, IntVal:0, StrVal:""}, NodePort:0}')]),
    ("same port other protocol is fine", {"ports": [{"port": 53, "name": "a"},
                                                    {"port": 53, "name": "b", "protocol": "UDP"}]}, []),
    ("bad protocol", {"ports": [{"port": 80, "protocol": "HTTP"}]},
     [("spec.ports[0].protocol", 'Unsupported value: "HTTP": supported values: "SCTP", "TCP", "UDP"')]),
    ("bad named targetPort", {"ports": [{"port": 80, "targetPort": "Web_Port"}]},
     [("spec.ports[0].targetPort",
       'Invalid value: "Web_Port": must contain only alpha-numeric characters (a-z, 0-9), and hyphens (-)')]),
    ("numeric string targetPort", {"ports": [{"port": 80, "targetPort": "8080"}]},
     [("spec.ports[0].targetPort", 'Invalid value: "8080": must contain at least one letter (a-z)')]),
    ("bad port name", {"ports": [{"port": 80, "name": "Web"}]},
     [("spec.ports[0].name", 'Invalid value: "Web": a lowercase RFC 1123 label must consist of lower case '
       "alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. "
       "'my-name',  or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')")]),
    ("appProtocol", {"ports": [{"port": 80, "appProtocol": "kubernetes.io/h2c"}]}, []),
    ("nodePort on ClusterIP", {"ports": [{"port": 80, "nodePort": 30080}]},
     [("spec.ports[0].nodePort", "Forbidden: may not be used when `type` is 'ClusterIP'")]),
    ("duplicate nodePort", {"type": "NodePort", "ports": [{"port": 80, "name": "a", "nodePort": 30080},
                                                          {"port": 81, "name": "b", "nodePort": 30080}]},
     [("spec.ports[1].nodePort", "Duplicate value: 30080")]),
    ("unsupported type", {"type": "Magic", "ports": [PORT]},
     [("spec.type", 'Unsupported value: "Magic": supported values: "ClusterIP", "ExternalName", '
                    '"LoadBalancer", "NodePort"')]),
    ("externalTrafficPolicy on ClusterIP", {"ports": [PORT], "externalTrafficPolicy": "Local"},
     [("spec.externalTrafficPolicy",
       'Invalid value: "Local": may only be set for externally-accessible services')]),
    ("bad externalTrafficPolicy", {"type": "NodePort", "ports": [PORT], "externalTrafficPolicy": "Nearby"},
     [("spec.externalTrafficPolicy", 'Unsupported value: "Nearby": supported values: "Cluster", "Local"')]),
    ("bad sessionAffinity", {"ports": [PORT], "sessionAffinity": "Sticky"},
     [("spec.sessionAffinity", 'Unsupported value: "Sticky": supported values: "ClientIP", "None"')]),
    ("affinity timeout", {"ports": [PORT], "sessionAffinity": "ClientIP",
                          "sessionAffinityConfig": {"clientIP": {"timeoutSeconds": 86401}}},
     [("spec.sessionAffinityConfig.clientIP.timeoutSeconds",
       "Invalid value: 86401: must be greater than 0 and less than 86400")]),
    ("source ranges", {"type": "LoadBalancer", "ports": [PORT], "loadBalancerSourceRanges": ["10.0.0.0/8",
                                                                                             "1.2.3"]},
     [("spec.LoadBalancerSourceRanges[1]",
       'Invalid value: "1.2.3": must be a valid CIDR value, (e.g. 10.9.8.0/24 or 2001:db8::/64)')]),
    ("source ranges need LoadBalancer", {"ports": [PORT], "loadBalancerSourceRanges": ["10.0.0.0/8"]},
     [("spec.LoadBalancerSourceRanges", "Forbidden: may only be used when `type` is 'LoadBalancer'")]),
    ("bad selector value", {"ports": [PORT], "selector": {"app": "a b"}},
     [("spec.selector",
       'Invalid value: "a b": a valid label must be an empty string or consist of alphanumeric '
       "characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. "
       "'MyValue',  or "
       "'my_value',  or '12345', regex used for validation is "
       "'(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')")]),
    ("headless needs no ports", {"clusterIP": "None", "selector": {"app": "x"}}, []),
    ("headless NodePort", {"type": "NodePort", "clusterIP": "None", "ports": [PORT]},
     [("spec.clusterIPs[0]", "Invalid value: \"None\": may not be set to 'None' for NodePort services")]),
    ("bad cluster IP", {"clusterIP": "10.96.0.300", "ports": [PORT]},
     [("spec.clusterIPs[0]",
       'Invalid value: "10.96.0.300": must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)')]),
    ("external IPs", {"ports": [PORT], "externalIPs": ["127.0.0.1"]},
     [("spec.externalIPs[0]",
       'Invalid value: "127.0.0.1": may not be in the loopback range (127.0.0.0/8, ::1/128)')]),
]


@pytest.mark.parametrize(("spec", "expected"), [(c[1], c[2]) for c in CASES], ids=[c[0] for c in CASES])
def test_service_create(spec: dict[str, Any], expected: list[tuple[str, str]]) -> None:
    assert causes(service(spec)) == expected


def test_external_name_rules() -> None:
    assert causes(service({"type": "ExternalName", "externalName": "example.com."})) == []
    assert causes(service({"type": "ExternalName"})) == [("spec.externalName", "Required value")]
    bad = service({"type": "ExternalName", "externalName": "Bad_Host"})
    assert causes(bad)[0][0] == "spec.externalName"
    assert causes(bad)[0][1].startswith('Invalid value: "Bad_Host": a lowercase RFC 1123 subdomain')
    with_ip = service({"type": "ExternalName", "externalName": "a.example", "clusterIP": "10.0.0.1"})
    assert causes(with_ip) == [("spec.clusterIPs", "Forbidden: may not be set for ExternalName services")]


def test_whole_message_for_a_bad_port_matches_kubectl() -> None:
    from netplane.api.errors import unprocessable
    errs = validate("", "Service", service({"ports": [{"port": 70000, "targetPort": 80}]}, name="bad"), None)
    assert unprocessable("Service", "bad", "", errs).message == (
        'Service "bad" is invalid: spec.ports[0].port: Invalid value: 70000: must be between 1 and '
        '65535, inclusive')


def test_undefaulted_service_reports_required_fields() -> None:
    obj = {"metadata": {"name": "raw"}, "spec": {"ports": [{"port": 80, "targetPort": 80}]}}
    assert causes(obj) == [("spec.ports[0].protocol", "Required value"), ("spec.sessionAffinity",
                                                                          "Required value"),
                           ("spec.type", "Required value")]


def test_load_balancer_requires_allocate_node_ports() -> None:
    obj = service({"type": "LoadBalancer", "ports": [PORT]})
    del obj["spec"]["allocateLoadBalancerNodePorts"]
    assert causes(obj) == [("allocateLoadBalancerNodePorts", "Required value")]


def test_cluster_ip_may_not_change() -> None:
    old = service({"ports": [PORT]}, cluster_ip="10.96.0.10")
    new = copy.deepcopy(old)
    new["spec"]["clusterIP"] = new["spec"]["clusterIPs"][0] = "10.96.0.11"
    assert causes(new, old) == [("spec.clusterIPs[0]",
                                 'Invalid value: []string{"10.96.0.11"}: may not change once set')]
    assert causes(copy.deepcopy(old), old) == []


def test_update_metadata_immutables() -> None:
    old = service({"ports": [PORT]})
    old["metadata"]["uid"] = "u1"
    new = copy.deepcopy(old)
    new["metadata"]["name"] = "other"
    new["metadata"]["uid"] = "u2"
    assert causes(new, old) == [("metadata.name", 'Invalid value: "other": field is immutable'),
                                ("metadata.uid", 'Invalid value: "u2": field is immutable')]
    no_uid = copy.deepcopy(old)
    del no_uid["metadata"]["uid"]
    assert causes(no_uid, old) == []
