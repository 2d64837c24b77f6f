"""Kube-OVN's kinds, served by netplane, driven with the real kubectl as the guide drives them."""

from __future__ import annotations

import json
import time
import uuid
from pathlib import Path

import pytest
import yaml

from tests.conftest import Kubectl

pytestmark = pytest.mark.e2e

EXAMPLES = Path(__file__).parent / "guide_examples"
UNDERLAY = ("test-provider-network.yaml", "test-vlan.yaml", "test-underlay-network.yaml")


def _unique(text: str, suffix: str) -> str:
    """The example with every object renamed, so tests and kubectl versions never collide."""
    docs = [d for d in yaml.safe_load_all(text) if d]
    for doc in docs:
        doc["metadata"]["name"] += f"-{suffix}"
        spec = doc.get("spec") or {}
        # Keep the example's references pointing at the renamed objects.
        if doc["kind"] == "Vlan":
            spec["provider"] += f"-{suffix}"
        if doc["kind"] == "Subnet" and spec.get("vlan"):
            spec["vlan"] += f"-{suffix}"
    return yaml.safe_dump_all(docs)


def _reconciled(kubectl: Kubectl, name: str) -> dict:
    """The Subnet once the IPAM controller has normalised it and reported in its status."""
    deadline = time.monotonic() + 30
    while True:
        subnet: dict = json.loads(kubectl("get", "subnet", name, "-o", "json"))
        if subnet["spec"].get("vpc") and (subnet.get("status") or {}).get("conditions"):
            return subnet
        assert time.monotonic() < deadline, f"subnet {name} was not reconciled"
        time.sleep(0.2)


def test_kinds_are_discoverable_cluster_scoped(kubectl: Kubectl) -> None:
    rows = kubectl("api-resources", "--api-group=kubeovn.io", "--no-headers").splitlines()
    table = {row.split()[0]: row.split() for row in rows}
    assert set(table) >= {"subnets", "ips", "vpcs", "vlans", "provider-networks", "ippools"}
    for name, short, kind in [("subnets", "subnet", "Subnet"), ("ips", "ip", "IP"), ("vpcs", "vpc", "Vpc"),
                              ("vlans", "vlan", "Vlan"), ("provider-networks", "pn", "ProviderNetwork"),
                              ("ippools", "ippool", "IPPool")]:
        # NAME SHORTNAMES APIVERSION NAMESPACED KIND
        assert table[name] == [name, short, "kubeovn.io/v1", "false", kind]


def test_underlay_network_in_the_guides_order(kubectl: Kubectl) -> None:
    suffix = uuid.uuid4().hex[:6]
    manifest = "---\n".join(_unique((EXAMPLES / name).read_text(), suffix) for name in UNDERLAY)
    out = kubectl("apply", "-f", "-", input=manifest)
    assert out.count(" created") == 3, out
    try:
        subnet = _reconciled(kubectl, f"test-underlay-network-{suffix}")
        # As the IPAM controller normalises it (protocol derived from the IPv4-only CIDR, the gateway
        # added to excludeIps, as Kube-OVN's formatSubnet does), plus Kube-OVN's defaults.
        assert subnet["spec"]["protocol"] == "IPv4"
        assert subnet["spec"]["cidrBlock"] == "11.1.0.0/23"
        assert subnet["spec"]["vlan"] == f"test-vlan-{suffix}"
        assert subnet["spec"]["excludeIps"] == ["11.1.0.1", "11.1.0.3"]
        assert subnet["spec"]["allowSubnets"] == []
        assert subnet["spec"]["provider"] == "ovn"
        assert subnet["spec"]["natOutgoing"] is False
        vlans = kubectl("get", "vlans", f"test-vlan-{suffix}").splitlines()
        assert vlans[0].split() == ["NAME", "ID", "PROVIDER", "CONFLICT"]
        assert vlans[1].split() == [f"test-vlan-{suffix}", "0", f"test-provider-network-{suffix}"]
        pns = kubectl("get", "pn", f"test-provider-network-{suffix}").splitlines()
        assert pns[0].split() == ["NAME", "DEFAULTINTERFACE", "READY"]
        assert pns[1].split() == [f"test-provider-network-{suffix}", "eth1"]
        again = kubectl("apply", "-f", "-", input=manifest)  # puts back what the controller rewrote
        assert again.count(" unchanged") == 2 and f"test-underlay-network-{suffix} configured" in again
    finally:
        kubectl("delete", "-f", "-", input=manifest)
    gone = kubectl.run("get", "subnet", f"test-underlay-network-{suffix}", check=False)
    assert gone.returncode != 0 and "NotFound" in gone.stderr


def test_get_subnets_shows_kube_ovns_columns(kubectl: Kubectl) -> None:
    suffix = uuid.uuid4().hex[:6]
    manifest = _unique((EXAMPLES / "test-overlay-subnet.yaml").read_text(), suffix)
    kubectl("apply", "-f", "-", input=manifest)
    try:
        _reconciled(kubectl, f"test-overlay-subnet-{suffix}")
        lines = kubectl("get", "subnets", f"test-overlay-subnet-{suffix}").splitlines()
        assert lines[0].split() == [
            "NAME", "PROVIDER", "VPC", "VLAN", "PROTOCOL", "CIDR", "PRIVATE", "NAT", "DEFAULT", "GATEWAYTYPE",
            "V4USED", "V4AVAILABLE", "V6USED", "V6AVAILABLE", "EXCLUDEIPS", "U2OINTERCONNECTIONIP"]
        assert lines[1].split()[0] == f"test-overlay-subnet-{suffix}"
        # Columns without a value (no vlan, no U2O address) are blank, so read by position
        # from the header's offsets.
        header = lines[0]

        def cell(name: str) -> str:
            start = header.index(name)
            rest = header[start:].split()
            end = header.index(rest[1], start) if len(rest) > 1 else None
            return lines[1][start:end].strip()

        assert cell("PROVIDER") == "ovn"
        assert cell("VPC") == "ovn-cluster"
        assert cell("PROTOCOL") == "IPv4"
        assert cell("CIDR") == "10.1.0.0/23"
        assert cell("PRIVATE") == "false"
        assert cell("NAT") == "true"
        assert cell("DEFAULT") == "false"
        assert cell("GATEWAYTYPE") == "distributed"
        assert cell("EXCLUDEIPS") == '["10.1.0.1","10.1.1.2"]'
        assert (cell("V4USED"), cell("V4AVAILABLE")) == ("0", "508")
        wide = kubectl("get", "subnet", f"test-overlay-subnet-{suffix}", "-o", "wide").splitlines()[0].split()
        assert wide[:3] == ["NAME", "PROVIDER", "VPC"]
    finally:
        kubectl("delete", "-f", "-", input=manifest)


@pytest.mark.parametrize(("resource", "expected"), [
    ("subnet.spec.cidrBlock", "or an IPv4 and an IPv6 CIDR"),
    ("subnet.spec.v4blockSize", "Calico"),
    ("vlan.spec.id", "0-4095"),
    ("provider-network.spec.defaultInterface", "must carry no other traffic"),
    ("provider-networks.spec.defaultInterface", "must carry no other traffic"),
    ("ippool.spec.ips", "first..last"),
])
def test_explain(kubectl: Kubectl, resource: str, expected: str) -> None:
    out = kubectl("explain", resource)
    assert expected in " ".join(out.split())


SUBNET = """\
apiVersion: kubeovn.io/v1
kind: Subnet
metadata:
  name: {name}
spec:
  cidrBlock: {cidr}
  protocol: {protocol}
"""
VLAN = """\
apiVersion: kubeovn.io/v1
kind: Vlan
metadata:
  name: {name}
spec:
  id: {id}
  provider: test-provider-network
"""


@pytest.mark.parametrize(("manifest", "expected"), [
    (SUBNET.format(name="bad-protocol", cidr="10.30.0.0/16", protocol="IPv5"),
     'spec.protocol: Unsupported value: "IPv5": supported values: "IPv4", "IPv6", "Dual"'),
    (SUBNET.format(name="bad-cidr", cidr="10.30.0/16", protocol="IPv4"),
     'spec.cidrBlock: Invalid value: "string": cidrBlock must be a CIDR such as 10.16.0.0/16'),
    (SUBNET.format(name="bad-cidr-32", cidr="10.30.0.0/32", protocol="IPv4"),
     'spec.cidrBlock: Invalid value: "string": cidrBlock must be a CIDR'),
    (VLAN.format(name="bad-vlan", id=5000),
     "spec.id: Invalid value: 5000: spec.id in body should be less than or equal to 4095"),
], ids=["protocol", "cidr", "cidr-32", "vlan-id"])
def test_bad_input_is_rejected_naming_the_field(kubectl: Kubectl, manifest: str, expected: str) -> None:
    result = kubectl.run("apply", "-f", "-", input=manifest, check=False)
    assert result.returncode != 0
    assert "is invalid" in result.stderr and expected in result.stderr, result.stderr
    doc = yaml.safe_load(manifest)
    assert kubectl.run("get", doc["kind"].lower(), doc["metadata"]["name"], check=False).returncode != 0


def test_vlan_id_cannot_change(kubectl: Kubectl) -> None:
    name = f"vlan-{uuid.uuid4().hex[:6]}"
    kubectl("apply", "-f", "-", input=VLAN.format(name=name, id=10))
    try:
        result = kubectl.run("apply", "-f", "-", input=VLAN.format(name=name, id=11), check=False)
        assert result.returncode != 0
        assert 'spec.id: Invalid value: "integer": id is immutable' in result.stderr, result.stderr
        assert kubectl("get", "vlan", name, "-o", "jsonpath={.spec.id}") == "10"
    finally:
        kubectl("delete", "vlan", name)
