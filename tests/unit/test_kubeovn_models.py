"""Kube-OVN kinds: the generated CRDs, and what their schemas accept, default and reject.

Objects go through the same steps the API server runs on a custom resource (defaults,
pruning, validation), so these are the outcomes `kubectl apply` reports.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import yaml

from netplane.api import schemacheck
from netplane.model import ALL_KINDS, crd_manifest
from netplane.model.crd import Kind
from netplane.model.kubeovn import IPPOOL, KUBEOVN_KINDS, PROVIDER_NETWORK, SUBNET, VLAN

pytestmark = pytest.mark.unit

EXAMPLES = Path(__file__).resolve().parent.parent / "e2e" / "guide_examples"
BY_KIND = {k.kind: k for k in KUBEOVN_KINDS}


def _schema(kind: Kind) -> dict[str, Any]:
    schema: dict[str, Any] = crd_manifest(kind)["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    return schema


def admit(obj: dict[str, Any], old: dict[str, Any] | None = None) -> tuple[dict[str, Any], list[str]]:
    """The stored object and the errors, as the API server would produce them."""
    obj = copy.deepcopy(obj)
    schema = _schema(BY_KIND[obj["kind"]])
    schemacheck.apply_defaults(obj, schema)
    schemacheck.prune(obj, schema)
    return obj, [str(e) for e in schemacheck.validate(obj, schema, old)]


def subnet(**spec: Any) -> dict[str, Any]:
    return {"apiVersion": "kubeovn.io/v1", "kind": "Subnet", "metadata": {"name": "s1"},
            "spec": {"cidrBlock": "10.16.0.0/16", **spec}}


def _kubeovn_docs() -> list[tuple[str, dict[str, Any]]]:
    docs = []
    for path in sorted(EXAMPLES.glob("*.y*ml")):
        for doc in yaml.safe_load_all(path.read_text()):
            if doc and doc.get("apiVersion") == "kubeovn.io/v1" and doc.get("kind") in BY_KIND:
                docs.append((path.name, doc))
    return docs


@pytest.mark.parametrize("kind", KUBEOVN_KINDS, ids=lambda k: k.kind)
def test_generated_crd_is_a_valid_cluster_scoped_kubeovn_crd(kind: Kind) -> None:
    manifest = crd_manifest(kind)
    assert schemacheck.validate_crd(manifest, None) == []
    assert manifest["spec"]["group"] == "kubeovn.io"
    assert manifest["spec"]["scope"] == "Cluster"
    assert [v["name"] for v in manifest["spec"]["versions"]] == ["v1"]
    assert kind in ALL_KINDS


def test_names_match_kube_ovn() -> None:
    names = {k.kind: crd_manifest(k)["spec"]["names"] for k in KUBEOVN_KINDS}
    assert {k: (n["plural"], n["singular"], n["shortNames"]) for k, n in names.items()} == {
        "Subnet": ("subnets", "subnet", ["subnet"]),
        "IP": ("ips", "ip", ["ip"]),
        "Vpc": ("vpcs", "vpc", ["vpc"]),
        "Vlan": ("vlans", "vlan", ["vlan"]),
        "ProviderNetwork": ("provider-networks", "provider-network", ["pn"]),
        "IPPool": ("ippools", "ippool", ["ippool"]),
    }
    assert crd_manifest(PROVIDER_NETWORK)["metadata"]["name"] == "provider-networks.kubeovn.io"


def test_kinds_without_a_singular_keep_the_lower_cased_kind() -> None:
    plugin = next(k for k in ALL_KINDS if k.kind == "ClusterPlugin")
    assert crd_manifest(plugin)["spec"]["names"]["singular"] == "clusterplugin"


def test_subnet_printer_columns_are_kube_ovns() -> None:
    columns = crd_manifest(SUBNET)["spec"]["versions"][0]["additionalPrinterColumns"]
    assert [(c["name"], c["jsonPath"], c["type"]) for c in columns] == [
        ("Provider", ".spec.provider", "string"), ("Vpc", ".spec.vpc", "string"),
        ("Vlan", ".spec.vlan", "string"), ("Protocol", ".spec.protocol", "string"),
        ("CIDR", ".spec.cidrBlock", "string"), ("Private", ".spec.private", "boolean"),
        ("NAT", ".spec.natOutgoing", "boolean"), ("Default", ".spec.default", "boolean"),
        ("GatewayType", ".spec.gatewayType", "string"), ("V4Used", ".status.v4usingIPs", "number"),
        ("V4Available", ".status.v4availableIPs", "number"), ("V6Used", ".status.v6usingIPs", "number"),
        ("V6Available", ".status.v6availableIPs", "number"), ("ExcludeIPs", ".spec.excludeIps", "string"),
        ("U2OInterconnectionIP", ".status.u2oInterconnectionIP", "string"),
    ]


def test_status_is_a_subresource_except_for_ip() -> None:
    # Kube-OVN's IP has no status at all; the others are written by controllers via /status.
    with_status = {k.kind for k in KUBEOVN_KINDS if "subresources" in crd_manifest(k)["spec"]["versions"][0]}
    assert with_status == {"Subnet", "Vpc", "Vlan", "ProviderNetwork", "IPPool"}


def test_every_guide_example_of_these_kinds_is_admitted_unchanged() -> None:
    docs = _kubeovn_docs()
    assert {name for name, _ in docs} >= {
        "subnet.yml", "test-overlay-subnet.yaml", "test-calico-subnet.yaml", "test-underlay-network.yaml",
        "test-vlan.yaml", "test-provider-network.yaml", "ippool.yaml", "vpc-bfd-port.yaml"}
    for name, doc in docs:
        stored, errors = admit(doc)
        assert errors == [], name
        # Nothing the user wrote is pruned or rewritten by the schema.
        for key, value in doc["spec"].items():
            assert stored["spec"][key] == value, (name, key)


def test_inconsistent_guide_subnet_is_accepted_as_written() -> None:
    # Kube-OVN derives protocol from the CIDR and clears host bits; that is the controller's
    # job (reported in status), so admission must keep the user's values.
    doc = yaml.safe_load((EXAMPLES / "test-calico-subnet.yaml").read_text())
    stored, errors = admit(doc)
    assert errors == []
    assert stored["spec"]["protocol"] == "Dual"
    assert stored["spec"]["cidrBlock"] == "10.1.1.1/24"


def test_subnet_defaults_are_kube_ovns() -> None:
    stored, errors = admit(subnet())
    assert errors == []
    assert stored["spec"] == {"cidrBlock": "10.16.0.0/16", "default": False, "provider": "ovn",
                              "gatewayNode": "", "natOutgoing": False, "private": False}


def test_other_defaults() -> None:
    vlan, _ = admit({"apiVersion": "kubeovn.io/v1", "kind": "Vlan", "metadata": {"name": "v"},
                     "spec": {"provider": "pn1"}})
    assert vlan["spec"]["id"] == 0
    pool, _ = admit({"apiVersion": "kubeovn.io/v1", "kind": "IPPool", "metadata": {"name": "p"},
                     "spec": {"subnet": "ovn-default", "ips": ["10.16.0.5"]}})
    assert pool["spec"]["enableAddressSet"] is False


@pytest.mark.parametrize("spec", [
    {"cidrBlock": "10.16.0.0/16,fd00:10:16::/64"},
    {"cidrBlock": "fd00:10:16::/64", "vxlanMode": "Always", "v6blockSize": 122},
    {"cidrBlock": "10.16.0.0/24", "v4blockSize": 30, "ipipMode": "CrossSubnet", "vxlanMode": "Never"},
    {"gateway": "10.16.0.254", "excludeIps": ["10.16.0.2..10.16.0.10", "10.16.0.100"]},
    {"gatewayType": "centralized", "gatewayNode": "node1,node2:172.18.0.2", "enableEcmp": True},
    {"vlan": "vlan1", "u2oInterconnection": True, "u2oFeatures": {"overlayOnlyRouting": True}},
    {"private": True, "allowSubnets": ["10.17.0.0/16", "fd00::/64"]},
    {"externalEgressGateway": "192.168.0.1", "policyRoutingPriority": 1000, "policyRoutingTableID": 1000},
    {"acls": [{"direction": "to-lport", "priority": 1000, "match": "ip4.src==10.10.0.2", "action": "drop"}]},
    {"natOutgoingPolicyRules": [{"match": {"srcIPs": "10.16.0.0/24"}, "action": "forward"}]},
], ids=lambda s: ",".join(s))
def test_valid_subnets_are_admitted(spec: dict[str, Any]) -> None:
    assert admit(subnet(**spec))[1] == []


@pytest.mark.parametrize(("spec", "expected"), [
    ({"protocol": "IPv5"}, 'spec.protocol: Unsupported value: "IPv5": supported values: "IPv4", "IPv6", "Dual"'),
    ({"gatewayType": "damn"}, 'spec.gatewayType: Unsupported value: "damn"'),
    ({"cidrBlock": "10.1.1/24"}, "spec.cidrBlock: Invalid value: \"string\": cidrBlock must be a CIDR"),
    ({"cidrBlock": "10.16.0.0"}, "spec.cidrBlock: Invalid value: \"string\": cidrBlock must be a CIDR"),
    ({"cidrBlock": "256.1.0.0/16"}, "spec.cidrBlock: Invalid value: \"string\": cidrBlock must be a CIDR"),
    ({"cidrBlock": "10.16.0.0/32"}, "spec.cidrBlock: Invalid value: \"string\": cidrBlock must be a CIDR"),
    ({"cidrBlock": "10.16.0.0/16,10.17.0.0/16"}, "a dual-stack cidrBlock needs one IPv4 and one IPv6 CIDR"),
    ({"gateway": "10.16.0"}, "spec.gateway: Invalid value: \"string\": gateway must be an IP address"),
    ({"excludeIps": ["10.16.0.2", "10.16.0.3-10.16.0.9"]}, 'spec.excludeIps[1]: Invalid value: "10.16.0.3-10.16.0.9"'),
    ({"allowSubnets": ["10.17.0.0"]}, 'spec.allowSubnets[0]: Invalid value: "10.17.0.0"'),
    ({"ipipMode": "Always", "vxlanMode": "Always"}, "ipipMode and vxlanMode cannot both be Always or CrossSubnet"),
    ({"ipipMode": "Sometimes"}, 'spec.ipipMode: Unsupported value: "Sometimes"'),
    ({"cidrBlock": "fd00::/64", "ipipMode": "Always"}, "spec.ipipMode: Invalid value: \"object\": IPIP encapsulates"),
    ({"cidrBlock": "10.1.0.0/23", "v4blockSize": 22}, "spec.v4blockSize: Invalid value: \"object\": v4blockSize must"),
    ({"v4blockSize": 33}, "spec.v4blockSize: Invalid value: 33"),
    ({"v6blockSize": 100}, "spec.v6blockSize: Invalid value: 100"),
    ({"logicalGateway": True, "u2oInterconnection": True}, "logicalGateway and u2oInterconnection cannot both"),
    ({"u2oInterconnection": True, "u2oFeatures": {"overlayOnlyRouting": True}},
     "spec.u2oFeatures.overlayOnlyRouting: Invalid value: \"object\": u2oFeatures.overlayOnlyRouting needs"),
    ({"natOutgoing": True, "externalEgressGateway": "192.168.0.1"},
     "natOutgoing and externalEgressGateway cannot both be set"),
    ({"acls": [{"action": "permit"}]}, 'spec.acls[0].action: Unsupported value: "permit"'),
], ids=lambda v: v if isinstance(v, str) else ",".join(v))
def test_bad_subnets_are_rejected_naming_the_field(spec: dict[str, Any], expected: str) -> None:
    errors = admit(subnet(**spec))[1]
    assert any(expected in e for e in errors), errors


def test_subnet_without_cidr_is_rejected() -> None:
    obj = subnet()
    del obj["spec"]["cidrBlock"]
    assert "spec.cidrBlock: Required value" in admit(obj)[1]


@pytest.mark.parametrize(("kind", "spec", "expected"), [
    ("Vlan", {"id": 5000, "provider": "pn1"}, "spec.id: Invalid value: 5000: spec.id in body should be less "
                                              "than or equal to 4095"),
    ("Vlan", {"id": -1, "provider": "pn1"}, "spec.id: Invalid value: -1"),
    ("Vlan", {"id": 10}, "spec.provider: Required value"),
    ("ProviderNetwork", {"defaultInterface": "a-very-long-nic-name"}, "spec.defaultInterface: Too long"),
    ("ProviderNetwork", {"defaultInterface": "eth 1"}, 'spec.defaultInterface: Invalid value: "eth 1"'),
    ("ProviderNetwork", {"defaultInterface": "eth1", "customInterfaces": [{"interface": "a/b", "nodes": []}]},
     'spec.customInterfaces[0].interface: Invalid value: "a/b"'),
    ("ProviderNetwork", {}, "spec.defaultInterface: Required value"),
    ("IPPool", {"subnet": "ovn-default"}, "spec.ips: Required value"),
    ("IPPool", {"subnet": "ovn-default", "ips": ["10.16.0.1-10.16.0.5"]}, 'spec.ips[0]: Invalid value'),
    ("IP", {"v4IpAddress": "fd00::1"}, 'spec.v4IpAddress: Invalid value: "fd00::1"'),
    ("IP", {"macAddress": "00:00:00:00:00"}, 'spec.macAddress: Invalid value: "00:00:00:00:00"'),
    ("Vpc", {"staticRoutes": [{"cidr": "0.0.0.0/0", "nextHopIP": "10.0.1.254", "policy": "src"}]},
     'spec.staticRoutes[0].policy: Unsupported value: "src"'),
    ("Vpc", {"policyRoutes": [{"priority": 40000, "action": "drop"}]}, "spec.policyRoutes[0].priority"),
])
def test_bad_objects_of_other_kinds_are_rejected(kind: str, spec: dict[str, Any], expected: str) -> None:
    errors = admit({"apiVersion": "kubeovn.io/v1", "kind": kind, "metadata": {"name": "x"}, "spec": spec})[1]
    assert any(expected in e for e in errors), errors


def test_ip_accepts_the_empty_strings_kube_ovn_writes() -> None:
    obj = {"apiVersion": "kubeovn.io/v1", "kind": "IP", "metadata": {"name": "p.default"},
           "spec": {"podName": "p", "namespace": "default", "subnet": "ovn-default", "attachSubnets": [],
                    "nodeName": "n1", "ipAddress": "10.16.0.5", "v4IpAddress": "10.16.0.5", "v6IpAddress": "",
                    "attachIps": [], "macAddress": "00:00:00:4b:1c:2d", "attachMacs": [], "containerID": "",
                    "podType": ""}}
    assert admit(obj)[1] == []


@pytest.mark.parametrize(("kind", "spec", "change", "field"), [
    (VLAN, {"id": 10, "provider": "pn1"}, {"id": 11}, "id"),
    (VLAN, {"id": 10, "provider": "pn1"}, {"provider": "pn2"}, "provider"),
    (PROVIDER_NETWORK, {"defaultInterface": "eth1"}, {"defaultInterface": "eth2"}, "defaultInterface"),
    (IPPOOL, {"subnet": "a", "ips": ["10.16.0.5"]}, {"subnet": "b"}, "subnet"),
], ids=lambda v: v.kind if isinstance(v, Kind) else None)
def test_immutable_fields(kind: Kind, spec: dict[str, Any], change: dict[str, Any], field: str) -> None:
    created: dict[str, Any] = {"apiVersion": "kubeovn.io/v1", "kind": kind.kind, "metadata": {"name": "x"},
                               "spec": spec}
    old, errors = admit(created)
    assert errors == []
    new = copy.deepcopy(old)
    new["spec"].update(change)
    assert f"spec.{field}: Invalid value: \"{'integer' if field == 'id' else 'string'}\": {field} is immutable" \
        in admit(new, old)[1]
    # An unrelated change is still allowed.
    same = copy.deepcopy(old)
    same["metadata"]["labels"] = {"a": "b"}
    assert admit(same, old)[1] == []


def test_subnet_cidr_may_change_for_expansion() -> None:
    # The guide's "Expanding Subnets" edits cidrBlock in place.
    old, _ = admit(subnet(cidrBlock="10.16.0.0/24"))
    new = copy.deepcopy(old)
    new["spec"]["cidrBlock"] = "10.16.0.0/23"
    assert admit(new, old)[1] == []
